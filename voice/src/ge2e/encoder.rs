//! [`SpeakerEncoder`]: the library entry point. Loads the GE2E network on
//! a device and turns 16 kHz audio into 256-d unit vectors, batching every
//! 1.6 s partial window of every clip through the network together.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use flow_backend::burn;
use flow_backend::{Compute, Weights};
use flow_engine::device::DeviceId;

use super::mel::{Mel, MelFrontEnd, N_MELS, SAMPLE_RATE};
use super::model::{Ge2e, EMBEDDING};
use super::partials::{normalize_volume, partial_slices, PartialSlice, PARTIAL_FRAMES};

/// Size of a GE2E embedding.
pub const DIM: usize = EMBEDDING;
/// The checkpoint's name inside the resemblyzer wheel.
pub const WEIGHTS_FILE: &str = "pretrained.pt";

/// Partials per forward pass on the CPU and on a GPU. Bounds the working
/// memory: the input projection of one layer is `160 × batch × 1024` f32.
const CPU_BATCH: usize = 64;
#[cfg(any(feature = "cuda", feature = "vulkan"))]
const GPU_BATCH: usize = 256;

/// The checkpoint for `path`: the file itself, or `pretrained.pt` in a
/// folder (or in `resemblyzer/` below it: the unpacked wheel).
///
/// # Errors
/// A message naming the path and the source to use.
pub fn weights_file(path: &Path) -> Result<PathBuf, String> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    [
        path.join(WEIGHTS_FILE),
        path.join("resemblyzer").join(WEIGHTS_FILE),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| {
        format!(
            "no GE2E weights at `{}`: expected `{WEIGHTS_FILE}` (or a folder holding it); use \
             `source: \"pip:resemblyzer==0.1.4#resemblyzer/{WEIGHTS_FILE}\"`",
            path.display()
        )
    })
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

enum Net {
    Cpu(Ge2e<flow_backend::Cpu>),
    #[cfg(feature = "cuda")]
    Gpu(Ge2e<flow_backend::Gpu>),
    #[cfg(feature = "vulkan")]
    Vulkan(Ge2e<flow_backend::Vk>),
}

/// The GE2E speaker encoder (Resemblyzer 0.1.4) loaded on a device.
pub struct SpeakerEncoder {
    net: Net,
    compute: Compute,
    device: DeviceId,
    front: MelFrontEnd,
    max_batch: usize,
}

/// Partial embeddings (one L2-normalised vector per 1.6 s window) and their
/// `(start, end)` times in seconds.
pub type Partials = (Vec<Vec<f32>>, Vec<(f64, f64)>);

/// A clip ready for the network: its mel spectrogram and partial windows.
struct Prepared {
    mel: Mel,
    slices: Vec<PartialSlice>,
}

impl SpeakerEncoder {
    /// Size of an embedding (256).
    pub const DIM: usize = DIM;

