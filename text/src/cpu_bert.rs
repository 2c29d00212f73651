//! The BERT encoder on the CPU with fused kernels
//! ([`flow_backend::kernels`]): the same arithmetic as [`crate::bert::Bert`]
//! (which runs on CUDA and is checked against this one), in place on
//! reused buffers, and over packed tokens: texts of a batch are laid end
//! to end, so no position is spent on padding and attention needs no mask.

use flow_backend::kernels::{gelu, gemm, layer_norm, relu, softmax_columns, Dense, MatMut, MatRef};
use flow_backend::{WeightError, Weights};
use rayon::prelude::*;

use crate::bert::BertConfig;
use crate::checkpoint::{norm_names, prefix, stacked, LayerNames};

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn take(w: &mut Weights, name: &str, d: usize, eps: f64) -> Result<Self, WeightError> {
        let (g, b) = norm_names(w, name);
        Ok(Self {
            gamma: vector(w, &g, d)?,
            beta: vector(w, &b, d)?,
            eps: eps as f32,
        })
    }

    /// Normalises every row of `x`, rows spread over the thread pool.
    fn apply(&self, x: &mut [f32]) {
        let rows_per_task = 64 * self.gamma.len();
        x.par_chunks_mut(rows_per_task)
            .for_each(|part| layer_norm(part, &self.gamma, &self.beta, self.eps));
    }
}

/// Moves tensor `name` out of `w`: the model is never held twice while
/// it is built (once as read, once as the encoder's own buffers).
fn take(w: &mut Weights, name: &str, len: usize, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
    let raw = w.raw(name)?;
    if raw.data.len() != len || (!shape.is_empty() && raw.shape != shape) {
        return Err(WeightError::Shape {
            name: name.into(),
            path: w.path.clone(),
            found: raw.shape.clone(),
            expected: if shape.is_empty() {
                vec![len]
            } else {
                shape.to_vec()
            },
        });
    }
    Ok(w.tensors.remove(name).map(|t| t.data).unwrap_or_default())
}

fn vector(w: &mut Weights, name: &str, len: usize) -> Result<Vec<f32>, WeightError> {
    take(w, name, len, &[])
}

fn matrix(w: &mut Weights, name: &str, rows: usize, cols: usize) -> Result<Vec<f32>, WeightError> {
    take(w, name, rows * cols, &[rows, cols])
}

/// The packed product of `names`, whose tensors leave `w`.
fn dense(w: &mut Weights, names: &[String], inp: usize, out: usize) -> Result<Dense, WeightError> {
    let (weight, bias) = stacked(w, names, inp, out)?;
    for n in names {
        w.tensors.remove(&format!("{n}.weight"));
        w.tensors.remove(&format!("{n}.bias"));
    }
    Ok(Dense::new(weight, Some(bias), inp, names.len() * out))
}

struct Layer {
    qkv: Dense,
    out: Dense,
    norm1: Norm,
    up: Dense,
    down: Dense,
    norm2: Norm,
}

/// A loaded BERT encoder computing on the CPU.
pub struct CpuBert {
    /// Its configuration.
    pub config: BertConfig,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
}

/// The work buffers of one forward pass, `tokens` rows each.
struct Buffers {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    up: Vec<f32>,
}

