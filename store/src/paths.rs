//! Item ids as file paths (the built-in sinks' rule), and atomic file
//! writes.

use std::path::{Path, PathBuf};

pub use flow_stages::sink::safe_relative;

/// Writes `bytes` to `path` through a temporary file beside it and a
/// rename, so a reader never sees half a file; creates the folder.
///
/// # Errors
/// A message naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(".partial");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes).map_err(|e| format!("cannot write `{}`: {e}", temp.display()))?;
    std::fs::rename(&temp, path).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}
