//! Model weights as f32 tensors by name, read from the formats flow's
//! models ship in, and turned into burn tensors on any backend.

mod ct2;
mod pytorch;
mod safetensors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorCreationOptions, TensorData};

/// One tensor: its shape and its values as f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The values.
    pub data: Vec<f32>,
}

/// Why weights could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not in the expected format.
    #[error("`{}` is not a valid {format} file: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model needs is not there.
    #[error("`{name}` is missing from `{}`{hint}", path.display())]
    Missing {
        /// The tensor name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Similar names, if any.
        hint: String,
    },
    /// A tensor has the wrong shape.
    #[error("`{name}` in `{}` has shape {found:?}, expected {expected:?}", path.display())]
    Shape {
        /// The tensor name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Its shape.
        found: Vec<usize>,
        /// The shape the model needs.
        expected: Vec<usize>,
    },
}

/// Named tensors read from one weight file.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    /// The file they came from.
    pub path: PathBuf,
    /// The tensors, by name.
    pub tensors: BTreeMap<String, RawTensor>,
    /// Format-specific metadata (the CTranslate2 spec name and revision,
    /// the safetensors `__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

impl Weights {
    /// Reads a file, choosing the format by content and extension:
    /// safetensors (`.safetensors`), PyTorch (`.pt`, `.pth`, `.ckpt`, `.bin`
    /// zip or pickle), CTranslate2 (`model.bin` with a CTranslate2 header).
    ///
    /// # Errors
    /// [`WeightError`] naming the file and what is wrong.
    pub fn read(path: &Path) -> Result<Self, WeightError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "safetensors" => safetensors::read(path),
            "bin" if ct2::looks_like(path) => ct2::read(path),
            "pt" | "pth" | "ckpt" | "bin" => pytorch::read(path),
            _ => Err(WeightError::Format {
                path: path.to_path_buf(),
                format: "weight",
                reason: "unknown extension: expected .safetensors, .bin (CTranslate2 or PyTorch), .pt or .pth".into(),
            }),
        }
    }

    /// Reads a CTranslate2 `model.bin`.
    ///
    /// # Errors
    /// [`WeightError`].
    pub fn read_ctranslate2(path: &Path) -> Result<Self, WeightError> {
        ct2::read(path)
    }

    /// Reads a safetensors file.
    ///
    /// # Errors
    /// [`WeightError`].
    pub fn read_safetensors(path: &Path) -> Result<Self, WeightError> {
        safetensors::read(path)
    }

    /// Reads a PyTorch checkpoint (zip or legacy pickle); tensors nested
    /// under `top_level_key` (for example `model_state`) when given.
    ///
    /// # Errors
    /// [`WeightError`].
    pub fn read_pytorch(path: &Path, top_level_key: Option<&str>) -> Result<Self, WeightError> {
        pytorch::read_with_key(path, top_level_key)
    }

    /// The tensor `name`.
    ///
    /// # Errors
    /// [`WeightError::Missing`], with similar names as a hint.
    pub fn raw(&self, name: &str) -> Result<&RawTensor, WeightError> {
        self.tensors.get(name).ok_or_else(|| {
            let tail = name.rsplit('.').next().unwrap_or(name);
            let similar: Vec<&str> = self
                .tensors
                .keys()
                .filter(|k| k.ends_with(tail))
                .take(5)
                .map(String::as_str)
                .collect();
            WeightError::Missing {
                name: name.to_string(),
                path: self.path.clone(),
                hint: if similar.is_empty() {
                    String::new()
                } else {
                    format!(" (similar: {})", similar.join(", "))
                },
            }
        })
    }

    /// The tensor `name` as a burn tensor of rank `D` on `device`, checking
    /// its shape when `expected` is given.
    ///
    /// # Errors
    /// [`WeightError::Missing`] or [`WeightError::Shape`].
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        expected: Option<[usize; D]>,
        device: &B::Device,
    ) -> Result<Tensor<B, D>, WeightError> {
        self.tensor_as(name, expected, device)
    }

    /// [`Weights::tensor`] with creation options: a device, or a device and
    /// the float type to store the tensor in (`(&device, DType::F16)`; the
    /// values are converted on the host).
    ///
    /// # Errors
    /// [`WeightError::Missing`] or [`WeightError::Shape`].
    pub fn tensor_as<B: Backend, const D: usize>(
        &self,
        name: &str,
        expected: Option<[usize; D]>,
        options: impl Into<TensorCreationOptions<B>>,
    ) -> Result<Tensor<B, D>, WeightError> {
        let raw = self.raw(name)?;
        let shape_ok = match expected {
            Some(e) => raw.shape == e,
            None => raw.shape.len() == D,
        };
        if !shape_ok {
            return Err(WeightError::Shape {
                name: name.to_string(),
                path: self.path.clone(),
                found: raw.shape.clone(),
                expected: expected.map_or_else(Vec::new, |e| e.to_vec()),
            });
        }
        let data = TensorData::new(raw.data.clone(), raw.shape.clone());
        Ok(Tensor::from_data(data, options))
    }

    /// Total elements over every tensor.
    pub fn elements(&self) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WeightError + '_ {
    move |source| WeightError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn format(path: &Path, format: &'static str, reason: impl Into<String>) -> WeightError {
    WeightError::Format {
        path: path.to_path_buf(),
        format,
        reason: reason.into(),
    }
}
