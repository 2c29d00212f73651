//! The Whisper encoder-decoder in burn, for any size: dimensions, layers,
//! heads and vocabulary come from the weights.

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor, TensorData};
use flow_backend::burn;
use flow_backend::WeightError;

/// Sizes of a Whisper model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Mel bins of the input.
    pub n_mels: usize,
    /// Width of every layer.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Audio positions (1500 for 30 s).
    pub audio_ctx: usize,
    /// Text positions (448).
    pub text_ctx: usize,
}

/// A linear layer, with the weight stored transposed (`in × out`).
pub(crate) struct Linear<B: Backend> {
    wt: Tensor<B, 2>,
    b: Option<Tensor<B, 1>>,
}

impl<B: Backend> Linear<B> {
    pub(crate) fn new(w: Tensor<B, 2>, b: Option<Tensor<B, 1>>) -> Self {
        Self {
            wt: w.transpose(),
            b,
        }
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let out = x.reshape([b * t, d]).matmul(self.wt.clone());
        let out = match &self.b {
            Some(bias) => out + bias.clone().unsqueeze::<2>(),
            None => out,
        };
        let n = out.dims()[1];
        out.reshape([b, t, n])
    }
}

/// `x` with its values laid out in order (a transposed view would be
/// copied by every matrix product on the CPU backend).
pub(crate) fn contiguous<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let (device, dtype) = (x.device(), x.dtype());
    Tensor::from_data(x.into_data(), (&device, dtype))
}

/// Layer normalisation (eps 1e-5), computed in f32 whatever the model's
/// float type (in f16 the squares of the residual stream's large values
/// overflow), with f32 parameters; the result is in the input's type.
pub(crate) struct Norm<B: Backend> {
    pub(crate) gamma: Tensor<B, 1>,
    pub(crate) beta: Tensor<B, 1>,
}

impl<B: Backend> Norm<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = x.dtype();
        let x = x.cast(DType::F32);
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powf_scalar(2.0).mean_dim(2);
        let normed = centered / (var + 1e-5).sqrt();
        let out = normed * self.gamma.clone().unsqueeze::<3>() + self.beta.clone().unsqueeze::<3>();
        out.cast(dtype)
    }
}

/// Self-attention (fused q, k, v) or cross-attention (q; fused k, v).
pub(crate) struct Attention<B: Backend> {
    pub(crate) norm: Norm<B>,
    pub(crate) q: Option<Linear<B>>,
    pub(crate) kv: Option<Linear<B>>,
    pub(crate) qkv: Option<Linear<B>>,
    pub(crate) out: Linear<B>,
}

pub(crate) struct Ffn<B: Backend> {
    pub(crate) norm: Norm<B>,
    pub(crate) up: Linear<B>,
    pub(crate) down: Linear<B>,
}

impl<B: Backend> Ffn<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self.norm.forward(x.clone());
        x + self.down.forward(gelu(self.up.forward(h)))
    }
}

pub(crate) struct EncoderLayer<B: Backend> {
    pub(crate) attn: Attention<B>,
    pub(crate) ffn: Ffn<B>,
}

pub(crate) struct DecoderLayer<B: Backend> {
    pub(crate) attn: Attention<B>,
    pub(crate) cross: Attention<B>,
    pub(crate) ffn: Ffn<B>,
}

/// A loaded Whisper model on one device.
pub struct Whisper<B: Backend> {
    /// Its sizes.
    pub dims: Dims,
    pub(crate) conv1: (Tensor<B, 3>, Tensor<B, 1>),
    pub(crate) conv2: (Tensor<B, 3>, Tensor<B, 1>),
    pub(crate) enc_pos: Tensor<B, 2>,
    pub(crate) enc_layers: Vec<EncoderLayer<B>>,
    pub(crate) enc_norm: Norm<B>,
    pub(crate) embed: Tensor<B, 2>,
    pub(crate) embed_t: Tensor<B, 2>,
    pub(crate) dec_pos: Tensor<B, 2>,
    pub(crate) dec_layers: Vec<DecoderLayer<B>>,
    pub(crate) dec_norm: Norm<B>,
    pub(crate) device: B::Device,
    /// The float type of its weights and activations (`F32`, or `F16` on
    /// CUDA); layer norms compute in f32 ([`Norm`]).
    pub(crate) dtype: DType,
    /// The token embeddings on the host, `vocab × d`, when logits are
    /// computed there (on the CPU a matrix-vector product over the
    /// vocabulary is memory-bound, and a plain threaded loop beats the
    /// backend's general matrix product by an order of magnitude).
    pub(crate) host_embed: Option<Vec<f32>>,
}

/// Splits `[b, t, h*dh]` into heads `[b, h, t, dh]`.
fn heads<B: Backend>(x: Tensor<B, 3>, h: usize) -> Tensor<B, 4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, h, d / h]).swap_dims(1, 2)
}

