//! Sentence embeddings from a sentence-transformers folder: tokenise,
//! truncate, group texts of similar length into batches, encode, pool,
//! normalise.

use std::path::Path;

use burn::tensor::backend::Backend;
use flow_backend::burn;
use flow_backend::{with_backend, Compute, Weights};
use flow_engine::device::DeviceId;
use tokenizers::Tokenizer;

use crate::bert::{Bert, BertConfig};
use crate::cpu_bert::CpuBert;

/// How token vectors become one text vector (`1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the real (unpadded) tokens.
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
    /// The element-wise maximum over the real tokens.
    Max,
}

/// The settings a sentence-transformers folder declares.
#[derive(Debug, Clone)]
pub struct EmbedSettings {
    /// Pooling mode.
    pub pooling: Pooling,
    /// Whether vectors are L2-normalised (a `Normalize` module).
    pub normalize: bool,
    /// Word pieces kept per text, `[CLS]` and `[SEP]` included.
    pub max_tokens: usize,
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

impl EmbedSettings {
    /// Reads `1_Pooling/config.json`, `modules.json` and
    /// `sentence_bert_config.json` in `dir` (mean pooling, no
    /// normalisation and the model's position limit when absent).
    pub fn read(dir: &Path, config: &BertConfig) -> Self {
        let modules = read_json(&dir.join("modules.json"));
        let pooling_dir = modules
            .as_ref()
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .find(|m| m["type"].as_str().is_some_and(|t| t.ends_with("Pooling")))
            .and_then(|m| m["path"].as_str().map(String::from))
            .unwrap_or_else(|| "1_Pooling".into());
        let pool = read_json(&dir.join(pooling_dir).join("config.json"));
        let flag = |k: &str| pool.as_ref().is_some_and(|p| p[k].as_bool() == Some(true));
        let pooling = if flag("pooling_mode_cls_token") {
            Pooling::Cls
        } else if flag("pooling_mode_max_tokens") {
            Pooling::Max
        } else {
            Pooling::Mean
        };
        let normalize = modules.as_ref().is_some_and(|m| {
            m.as_array()
                .into_iter()
                .flatten()
                .any(|m| m["type"].as_str().is_some_and(|t| t.ends_with("Normalize")))
        });
        let max_tokens = read_json(&dir.join("sentence_bert_config.json"))
            .and_then(|c| c["max_seq_length"].as_u64())
            .map_or(config.max_position_embeddings, |n| n as usize)
            .min(config.max_position_embeddings);
        Self {
            pooling,
            normalize,
            max_tokens,
        }
    }
}

/// Tokenised texts: ids without padding.
fn tokenize(tok: &Tokenizer, texts: &[&str], max: usize) -> Result<Vec<Vec<u32>>, String> {
    let encodings = tok
        .encode_batch(texts.to_vec(), true)
        .map_err(|e| format!("cannot tokenise: {e}"))?;
    Ok(encodings
        .into_iter()
        .map(|e| {
            let ids = e.get_ids();
            if ids.len() <= max {
                return ids.to_vec();
            }
            // Keep the head and the final [SEP], as the reference truncates.
            let mut kept = ids[..max - 1].to_vec();
            kept.push(ids[ids.len() - 1]);
            kept
        })
        .collect())
}

/// Groups text indices by token count into batches of at most
/// `max_batch` texts and `max_tokens` padded positions, longest first. A
/// text joins a batch only if padding it to the batch's length wastes at
/// most a quarter of that length (or 8 tokens), so one long text does not
/// make a whole batch long.
pub fn length_batches(lens: &[usize], max_batch: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let fits = batches.last().is_some_and(|b| {
            // The batch's padded length is its first (longest) text's.
            let padded = lens[b[0]].max(1);
            let waste = padded - lens[i].min(padded);
            b.len() < max_batch
                && (b.len() + 1) * padded <= max_tokens
                && waste <= (padded / 4).max(8)
        });
        match fits {
            true => batches.last_mut().map(|b| b.push(i)).unwrap_or(()),
            false => batches.push(vec![i]),
        }
    }
    batches
}

