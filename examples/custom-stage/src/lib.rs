//! An example stage kind defined outside `flow`, against the engine's public
//! API: `text.wordcount` counts the words and lines of each item (a UTF-8
//! text file) and lists its most frequent words.
//!
//! ```yaml
//! stages:
//!   count:
//!     uses: text.wordcount
//!     with: { top: 3, lowercase: true }
//! ```
//!
//! The stage's output is one `counts` port whose value is
//! `{"words": N, "lines": N, "top": [["word", count], ...]}`.
//!
//! `docs/custom-stages.md` walks through this file.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The port type of `text.wordcount`'s output. Any string is a valid port
/// type; a downstream kind that wants word counts lists it in its inputs.
pub const COUNTS: &str = "counts";

/// Settings of a `text.wordcount` stage (its `with:` mapping).
///
/// ```yaml
/// with: { top: 3, lowercase: false }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WordCountConfig {
    /// How many of the most frequent words to list under `top` (default 5;
    /// 0 lists none).
    #[serde(default = "default_top")]
    pub top: usize,
    /// Fold words to lower case before counting them for `top`, so `The`
    /// and `the` are one word (default true).
    #[serde(default = "default_lowercase")]
    pub lowercase: bool,
}

fn default_top() -> usize {
    5
}

fn default_lowercase() -> bool {
    true
}

impl Default for WordCountConfig {
    fn default() -> Self {
        Self {
            top: default_top(),
            lowercase: default_lowercase(),
        }
    }
}

/// The counts of one text: the value of the `counts` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Whitespace-separated words, as `wc -w` counts them.
    pub words: usize,
    /// Lines; a last line without a newline counts too.
    pub lines: usize,
    /// The most frequent words with their counts, most frequent first (ties
    /// in alphabetical order). Punctuation around a word is not part of it;
    /// words that are only punctuation are not listed.
    pub top: Vec<(String, usize)>,
}

/// Counts the words and lines of `text` and its `config.top` most frequent
/// words.
pub fn count(text: &str, config: &WordCountConfig) -> Counts {
    let mut words = 0;
    let mut frequency: HashMap<String, usize> = HashMap::new();
    for token in text.split_whitespace() {
        words += 1;
        let word = token.trim_matches(|c: char| !c.is_alphanumeric());
        if word.is_empty() {
            continue;
        }
        let word = if config.lowercase {
            word.to_lowercase()
        } else {
            word.to_string()
        };
        *frequency.entry(word).or_default() += 1;
    }
    let mut top: Vec<(String, usize)> = frequency.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(config.top);
    Counts {
        words,
        lines: text.lines().count(),
        top,
    }
}

/// Every setting of `text.wordcount` changes its result, so none is
/// operational (a batching knob would be listed in `OPERATIONAL`, to keep
/// it out of the cache key). Keys are computed from the settings with
/// defaults filled in, so `with: {}` and `with: { top: 5 }` share results.
impl Settings for WordCountConfig {}

/// The `text.wordcount` stage kind: register it with
/// `registry.register(WordCountKind)`.
pub struct WordCountKind;

/// A [`TypedKind`] gets its parsing, JSON Schema, settings help, checks of
/// every key and cache-key parameters from `Config`.
impl TypedKind for WordCountKind {
    type Config = WordCountConfig;

    fn name(&self) -> &'static str {
        "text.wordcount"
    }

    fn summary(&self) -> &'static str {
        "Count the words and lines of each text item and list its most frequent words"
    }

    fn version(&self) -> u32 {
        // Part of every cache key: bump it when `count` changes its results.
        1
    }

    fn validate(&self, config: &WordCountConfig) -> Vec<ConfigProblem> {
        // Unknown keys and wrong types are reported by the engine, each at
        // its key inside `with:`. Checks the types cannot express go here.
        let mut problems = Vec::new();
        if config.top > 1000 {
            problems.push(
                ConfigProblem::new(&["top"], format!("`top` is {}, more than 1000", config.top))
                    .help("list at most 1000 words; the full table belongs in a stage of its own"),
            );
        }
        problems
    }

    fn ports(&self, _config: &WordCountConfig) -> Ports {
        // No input ports: the stage reads the item itself, not an upstream
        // output, so it may run with no `needs`.
        Ports {
            inputs: Vec::new(),
            outputs: vec![COUNTS.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        // Reading a file is blocking I/O, so not `inline`: the stage runs on
        // the blocking pool. No accelerator, and results are cacheable.
        Resources {
            accelerator: false,
            inline: false,
            always_run: false,
        }
    }

    fn build(
        &self,
        _ctx: &BuildContext<'_>,
        config: WordCountConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(WordCount { config }))
    }
}

