//! Whisper on the CPU with fused kernels ([`flow_backend::kernels`]): the
//! arithmetic of [`crate::model::Whisper`] (which runs on CUDA and is
//! checked against this one by a test), on plain `f32` buffers, with the
//! bias and residual of every linear layer fused into its matrix product
//! and attention computed per (window, head) in parallel.

use std::sync::Arc;

use flow_backend::kernels::{attend_one, gelu, layer_norm, matmul, softmax, transpose, Dense};
use flow_backend::{WeightError, Weights};
use rayon::prelude::*;

use crate::model::{Dims, LoadResult};
use crate::network::Network;

/// Layer normalisation epsilon of every Whisper norm.
const EPS: f32 = 1e-5;

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    fn read(w: &Weights, name: &str) -> LoadResult<Self> {
        Ok(Self {
            gamma: w.raw(&format!("{name}/gamma"))?.data.clone(),
            beta: w.raw(&format!("{name}/beta"))?.data.clone(),
        })
    }

    /// `out` ← the rows of `x`, normalised (rows spread over the pool).
    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(x);
        let d = self.gamma.len();
        out.par_chunks_mut(64 * d)
            .for_each(|part| layer_norm(part, &self.gamma, &self.beta, EPS));
    }
}

/// The linear layer (or kernel-3 convolution, flattened) `name`.
fn dense(w: &Weights, name: &str) -> LoadResult<Dense> {
    let weight = w.raw(&format!("{name}/weight"))?;
    let (outputs, inputs) = match weight.shape[..] {
        [o, i] => (o, i),
        [o, i, k] => (o, i * k),
        _ => {
            return Err(WeightError::Shape {
                name: format!("{name}/weight"),
                path: w.path.clone(),
                found: weight.shape.clone(),
                expected: vec![0, 0],
            })
        }
    };
    let bias = w
        .tensors
        .get(&format!("{name}/bias"))
        .map(|b| b.data.clone());
    Ok(Dense::new(weight.data.clone(), bias, inputs, outputs))
}

struct SelfAttention {
    norm: Norm,
    qkv: Dense,
    out: Dense,
}

struct CrossAttention {
    norm: Norm,
    q: Dense,
    kv: Dense,
    out: Dense,
}

struct Ffn {
    norm: Norm,
    up: Dense,
    down: Dense,
}

/// Reused work buffers.
#[derive(Default)]
struct Buffers {
    h: Vec<f32>,
    qkv: Vec<f32>,
    q: Vec<f32>,
    ctx: Vec<f32>,
    up: Vec<f32>,
}

impl Ffn {
    fn read(w: &Weights, p: &str) -> LoadResult<Self> {
        Ok(Self {
            norm: Norm::read(w, &format!("{p}/ffn/layer_norm"))?,
            up: dense(w, &format!("{p}/ffn/linear_0"))?,
            down: dense(w, &format!("{p}/ffn/linear_1"))?,
        })
    }

    /// `x += down(gelu(up(norm(x))))`.
    fn apply(&self, x: &mut [f32], rows: usize, buf: &mut Buffers) {
        self.norm.apply(x, &mut buf.h);
        buf.up.resize(rows * self.up.outputs(), 0.0);
        self.up.forward(&buf.h, rows, &mut buf.up);
        buf.up.par_chunks_mut(16 * 1024).for_each(gelu);
        self.down.forward_add(&buf.up, rows, x);
    }
}

impl SelfAttention {
    fn read(w: &Weights, p: &str) -> LoadResult<Self> {
        let p = format!("{p}/self_attention");
        Ok(Self {
            norm: Norm::read(w, &format!("{p}/layer_norm"))?,
            qkv: dense(w, &format!("{p}/linear_0"))?,
            out: dense(w, &format!("{p}/linear_1"))?,
        })
    }
}

struct EncoderLayer {
    attn: SelfAttention,
    ffn: Ffn,
}

struct DecoderLayer {
    attn: SelfAttention,
    cross: CrossAttention,
    ffn: Ffn,
}

