//! Where a BERT-family checkpoint keeps its tensors: the name prefix, the
//! per-layer names, and projections stacked for one fused product.

use flow_backend::{WeightError, Weights};

/// The prefix under which the encoder's tensors are stored: none
/// (sentence-transformers), `bert.` (BertForMaskedLM and friends) or
/// `model.`.
pub(crate) fn prefix(w: &Weights) -> &'static str {
    ["", "bert.", "model."]
        .into_iter()
        .find(|p| {
            w.tensors
                .contains_key(&format!("{p}embeddings.word_embeddings.weight"))
        })
        .unwrap_or("")
}

/// The weights and biases of `names` (each `out × inp`), stacked along
/// the output axis: `(names.len() · out) × inp` and `names.len() · out`.
pub(crate) fn stacked(
    w: &Weights,
    names: &[String],
    inp: usize,
    out: usize,
) -> Result<(Vec<f32>, Vec<f32>), WeightError> {
    let mut rows = Vec::with_capacity(names.len() * inp * out);
    let mut bias = Vec::with_capacity(names.len() * out);
    for n in names {
        let wr = w.raw(&format!("{n}.weight"))?;
        let br = w.raw(&format!("{n}.bias"))?;
        if wr.shape != [out, inp] || br.shape != [out] {
            return Err(WeightError::Shape {
                name: format!("{n}.weight"),
                path: w.path.clone(),
                found: wr.shape.clone(),
                expected: vec![out, inp],
            });
        }
        rows.extend_from_slice(&wr.data);
        bias.extend_from_slice(&br.data);
    }
    Ok((rows, bias))
}

/// The tensor names of encoder layer `i` under `prefix`.
pub(crate) struct LayerNames {
    /// Query, key and value projections.
    pub qkv: [String; 3],
    /// The attention output projection.
    pub out: String,
    /// The layer norm after attention.
    pub norm1: String,
    /// The feed-forward expansion.
    pub up: String,
    /// The feed-forward projection back.
    pub down: String,
    /// The layer norm after the feed-forward block.
    pub norm2: String,
}

impl LayerNames {
    pub(crate) fn new(prefix: &str, i: usize) -> Self {
        let l = format!("{prefix}encoder.layer.{i}");
        let a = format!("{l}.attention");
        Self {
            qkv: ["query", "key", "value"].map(|n| format!("{a}.self.{n}")),
            out: format!("{a}.output.dense"),
            norm1: format!("{a}.output.LayerNorm"),
            up: format!("{l}.intermediate.dense"),
            down: format!("{l}.output.dense"),
            norm2: format!("{l}.output.LayerNorm"),
        }
    }
}

/// The scale and shift of layer norm `name` (old checkpoints name them
/// gamma and beta).
pub(crate) fn norm_names(w: &Weights, name: &str) -> (String, String) {
    let pick = |a: &str, b: &str| {
        let first = format!("{name}.{a}");
        match w.tensors.contains_key(&first) {
            true => first,
            false => format!("{name}.{b}"),
        }
    };
    (pick("weight", "gamma"), pick("bias", "beta"))
}