/// A built `text.wordcount` stage.
struct WordCount {
    config: WordCountConfig,
}

impl Stage for WordCount {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let source = &input.item.source;
        if source.contains("://") {
            return Err(StageError::failed(format!(
                "`{source}` is a URL; text.wordcount reads local files only"
            )));
        }
        let bytes = std::fs::read(source)
            .map_err(|e| StageError::failed(format!("cannot read `{source}`: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            StageError::failed(format!(
                "`{source}` is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let counts = count(&text, &self.config);
        let value = serde_json::to_value(&counts)
            .map_err(|e| StageError::failed(format!("cannot encode the counts: {e}")))?;
        Ok(StageOutput {
            outputs: vec![Output {
                port: COUNTS.to_string(),
                files: Vec::new(),
                value: Some(value),
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs.iter().map(|(w, n)| (w.to_string(), *n)).collect()
    }

    #[test]
    fn counts_words_lines_and_top_words() {
        let text = "The cat sat.\nThe dog sat, the end!\n";
        let counts = count(
            text,
            &WordCountConfig {
                top: 2,
                lowercase: true,
            },
        );
        assert_eq!(counts.words, 8);
        assert_eq!(counts.lines, 2);
        assert_eq!(counts.top, top(&[("the", 3), ("sat", 2)]));
    }

    #[test]
    fn keeps_case_when_asked_and_breaks_ties_alphabetically() {
        let text = "b a The the";
        let counts = count(
            text,
            &WordCountConfig {
                top: 10,
                lowercase: false,
            },
        );
        assert_eq!(
            counts.top,
            top(&[("The", 1), ("a", 1), ("b", 1), ("the", 1)])
        );
    }

    #[test]
    fn empty_text_and_punctuation() {
        let counts = count("", &WordCountConfig::default());
        assert_eq!((counts.words, counts.lines, counts.top.len()), (0, 0, 0));
        // A dash is a word for `wc -w` but not a word to list.
        let counts = count(
            "one — two\nno newline at the end",
            &WordCountConfig::default(),
        );
        assert_eq!((counts.words, counts.lines), (8, 2));
        assert!(counts.top.iter().all(|(w, _)| w != "—"));
        assert_eq!(counts.top.len(), 5);
    }

    #[test]
    fn counts_serialize_as_pairs() {
        let counts = count(
            "a a b",
            &WordCountConfig {
                top: 1,
                lowercase: true,
            },
        );
        assert_eq!(
            serde_json::to_value(&counts).unwrap(),
            serde_json::json!({ "words": 3, "lines": 1, "top": [["a", 2]] })
        );
    }

    #[test]
    fn config_defaults_unknown_keys_and_cache_params() {
        use flow_engine::registry::StageKind;
        let kind = WordCountKind;
        assert!(kind.check(&serde_json::Value::Null).is_empty());
        let problems = kind.check(&serde_json::json!({ "topp": 3 }));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("topp"),
            "{}",
            problems[0].message
        );
        let problems = kind.check(&serde_json::json!({ "top": 5000 }));
        assert_eq!(problems[0].path, ["top"]);
        assert_eq!(
            kind.semantic_params(&serde_json::json!({})),
            kind.semantic_params(&serde_json::json!({ "top": 5, "lowercase": true }))
        );
        assert_ne!(
            kind.semantic_params(&serde_json::json!({})),
            kind.semantic_params(&serde_json::json!({ "top": 3 }))
        );
    }
}
