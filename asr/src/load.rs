//! Building a [`Whisper`] from CTranslate2-named weights (the layout of
//! faster-whisper models; Hugging Face checkpoints are renamed into it by
//! [`crate::hf`]).

use burn::tensor::backend::Backend;
use flow_backend::burn;
use flow_backend::{WeightError, Weights};

use crate::model::{
    t, Attention, DecoderLayer, Dims, EncoderLayer, Ffn, Linear, LoadResult, Norm, Whisper,
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

fn linear<B: Backend>(w: &Weights, name: &str, dev: &B::Device) -> LoadResult<Linear<B>> {
    let bias = match w.tensors.contains_key(&format!("{name}/bias")) {
        true => Some(t(w, &format!("{name}/bias"), dev)?),
        false => None,
    };
    Ok(Linear::new(t(w, &format!("{name}/weight"), dev)?, bias))
}

fn norm<B: Backend>(w: &Weights, name: &str, dev: &B::Device) -> LoadResult<Norm<B>> {
    Ok(Norm {
        gamma: t(w, &format!("{name}/gamma"), dev)?,
        beta: t(w, &format!("{name}/beta"), dev)?,
    })
}

fn ffn<B: Backend>(w: &Weights, p: &str, dev: &B::Device) -> LoadResult<Ffn<B>> {
    Ok(Ffn {
        norm: norm(w, &format!("{p}/ffn/layer_norm"), dev)?,
        up: linear(w, &format!("{p}/ffn/linear_0"), dev)?,
        down: linear(w, &format!("{p}/ffn/linear_1"), dev)?,
    })
}

fn self_attention<B: Backend>(w: &Weights, p: &str, dev: &B::Device) -> LoadResult<Attention<B>> {
    let p = format!("{p}/self_attention");
    Ok(Attention {
        norm: norm(w, &format!("{p}/layer_norm"), dev)?,
        q: None,
        kv: None,
        qkv: Some(linear(w, &format!("{p}/linear_0"), dev)?),
        out: linear(w, &format!("{p}/linear_1"), dev)?,
    })
}

fn cross_attention<B: Backend>(w: &Weights, p: &str, dev: &B::Device) -> LoadResult<Attention<B>> {
    let p = format!("{p}/attention");
    Ok(Attention {
        norm: norm(w, &format!("{p}/layer_norm"), dev)?,
        q: Some(linear(w, &format!("{p}/linear_0"), dev)?),
        kv: Some(linear(w, &format!("{p}/linear_1"), dev)?),
        qkv: None,
        out: linear(w, &format!("{p}/linear_2"), dev)?,
    })
}

/// Builds the model on `device`.
///
/// # Errors
/// A missing or misshapen tensor.
///
/// `host_logits`: compute the vocabulary projection on the host (the CPU
/// backend; see [`Whisper`]).
pub fn whisper<B: Backend>(
    w: &Weights,
    device: &B::Device,
    host_logits: bool,
) -> LoadResult<Whisper<B>> {
    let dims = checked_dims(w)?;
    let dev = device;
    let enc_layers = (0..dims.encoder_layers)
        .map(|i| {
            let p = format!("encoder/layer_{i}");
            Ok(EncoderLayer {
                attn: self_attention(w, &p, dev)?,
                ffn: ffn(w, &p, dev)?,
            })
        })
        .collect::<LoadResult<Vec<_>>>()?;
    let dec_layers = (0..dims.decoder_layers)
        .map(|i| {
            let p = format!("decoder/layer_{i}");
            Ok(DecoderLayer {
                attn: self_attention(w, &p, dev)?,
                cross: cross_attention(w, &p, dev)?,
                ffn: ffn(w, &p, dev)?,
            })
        })
        .collect::<LoadResult<Vec<_>>>()?;
    let embed: burn::tensor::Tensor<B, 2> = t(w, "decoder/embeddings/weight", dev)?;
    Ok(Whisper {
        dims,
        conv1: (
            t(w, "encoder/conv1/weight", dev)?,
            t(w, "encoder/conv1/bias", dev)?,
        ),
        conv2: (
            t(w, "encoder/conv2/weight", dev)?,
            t(w, "encoder/conv2/bias", dev)?,
        ),
        enc_pos: t(w, "encoder/position_encodings/encodings", dev)?,
        enc_layers,
        enc_norm: norm(w, "encoder/layer_norm", dev)?,
        embed_t: crate::model::contiguous(embed.clone().transpose()),
        embed,
        dec_pos: t(w, "decoder/position_encodings/encodings", dev)?,
        dec_layers,
        dec_norm: norm(w, "decoder/layer_norm", dev)?,
        device: device.clone(),
        host_embed: match host_logits {
            true => Some(w.raw("decoder/embeddings/weight")?.data.clone()),
            false => None,
        },
    })
}
