//! The Silero VAD v6 16 kHz network in burn (the forward pass of the
//! wheel's `tinygrad_model.py`, which is the graph of its ONNX export),
//! with weights from `silero_vad_16k_op15.onnx` or
//! `silero_vad_16k.safetensors` (named as in the latter).
//!
//! One frame is 64 samples of context (the end of the previous frame) and
//! 512 new samples, reflect-padded by 64 on the right (640 samples). Then:
//!
//! 1. STFT as a convolution: 258 filters of 256 taps, hop 128 → 4 columns;
//!    magnitude `sqrt(re² + im²)` of the 129 bins.
//! 2. Four kernel-3 convolutions with ReLU: 129→128 (stride 1), 128→64
//!    (stride 2), 64→64 (stride 2), 64→128 (stride 1); 4 columns become 1.
//! 3. An LSTM cell (128 → 128) whose `(h, c)` is carried from frame to frame.
//! 4. ReLU, a 1×1 convolution to one value and a sigmoid: the speech
//!    probability.
//!
//! Steps 1–2 and the LSTM's input projection do not depend on the state, so
//! they run for many frames (of many streams) in one batch of matrix
//! products; the convolutions over 4, 2 and 1 columns are exact dense
//! matrices built at load time. Only the recurrence is sequential: on the
//! device ([`SileroVad::recur`]) or on the host ([`SileroVad::recur_host`],
//! faster on the CPU backend where tiny per-step tensors cost more than the
//! arithmetic).

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use flow_backend::burn;
use flow_backend::{RawTensor, WeightError, Weights};

/// New samples per frame at 16 kHz.
pub const FRAME: usize = 512;
/// Samples of the previous frame prepended to each frame.
pub const CONTEXT: usize = 64;
/// Reflect padding on the right of each frame.
pub const REFLECT: usize = 64;
/// STFT window (filter taps).
pub const N_FFT: usize = 256;
/// STFT hop.
pub const HOP: usize = 128;
/// STFT columns per frame: `(CONTEXT + FRAME + REFLECT - N_FFT) / HOP + 1`.
pub const COLUMNS: usize = (CONTEXT + FRAME + REFLECT - N_FFT) / HOP + 1;
/// Width of the LSTM state.
pub const HIDDEN: usize = 128;
/// Frequency bins of the STFT magnitude.
const BINS: usize = N_FFT / 2 + 1;
/// LSTM gates (i, f, g, o) × hidden.
const GATES: usize = 4 * HIDDEN;

/// A convolution over a fixed, tiny number of columns written as one matrix
/// product: input `[n, t_in · c_in]` (column-major over time: index
/// `j · c_in + c`) → output `[n, t_out · c_out]`, then ReLU.
struct Dense<B: Backend> {
    /// `[t_in · c_in, t_out · c_out]`.
    w: Tensor<B, 2>,
    /// `[t_out · c_out]`.
    b: Tensor<B, 1>,
}

/// The LSTM state of a batch of streams on the host: `h` and `c`, each
/// `[streams, HIDDEN]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    /// Hidden state.
    pub h: Vec<f32>,
    /// Cell state.
    pub c: Vec<f32>,
}

impl HostState {
    /// Zeros (the state before the first frame) for `streams` streams.
    pub fn zeros(streams: usize) -> Self {
        Self {
            h: vec![0.0; streams * HIDDEN],
            c: vec![0.0; streams * HIDDEN],
        }
    }
}

/// The LSTM state of a batch of streams on the device: `[streams, HIDDEN]`.
#[derive(Debug, Clone)]
pub struct DeviceState<B: Backend> {
    /// Hidden state.
    pub h: Tensor<B, 2>,
    /// Cell state.
    pub c: Tensor<B, 2>,
}

impl<B: Backend> DeviceState<B> {
    /// Zeros for `streams` streams on `device`.
    pub fn zeros(streams: usize, device: &B::Device) -> Self {
        Self {
            h: Tensor::zeros([streams, HIDDEN], device),
            c: Tensor::zeros([streams, HIDDEN], device),
        }
    }
}

/// Silero VAD v6 (16 kHz) on one device.
pub struct SileroVad<B: Backend> {
    /// STFT filters, transposed: `[N_FFT, 2 · BINS]`.
    stft: Tensor<B, 2>,
    /// conv1..conv4 as dense matrices.
    convs: Vec<Dense<B>>,
    /// LSTM input weights, transposed: `[HIDDEN, GATES]`.
    w_ih: Tensor<B, 2>,
    /// `bias_ih + bias_hh`: `[GATES]`.
    bias: Tensor<B, 1>,
    /// LSTM recurrent weights, transposed: `[HIDDEN, GATES]`.
    w_hh: Tensor<B, 2>,
    /// Output 1×1 convolution, `[HIDDEN, 1]`, and its bias `[1]`.
    out: (Tensor<B, 2>, Tensor<B, 1>),
    /// `weight_hh` as read, `[GATES, HIDDEN]`, for the host recurrence.
    host_w_hh: Vec<f32>,
    /// Output weights `[HIDDEN]` and bias, for the host recurrence.
    host_out: (Vec<f32>, f32),
    device: B::Device,
}

