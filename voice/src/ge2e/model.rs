//! The GE2E network of Resemblyzer's `VoiceEncoder`: `nn.LSTM(40, 256,
//! num_layers=3, batch_first=True)`, the last layer's final hidden state
//! through `nn.Linear(256, 256)`, ReLU and L2 normalisation.
//!
//! The LSTM runs as burn tensor operations (on any backend): each layer's
//! input projection for every time step of every partial in one matrix
//! product, then one small product and the gates per time step for the
//! whole batch.

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use flow_backend::burn;
use flow_backend::{WeightError, Weights};

use super::mel::N_MELS;

/// LSTM hidden size.
pub const HIDDEN: usize = 256;
/// LSTM layers.
pub const LAYERS: usize = 3;
/// Embedding size.
pub const EMBEDDING: usize = 256;

/// One LSTM layer, with PyTorch's gate order (input, forget, cell, output).
#[derive(Debug, Clone)]
struct Layer<B: Backend> {
    /// `[in, 4 × HIDDEN]` (PyTorch's `weight_ih_l{k}` transposed).
    w_ih: Tensor<B, 2>,
    /// `[HIDDEN, 4 × HIDDEN]` (`weight_hh_l{k}` transposed).
    w_hh: Tensor<B, 2>,
    /// `[1, 4 × HIDDEN]`: `bias_ih_l{k} + bias_hh_l{k}`.
    bias: Tensor<B, 2>,
}

/// The GE2E speaker encoder network on a burn backend.
#[derive(Debug, Clone)]
pub struct Ge2e<B: Backend> {
    layers: Vec<Layer<B>>,
    /// `[HIDDEN, EMBEDDING]` (`linear.weight` transposed).
    linear_w: Tensor<B, 2>,
    /// `[1, EMBEDDING]`.
    linear_b: Tensor<B, 2>,
    device: B::Device,
}

impl<B: Backend> Ge2e<B> {
    /// The network from Resemblyzer's checkpoint tensors (`model_state`:
    /// `lstm.weight_ih_l0` … `lstm.bias_hh_l2`, `linear.weight`,
    /// `linear.bias`).
    ///
    /// # Errors
    /// [`WeightError`] when a tensor is missing or has the wrong shape.
    pub fn from_weights(w: &Weights, device: &B::Device) -> Result<Self, WeightError> {
        let gates = 4 * HIDDEN;
        let mut layers = Vec::with_capacity(LAYERS);
        for k in 0..LAYERS {
            let input = if k == 0 { N_MELS } else { HIDDEN };
            let w_ih: Tensor<B, 2> = w.tensor(
                &format!("lstm.weight_ih_l{k}"),
                Some([gates, input]),
                device,
            )?;
            let w_hh: Tensor<B, 2> = w.tensor(
                &format!("lstm.weight_hh_l{k}"),
                Some([gates, HIDDEN]),
                device,
            )?;
            let b_ih: Tensor<B, 1> =
                w.tensor(&format!("lstm.bias_ih_l{k}"), Some([gates]), device)?;
            let b_hh: Tensor<B, 1> =
                w.tensor(&format!("lstm.bias_hh_l{k}"), Some([gates]), device)?;
            layers.push(Layer {
                w_ih: w_ih.transpose(),
                w_hh: w_hh.transpose(),
                bias: (b_ih + b_hh).unsqueeze::<2>(),
            });
        }
        let linear_w: Tensor<B, 2> =
            w.tensor("linear.weight", Some([EMBEDDING, HIDDEN]), device)?;
        let linear_b: Tensor<B, 1> = w.tensor("linear.bias", Some([EMBEDDING]), device)?;
        Ok(Self {
            layers,
            linear_w: linear_w.transpose(),
            linear_b: linear_b.unsqueeze::<2>(),
            device: device.clone(),
        })
    }

    /// The device the weights are on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Embeddings of a batch of `batch` mel spectrograms of equal length.
    ///
    /// mels: `[frames × batch, N_MELS]`, **time-major** (rows
    /// `t × batch .. (t + 1) × batch` are frame `t` of every spectrogram);
    /// returns `[batch, EMBEDDING]`, each row ReLU'd and L2-normalised (an
    /// all-zero row stays zero).
    pub fn forward(&self, mels: Tensor<B, 2>, batch: usize) -> Tensor<B, 2> {
        let [rows, _] = mels.dims();
        let frames = rows / batch.max(1);
        let mut x = mels;
        let mut h = Tensor::<B, 2>::zeros([batch, HIDDEN], &self.device);
        for (k, layer) in self.layers.iter().enumerate() {
            let last = k + 1 == self.layers.len();
            let projected = x.clone().matmul(layer.w_ih.clone()) + layer.bias.clone();
            h = h.zeros_like();
            let mut c = h.zeros_like();
            let mut outputs = Vec::with_capacity(if last { 0 } else { frames });
            for t in 0..frames {
                let step = projected
                    .clone()
                    .slice([t * batch..(t + 1) * batch, 0..4 * HIDDEN]);
                let g = step + h.matmul(layer.w_hh.clone());
                let gate = |n: usize| g.clone().slice([0..batch, n * HIDDEN..(n + 1) * HIDDEN]);
                let (i, f, cell, o) = (gate(0), gate(1), gate(2), gate(3));
                c = sigmoid(f) * c + sigmoid(i) * cell.tanh();
                h = sigmoid(o) * c.clone().tanh();
                if !last {
                    outputs.push(h.clone());
                }
            }
            if !last {
                x = Tensor::cat(outputs, 0);
            }
        }
        let e = relu(h.matmul(self.linear_w.clone()) + self.linear_b.clone());
        let norm = (e.clone() * e.clone()).sum_dim(1).sqrt().clamp_min(1e-12);
        e / norm
    }
}
