//! A model's weight footprint, read from its weight files: element counts
//! times the compute dtype's size, not a guess.
//!
//! - safetensors: the JSON header gives every tensor's dtype and shape.
//! - CTranslate2 `model.bin`: the variable table gives every shape.
//! - any other file (PyTorch checkpoints, ONNX): its size on disk, counted
//!   as stored (they are usually stored at the compute dtype).
//!
//! Tokenizers, configs and vocabularies are skipped.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::spec::ModelSpec;

/// How a model's weight bytes were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightBytes {
    /// Bytes at the compute dtype.
    pub bytes: u64,
    /// The files counted.
    pub files: Vec<PathBuf>,
}

/// The XDG cache folder for models: `$XDG_CACHE_HOME/flow/models`, else
/// `~/.cache/flow/models`.
pub fn model_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOW_MODEL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("flow").join("models")
}

/// Where a model's files are (or will be, once fetched): `path:` relative
/// to the workflow folder, or `pip:PKG==VER#inner` under the model cache as
/// `PKG-VER/inner`.
pub fn model_dir(model: &ModelSpec, workflow_dir: &Path) -> Option<PathBuf> {
    if let Some(path) = &model.path {
        return Some(workflow_dir.join(path));
    }
    let source = model.source.as_deref()?.strip_prefix("pip:")?;
    let (package, inner) = source.split_once('#').unwrap_or((source, ""));
    let folder = package.replace("==", "-");
    Some(model_cache_dir().join(folder).join(inner))
}

/// The weight bytes of the files in `dir` (a folder or one file) at
/// `compute_bytes` bytes per element. `None` when there are no weight files.
pub fn weight_bytes(dir: &Path, compute_bytes: u64) -> Option<WeightBytes> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    let mut bytes = 0;
    let mut counted = Vec::new();
    for file in files {
        if let Some(b) = file_weight_bytes(&file, compute_bytes) {
            bytes += b;
            counted.push(file);
        }
    }
    (!counted.is_empty()).then_some(WeightBytes {
        bytes,
        files: counted,
    })
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            collect(&entry.path(), out);
        }
    }
}

/// Weight bytes of one file, or `None` when it holds no weights.
fn file_weight_bytes(file: &Path, compute_bytes: u64) -> Option<u64> {
    let name = file.file_name()?.to_str()?;
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "safetensors" => safetensors_elements(file).ok().map(|n| n * compute_bytes),
        "bin" if is_ctranslate2(file) => ctranslate2_elements(file).ok().map(|n| n * compute_bytes),
        "bin" | "pt" | "pth" | "ckpt" | "onnx" | "jit" | "npz" | "mpk" => {
            std::fs::metadata(file).ok().map(|m| m.len())
        }
        _ if name.ends_with(".tar") => std::fs::metadata(file).ok().map(|m| m.len()),
        _ => None,
    }
}

/// Total elements of every tensor in a safetensors file.
///
/// # Errors
/// I/O errors or a malformed header.
pub fn safetensors_elements(file: &Path) -> std::io::Result<u64> {
    let mut reader = File::open(file)?;
    let mut len = [0u8; 8];
    reader.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(invalid("safetensors header larger than 100 MiB"));
    }
    let mut header = vec![0; len as usize];
    reader.read_exact(&mut header)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| invalid(&e.to_string()))?;
    let tensors = header
        .as_object()
        .ok_or_else(|| invalid("header is not a JSON object"))?;
    Ok(tensors
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .filter_map(|(_, t)| t.get("shape")?.as_array().cloned())
        .map(|shape| shape.iter().filter_map(|d| d.as_u64()).product::<u64>())
        .sum())
}

/// Whether `file` starts like a CTranslate2 `model.bin` (format version
/// 1..=10, then a short spec name).
pub fn is_ctranslate2(file: &Path) -> bool {
    let Ok(mut f) = File::open(file) else {
        return false;
    };
    let mut head = [0u8; 6];
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    let version = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let name_len = u16::from_le_bytes([head[4], head[5]]);
    (1..=10).contains(&version) && (1..256).contains(&name_len)
}

/// Total elements of every variable in a CTranslate2 `model.bin`.
///
/// # Errors
/// I/O errors or a malformed file.
pub fn ctranslate2_elements(file: &Path) -> std::io::Result<u64> {
    let mut r = BufReader::new(File::open(file)?);
    let version = read_u32(&mut r)?;
    if version >= 2 {
        skip_string(&mut r)?; // spec name
        read_u32(&mut r)?; // spec revision
    }
    let count = read_u32(&mut r)?;
    let mut elements = 0u64;
    for _ in 0..count {
        skip_string(&mut r)?;
        let mut rank = [0u8; 1];
        r.read_exact(&mut rank)?;
        let mut n = 1u64;
        for _ in 0..rank[0] {
            n *= u64::from(read_u32(&mut r)?);
        }
        // One byte (the dtype from version 4, the item size before), the
        // data's byte count, then the data.
        let mut kind = [0u8; 1];
        r.read_exact(&mut kind)?;
        let bytes = read_u32(&mut r)?;
        r.seek(SeekFrom::Current(i64::from(bytes)))?;
        elements += n;
    }
    Ok(elements)
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn skip_string(r: &mut (impl Read + Seek)) -> std::io::Result<()> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len)?;
    r.seek(SeekFrom::Current(i64::from(u16::from_le_bytes(len))))?;
    Ok(())
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_count_elements_at_the_compute_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let header = br#"{"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F16","shape":[4],"data_offsets":[12,20]},"__metadata__":{"x":"y"}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 20]);
        std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let found = weight_bytes(dir.path(), 4).unwrap();
        assert_eq!(found.bytes, 10 * 4);
        assert_eq!(found.files.len(), 1);
    }

    #[test]
    fn ctranslate2_variables_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&7u16.to_le_bytes());
        b.extend_from_slice(b"whisper");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(b"w\0");
        b.push(2);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        b.push(1); // float16
        b.extend_from_slice(&30u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 30]);
        std::fs::write(dir.path().join("model.bin"), b).unwrap();
        assert_eq!(weight_bytes(dir.path(), 4).unwrap().bytes, 15 * 4);
    }

    #[test]
    fn pip_sources_map_into_the_cache() {
        let spec = ModelSpec {
            source: Some("pip:faster-whisper==1.0#assets/tiny".into()),
            path: None,
        };
        let dir = model_dir(&spec, Path::new("/w")).unwrap();
        assert!(dir.ends_with("faster-whisper-1.0/assets/tiny"), "{dir:?}");
    }
}