fn raw<'a>(w: &'a Weights, name: &str, shape: &[usize]) -> Result<&'a RawTensor, WeightError> {
    let t = w.raw(name)?;
    if t.shape != shape {
        return Err(WeightError::Shape {
            name: name.to_string(),
            path: w.path.clone(),
            found: t.shape.clone(),
            expected: shape.to_vec(),
        });
    }
    Ok(t)
}

fn matrix<B: Backend>(data: Vec<f32>, rows: usize, cols: usize, dev: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), dev)
}

fn vector<B: Backend>(data: Vec<f32>, dev: &B::Device) -> Tensor<B, 1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), dev)
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// The dense matrix of a kernel-3, padding-1 convolution over `t_in`
/// columns with `stride`; returns it with `t_out`.
fn dense_conv(
    w: &RawTensor,
    bias: &RawTensor,
    t_in: usize,
    stride: usize,
) -> (Vec<f32>, Vec<f32>, usize) {
    let (c_out, c_in, k) = (w.shape[0], w.shape[1], w.shape[2]);
    let t_out = (t_in + 2 - k) / stride + 1;
    let cols = t_out * c_out;
    let mut m = vec![0.0; t_in * c_in * cols];
    for j_out in 0..t_out {
        for kk in 0..k {
            let Some(j_in) = (j_out * stride + kk).checked_sub(1).filter(|&j| j < t_in) else {
                continue;
            };
            for ci in 0..c_in {
                for co in 0..c_out {
                    m[(j_in * c_in + ci) * cols + j_out * c_out + co] =
                        w.data[(co * c_in + ci) * k + kk];
                }
            }
        }
    }
    let b = (0..t_out).flat_map(|_| bias.data.iter().copied()).collect();
    (m, b, t_out)
}

