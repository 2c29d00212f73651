//! The library entry point: load Silero VAD on a device, get frame
//! probabilities and speech regions for one stream or a batch of streams.

use std::any::TypeId;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use flow_backend::burn;
use flow_backend::{WeightError, Weights};

use super::frames;
use super::model::{DeviceState, HostState, SileroVad, COLUMNS, N_FFT};
use super::timestamps::{speech_regions, Region, SpeechParams};

/// The 16 kHz ONNX export inside the silero-vad wheel: the weights
/// silero-vad 6.2's own `load_silero_vad()` runs (its JIT and ONNX models
/// agree). Preferred.
pub const ONNX_FILE: &str = "silero_vad_16k_op15.onnx";

/// The safetensors file inside the silero-vad wheel (for its tinygrad
/// model). Same network, but in silero-vad 6.2.3 it holds a *different*
/// set of weights from the ONNX and JIT models: frame probabilities differ
/// from silero's by up to 0.65. Read when asked for by name.
pub const SAFETENSORS_FILE: &str = "silero_vad_16k.safetensors";

/// Frames (of every stream in a batch) encoded in one pass: about 33 s of
/// audio per stream. Bounds the working memory whatever the audio's length.
pub const CHUNK_FRAMES: usize = 1024;

/// Why voice activity detection failed.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// No weight file at the model path.
    #[error("no Silero VAD weights at `{}`: expected `{ONNX_FILE}` (or a folder holding it); use `source: \"pip:silero-vad==6.2.3#silero_vad/data/{ONNX_FILE}\"`", path.display())]
    NoWeights {
        /// The model path given.
        path: PathBuf,
    },
    /// The weights could not be read or do not fit the network.
    #[error("{0}")]
    Weights(#[from] WeightError),
    /// Reading a result back from the device failed.
    #[error("cannot read the VAD output back from the device: {0}")]
    Readback(String),
}

/// Silero VAD v6 (16 kHz) on a burn backend.
pub struct Vad<B: Backend> {
    model: SileroVad<B>,
    host_recurrence: bool,
}

/// The weight file for `path`: the file itself; else, in the folder (or
/// in `silero_vad/data/` below it: the unpacked wheel), [`ONNX_FILE`], then
/// [`SAFETENSORS_FILE`]; else the folder's only `.onnx` or `.safetensors`
/// file.
///
/// # Errors
/// [`VadError::NoWeights`].
pub fn weights_file(path: &Path) -> Result<PathBuf, VadError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    for dir in [path.to_path_buf(), path.join("silero_vad/data")] {
        for name in [ONNX_FILE, SAFETENSORS_FILE] {
            if dir.join(name).is_file() {
                return Ok(dir.join(name));
            }
        }
    }
    let only: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "onnx" || e == "safetensors")
        })
        .collect();
    match only.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(VadError::NoWeights {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads the weights of `file`: ONNX (`.onnx`) or safetensors.
///
/// # Errors
/// [`VadError::Weights`].
pub fn read_weights(file: &Path) -> Result<Weights, VadError> {
    Ok(match file.extension().and_then(|e| e.to_str()) {
        Some("onnx") => super::onnx::read(file)?,
        _ => Weights::read(file)?,
    })
}

impl<B: Backend> Vad<B> {
    /// Loads the model at `path` (an `.onnx` or `.safetensors` file, or a
    /// folder: see [`weights_file`]) onto `device`. The
    /// LSTM recurrence runs on the host for burn's CPU backend and on the
    /// device otherwise (see [`Vad::host_recurrence`]).
    ///
    /// # Errors
    /// [`VadError`] naming the file and what is wrong.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, VadError> {
        let weights = read_weights(&weights_file(path)?)?;
        Ok(Self {
            model: SileroVad::from_weights(&weights, device)?,
            host_recurrence: TypeId::of::<B>() == TypeId::of::<flow_backend::Cpu>(),
        })
    }

    /// Runs the frame-to-frame recurrence on the host (`true`) or as burn
    /// tensor operations on the device (`false`). Both compute the same
    /// thing; the host is faster for the CPU backend, the device for a GPU
    /// with a batch of streams.
    pub fn host_recurrence(mut self, host: bool) -> Self {
        self.host_recurrence = host;
        self
    }

    /// The network.
    pub fn model(&self) -> &SileroVad<B> {
        &self.model
    }

    /// The speech probability of every 512-sample frame of 16 kHz mono
    /// `samples` (`ceil(len / 512)` values; the last frame padded with
    /// zeros), the model's state carried from frame to frame.
    ///
    /// # Errors
    /// [`VadError::Readback`].
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f32>, VadError> {
        let mut out = self.probabilities_batch(&[samples])?;
        Ok(out.pop().unwrap_or_default())
    }

    /// [`Vad::probabilities`] for several streams at once: their frames go
    /// through the network together (one matrix product per layer for all
    /// of them, one recurrence step for all of them).
    ///
    /// # Errors
    /// [`VadError::Readback`].
    pub fn probabilities_batch(&self, streams: &[&[f32]]) -> Result<Vec<Vec<f32>>, VadError> {
        let counts: Vec<usize> = streams.iter().map(|s| frames::count(s.len())).collect();
        let total = counts.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Vec<f32>> = counts.iter().map(|&n| Vec::with_capacity(n)).collect();
        let dev = self.model.device();
        let mut host = HostState::zeros(streams.len());
        let mut device = DeviceState::<B>::zeros(streams.len(), dev);
        let mut buf = Vec::new();
        let mut first = 0;
        while first < total {
            let steps = CHUNK_FRAMES.min(total - first);
            frames::windows(streams, first, steps, &mut buf);
            let rows = steps * streams.len() * COLUMNS;
            let data = TensorData::new(std::mem::take(&mut buf), [rows, N_FFT]);
            let gates = self.model.gate_inputs(Tensor::from_data(data, dev));
            let probs = if self.host_recurrence {
                let gates = read(gates)?;
                self.model.recur_host(&gates, &mut host)
            } else {
                read(self.model.recur(gates, &mut device))?
            };
            for (row, p) in probs.into_iter().enumerate() {
                let s = row % streams.len();
                if first + row / streams.len() < counts[s] {
                    out[s].push(p);
                }
            }
            first += steps;
        }
        Ok(out)
    }

    /// The speech regions of 16 kHz mono `samples`, as silero's
    /// `get_speech_timestamps` finds them with `params`.
    ///
    /// # Errors
    /// [`VadError::Readback`].
    pub fn speech_regions(
        &self,
        samples: &[f32],
        params: &SpeechParams,
    ) -> Result<Vec<Region>, VadError> {
        let probs = self.probabilities(samples)?;
        Ok(speech_regions(&probs, samples.len(), params))
    }
}

fn read<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, VadError> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| VadError::Readback(format!("{e:?}")))
}