fn merge<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}

fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 2>>,
) -> Tensor<B, 4> {
    let dh = q.dims()[3];
    // Scaled before the product, so that f16 scores stay in range.
    let scores = (q * (1.0 / (dh as f64).sqrt())).matmul(k.swap_dims(2, 3));
    let scores = match mask {
        Some(m) => scores + m.unsqueeze::<4>(),
        None => scores,
    };
    softmax(scores, 3).matmul(v)
}

/// The self-attention keys and values of one decoder layer so far.
pub struct LayerCache<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
}

/// What the decoder keeps between steps: the encoder's keys and values per
/// layer, and the self-attention cache.
pub struct DecoderState<B: Backend> {
    cross: Vec<(Tensor<B, 4>, Tensor<B, 4>)>,
    cache: Vec<Option<LayerCache<B>>>,
    /// Tokens already fed.
    pub offset: usize,
}

impl<B: Backend> Whisper<B> {
    /// Encodes mel windows `[batch, n_mels, 3000]` into `[batch, 1500, d]`.
    pub fn encode(&self, mel: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = gelu(self.conv(mel, &self.conv1, 1));
        let x = gelu(self.conv(x, &self.conv2, 2));
        let mut x = x.swap_dims(1, 2);
        let t = x.dims()[1];
        x = x + self.enc_pos.clone().slice(0..t).unsqueeze::<3>();
        let h = self.dims.heads;
        for layer in &self.enc_layers {
            let a = &layer.attn;
            let n = a.norm.forward(x.clone());
            let qkv = a
                .qkv
                .as_ref()
                .expect("encoder attention is fused")
                .forward(n);
            let d = self.dims.d_model;
            let [b, t, _] = qkv.dims();
            let q = qkv.clone().slice([0..b, 0..t, 0..d]);
            let k = qkv.clone().slice([0..b, 0..t, d..2 * d]);
            let v = qkv.slice([0..b, 0..t, 2 * d..3 * d]);
            let o = merge(attend(heads(q, h), heads(k, h), heads(v, h), None));
            x = x + a.out.forward(o);
            x = layer.ffn.forward(x);
        }
        self.enc_norm.forward(x)
    }

    /// A kernel-3, padding-1 convolution `[b, c_in, t] → [b, c_out, t / stride]`.
    /// On the CPU it is unfolded on the host and done as one matrix
    /// product (burn's CPU convolution is several times slower).
    fn conv(
        &self,
        x: Tensor<B, 3>,
        (w, bias): &(Tensor<B, 3>, Tensor<B, 1>),
        stride: usize,
    ) -> Tensor<B, 3> {
        if self.host_embed.is_none() {
            let opts = ConvOptions::new([stride], [1], [1], 1);
            return conv1d(x, w.clone(), Some(bias.clone()), opts);
        }
        let [b, c, t] = x.dims();
        let [c_out, _, k] = w.dims();
        let t_out = (t + 2 - k) / stride + 1;
        let data: Vec<f32> = x.into_data().convert::<f32>().to_vec().expect("f32 input");
        let mut cols = vec![0.0f32; b * c * k * t_out];
        for bi in 0..b {
            for ci in 0..c {
                let row = &data[(bi * c + ci) * t..(bi * c + ci + 1) * t];
                for ki in 0..k {
                    let dst = &mut cols[((bi * c + ci) * k + ki) * t_out..][..t_out];
                    for (o, d) in dst.iter_mut().enumerate() {
                        let src = (o * stride + ki) as isize - 1;
                        if src >= 0 && (src as usize) < t {
                            *d = row[src as usize];
                        }
                    }
                }
            }
        }
        let cols = Tensor::<B, 3>::from_data(
            TensorData::new(cols, [b, c * k, t_out]),
            (&self.device, self.dtype),
        );
        let w2 = w.clone().reshape([1, c_out, c * k]);
        let out = w2.repeat_dim(0, b).matmul(cols);
        out + bias.clone().reshape([1, c_out, 1])
    }

    /// A decoder state for encoded audio `[batch, 1500, d]`.
    pub fn start(&self, audio: Tensor<B, 3>) -> DecoderState<B> {
        let h = self.dims.heads;
        let d = self.dims.d_model;
        let cross = self
            .dec_layers
            .iter()
            .map(|layer| {
                let kv = layer
                    .cross
                    .kv
                    .as_ref()
                    .expect("cross kv")
                    .forward(audio.clone());
                let [b, t, _] = kv.dims();
                let k = kv.clone().slice([0..b, 0..t, 0..d]);
                let v = kv.slice([0..b, 0..t, d..2 * d]);
                (heads(k, h), heads(v, h))
            })
            .collect();
        DecoderState {
            cross,
            cache: self.dec_layers.iter().map(|_| None).collect(),
            offset: 0,
        }
    }