impl CpuBert {
    /// Builds the encoder from `w` (a BERT-family checkpoint), taking its
    /// tensors as it goes.
    ///
    /// # Errors
    /// A missing tensor or one of the wrong shape.
    pub fn new(config: BertConfig, mut w: Weights) -> Result<Self, WeightError> {
        let w = &mut w;
        let p = prefix(w);
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;
        let inter = config.intermediate_size;
        let e = format!("{p}embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let n = LayerNames::new(p, i);
                Ok(Layer {
                    qkv: dense(w, &n.qkv, d, d)?,
                    out: dense(w, &[n.out], d, d)?,
                    norm1: Norm::take(w, &n.norm1, d, eps)?,
                    up: dense(w, &[n.up], d, inter)?,
                    down: dense(w, &[n.down], inter, d)?,
                    norm2: Norm::take(w, &n.norm2, d, eps)?,
                })
            })
            .collect::<Result<Vec<_>, WeightError>>()?;
        let types = matrix(
            w,
            &format!("{e}.token_type_embeddings.weight"),
            config.type_vocab_size,
            d,
        )?;
        Ok(Self {
            words: matrix(
                w,
                &format!("{e}.word_embeddings.weight"),
                config.vocab_size,
                d,
            )?,
            positions: matrix(
                w,
                &format!("{e}.position_embeddings.weight"),
                config.max_position_embeddings,
                d,
            )?,
            // Every input is one segment: token type 0.
            token_type: types[..d].to_vec(),
            norm: Norm::take(w, &format!("{e}.LayerNorm"), d, eps)?,
            layers,
            config,
        })
    }

    /// The last hidden states of the texts `seqs` (token ids, at most
    /// `max_position_embeddings` each), packed: the rows of text `i`
    /// follow those of text `i − 1`; `sum(len) × hidden` values.
    ///
    /// # Panics
    /// On a token id outside the vocabulary or a text longer than the
    /// position table (the tokeniser and truncation prevent both).
    pub fn forward(&self, seqs: &[&[u32]]) -> Vec<f32> {
        let d = self.config.hidden_size;
        let tokens: usize = seqs.iter().map(|s| s.len()).sum();
        let mut x = vec![0.0f32; tokens * d];
        let mut rows = x.chunks_exact_mut(d);
        for seq in seqs {
            assert!(seq.len() <= self.config.max_position_embeddings);
            for (pos, &id) in seq.iter().enumerate() {
                let id = id as usize;
                assert!(
                    id < self.config.vocab_size,
                    "token id {id} outside the vocabulary"
                );
                let word = &self.words[id * d..(id + 1) * d];
                let place = &self.positions[pos * d..(pos + 1) * d];
                let row = rows.next().unwrap_or_default();
                for (k, v) in row.iter_mut().enumerate() {
                    *v = word[k] + place[k] + self.token_type[k];
                }
            }
        }
        self.norm.apply(&mut x);
        let inter = self.config.intermediate_size;
        let mut buf = Buffers {
            qkv: vec![0.0; tokens * 3 * d],
            ctx: vec![0.0; tokens * d],
            tmp: vec![0.0; tokens * d],
            up: vec![0.0; tokens * inter],
        };
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        for layer in &self.layers {
            self.layer(layer, &lens, &mut x, &mut buf);
        }
        x
    }

    fn layer(&self, layer: &Layer, lens: &[usize], x: &mut Vec<f32>, buf: &mut Buffers) {
        let tokens = x.len() / self.config.hidden_size;
        layer.qkv.forward(x, tokens, &mut buf.qkv);
        self.attention(lens, &buf.qkv, &mut buf.ctx);
        buf.tmp.copy_from_slice(x);
        layer.out.forward_add(&buf.ctx, tokens, &mut buf.tmp);
        layer.norm1.apply(&mut buf.tmp);
        std::mem::swap(x, &mut buf.tmp);
        layer.up.forward(x, tokens, &mut buf.up);
        let act = match self.config.hidden_act.as_str() {
            "relu" => relu,
            _ => gelu,
        };
        buf.up.par_chunks_mut(16 * 1024).for_each(act);
        buf.tmp.copy_from_slice(x);
        layer.down.forward_add(&buf.up, tokens, &mut buf.tmp);
        layer.norm2.apply(&mut buf.tmp);
        std::mem::swap(x, &mut buf.tmp);
    }

    /// Scaled dot-product attention of every text with itself, texts in
    /// parallel: `ctx` (tokens × hidden) from `qkv` (tokens × 3·hidden).
    fn attention(&self, lens: &[usize], qkv: &[f32], ctx: &mut [f32]) {
        let d = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let dh = d / heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut parts = Vec::with_capacity(lens.len());
        let (mut qkv, mut ctx) = (qkv, ctx);
        for &n in lens {
            let (q, q_rest) = qkv.split_at(n * 3 * d);
            let (c, c_rest) = std::mem::take(&mut ctx).split_at_mut(n * d);
            parts.push((n, q, c));
            (qkv, ctx) = (q_rest, c_rest);
        }
        parts.into_par_iter().for_each(|(n, qkv, ctx)| {
            // Per head, laid out so every product reads its operands in the
            // order `matrixmultiply` packs fastest: Qᵀ·scale and Kᵀ
            // (dh × n), V (n × dh).
            let mut heads_buf = vec![0.0f32; 3 * n * d];
            let (qts, rest) = heads_buf.split_at_mut(n * d);
            let (kts, vs) = rest.split_at_mut(n * d);
            for (i, row) in qkv.chunks_exact(3 * d).enumerate() {
                for (c, &v) in row[..d].iter().enumerate() {
                    qts[c * n + i] = v * scale;
                }
                for (c, &v) in row[d..2 * d].iter().enumerate() {
                    kts[c * n + i] = v;
                }
                for h in 0..heads {
                    let src = &row[2 * d + h * dh..2 * d + (h + 1) * dh];
                    vs[(h * n + i) * dh..(h * n + i + 1) * dh].copy_from_slice(src);
                }
            }
            // Scores transposed (keys × queries), each column a softmax.
            let mut scores_t = vec![0.0f32; n * n];
            let mut scratch = Vec::new();
            for h in 0..heads {
                let span = h * n * dh..(h + 1) * n * dh;
                let k = MatRef::rows(&kts[span.clone()], dh, n).t();
                let qt = MatRef::rows(&qts[span.clone()], dh, n);
                gemm(1.0, k, qt, 0.0, MatMut::rows(&mut scores_t, n, n));
                softmax_columns(&mut scores_t, n, &mut scratch);
                let p = MatRef::rows(&scores_t, n, n).t();
                let v = MatRef::rows(&vs[span], n, dh);
                let out = MatMut::strided(&mut ctx[h * dh..], n, dh, d);
                gemm(1.0, p, v, 0.0, out);
            }
        });
    }
}