fn pool(tokens: &[f32], d: usize, mode: Pooling, v: &mut [f32]) {
    let n = tokens.len() / d;
    if n == 0 {
        v.fill(0.0);
        return;
    }
    match mode {
        Pooling::Cls => v.copy_from_slice(&tokens[..d]),
        Pooling::Mean => {
            for t in tokens.chunks_exact(d) {
                v.iter_mut().zip(t).for_each(|(a, b)| *a += b);
            }
            v.iter_mut().for_each(|a| *a /= n.max(1) as f32);
        }
        Pooling::Max => {
            v.copy_from_slice(&tokens[..d]);
            for t in tokens.chunks_exact(d).skip(1) {
                v.iter_mut().zip(t).for_each(|(a, b)| *a = a.max(*b));
            }
        }
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// The network an [`Embedder`] runs.
enum Net {
    /// The fused CPU kernels.
    Kernels(Box<CpuBert>),
    /// burn on its CPU backend: the CUDA code path, run on the host.
    BurnCpu(Box<Bert<flow_backend::Cpu>>),
    /// burn on CUDA.
    #[cfg(feature = "cuda")]
    BurnGpu(Box<Bert<flow_backend::Gpu>>),
    /// burn on a Vulkan adapter.
    #[cfg(feature = "vulkan")]
    BurnVulkan(Box<Bert<flow_backend::Vk>>),
}

trait Wrap {
    fn wrap(self) -> Net;
}
impl Wrap for Bert<flow_backend::Cpu> {
    fn wrap(self) -> Net {
        Net::BurnCpu(Box::new(self))
    }
}
#[cfg(feature = "cuda")]
impl Wrap for Bert<flow_backend::Gpu> {
    fn wrap(self) -> Net {
        Net::BurnGpu(Box::new(self))
    }
}
#[cfg(feature = "vulkan")]
impl Wrap for Bert<flow_backend::Vk> {
    fn wrap(self) -> Net {
        Net::BurnVulkan(Box::new(self))
    }
}
fn wrap<T: Wrap>(t: T) -> Net {
    t.wrap()
}

/// burn's forward pass over `seqs` padded to the longest: the hidden states
/// and the first row of each text.
fn burn_hidden<B: Backend>(
    bert: &Bert<B>,
    seqs: &[&[u32]],
) -> Result<(Vec<f32>, Vec<usize>), String> {
    let len = seqs.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
    let mut flat = Vec::with_capacity(seqs.len() * len);
    for s in seqs {
        flat.extend_from_slice(s);
        flat.resize(flat.len() + len - s.len(), 0);
    }
    let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
    let hidden = bert
        .forward(&flat, &lens, len)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| format!("cannot read the encoder output: {e:?}"))?;
    Ok((hidden, (0..seqs.len()).map(|r| r * len).collect()))
}

impl Net {
    fn dim(&self) -> usize {
        match self {
            Net::Kernels(b) => b.config.hidden_size,
            Net::BurnCpu(b) => b.config.hidden_size,
            #[cfg(feature = "cuda")]
            Net::BurnGpu(b) => b.config.hidden_size,
            #[cfg(feature = "vulkan")]
            Net::BurnVulkan(b) => b.config.hidden_size,
        }
    }

    /// The hidden states of `seqs` and the row where each text starts.
    fn hidden(&self, seqs: &[&[u32]]) -> Result<(Vec<f32>, Vec<usize>), String> {
        match self {
            Net::Kernels(b) => {
                let starts = seqs
                    .iter()
                    .scan(0, |row, s| {
                        let start = *row;
                        *row += s.len();
                        Some(start)
                    })
                    .collect();
                Ok((b.forward(seqs), starts))
            }
            Net::BurnCpu(b) => burn_hidden(b, seqs),
            #[cfg(feature = "cuda")]
            Net::BurnGpu(b) => burn_hidden(b, seqs),
            #[cfg(feature = "vulkan")]
            Net::BurnVulkan(b) => burn_hidden(b, seqs),
        }
    }
}

/// A text embedding model loaded on a device: the library entry point (the
/// `text.embed` stage and `flow search` use it). On the CPU it runs the
/// fused kernels of [`CpuBert`]; on CUDA, burn ([`Bert`]).
pub struct Embedder {
    net: Net,
    tokenizer: Tokenizer,
    settings: EmbedSettings,
    /// Where it computes.
    pub compute: Compute,
    /// Most token positions (batch × padded length) encoded at once.
    pub max_batch_tokens: usize,
}

impl Embedder {
    /// Loads the sentence-transformers (or plain BERT) folder `dir` on
    /// `device` (`cpu`, `cuda:N`).
    ///
    /// # Errors
    /// A message: no such device, or a missing or wrong model file.
    pub fn load(dir: &Path, device: DeviceId) -> Result<Self, String> {
        Self::load_with(dir, device, false)
    }

    /// [`Embedder::load`], but running burn's implementation on every
    /// device, the CPU included (the CUDA code path, for checking it on a
    /// machine without a GPU).
    ///
    /// # Errors
    /// As [`Embedder::load`].
    pub fn load_burn(dir: &Path, device: DeviceId) -> Result<Self, String> {
        Self::load_with(dir, device, true)
    }

    fn load_with(dir: &Path, device: DeviceId, burn_everywhere: bool) -> Result<Self, String> {
        let compute = Compute::for_device(device).map_err(|e| e.to_string())?;
        let config = BertConfig::read(dir)?;
        let weights = Weights::read(&dir.join("model.safetensors"))
            .or_else(|_| Weights::read(&dir.join("pytorch_model.bin")))
            .map_err(|e| {
                format!(
                    "no usable weights in `{}` (model.safetensors or pytorch_model.bin): {e}",
                    dir.display()
                )
            })?;
        let settings = EmbedSettings::read(dir, &config);
        let net = match (&compute, burn_everywhere) {
            (Compute::Cpu(_), false) => Net::Kernels(Box::new(
                CpuBert::new(config, weights).map_err(|e| e.to_string())?,
            )),
            _ => with_backend!(&compute, |B, dev| wrap(
                Bert::<B>::new(config, &weights, &dev).map_err(|e| e.to_string())?
            )),
        };
        let path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        // The file's own truncation and fixed padding are not the model's:
        // texts are truncated to `max_tokens` and padded per batch here.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        Ok(Self {
            net,
            tokenizer,
            settings,
            compute,
            max_batch_tokens: 16 * 1024,
        })
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.net.dim()
    }

    /// The folder's pooling, normalisation and truncation.
    pub fn settings(&self) -> &EmbedSettings {
        &self.settings
    }

    /// Token counts of `texts` after truncation (`[CLS]`/`[SEP]` included).
    ///
    /// # Errors
    /// A tokeniser failure.
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>, String> {
        let ids = tokenize(&self.tokenizer, texts, self.settings.max_tokens)?;
        Ok(ids.iter().map(Vec::len).collect())
    }

    /// Embeds `texts` in batches of at most `max_batch`, grouped by length;
    /// returns `texts.len() × dim` values, row i for text i.
    ///
    /// # Errors
    /// A tokeniser failure.
    pub fn embed(&self, texts: &[&str], max_batch: usize) -> Result<Vec<f32>, String> {
        let ids = tokenize(&self.tokenizer, texts, self.settings.max_tokens)?;
        let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
        let d = self.dim();
        let mut out = vec![0.0f32; texts.len() * d];
        for batch in length_batches(&lens, max_batch.max(1), self.max_batch_tokens) {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            let (hidden, starts) = self.net.hidden(&seqs)?;
            for (&i, start) in batch.iter().zip(starts) {
                let tokens = &hidden[start * d..(start + lens[i]) * d];
                let v = &mut out[i * d..(i + 1) * d];
                pool(tokens, d, self.settings.pooling, v);
                if self.settings.normalize {
                    normalize(v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::length_batches;

    #[test]
    fn batches_group_similar_lengths_and_respect_the_limits() {
        let lens = [256, 12, 14, 10, 200, 13, 11, 9, 250];
        let batches = length_batches(&lens, 3, 1024);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() <= 3);
            let longest = b.iter().map(|&i| lens[i]).max().unwrap();
            assert!(b.len() * longest <= 1024);
            assert!(b.iter().all(|&i| longest - lens[i] <= (longest / 4).max(8)));
        }
        // The long texts are not padded with the short ones.
        assert!(batches.iter().any(|b| b.contains(&0) && b.contains(&8)));
        assert!(batches.iter().all(|b| !(b.contains(&0) && b.contains(&1))));
    }
}
