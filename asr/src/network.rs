//! What transcription needs of a Whisper network, so one decoding loop
//! drives both implementations: [`Whisper`] in burn (CUDA, and the
//! reference for the CPU one) and [`crate::cpu::CpuWhisper`] on the fused
//! CPU kernels (what `asr.whisper` runs on the CPU).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use flow_backend::burn;

use crate::model::{DecoderState, Dims, Whisper};

/// A Whisper encoder-decoder.
pub trait Network {
    /// Encoded audio of a batch of windows.
    type Audio: Clone;
    /// What the decoder keeps between steps, per batch row.
    type State;

    /// The model's sizes.
    fn dims(&self) -> Dims;

    /// Encodes `windows` mel windows: `windows × n_mels × 3000` values,
    /// row-major.
    fn encode(&self, mel: Vec<f32>, windows: usize) -> Self::Audio;

    /// The windows `rows` of `audio` (repeats allowed), as a new batch.
    fn select(&self, audio: &Self::Audio, rows: &[usize]) -> Self::Audio;

    /// A decoder state for every window of `audio`.
    fn start(&self, audio: Self::Audio) -> Self::State;

    /// Feeds `tokens` (one sequence per batch row, all the same length)
    /// and returns the logits of each row's last position,
    /// `rows × vocab`, row-major.
    fn step(&self, state: &mut Self::State, tokens: &[Vec<u32>]) -> Vec<f32>;

    /// Keeps only the batch rows `keep` (ascending) of `state`.
    fn retain(&self, state: &mut Self::State, keep: &[usize]);
}

impl<B: Backend> Network for Whisper<B> {
    type Audio = Tensor<B, 3>;
    type State = DecoderState<B>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn encode(&self, mel: Vec<f32>, windows: usize) -> Tensor<B, 3> {
        let n_mels = self.dims.n_mels;
        let frames = mel.len() / (windows * n_mels).max(1);
        let input = Tensor::<B, 3>::from_data(
            TensorData::new(mel, [windows, n_mels, frames]),
            (self.device(), self.dtype()),
        );
        Whisper::encode(self, input)
    }

    fn select(&self, audio: &Tensor<B, 3>, rows: &[usize]) -> Tensor<B, 3> {
        let idx: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), self.device());
        audio.clone().select(0, idx)
    }

    fn start(&self, audio: Tensor<B, 3>) -> DecoderState<B> {
        Whisper::start(self, audio)
    }

    fn step(&self, state: &mut DecoderState<B>, tokens: &[Vec<u32>]) -> Vec<f32> {
        Whisper::step(self, state, tokens)
    }

    fn retain(&self, state: &mut DecoderState<B>, keep: &[usize]) {
        Whisper::retain(self, state, keep);
    }
}
