//! PyTorch checkpoints (zip or legacy pickle), through burn-store's reader.

use std::path::Path;

use burn::tensor::DType;
use burn_store::pytorch::PytorchReader;

use super::{format, RawTensor, WeightError, Weights};

pub(super) fn read(path: &Path) -> Result<Weights, WeightError> {
    read_with_key(path, None)
}

pub(super) fn read_with_key(path: &Path, key: Option<&str>) -> Result<Weights, WeightError> {
    let reader = match key {
        Some(k) => PytorchReader::with_top_level_key(path, k),
        None => PytorchReader::new(path),
    }
    .map_err(|e| format(path, "PyTorch checkpoint", e.to_string()))?;
    let mut weights = Weights {
        path: path.to_path_buf(),
        ..Default::default()
    };
    for (name, snapshot) in reader.into_tensors() {
        let data = snapshot
            .to_data()
            .map_err(|e| format(path, "PyTorch checkpoint", format!("`{name}`: {e:?}")))?;
        let shape = data.shape.to_vec();
        let data = if data.dtype == DType::F32 {
            data
        } else {
            data.convert::<f32>()
        };
        let values = data
            .into_vec::<f32>()
            .map_err(|e| format(path, "PyTorch checkpoint", format!("`{name}`: {e:?}")))?;
        weights.tensors.insert(
            name,
            RawTensor {
                shape,
                data: values,
            },
        );
    }
    Ok(weights)
}
