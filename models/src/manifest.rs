//! `.flow-manifest.json`: what a cached package folder holds, written when
//! the wheel is unpacked and checked before the folder is reused.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The manifest's file name inside `<cache>/<PACKAGE>-<VERSION>/`.
pub const MANIFEST: &str = ".flow-manifest.json";

/// The record of one unpacked wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The package name as the workflow wrote it.
    pub package: String,
    /// The pinned version.
    pub version: String,
    /// The wheel's file name (`silero_vad-6.2.3-py3-none-any.whl`).
    pub wheel: String,
    /// SHA-256 of the wheel, hex (the hash the package index publishes).
    pub wheel_sha256: String,
    /// When it was fetched, RFC 3339 UTC (`2025-06-01T12:00:00Z`).
    pub fetched_at: String,
    /// Every unpacked file, sorted by path.
    pub files: Vec<FileRecord>,
}

/// One unpacked file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The path inside the wheel, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its content, hex.
    pub blake3: String,
}

/// How hard to check a cached folder before reusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every file exists with its recorded size (cheap: no reading).
    Sizes,
    /// Sizes, then every file's BLAKE3 hash (reads every byte).
    Hashes,
}

impl Manifest {
    /// Reads `dir/.flow-manifest.json`; `None` when it is missing or unreadable
    /// (the folder is then treated as not cached).
    pub fn read(dir: &Path) -> Option<Manifest> {
        let text = std::fs::read(dir.join(MANIFEST)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes `dir/.flow-manifest.json`.
    ///
    /// # Errors
    /// [`ModelError::Io`] when the file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| ModelError::io("encode", &path, std::io::Error::other(e)))?;
        let mut file = File::create(&path).map_err(|e| ModelError::io("create", &path, e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| ModelError::io("write", &path, e))
    }

    /// Total bytes of every file.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks the files under `dir` against the records. `Err` holds the
    /// first problem, e.g. ``silero_vad/x.onnx: 12 bytes, expected 40``.
    pub fn verify(&self, dir: &Path, check: Check) -> Result<(), String> {
        for record in &self.files {
            let path = dir.join(&record.path);
            let size = match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => meta.len(),
                Ok(_) => return Err(format!("{}: not a file", record.path)),
                Err(_) => return Err(format!("{}: missing", record.path)),
            };
            if size != record.size {
                return Err(format!(
                    "{}: {size} bytes, expected {}",
                    record.path, record.size
                ));
            }
            if check == Check::Hashes {
                let hash = hash_file(&path).map_err(|e| format!("{}: {e}", record.path))?;
                if hash != record.blake3 {
                    return Err(format!("{}: content changed (BLAKE3 differs)", record.path));
                }
            }
        }
        Ok(())
    }

    /// The records at or under `inner` (a file or a folder; `""` is all).
    pub fn under<'a>(&'a self, inner: &'a str) -> impl Iterator<Item = &'a FileRecord> + 'a {
        self.files.iter().filter(move |f| {
            inner.is_empty()
                || f.path == inner
                || f.path
                    .strip_prefix(inner)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// The absolute paths of the records under `inner`, rooted at `dir`.
    pub fn paths_under(&self, dir: &Path, inner: &str) -> Vec<(PathBuf, u64)> {
        self.under(inner)
            .map(|f| (dir.join(&f.path), f.size))
            .collect()
    }
}

/// BLAKE3 of a file, hex.
///
/// # Errors
/// I/O errors reading it.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// What a wheel holds instead of `inner`: its top-level entries and, when
/// `inner` is deeper, what the deepest existing folder on its way holds.
pub fn describe_contents(paths: &[&str], inner: &str) -> String {
    let children = |folder: &str| {
        let mut names: Vec<String> = paths
            .iter()
            .filter_map(|p| {
                let rest = if folder.is_empty() {
                    *p
                } else {
                    p.strip_prefix(folder)?.strip_prefix('/')?
                };
                Some(match rest.split_once('/') {
                    Some((dir, _)) => format!("{dir}/"),
                    None => rest.to_string(),
                })
            })
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let list = |names: Vec<String>| {
        let shown: Vec<String> = names.iter().take(20).map(|n| format!("`{n}`")).collect();
        let more = names.len().saturating_sub(shown.len());
        let mut text = shown.join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    };
    let mut text = format!("at its top: {}", list(children("")));
    let mut deepest = String::new();
    for part in inner.split('/').filter(|p| !p.is_empty()) {
        let next = if deepest.is_empty() {
            part.to_string()
        } else {
            format!("{deepest}/{part}")
        };
        if children(&next).is_empty() {
            break;
        }
        deepest = next;
    }
    if !deepest.is_empty() {
        text.push_str(&format!("; in `{deepest}/`: {}", list(children(&deepest))));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path) -> Manifest {
        std::fs::create_dir_all(dir.join("pkg/data")).unwrap();
        std::fs::write(dir.join("pkg/data/w.bin"), b"weights").unwrap();
        std::fs::write(dir.join("pkg/__init__.py"), b"").unwrap();
        let record = |path: &str| FileRecord {
            path: path.into(),
            size: std::fs::metadata(dir.join(path)).unwrap().len(),
            blake3: hash_file(&dir.join(path)).unwrap(),
        };
        Manifest {
            package: "pkg".into(),
            version: "1.0".into(),
            wheel: "pkg-1.0-py3-none-any.whl".into(),
            wheel_sha256: "00".into(),
            fetched_at: "2025-01-01T00:00:00Z".into(),
            files: vec![record("pkg/__init__.py"), record("pkg/data/w.bin")],
        }
    }

    #[test]
    fn a_manifest_round_trips_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path());
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()), Some(m.clone()));
        assert_eq!(m.verify(dir.path(), Check::Hashes), Ok(()));
        assert_eq!(m.bytes(), 7);
    }

    #[test]
    fn changed_files_are_caught_by_size_or_hash() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path());
        std::fs::write(dir.path().join("pkg/data/w.bin"), b"WEIGHTS").unwrap();
        assert_eq!(m.verify(dir.path(), Check::Sizes), Ok(()));
        let err = m.verify(dir.path(), Check::Hashes).unwrap_err();
        assert!(err.contains("pkg/data/w.bin"), "{err}");
        std::fs::write(dir.path().join("pkg/data/w.bin"), b"w").unwrap();
        let err = m.verify(dir.path(), Check::Sizes).unwrap_err();
        assert!(err.contains("1 bytes, expected 7"), "{err}");
        std::fs::remove_file(dir.path().join("pkg/data/w.bin")).unwrap();
        assert!(m
            .verify(dir.path(), Check::Sizes)
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn under_selects_a_file_or_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path());
        assert_eq!(m.under("pkg/data").count(), 1);
        assert_eq!(m.under("pkg/data/w.bin").count(), 1);
        assert_eq!(m.under("pkg/dat").count(), 0);
        assert_eq!(m.under("").count(), 2);
    }

    #[test]
    fn missing_paths_are_explained_with_what_exists() {
        let paths = [
            "a/x.py",
            "a/data/w.bin",
            "a/data/v.onnx",
            "a-1.0.dist-info/RECORD",
        ];
        let text = describe_contents(&paths, "a/data/nope.bin");
        assert_eq!(
            text,
            "at its top: `a-1.0.dist-info/`, `a/`; in `a/data/`: `v.onnx`, `w.bin`"
        );
        let text = describe_contents(&paths, "b/model");
        assert_eq!(text, "at its top: `a-1.0.dist-info/`, `a/`");
    }
}