/// A loaded Whisper model computing on the CPU.
pub struct CpuWhisper {
    dims: Dims,
    conv1: Dense,
    conv2: Dense,
    enc_pos: Vec<f32>,
    enc_layers: Vec<EncoderLayer>,
    enc_norm: Norm,
    /// Token embeddings, `vocab × d`.
    embed: Vec<f32>,
    /// The output projection: the embeddings, tied.
    logits: Dense,
    dec_pos: Vec<f32>,
    dec_layers: Vec<DecoderLayer>,
    dec_norm: Norm,
}

/// One window's encoder output, `frames × d`.
pub type Encoded = Arc<Vec<f32>>;

/// One decoder layer's cross-attention keys and values of one window, per
/// head (`frames × dh` each).
struct CrossKv {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

/// One batch row of the decoder.
struct Row {
    /// Per layer; shared by rows decoding the same window.
    cross: Arc<Vec<CrossKv>>,
    /// Self-attention keys so far, `[layer][head]`, `positions × dh`.
    keys: Vec<Vec<Vec<f32>>>,
    /// Self-attention values so far, as `keys`.
    values: Vec<Vec<Vec<f32>>>,
}

/// The decoder state of [`CpuWhisper`].
pub struct CpuState {
    rows: Vec<Row>,
    offset: usize,
}

impl CpuWhisper {
    /// Builds the model from CTranslate2-named weights (Hugging Face
    /// checkpoints are renamed into them by [`crate::hf`]).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn new(w: &Weights) -> LoadResult<Self> {
        let dims = crate::load::checked_dims(w)?;
        let enc_layers = (0..dims.encoder_layers)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    attn: SelfAttention::read(w, &p)?,
                    ffn: Ffn::read(w, &p)?,
                })
            })
            .collect::<LoadResult<Vec<_>>>()?;
        let dec_layers = (0..dims.decoder_layers)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                let a = format!("{p}/attention");
                Ok(DecoderLayer {
                    attn: SelfAttention::read(w, &p)?,
                    cross: CrossAttention {
                        norm: Norm::read(w, &format!("{a}/layer_norm"))?,
                        q: dense(w, &format!("{a}/linear_0"))?,
                        kv: dense(w, &format!("{a}/linear_1"))?,
                        out: dense(w, &format!("{a}/linear_2"))?,
                    },
                    ffn: Ffn::read(w, &p)?,
                })
            })
            .collect::<LoadResult<Vec<_>>>()?;
        let embed = w.raw("decoder/embeddings/weight")?.data.clone();
        Ok(Self {
            conv1: dense(w, "encoder/conv1")?,
            conv2: dense(w, "encoder/conv2")?,
            enc_pos: w.raw("encoder/position_encodings/encodings")?.data.clone(),
            enc_layers,
            enc_norm: Norm::read(w, "encoder/layer_norm")?,
            logits: Dense::new(embed.clone(), None, dims.d_model, dims.vocab),
            embed,
            dec_pos: w.raw("decoder/position_encodings/encodings")?.data.clone(),
            dec_layers,
            dec_norm: Norm::read(w, "decoder/layer_norm")?,
            dims,
        })
    }

    fn head_dim(&self) -> usize {
        self.dims.d_model / self.dims.heads
    }
}

/// The rows of a kernel-3, padding-1 convolution's unfolded input: row `t`
/// holds `x[c][t·stride + k − 1]` at `c·3 + k` (zero outside the `steps`
/// input times). `at(c, i)` reads input channel `c` at time `i`.
fn unfold(
    channels: usize,
    steps: usize,
    stride: usize,
    at: impl Fn(usize, usize) -> f32,
    dst: &mut [f32],
) {
    for (t, row) in dst.chunks_exact_mut(channels * 3).enumerate() {
        for (c, taps) in row.chunks_exact_mut(3).enumerate() {
            for (k, v) in taps.iter_mut().enumerate() {
                let i = (t * stride + k) as isize - 1;
                *v = match i >= 0 && (i as usize) < steps {
                    true => at(c, i as usize),
                    false => 0.0,
                };
            }
        }
    }
}

