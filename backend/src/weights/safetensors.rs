//! safetensors files: F32, F16 and BF16 tensors (integer tensors too,
//! converted to f32).

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::{format, io, RawTensor, WeightError, Weights};

pub(super) fn read(path: &Path) -> Result<Weights, WeightError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| format(path, "safetensors", e.to_string()))?;
    let tensors =
        SafeTensors::deserialize(&bytes).map_err(|e| format(path, "safetensors", e.to_string()))?;
    let mut weights = Weights {
        path: path.to_path_buf(),
        ..Default::default()
    };
    if let Some(m) = meta.metadata() {
        weights.metadata = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    for (name, view) in tensors.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
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
            other => {
                return Err(format(
                    path,
                    "safetensors",
                    format!("tensor `{name}` has dtype {other:?}, which flow cannot read"),
                ))
            }
        };
        weights.tensors.insert(
            name,
            RawTensor {
                shape: view.shape().to_vec(),
                data: values,
            },
        );
    }
    Ok(weights)
}
