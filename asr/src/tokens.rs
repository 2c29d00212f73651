//! Whisper's vocabulary: text tokens through the `tokenizers` crate, and
//! the special and timestamp token ids.

use std::path::Path;

use tokenizers::Tokenizer;

/// Special token ids of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specials {
    /// `<|endoftext|>`.
    pub eot: u32,
    /// `<|startoftranscript|>`.
    pub sot: u32,
    /// `<|startofprev|>`.
    pub sot_prev: u32,
    /// `<|startoflm|>`.
    pub sot_lm: u32,
    /// `<|nospeech|>` (or `<|nocaptions|>`).
    pub no_speech: u32,
    /// `<|notimestamps|>`.
    pub no_timestamps: u32,
    /// `<|transcribe|>`.
    pub transcribe: u32,
    /// `<|translate|>`.
    pub translate: u32,
    /// The first timestamp token (`<|0.00|>`).
    pub timestamp_begin: u32,
    /// Whether the model knows many languages (then the prompt names one).
    pub multilingual: bool,
}

/// A model's tokenizer.
pub struct Vocabulary {
    tokenizer: Tokenizer,
    /// The special ids.
    pub specials: Specials,
}

impl Vocabulary {
    /// Reads `tokenizer.json` from `dir`; `vocab` is the model's vocabulary
    /// size (it decides whether the model is multilingual).
    ///
    /// # Errors
    /// A message when the file is missing or lacks a special token.
    pub fn load(dir: &Path, vocab: usize) -> Result<Self, String> {
        let path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let id = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| tokenizer.token_to_id(n))
                .ok_or_else(|| format!("`{}` has no {} token", path.display(), names[0]))
        };
        let no_timestamps = id(&["<|notimestamps|>"])?;
        let specials = Specials {
            eot: id(&["<|endoftext|>"])?,
            sot: id(&["<|startoftranscript|>"])?,
            sot_prev: id(&["<|startofprev|>"])?,
            sot_lm: id(&["<|startoflm|>"])?,
            no_speech: id(&["<|nospeech|>", "<|nocaptions|>"])?,
            no_timestamps,
            transcribe: id(&["<|transcribe|>"])?,
            translate: id(&["<|translate|>"])?,
            timestamp_begin: no_timestamps + 1,
            multilingual: vocab >= 51865,
        };
        Ok(Self {
            tokenizer,
            specials,
        })
    }

    /// The prompt start: `<|startoftranscript|>`, then for multilingual
    /// models the language and `<|transcribe|>`.
    pub fn sot_sequence(&self, language: &str) -> Result<Vec<u32>, String> {
        let s = &self.specials;
        if !s.multilingual {
            return Ok(vec![s.sot]);
        }
        let lang = self
            .tokenizer
            .token_to_id(&format!("<|{language}|>"))
            .ok_or_else(|| format!("the model does not know the language `{language}`"))?;
        Ok(vec![s.sot, lang, s.transcribe])
    }

    /// The text of `tokens`, ignoring special and timestamp tokens.
    pub fn decode(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|&t| t < self.specials.eot)
            .collect();
        self.tokenizer.decode(&text, false).unwrap_or_default()
    }
}