/// The queries of one attention: `n` per batch row, query `i` of a row at
/// `q[(row·n + i)·stride + head·dh ..]`.
struct Queries<'a> {
    q: &'a [f32],
    stride: usize,
    n: usize,
    heads: usize,
    dh: usize,
    /// `Some(past)`: query `i` is position `past + i` of the keys and sees
    /// only keys up to its own.
    causal: Option<usize>,
}

/// Attention of `qs` over keys and values given per (row, head) in `kv`
/// (`m × dh` each), into `ctx` (`rows·n × heads·dh`).
fn attend(qs: &Queries<'_>, kv: &[(&[f32], &[f32])], ctx: &mut [f32]) {
    let Queries {
        q,
        stride,
        n,
        heads,
        dh,
        causal,
    } = *qs;
    let scale = 1.0 / (dh as f32).sqrt();
    let outs: Vec<Vec<f32>> = kv
        .par_iter()
        .enumerate()
        .map(|(job, (keys, values))| {
            let (r, h) = (job / heads, job % heads);
            let m = keys.len() / dh;
            let mut scaled = vec![0.0f32; n * dh];
            for (i, dst) in scaled.chunks_exact_mut(dh).enumerate() {
                let src = &q[(r * n + i) * stride + h * dh..][..dh];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = s * scale);
            }
            let mut out = vec![0.0f32; n * dh];
            if causal.is_none() && n >= 8 {
                // Many queries: two matrix products and a softmax per row.
                let mut kt = vec![0.0f32; dh * m];
                transpose(keys, m, dh, &mut kt);
                let mut scores = vec![0.0f32; n * m];
                matmul(&scaled, &kt, n, dh, m, &mut scores);
                softmax(&mut scores, m);
                matmul(&scores, values, n, m, dh, &mut out);
            } else {
                let mut scores = vec![0.0f32; m];
                for (i, o) in out.chunks_exact_mut(dh).enumerate() {
                    let seen = causal.map_or(m, |past| (past + i + 1).min(m));
                    let s = &mut scores[..seen];
                    let (k, v) = (&keys[..seen * dh], &values[..seen * dh]);
                    attend_one(&scaled[i * dh..][..dh], k, v, s, o);
                }
            }
            out
        })
        .collect();
    let d = heads * dh;
    for (job, out) in outs.iter().enumerate() {
        let (r, h) = (job / heads, job % heads);
        for (i, src) in out.chunks_exact(dh).enumerate() {
            ctx[(r * n + i) * d + h * dh..][..dh].copy_from_slice(src);
        }
    }
}

/// One `rows × dh` block per head.
type Heads = Vec<Vec<f32>>;

/// Splits `rows × width` values at column `from` into per-head
/// `rows × dh` blocks.
fn split_heads(x: &[f32], width: usize, from: usize, heads: usize, dh: usize) -> Heads {
    (0..heads)
        .map(|h| {
            x.chunks_exact(width)
                .flat_map(|row| &row[from + h * dh..from + (h + 1) * dh])
                .copied()
                .collect()
        })
        .collect()
}