    /// Feeds `tokens` (`batch × n`, all rows the same length) and returns
    /// the logits of the last position, `batch × vocab`, row-major.
    pub fn step(&self, state: &mut DecoderState<B>, tokens: &[Vec<u32>]) -> Vec<f32> {
        let b = tokens.len();
        let n = tokens[0].len();
        let ids: Vec<i64> = tokens.iter().flatten().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 1, burn::tensor::Int>::from_data(
            TensorData::new(ids, [b * n]),
            &self.device,
        );
        let d = self.dims.d_model;
        let past = state.offset;
        let mut x = self.embed.clone().select(0, ids).reshape([b, n, d]);
        x = x + self.dec_pos.clone().slice(past..past + n).unsqueeze::<3>();
        let mask = (n > 1).then(|| causal_mask::<B>(n, past, (&self.device, self.dtype)));
        let h = self.dims.heads;
        for (i, layer) in self.dec_layers.iter().enumerate() {
            let a = &layer.attn;
            let hn = a.norm.forward(x.clone());
            let qkv = a
                .qkv
                .as_ref()
                .expect("decoder self-attention is fused")
                .forward(hn);
            let q = qkv.clone().slice([0..b, 0..n, 0..d]);
            let k = heads(qkv.clone().slice([0..b, 0..n, d..2 * d]), h);
            let v = heads(qkv.slice([0..b, 0..n, 2 * d..3 * d]), h);
            let (k, v) = match state.cache[i].take() {
                Some(c) => (Tensor::cat(vec![c.k, k], 2), Tensor::cat(vec![c.v, v], 2)),
                None => (k, v),
            };
            let o = merge(attend(heads(q, h), k.clone(), v.clone(), mask.clone()));
            state.cache[i] = Some(LayerCache { k, v });
            x = x + a.out.forward(o);
            let c = &layer.cross;
            let hn = c.norm.forward(x.clone());
            let q = heads(c.q.as_ref().expect("cross q").forward(hn), h);
            let (ck, cv) = &state.cross[i];
            let o = merge(attend(q, ck.clone(), cv.clone(), None));
            x = x + c.out.forward(o);
            x = layer.ffn.forward(x);
        }
        state.offset += n;
        let last = x.slice([0..b, n - 1..n, 0..d]);
        let last = self.dec_norm.forward(last).reshape([b, d]);
        self.logits(last)
    }

    /// Logits `b × vocab`, row-major, of final hidden states `[b, d]`.
    fn logits(&self, hidden: Tensor<B, 2>) -> Vec<f32> {
        let Some(embed) = &self.host_embed else {
            return hidden
                .matmul(self.embed_t.clone())
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("f32 logits");
        };
        let [b, d] = hidden.dims();
        let h: Vec<f32> = hidden
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 hidden states");
        let vocab = self.dims.vocab;
        let mut out = vec![0.0f32; b * vocab];
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rows_per = vocab.div_ceil(threads);
        for (row, out_row) in out.chunks_mut(vocab).enumerate() {
            let x = &h[row * d..(row + 1) * d];
            std::thread::scope(|scope| {
                for (part, chunk) in out_row.chunks_mut(rows_per).enumerate() {
                    let base = part * rows_per;
                    scope.spawn(move || {
                        for (i, o) in chunk.iter_mut().enumerate() {
                            let e = &embed[(base + i) * d..(base + i + 1) * d];
                            *o = dot(e, x);
                        }
                    });
                }
            });
        }
        out
    }

    /// Keeps only the batch rows `keep` of a state (finished rows leave).
    pub fn retain(&self, state: &mut DecoderState<B>, keep: &[usize]) {
        let idx: Vec<i64> = keep.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<B, 1, burn::tensor::Int>::from_data(
            TensorData::new(idx, [keep.len()]),
            &self.device,
        );
        for (k, v) in &mut state.cross {
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx.clone());
        }
        for c in state.cache.iter_mut().flatten() {
            c.k = c.k.clone().select(0, idx.clone());
            c.v = c.v.clone().select(0, idx.clone());
        }
    }

    /// The device the model lives on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The float type it computes in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
}

/// A dot product in 8 lanes (vectorised by the compiler).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

fn causal_mask<B: Backend>(n: usize, past: usize, at: (&B::Device, DType)) -> Tensor<B, 2> {
    let total = past + n;
    let mut m = vec![0.0f32; n * total];
    for i in 0..n {
        for j in past + i + 1..total {
            m[i * total + j] = f32::NEG_INFINITY;
        }
    }
    Tensor::from_data(TensorData::new(m, [n, total]), at)
}

/// Errors loading a model.
pub type LoadResult<T> = Result<T, WeightError>;
