//! A BERT-family encoder in burn (BERT, MiniLM, bge, gte: post-norm
//! transformer layers over word + position + token-type embeddings), sized
//! from the model's `config.json`.

use std::path::Path;

use burn::tensor::activation::{gelu, relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use flow_backend::burn;
use flow_backend::{WeightError, Weights};
use serde::Deserialize;

use crate::checkpoint::{norm_names, prefix, stacked, LayerNames};

/// The fields of a Hugging Face `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    /// Width of every layer.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Word-piece vocabulary size.
    pub vocab_size: usize,
    /// Position embeddings: the longest input.
    pub max_position_embeddings: usize,
    /// Token types (segments).
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    /// `gelu` or `relu`.
    #[serde(default = "gelu_name")]
    pub hidden_act: String,
    /// `bert` (others of the same shape are accepted when the weights match).
    #[serde(default)]
    pub model_type: String,
}

fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn gelu_name() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Reads `dir/config.json`.
    ///
    /// # Errors
    /// A message naming the file and the problem.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not a BERT config: {e}", path.display()))?;
        if !matches!(config.hidden_act.as_str(), "gelu" | "relu") {
            return Err(format!(
                "`{}`: hidden_act `{}` is not supported (gelu, relu)",
                path.display(),
                config.hidden_act
            ));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(format!(
                "`{}`: hidden_size {} is not a multiple of num_attention_heads {}",
                path.display(),
                config.hidden_size,
                config.num_attention_heads
            ));
        }
        Ok(config)
    }
}

struct Linear<B: Backend> {
    wt: Tensor<B, 2>,
    b: Tensor<B, 1>,
}

impl<B: Backend> Linear<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let out = x.reshape([b * t, d]).matmul(self.wt.clone()) + self.b.clone().unsqueeze::<2>();
        let n = out.dims()[1];
        out.reshape([b, t, n])
    }
}

struct Norm<B: Backend> {
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> Norm<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powf_scalar(2.0).mean_dim(2);
        let normed = centered / (var + self.eps).sqrt();
        normed * self.gamma.clone().unsqueeze::<3>() + self.beta.clone().unsqueeze::<3>()
    }
}

struct Layer<B: Backend> {
    qkv: Linear<B>,
    out: Linear<B>,
    norm1: Norm<B>,
    up: Linear<B>,
    down: Linear<B>,
    norm2: Norm<B>,
}

/// A loaded BERT encoder on one device.
pub struct Bert<B: Backend> {
    /// Its configuration.
    pub config: BertConfig,
    words: Tensor<B, 2>,
    positions: Tensor<B, 2>,
    token_type: Tensor<B, 1>,
    norm: Norm<B>,
    layers: Vec<Layer<B>>,
    device: B::Device,
}

fn tensor<B: Backend, const D: usize>(
    w: &Weights,
    name: &str,
    shape: [usize; D],
    dev: &B::Device,
) -> Result<Tensor<B, D>, WeightError> {
    w.tensor::<B, D>(name, Some(shape), dev)
}

fn linear<B: Backend>(
    w: &Weights,
    names: &[String],
    inp: usize,
    out: usize,
    dev: &B::Device,
) -> Result<Linear<B>, WeightError> {
    // Fused along the output axis, stored transposed (in × out).
    let (rows, bias) = stacked(w, names, inp, out)?;
    let total = names.len() * out;
    let weight: Tensor<B, 2> = Tensor::from_data(TensorData::new(rows, [total, inp]), dev);
    let wt = Tensor::from_data(weight.transpose().into_data(), dev);
    let b = Tensor::from_data(TensorData::new(bias, [total]), dev);
    Ok(Linear { wt, b })
}

fn norm<B: Backend>(
    w: &Weights,
    name: &str,
    d: usize,
    eps: f64,
    dev: &B::Device,
) -> Result<Norm<B>, WeightError> {
    let (gamma, beta) = norm_names(w, name);
    Ok(Norm {
        gamma: tensor(w, &gamma, [d], dev)?,
        beta: tensor(w, &beta, [d], dev)?,
        eps,
    })
}