impl CpuWhisper {
    fn encode_all(&self, mel: &[f32], windows: usize) -> Vec<Encoded> {
        let Dims {
            n_mels,
            d_model: d,
            heads,
            ..
        } = self.dims;
        let dh = self.head_dim();
        let frames = mel.len() / (windows * n_mels).max(1);
        let mut cols = vec![0.0f32; windows * frames * n_mels * 3];
        cols.par_chunks_mut(frames * n_mels * 3)
            .zip(mel.par_chunks(n_mels * frames))
            .for_each(|(dst, src)| unfold(n_mels, frames, 1, |c, i| src[c * frames + i], dst));
        let mut x1 = vec![0.0f32; windows * frames * d];
        self.conv1.forward(&cols, windows * frames, &mut x1);
        x1.par_chunks_mut(16 * 1024).for_each(gelu);
        let t = (frames + 2 - 3) / 2 + 1;
        let mut cols = vec![0.0f32; windows * t * d * 3];
        cols.par_chunks_mut(t * d * 3)
            .zip(x1.par_chunks(frames * d))
            .for_each(|(dst, src)| unfold(d, frames, 2, |c, i| src[i * d + c], dst));
        drop(x1);
        let rows = windows * t;
        let mut x = vec![0.0f32; rows * d];
        self.conv2.forward(&cols, rows, &mut x);
        drop(cols);
        x.par_chunks_mut(t * d).for_each(|w| {
            gelu(w);
            w.iter_mut().zip(&self.enc_pos).for_each(|(a, p)| *a += p);
        });
        let mut buf = Buffers::default();
        for layer in &self.enc_layers {
            let a = &layer.attn;
            a.norm.apply(&x, &mut buf.h);
            buf.qkv.resize(rows * 3 * d, 0.0);
            a.qkv.forward(&buf.h, rows, &mut buf.qkv);
            let per_window: Vec<(Heads, Heads)> = buf
                .qkv
                .par_chunks(t * 3 * d)
                .map(|w| {
                    let k = split_heads(w, 3 * d, d, heads, dh);
                    (k, split_heads(w, 3 * d, 2 * d, heads, dh))
                })
                .collect();
            let kv: Vec<(&[f32], &[f32])> = per_window
                .iter()
                .flat_map(|(k, v)| k.iter().zip(v).map(|(k, v)| (k.as_slice(), v.as_slice())))
                .collect();
            buf.ctx.resize(rows * d, 0.0);
            let queries = Queries {
                q: &buf.qkv,
                stride: 3 * d,
                n: t,
                heads,
                dh,
                causal: None,
            };
            attend(&queries, &kv, &mut buf.ctx);
            a.out.forward_add(&buf.ctx, rows, &mut x);
            layer.ffn.apply(&mut x, rows, &mut buf);
        }
        self.enc_norm.apply(&x, &mut buf.h);
        buf.h
            .chunks_exact(t * d)
            .map(|w| Arc::new(w.to_vec()))
            .collect()
    }

    /// Cross-attention keys and values of every layer, for each window.
    fn cross(&self, windows: &[Encoded]) -> Vec<Arc<Vec<CrossKv>>> {
        let d = self.dims.d_model;
        let (heads, dh) = (self.dims.heads, self.head_dim());
        let t = windows.first().map_or(0, |w| w.len() / d);
        let stacked: Vec<f32> = windows.iter().flat_map(|w| w.iter().copied()).collect();
        let mut kv = vec![0.0f32; windows.len() * t * 2 * d];
        let mut per_window: Vec<Vec<CrossKv>> = windows.iter().map(|_| Vec::new()).collect();
        for layer in &self.dec_layers {
            layer.cross.kv.forward(&stacked, windows.len() * t, &mut kv);
            let split: Vec<CrossKv> = kv
                .par_chunks(t * 2 * d)
                .map(|w| CrossKv {
                    keys: split_heads(w, 2 * d, 0, heads, dh),
                    values: split_heads(w, 2 * d, d, heads, dh),
                })
                .collect();
            for (dst, layer_kv) in per_window.iter_mut().zip(split) {
                dst.push(layer_kv);
            }
        }
        per_window.into_iter().map(Arc::new).collect()
    }