impl<B: Backend> SileroVad<B> {
    /// Builds the model from tensors named as in `silero_vad_16k.safetensors`
    /// (`stft_conv.weight`, `conv1.weight`, …, `lstm_cell.weight_ih`,
    /// `final_conv.bias`).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn from_weights(w: &Weights, device: &B::Device) -> Result<Self, WeightError> {
        let dev = device;
        let stft = raw(w, "stft_conv.weight", &[2 * BINS, 1, N_FFT])?;
        let stft = matrix(transpose(&stft.data, 2 * BINS, N_FFT), N_FFT, 2 * BINS, dev);
        let layers = [
            ("conv1", [128, BINS], 1),
            ("conv2", [64, 128], 2),
            ("conv3", [64, 64], 2),
            ("conv4", [HIDDEN, 64], 1),
        ];
        let mut convs = Vec::new();
        let mut t = COLUMNS;
        for (name, [c_out, c_in], stride) in layers {
            let weight = raw(w, &format!("{name}.weight"), &[c_out, c_in, 3])?;
            let bias = raw(w, &format!("{name}.bias"), &[c_out])?;
            let (m, b, t_out) = dense_conv(weight, bias, t, stride);
            convs.push(Dense {
                w: matrix(m, t * c_in, t_out * c_out, dev),
                b: vector(b, dev),
            });
            t = t_out;
        }
        let w_ih = raw(w, "lstm_cell.weight_ih", &[GATES, HIDDEN])?;
        let w_hh = raw(w, "lstm_cell.weight_hh", &[GATES, HIDDEN])?;
        let b_ih = raw(w, "lstm_cell.bias_ih", &[GATES])?;
        let b_hh = raw(w, "lstm_cell.bias_hh", &[GATES])?;
        let out_w = raw(w, "final_conv.weight", &[1, HIDDEN, 1])?;
        let out_b = raw(w, "final_conv.bias", &[1])?;
        let bias: Vec<f32> = b_ih
            .data
            .iter()
            .zip(&b_hh.data)
            .map(|(a, b)| a + b)
            .collect();
        Ok(Self {
            stft,
            convs,
            w_ih: matrix(transpose(&w_ih.data, GATES, HIDDEN), HIDDEN, GATES, dev),
            bias: vector(bias, dev),
            w_hh: matrix(transpose(&w_hh.data, GATES, HIDDEN), HIDDEN, GATES, dev),
            out: (
                matrix(out_w.data.clone(), HIDDEN, 1, dev),
                vector(out_b.data.clone(), dev),
            ),
            host_w_hh: w_hh.data.clone(),
            host_out: (out_w.data.clone(), out_b.data[0]),
            device: device.clone(),
        })
    }

    /// The device the model is on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The LSTM gate inputs `x · W_ihᵀ + b_ih + b_hh` of `n` frames.
    ///
    /// `windows`: `[n · COLUMNS, N_FFT]`, the STFT windows of each frame in
    /// order (see [`super::frames`]) → `[n, 4 · HIDDEN]`.
    pub fn gate_inputs(&self, windows: Tensor<B, 2>) -> Tensor<B, 2> {
        let rows = windows.dims()[0];
        let n = rows / COLUMNS;
        let spec = windows.matmul(self.stft.clone());
        let re = spec.clone().slice([0..rows, 0..BINS]);
        let im = spec.slice([0..rows, BINS..2 * BINS]);
        let mag = (re.clone() * re + im.clone() * im).sqrt();
        let mut x = mag.reshape([n, COLUMNS * BINS]);
        for conv in &self.convs {
            x = relu(x.matmul(conv.w.clone()) + conv.b.clone().unsqueeze::<2>());
        }
        x.matmul(self.w_ih.clone()) + self.bias.clone().unsqueeze::<2>()
    }

    /// Runs the LSTM over `steps` time steps of `streams` streams on the
    /// device and returns each step's speech probability.
    ///
    /// `gates`: `[steps · streams, 4 · HIDDEN]`, time-major (row
    /// `t · streams + s`) → `[steps · streams]`, the same order. `state` is
    /// carried in and out.
    pub fn recur(&self, gates: Tensor<B, 2>, state: &mut DeviceState<B>) -> Tensor<B, 1> {
        let streams = state.h.dims()[0];
        let steps = gates.dims()[0] / streams.max(1);
        let mut hs = Vec::with_capacity(steps);
        for t in 0..steps {
            let g = gates
                .clone()
                .slice([t * streams..(t + 1) * streams, 0..GATES])
                + state.h.clone().matmul(self.w_hh.clone());
            let s = sigmoid(g.clone());
            let i = s.clone().slice([0..streams, 0..HIDDEN]);
            let f = s.clone().slice([0..streams, HIDDEN..2 * HIDDEN]);
            let o = s.slice([0..streams, 3 * HIDDEN..GATES]);
            let cell = g.slice([0..streams, 2 * HIDDEN..3 * HIDDEN]).tanh();
            state.c = f * state.c.clone() + i * cell;
            state.h = o * state.c.clone().tanh();
            hs.push(state.h.clone());
        }
        if hs.is_empty() {
            return Tensor::zeros([0], &self.device);
        }
        let h = Tensor::cat(hs, 0);
        let p = sigmoid(relu(h).matmul(self.out.0.clone()) + self.out.1.clone().unsqueeze::<2>());
        p.reshape([steps * streams])
    }

    /// [`SileroVad::recur`] on the host: `gates` as read back from
    /// [`SileroVad::gate_inputs`] (`[steps · streams, 4 · HIDDEN]`,
    /// time-major), `state` carried in and out.
    pub fn recur_host(&self, gates: &[f32], state: &mut HostState) -> Vec<f32> {
        let streams = state.h.len() / HIDDEN;
        let rows = gates.len() / GATES;
        let mut probs = Vec::with_capacity(rows);
        let mut g = [0.0f32; GATES];
        for (row, pre) in gates.chunks_exact(GATES).enumerate() {
            let s = row % streams.max(1);
            let h = &mut state.h[s * HIDDEN..(s + 1) * HIDDEN];
            let c = &mut state.c[s * HIDDEN..(s + 1) * HIDDEN];
            for (k, (gk, w)) in g
                .iter_mut()
                .zip(self.host_w_hh.chunks_exact(HIDDEN))
                .enumerate()
            {
                *gk = pre[k] + dot(w, h);
            }
            for k in 0..HIDDEN {
                let i = sigmoid_f32(g[k]);
                let f = sigmoid_f32(g[HIDDEN + k]);
                let cell = g[2 * HIDDEN + k].tanh();
                let o = sigmoid_f32(g[3 * HIDDEN + k]);
                c[k] = f * c[k] + i * cell;
                h[k] = o * c[k].tanh();
            }
            let logit: f32 = self
                .host_out
                .0
                .iter()
                .zip(h.iter())
                .map(|(w, x)| w * x.max(0.0))
                .sum::<f32>()
                + self.host_out.1;
            probs.push(sigmoid_f32(logit));
        }
        probs
    }
}

fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A dot product with 8 running sums (so it vectorises).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail: f32 = a
        .chunks_exact(8)
        .remainder()
        .iter()
        .zip(b.chunks_exact(8).remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}
