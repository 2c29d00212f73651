//! Building a [`Whisper`] from CTranslate2-named weights (the layout of
//! faster-whisper models; Hugging Face checkpoints are renamed into it by
//! [`crate::hf`]).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use flow_backend::burn;
use flow_backend::{WeightError, Weights};

use crate::model::{
    Attention, DecoderLayer, Dims, EncoderLayer, Ffn, Linear, LoadResult, Norm, Whisper,
};

fn count_layers(w: &Weights, side: &str) -> usize {
    (0..)
        .take_while(|i| {
            w.tensors
                .contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))
        })
        .count()
}

/// Reads the model's sizes from its weights.
///
/// # Errors
/// A missing tensor.
pub fn dims(w: &Weights) -> LoadResult<Dims> {
    let emb = w.raw("decoder/embeddings/weight")?;
    let conv = w.raw("encoder/conv1/weight")?;
    let heads = w
        .raw("encoder/num_heads")?
        .data
        .first()
        .copied()
        .unwrap_or(0.0) as usize;
    Ok(Dims {
        n_mels: conv.shape[1],
        d_model: emb.shape[1],
        heads,
        encoder_layers: count_layers(w, "encoder"),
        decoder_layers: count_layers(w, "decoder"),
        vocab: emb.shape[0],
        audio_ctx: w.raw("encoder/position_encodings/encodings")?.shape[0],
        text_ctx: w.raw("decoder/position_encodings/encodings")?.shape[0],
    })
}

/// [`dims`], checked: the heads divide the model width.
///
/// # Errors
/// A missing tensor, or a head count that does not divide the width.
pub fn checked_dims(w: &Weights) -> LoadResult<Dims> {
    let dims = dims(w)?;
    if dims.heads == 0 || dims.d_model % dims.heads != 0 {
        return Err(WeightError::Missing {
            name: "encoder/num_heads".into(),
            path: w.path.clone(),
            hint: " (or it does not divide the model width)".into(),
        });
    }
    Ok(dims)
}

/// Where the tensors being loaded go: a device, in a float type.
struct At<'a, B: Backend> {
    w: &'a Weights,
    device: &'a B::Device,
    dtype: DType,
}

impl<B: Backend> At<'_, B> {
    /// The tensor `name`, of rank `D`, in `dtype` on `device`.
    fn t<const D: usize>(&self, name: &str) -> LoadResult<Tensor<B, D>> {
        self.w
            .tensor_as::<B, D>(name, None, (self.device, self.dtype))
    }

    fn linear(&self, name: &str) -> LoadResult<Linear<B>> {
        let bias = match self.w.tensors.contains_key(&format!("{name}/bias")) {
            true => Some(self.t(&format!("{name}/bias"))?),
            false => None,
        };
        Ok(Linear::new(self.t(&format!("{name}/weight"))?, bias))
    }

    /// Layer norms keep their parameters in f32: they compute in f32
    /// whatever the model's float type ([`Norm`]).
    fn norm(&self, name: &str) -> LoadResult<Norm<B>> {
        let f32 = |n: &str| self.w.tensor_as::<B, 1>(n, None, (self.device, DType::F32));
        Ok(Norm {
            gamma: f32(&format!("{name}/gamma"))?,
            beta: f32(&format!("{name}/beta"))?,
        })
    }

    fn ffn(&self, p: &str) -> LoadResult<Ffn<B>> {
        Ok(Ffn {
            norm: self.norm(&format!("{p}/ffn/layer_norm"))?,
            up: self.linear(&format!("{p}/ffn/linear_0"))?,
            down: self.linear(&format!("{p}/ffn/linear_1"))?,
        })
    }

    fn self_attention(&self, p: &str) -> LoadResult<Attention<B>> {
        let p = format!("{p}/self_attention");
        Ok(Attention {
            norm: self.norm(&format!("{p}/layer_norm"))?,
            q: None,
            kv: None,
            qkv: Some(self.linear(&format!("{p}/linear_0"))?),
            out: self.linear(&format!("{p}/linear_1"))?,
        })
    }

    fn cross_attention(&self, p: &str) -> LoadResult<Attention<B>> {
        let p = format!("{p}/attention");
        Ok(Attention {
            norm: self.norm(&format!("{p}/layer_norm"))?,
            q: Some(self.linear(&format!("{p}/linear_0"))?),
            kv: Some(self.linear(&format!("{p}/linear_1"))?),
            qkv: None,
            out: self.linear(&format!("{p}/linear_2"))?,
        })
    }
}

/// Builds the model on `device`, its weights and activations in `dtype`
/// (`F32`, or `F16` on a backend that computes in it: CUDA; layer norms
/// and logits stay in f32).
///
/// `host_logits`: compute the vocabulary projection on the host (the CPU
/// backend; see [`Whisper`]).
///
/// # Errors
/// A missing or misshapen tensor.
pub fn whisper<B: Backend>(
    w: &Weights,
    device: &B::Device,
    host_logits: bool,
    dtype: DType,
) -> LoadResult<Whisper<B>> {
    let dims = checked_dims(w)?;
    let at = At::<B> { w, device, dtype };
    let enc_layers = (0..dims.encoder_layers)
        .map(|i| {
            let p = format!("encoder/layer_{i}");
            Ok(EncoderLayer {
                attn: at.self_attention(&p)?,
                ffn: at.ffn(&p)?,
            })
        })
        .collect::<LoadResult<Vec<_>>>()?;
    let dec_layers = (0..dims.decoder_layers)
        .map(|i| {
            let p = format!("decoder/layer_{i}");
            Ok(DecoderLayer {
                attn: at.self_attention(&p)?,
                cross: at.cross_attention(&p)?,
                ffn: at.ffn(&p)?,
            })
        })
        .collect::<LoadResult<Vec<_>>>()?;
    let embed: Tensor<B, 2> = at.t("decoder/embeddings/weight")?;
    Ok(Whisper {
        dims,
        conv1: (at.t("encoder/conv1/weight")?, at.t("encoder/conv1/bias")?),
        conv2: (at.t("encoder/conv2/weight")?, at.t("encoder/conv2/bias")?),
        enc_pos: at.t("encoder/position_encodings/encodings")?,
        enc_layers,
        enc_norm: at.norm("encoder/layer_norm")?,
        embed_t: crate::model::contiguous(embed.clone().transpose()),
        embed,
        dec_pos: at.t("decoder/position_encodings/encodings")?,
        dec_layers,
        dec_norm: at.norm("decoder/layer_norm")?,
        device: device.clone(),
        dtype,
        host_embed: match host_logits {
            true => Some(w.raw("decoder/embeddings/weight")?.data.clone()),
            false => None,
        },
    })
}