impl<B: Backend> Bert<B> {
    /// Builds the encoder from `weights` (a BERT-family checkpoint).
    ///
    /// # Errors
    /// A missing tensor or one of the wrong shape.
    pub fn new(config: BertConfig, w: &Weights, dev: &B::Device) -> Result<Self, WeightError> {
        let p = prefix(w);
        let d = config.hidden_size;
        let eps = config.layer_norm_eps;
        let e = format!("{p}embeddings");
        let types: Tensor<B, 2> = tensor(
            w,
            &format!("{e}.token_type_embeddings.weight"),
            [config.type_vocab_size, d],
            dev,
        )?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let n = LayerNames::new(p, i);
                let inter = config.intermediate_size;
                Ok(Layer {
                    qkv: linear(w, &n.qkv, d, d, dev)?,
                    out: linear(w, &[n.out], d, d, dev)?,
                    norm1: norm(w, &n.norm1, d, eps, dev)?,
                    up: linear(w, &[n.up], d, inter, dev)?,
                    down: linear(w, &[n.down], inter, d, dev)?,
                    norm2: norm(w, &n.norm2, d, eps, dev)?,
                })
            })
            .collect::<Result<Vec<_>, WeightError>>()?;
        Ok(Self {
            words: tensor(
                w,
                &format!("{e}.word_embeddings.weight"),
                [config.vocab_size, d],
                dev,
            )?,
            positions: tensor(
                w,
                &format!("{e}.position_embeddings.weight"),
                [config.max_position_embeddings, d],
                dev,
            )?,
            // Every input is one segment: token type 0.
            token_type: types.slice(0..1).reshape([d]),
            norm: norm(w, &format!("{e}.LayerNorm"), d, eps, dev)?,
            layers,
            config,
            device: dev.clone(),
        })
    }

    /// The last hidden states `[batch, len, hidden]` of `ids` (each row
    /// padded to `len`), with `lens[i]` real tokens in row `i`.
    pub fn forward(&self, ids: &[u32], lens: &[usize], len: usize) -> Tensor<B, 3> {
        let batch = lens.len();
        let d = self.config.hidden_size;
        let h = self.config.num_attention_heads;
        let dev = &self.device;
        let flat: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [batch * len]), dev);
        let x = self.words.clone().select(0, ids).reshape([batch, len, d]);
        let x = x
            + self.positions.clone().slice(0..len).unsqueeze::<3>()
            + self.token_type.clone().unsqueeze::<3>();
        let mut x = self.norm.forward(x);
        // Padding keys get -inf-like scores.
        let mask: Vec<f32> = lens
            .iter()
            .flat_map(|&n| (0..len).map(move |j| if j < n { 0.0 } else { -1e9 }))
            .collect();
        let mask: Tensor<B, 4> =
            Tensor::<B, 2>::from_data(TensorData::new(mask, [batch, len]), dev)
                .reshape([batch, 1, 1, len]);
        let scale = 1.0 / ((d / h) as f64).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(x.clone());
            let split = |i: usize| {
                qkv.clone()
                    .slice([0..batch, 0..len, i * d..(i + 1) * d])
                    .reshape([batch, len, h, d / h])
                    .swap_dims(1, 2)
            };
            let (q, k, v) = (split(0), split(1), split(2));
            let scores = q.matmul(k.swap_dims(2, 3)) * scale + mask.clone();
            let ctx = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([batch, len, d]);
            x = layer.norm1.forward(x + layer.out.forward(ctx));
            let up = layer.up.forward(x.clone());
            let up = match self.config.hidden_act.as_str() {
                "relu" => relu(up),
                _ => gelu(up),
            };
            x = layer.norm2.forward(x + layer.down.forward(up));
        }
        x
    }
}