    fn decode_step(&self, state: &mut CpuState, tokens: &[Vec<u32>]) -> Vec<f32> {
        let Dims {
            d_model: d,
            heads,
            vocab,
            ..
        } = self.dims;
        let dh = self.head_dim();
        let (b, n) = (tokens.len(), tokens.first().map_or(0, Vec::len));
        let past = state.offset;
        let rows = b * n;
        let mut x = vec![0.0f32; rows * d];
        for (dst, id) in x.chunks_exact_mut(d).zip(tokens.iter().flatten()) {
            let id = *id as usize;
            assert!(id < vocab, "token id {id} outside the vocabulary");
            dst.copy_from_slice(&self.embed[id * d..(id + 1) * d]);
        }
        for (i, dst) in x.chunks_exact_mut(d).enumerate() {
            let p = &self.dec_pos[(past + i % n) * d..][..d];
            dst.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        let mut buf = Buffers::default();
        for (l, layer) in self.dec_layers.iter().enumerate() {
            let a = &layer.attn;
            a.norm.apply(&x, &mut buf.h);
            buf.qkv.resize(rows * 3 * d, 0.0);
            a.qkv.forward(&buf.h, rows, &mut buf.qkv);
            for (r, row) in state.rows.iter_mut().enumerate() {
                for src in buf.qkv[r * n * 3 * d..(r + 1) * n * 3 * d].chunks_exact(3 * d) {
                    for h in 0..heads {
                        row.keys[l][h].extend_from_slice(&src[d + h * dh..][..dh]);
                        row.values[l][h].extend_from_slice(&src[2 * d + h * dh..][..dh]);
                    }
                }
            }
            let kv: Vec<(&[f32], &[f32])> = state
                .rows
                .iter()
                .flat_map(|row| {
                    (0..heads).map(move |h| (&row.keys[l][h][..], &row.values[l][h][..]))
                })
                .collect();
            buf.ctx.resize(rows * d, 0.0);
            let mut queries = Queries {
                q: &buf.qkv,
                stride: 3 * d,
                n,
                heads,
                dh,
                causal: Some(past),
            };
            attend(&queries, &kv, &mut buf.ctx);
            a.out.forward_add(&buf.ctx, rows, &mut x);
            let c = &layer.cross;
            c.norm.apply(&x, &mut buf.h);
            buf.q.resize(rows * d, 0.0);
            c.q.forward(&buf.h, rows, &mut buf.q);
            let kv: Vec<(&[f32], &[f32])> = state
                .rows
                .iter()
                .flat_map(|row| {
                    let kv = &row.cross[l];
                    kv.keys
                        .iter()
                        .zip(&kv.values)
                        .map(|(k, v)| (&k[..], &v[..]))
                })
                .collect();
            queries.q = &buf.q;
            queries.stride = d;
            queries.causal = None;
            attend(&queries, &kv, &mut buf.ctx);
            c.out.forward_add(&buf.ctx, rows, &mut x);
            layer.ffn.apply(&mut x, rows, &mut buf);
        }
        state.offset += n;
        let last: Vec<f32> = x
            .chunks_exact(n * d)
            .flat_map(|row| &row[(n - 1) * d..])
            .copied()
            .collect();
        self.dec_norm.apply(&last, &mut buf.h);
        let mut logits = vec![0.0f32; b * vocab];
        self.logits.forward(&buf.h, b, &mut logits);
        logits
    }
}

impl Network for CpuWhisper {
    type Audio = Vec<Encoded>;
    type State = CpuState;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn encode(&self, mel: Vec<f32>, windows: usize) -> Vec<Encoded> {
        self.encode_all(&mel, windows)
    }

    fn select(&self, audio: &Vec<Encoded>, rows: &[usize]) -> Vec<Encoded> {
        rows.iter().map(|&i| audio[i].clone()).collect()
    }

    fn start(&self, audio: Vec<Encoded>) -> CpuState {
        // Rows that decode the same window (best-of sampling) share its
        // cross-attention keys and values.
        let mut distinct: Vec<Encoded> = Vec::new();
        let index: Vec<usize> = audio
            .iter()
            .map(|a| match distinct.iter().position(|b| Arc::ptr_eq(a, b)) {
                Some(i) => i,
                None => {
                    distinct.push(a.clone());
                    distinct.len() - 1
                }
            })
            .collect();
        let cross = self.cross(&distinct);
        let (layers, heads) = (self.dims.decoder_layers, self.dims.heads);
        let empty = || vec![vec![Vec::new(); heads]; layers];
        CpuState {
            rows: index
                .into_iter()
                .map(|i| Row {
                    cross: cross[i].clone(),
                    keys: empty(),
                    values: empty(),
                })
                .collect(),
            offset: 0,
        }
    }

    fn step(&self, state: &mut CpuState, tokens: &[Vec<u32>]) -> Vec<f32> {
        self.decode_step(state, tokens)
    }

    fn retain(&self, state: &mut CpuState, keep: &[usize]) {
        let mut old: Vec<Option<Row>> = state.rows.drain(..).map(Some).collect();
        state.rows = keep
            .iter()
            .filter_map(|&i| old.get_mut(i)?.take())
            .collect();
    }
}
