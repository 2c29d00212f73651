//! [`Vad`] on whichever backend a [`Compute`] names, for callers that pick
//! the device at run time (stages).

use std::path::Path;

use flow_backend::Compute;

use super::detector::{Vad, VadError};
use super::timestamps::{speech_regions, Region, SpeechParams};

/// Silero VAD loaded on the CPU or a CUDA device.
pub enum AnyVad {
    /// burn's NdArray backend.
    Cpu(Vad<flow_backend::Cpu>),
    /// burn's CUDA backend.
    #[cfg(feature = "cuda")]
    Gpu(Vad<flow_backend::Gpu>),
    /// burn's wgpu backend on a Vulkan adapter.
    #[cfg(feature = "vulkan")]
    Vulkan(Vad<flow_backend::Vk>),
}

impl AnyVad {
    /// Loads the model at `path` (see [`super::weights_file`]) for
    /// `compute`.
    ///
    /// # Errors
    /// [`VadError`] naming the file and what is wrong.
    pub fn load(path: &Path, compute: &Compute) -> Result<Self, VadError> {
        Ok(match compute {
            Compute::Cpu(d) => AnyVad::Cpu(Vad::load(path, d)?),
            #[cfg(feature = "cuda")]
            Compute::Cuda(d) => AnyVad::Gpu(Vad::load(path, d)?),
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_, d) => AnyVad::Vulkan(Vad::load(path, d)?),
        })
    }

    /// See [`Vad::probabilities_batch`].
    ///
    /// # Errors
    /// [`VadError::Readback`].
    pub fn probabilities_batch(&self, streams: &[&[f32]]) -> Result<Vec<Vec<f32>>, VadError> {
        match self {
            AnyVad::Cpu(v) => v.probabilities_batch(streams),
            #[cfg(feature = "cuda")]
            AnyVad::Gpu(v) => v.probabilities_batch(streams),
            #[cfg(feature = "vulkan")]
            AnyVad::Vulkan(v) => v.probabilities_batch(streams),
        }
    }

    /// See [`Vad::probabilities`].
    ///
    /// # Errors
    /// [`VadError::Readback`].
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f32>, VadError> {
        let mut out = self.probabilities_batch(&[samples])?;
        Ok(out.pop().unwrap_or_default())
    }

    /// See [`Vad::speech_regions`].
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
