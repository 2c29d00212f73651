//! safetensors files: F32, F16 and BF16 tensors (integer tensors too,
//! converted to f32).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use safetensors::tensor::Metadata;
use safetensors::Dtype;

use super::{format, io, RawTensor, WeightError, Weights};

/// Headers larger than this are refused (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Reads every tensor of the file, one at a time: the file is never in
/// memory whole beside its f32 values, which would double a model's
/// memory while it loads.
pub(super) fn read(path: &Path) -> Result<Weights, WeightError> {
    let bad = |reason: String| format(path, "safetensors", reason);
    let mut file = File::open(path).map_err(io(path))?;
    let file_len = file.metadata().map_err(io(path))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("the file is shorter than a header".into()))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || 8 + header_len > file_len {
        return Err(bad(format!(
            "the header claims {header_len} bytes in a file of {file_len}"
        )));
    }
    let mut header = vec![0; header_len as usize];
    file.read_exact(&mut header).map_err(io(path))?;
    let meta: Metadata = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("the header is not valid: {e}")))?;
    let data_start = 8 + header_len;
    let mut weights = Weights {
        path: path.to_path_buf(),
        ..Default::default()
    };
    if let Some(m) = meta.metadata() {
        weights.metadata = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    let mut tensors: Vec<_> = meta.tensors().into_iter().collect();
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let mut data = Vec::new();
    for (name, info) in tensors {
        let (from, to) = info.data_offsets;
        let elements: usize = info.shape.iter().product();
        let expected = elements * info.dtype.bitsize() / 8;
        if to < from || to - from != expected || data_start + to as u64 > file_len {
            return Err(bad(format!(
                "tensor `{name}` claims bytes {from}..{to} of {} (shape {:?}, {:?})",
                file_len - data_start,
                info.shape,
                info.dtype
            )));
        }
        data.resize(to - from, 0);
        file.seek(SeekFrom::Start(data_start + from as u64))
            .and_then(|_| file.read_exact(&mut data))
            .map_err(io(path))?;
        let values = to_f32(info.dtype, &data).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` has dtype {:?}, which flow cannot read",
                info.dtype
            ))
        })?;
        weights.tensors.insert(
            name,
            RawTensor {
                shape: info.shape.clone(),
                data: values,
            },
        );
    }
    Ok(weights)
}

/// Little-endian values of `dtype` as f32; `None` for a dtype flow does not
/// read.
fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
        Dtype::I8 => data.iter().map(|&b| f32::from(b as i8)).collect(),
        Dtype::U8 | Dtype::BOOL => data.iter().map(|&b| f32::from(b)).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path) {
        let a: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let b: Vec<u8> = [0.5f32, -1.0]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let tensors = [
            (
                "a",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![2, 3], &a).unwrap(),
            ),
            (
                "b",
                safetensors::tensor::TensorView::new(Dtype::F16, vec![2], &b).unwrap(),
            ),
        ];
        let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes = safetensors::serialize(tensors, Some(metadata)).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn tensors_read_one_at_a_time_match_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        write(&path);
        let w = read(&path).unwrap();
        let a = &w.tensors["a"];
        assert_eq!(
            (a.shape.clone(), a.data.clone()),
            (vec![2, 3], vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.5])
        );
        assert_eq!(w.tensors["b"].data, [0.5, -1.0]);
        assert_eq!(w.metadata["format"], "pt");
    }

    #[test]
    fn a_truncated_file_is_a_format_error_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        write(&path);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 2).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("tensor `b` claims bytes"), "{error}");
        file.set_len(5).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("shorter than a header"), "{error}");
    }
}
