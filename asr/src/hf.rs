//! Hugging Face Whisper checkpoints (`openai/whisper-*`, `distil-whisper/*`):
//! `model.safetensors` (or its shards) and `config.json`, renamed into the
//! CTranslate2 layout that [`crate::load`] builds from. Self-attention
//! q, k, v are fused into one projection (k has no bias: zeros), the
//! cross-attention k, v into another; `proj_out` is tied to the token
//! embeddings and not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flow_backend::{RawTensor, WeightError, Weights};

/// True when `dir` holds a Hugging Face checkpoint (safetensors, no
/// CTranslate2 `model.bin`).
pub fn is_hf(dir: &Path) -> bool {
    !dir.join("model.bin").exists() && !safetensors_files(dir).is_empty()
}

fn safetensors_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn problem(path: &Path, reason: String) -> WeightError {
    WeightError::Format {
        path: path.to_path_buf(),
        format: "Hugging Face Whisper config.json",
        reason,
    }
}

/// Reads the checkpoint in `dir` and returns its weights under
/// CTranslate2 names.
///
/// # Errors
/// A missing file or tensor, or a `config.json` without the head count.
pub fn read(dir: &Path) -> Result<Weights, WeightError> {
    let files = safetensors_files(dir);
    let first = files
        .first()
        .cloned()
        .unwrap_or_else(|| dir.join("model.safetensors"));
    let mut hf = BTreeMap::new();
    for file in &files {
        hf.extend(Weights::read_safetensors(file)?.tensors);
    }
    let config_path = dir.join("config.json");
    let config: serde_json::Value = std::fs::read_to_string(&config_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let heads = config["encoder_attention_heads"]
        .as_u64()
        .ok_or_else(|| problem(&config_path, "no `encoder_attention_heads`".into()))?;
    if let Some(dec) = config["decoder_attention_heads"].as_u64() {
        if dec != heads {
            return Err(problem(
                &config_path,
                format!("{heads} encoder but {dec} decoder heads (flow needs them equal)"),
            ));
        }
    }
    let mut out = Renamer {
        hf,
        path: first.clone(),
        ct2: BTreeMap::new(),
    };
    out.ct2.insert(
        "encoder/num_heads".into(),
        RawTensor {
            shape: vec![1],
            data: vec![heads as f32],
        },
    );
    out.rename_all()?;
    Ok(Weights {
        path: first,
        tensors: out.ct2,
        metadata: BTreeMap::new(),
    })
}

struct Renamer {
    hf: BTreeMap<String, RawTensor>,
    path: PathBuf,
    ct2: BTreeMap<String, RawTensor>,
}

impl Renamer {
    fn take(&mut self, name: &str) -> Result<RawTensor, WeightError> {
        // Some exports drop the `model.` prefix.
        let short = name.strip_prefix("model.").unwrap_or(name).to_string();
        self.hf
            .remove(name)
            .or_else(|| self.hf.remove(&short))
            .ok_or_else(|| WeightError::Missing {
                name: name.into(),
                path: self.path.clone(),
                hint: " (a Hugging Face Whisper checkpoint)".into(),
            })
    }

    fn has(&self, name: &str) -> bool {
        let short = name.strip_prefix("model.").unwrap_or(name);
        self.hf.contains_key(name) || self.hf.contains_key(short)
    }

    fn copy(&mut self, from: &str, to: &str) -> Result<(), WeightError> {
        let t = self.take(from)?;
        self.ct2.insert(to.into(), t);
        Ok(())
    }

    fn norm(&mut self, from: &str, to: &str) -> Result<(), WeightError> {
        self.copy(&format!("{from}.weight"), &format!("{to}/gamma"))?;
        self.copy(&format!("{from}.bias"), &format!("{to}/beta"))
    }

    fn linear(&mut self, from: &str, to: &str) -> Result<(), WeightError> {
        self.copy(&format!("{from}.weight"), &format!("{to}/weight"))?;
        if self.has(&format!("{from}.bias")) {
            self.copy(&format!("{from}.bias"), &format!("{to}/bias"))?;
        }
        Ok(())
    }

    /// Stacks the projections `parts` (rows) into one linear layer; a part
    /// without a bias contributes zeros.
    fn fused(&mut self, from: &str, parts: &[&str], to: &str) -> Result<(), WeightError> {
        let mut weight = RawTensor {
            shape: Vec::new(),
            data: Vec::new(),
        };
        let mut bias = Vec::new();
        for part in parts {
            let w = self.take(&format!("{from}.{part}.weight"))?;
            let rows = w.shape.first().copied().unwrap_or(0);
            match self.has(&format!("{from}.{part}.bias")) {
                true => bias.extend(self.take(&format!("{from}.{part}.bias"))?.data),
                false => bias.extend(std::iter::repeat_n(0.0, rows)),
            }
            if weight.shape.is_empty() {
                weight.shape = w.shape.clone();
            } else {
                weight.shape[0] += rows;
            }
            weight.data.extend(w.data);
        }
        let rows = weight.shape[0];
        self.ct2.insert(format!("{to}/weight"), weight);
        self.ct2.insert(
            format!("{to}/bias"),
            RawTensor {
                shape: vec![rows],
                data: bias,
            },
        );
        Ok(())
    }

    fn layer(&mut self, side: &str, i: usize) -> Result<(), WeightError> {
        let from = format!("model.{side}.layers.{i}");
        let to = format!("{side}/layer_{i}");
        self.fused(
            &format!("{from}.self_attn"),
            &["q_proj", "k_proj", "v_proj"],
            &format!("{to}/self_attention/linear_0"),
        )?;
        self.linear(
            &format!("{from}.self_attn.out_proj"),
            &format!("{to}/self_attention/linear_1"),
        )?;
        self.norm(
            &format!("{from}.self_attn_layer_norm"),
            &format!("{to}/self_attention/layer_norm"),
        )?;
        if side == "decoder" {
            let cross = format!("{from}.encoder_attn");
            self.linear(
                &format!("{cross}.q_proj"),
                &format!("{to}/attention/linear_0"),
            )?;
            self.fused(
                &cross,
                &["k_proj", "v_proj"],
                &format!("{to}/attention/linear_1"),
            )?;
            self.linear(
                &format!("{cross}.out_proj"),
                &format!("{to}/attention/linear_2"),
            )?;
            self.norm(
                &format!("{from}.encoder_attn_layer_norm"),
                &format!("{to}/attention/layer_norm"),
            )?;
        }
        self.linear(&format!("{from}.fc1"), &format!("{to}/ffn/linear_0"))?;
        self.linear(&format!("{from}.fc2"), &format!("{to}/ffn/linear_1"))?;
        self.norm(
            &format!("{from}.final_layer_norm"),
            &format!("{to}/ffn/layer_norm"),
        )
    }

    fn rename_all(&mut self) -> Result<(), WeightError> {
        for side in ["encoder", "decoder"] {
            let layers = (0..)
                .take_while(|i| self.has(&format!("model.{side}.layers.{i}.fc1.weight")))
                .count();
            for i in 0..layers {
                self.layer(side, i)?;
            }
            self.norm(
                &format!("model.{side}.layer_norm"),
                &format!("{side}/layer_norm"),
            )?;
            self.copy(
                &format!("model.{side}.embed_positions.weight"),
                &format!("{side}/position_encodings/encodings"),
            )?;
        }
        for conv in ["conv1", "conv2"] {
            self.linear(&format!("model.encoder.{conv}"), &format!("encoder/{conv}"))?;
        }
        self.copy(
            "model.decoder.embed_tokens.weight",
            "decoder/embeddings/weight",
        )
    }
}
