//! Item ids as file paths, and atomic file writes.

use std::path::{Component, Path, PathBuf};

/// An item id as a relative path that stays inside a sink's folder:
/// characters other than letters, digits and `._-/` become `_`, and `..`
/// or root components are dropped.
pub fn safe_relative(id: &str) -> PathBuf {
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new(&cleaned)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_stay_inside_the_folder() {
        assert_eq!(safe_relative("media/a.wav"), PathBuf::from("media/a.wav"));
        assert_eq!(
            safe_relative("../../etc/passwd"),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(
            safe_relative("https://x.org/a b.mp3"),
            PathBuf::from("https_/x.org/a_b.mp3")
        );
    }
}