    /// Loads `pretrained.pt` (or a folder holding it, see [`weights_file`])
    /// onto `device`: burn's NdArray backend for `cpu` and `sim:N`, CUDA for
    /// `cuda:N`.
    ///
    /// # Errors
    /// A message when the file is missing or unreadable, a tensor is
    /// missing or misshapen, or the device cannot be used.
    pub fn load(weights: &Path, device: &DeviceId) -> Result<Self, String> {
        let file = weights_file(weights)?;
        let w = Weights::read_pytorch(&file, Some("model_state")).map_err(|e| e.to_string())?;
        let compute = Compute::for_device(*device).map_err(|e| e.to_string())?;
        let (net, max_batch) = match &compute {
            Compute::Cpu(d) => (
                Net::Cpu(Ge2e::from_weights(&w, d).map_err(|e| e.to_string())?),
                CPU_BATCH,
            ),
            #[cfg(feature = "cuda")]
            Compute::Cuda(d) => (
                Net::Gpu(Ge2e::from_weights(&w, d).map_err(|e| e.to_string())?),
                GPU_BATCH,
            ),
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_, d) => (
                Net::Vulkan(Ge2e::from_weights(&w, d).map_err(|e| e.to_string())?),
                GPU_BATCH,
            ),
        };
        Ok(Self {
            net,
            compute,
            device: *device,
            front: MelFrontEnd::new(),
            max_batch,
        })
    }

    /// Sets the most partials put through the network in one pass
    /// (default 64 on the CPU, 256 on a GPU).
    pub fn with_max_batch(mut self, partials: usize) -> Self {
        self.max_batch = partials.max(1);
        self
    }

    /// The backend the network computes on.
    pub fn compute(&self) -> &Compute {
        &self.compute
    }

    /// The device it was loaded for.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The mel front end (for inspecting what the network sees).
    pub fn front_end(&self) -> &MelFrontEnd {
        &self.front
    }

    /// Embeddings of each 1.6 s partial window over 16 kHz mono `samples`
    /// (after [`normalize_volume`]), each L2-normalised, with the window
    /// times in seconds (the last clipped to the audio's end).
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn embed_partials(&self, samples: &[f32]) -> Result<Partials, String> {
        let loud = normalize_volume(samples);
        let prepared = self.prepare(&loud);
        let rate = SAMPLE_RATE as f64;
        let times = prepared
            .slices
            .iter()
            .map(|s| {
                (
                    s.wav.start as f64 / rate,
                    s.wav.end.min(loud.len()) as f64 / rate,
                )
            })
            .collect();
        let mut partials = self.partials(std::slice::from_ref(&prepared))?;
        Ok((partials.pop().unwrap_or_default(), times))
    }

    /// Resemblyzer's `embed_utterance`: the normalised mean of the partial
    /// embeddings of `samples` (16 kHz mono, after [`normalize_volume`]).
    /// For Resemblyzer's full preprocessing, trim silences first with
    /// [`super::partials::preprocess`].
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn embed_utterance(&self, samples: &[f32]) -> Result<Vec<f32>, String> {
        Ok(self.embed_many(&[samples])?.pop().unwrap_or_default())
    }

    /// One utterance embedding per clip (each volume-normalised on its
    /// own, as [`SpeakerEncoder::embed_utterance`]), the partials of all
    /// clips batched through the network together. Clips shorter than
    /// 1.6 s are padded with zeros; an empty clip embeds silence.
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn embed_many(&self, clips: &[&[f32]]) -> Result<Vec<Vec<f32>>, String> {
        let loud: Vec<Vec<f32>> = clips.iter().map(|c| normalize_volume(c)).collect();
        let refs: Vec<&[f32]> = loud.iter().map(Vec::as_slice).collect();
        self.embed_prepared(&refs)
    }

    /// One embedding per window `(start, end)` (seconds) of `samples`: the
    /// whole stream is volume-normalised once (as Resemblyzer preprocesses
    /// a file), then each window is embedded as an utterance. Windows are
    /// clamped to the audio.
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn embed_windows(
        &self,
        samples: &[f32],
        windows: &[(f64, f64)],
    ) -> Result<Vec<Vec<f32>>, String> {
        let loud = normalize_volume(samples);
        let rate = SAMPLE_RATE as f64;
        let clips: Vec<&[f32]> = windows
            .iter()
            .map(|&(s, e)| {
                let a = ((s.max(0.0) * rate).round() as usize).min(loud.len());
                let b = ((e.max(0.0) * rate).round() as usize).clamp(a, loud.len());
                &loud[a..b]
            })
            .collect();
        self.embed_prepared(&clips)
    }

    /// [`SpeakerEncoder::embed_many`] without volume normalisation: for
    /// audio already preprocessed.
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn embed_prepared(&self, clips: &[&[f32]]) -> Result<Vec<Vec<f32>>, String> {
        let prepared: Vec<Prepared> = clips.iter().map(|c| self.prepare(c)).collect();
        let partials = self.partials(&prepared)?;
        Ok(partials.iter().map(|p| mean_normalised(p)).collect())
    }

    /// Slices a clip into partials (zero-padding it to the last one's end,
    /// as Resemblyzer does) and computes its mel spectrogram.
    fn prepare(&self, clip: &[f32]) -> Prepared {
        let slices = partial_slices(clip.len());
        let end = slices.last().map_or(0, |s| s.wav.end);
        let mel = if end > clip.len() {
            let mut padded = clip.to_vec();
            padded.resize(end, 0.0);
            self.front.compute(&padded)
        } else {
            self.front.compute(clip)
        };
        Prepared { mel, slices }
    }

    /// The partial embeddings of every prepared clip, in passes of at most
    /// `max_batch` partials.
    fn partials(&self, clips: &[Prepared]) -> Result<Vec<Vec<Vec<f32>>>, String> {
        let index: Vec<(usize, usize)> = clips
            .iter()
            .enumerate()
            .flat_map(|(c, p)| (0..p.slices.len()).map(move |s| (c, s)))
            .collect();
        let mut out: Vec<Vec<Vec<f32>>> = clips
            .iter()
            .map(|p| Vec::with_capacity(p.slices.len()))
            .collect();
        for chunk in index.chunks(self.max_batch) {
            // Time-major: frame t of every partial, then frame t + 1.
            let mut data = Vec::with_capacity(PARTIAL_FRAMES * chunk.len() * N_MELS);
            for t in 0..PARTIAL_FRAMES {
                for &(c, s) in chunk {
                    let frame = clips[c].slices[s].mel.start + t;
                    data.extend_from_slice(clips[c].mel.frame(frame));
                }
            }
            let rows = match &self.net {
                Net::Cpu(net) => run(net, data, chunk.len())?,
                #[cfg(feature = "cuda")]
                Net::Gpu(net) => run(net, data, chunk.len())?,
                #[cfg(feature = "vulkan")]
                Net::Vulkan(net) => run(net, data, chunk.len())?,
            };
            for (&(c, _), row) in chunk.iter().zip(rows.chunks_exact(DIM)) {
                out[c].push(row.to_vec());
            }
        }
        Ok(out)
    }
}

/// One forward pass of `batch` time-major partials; `[batch × DIM]` values.
fn run<B: Backend>(net: &Ge2e<B>, data: Vec<f32>, batch: usize) -> Result<Vec<f32>, String> {
    let rows = data.len() / N_MELS;
    let mels = Tensor::<B, 2>::from_data(TensorData::new(data, [rows, N_MELS]), net.device());
    net.forward(mels, batch)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("cannot read the GE2E embeddings back from the device: {e:?}"))
}

/// The L2-normalised mean of unit vectors (zeros when they cancel out).
fn mean_normalised(partials: &[Vec<f32>]) -> Vec<f32> {
    let mut mean = vec![0.0f32; DIM];
    for p in partials {
        for (m, v) in mean.iter_mut().zip(p) {
            *m += v;
        }
    }
    let n = partials.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= n);
    let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt();
    if norm > 0.0 {
        mean.iter_mut().for_each(|m| *m /= norm);
    }
    mean
}
