//! Configuration errors as miette diagnostics that point into the YAML.

use std::fmt;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::spec::yaml::Span;

/// Exit code for configuration errors (`EX_CONFIG`, as Vector uses it).
pub const EXIT_CONFIG: i32 = 78;

/// One problem in a workflow file, with a code, a place and a hint.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// A stable code such as `flow::unknown_key`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    /// Where, if anywhere.
    pub span: Option<Span>,
    /// The text under the span's underline.
    pub label: String,
    source: Option<NamedSource<String>>,
}

impl ConfigError {
    /// A new error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            help: None,
            span: None,
            label: String::new(),
            source: None,
        }
    }

    /// Points the error at `span` with a short label.
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    /// Adds a `help:` line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds `help` only when it is `Some`.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// The 1-based line of the span in its source, if attached.
    pub fn line(&self) -> Option<usize> {
        let (span, source) = (self.span?, self.source.as_ref()?);
        let text = source.inner();
        Some(text[..span.offset.min(text.len())].matches('\n').count() + 1)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        self.source.as_ref()?;
        let label = (!self.label.is_empty()).then(|| self.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new(
            label,
            span.offset,
            span.len,
        ))))
    }
}

/// The texts a workflow was read from: the file, then each `--set` override.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    texts: Vec<(String, String)>,
}

impl Sources {
    /// Sources that start with the workflow file's text.
    pub fn new(path: &Path, text: String) -> Self {
        Self {
            texts: vec![(path.display().to_string(), text)],
        }
    }

    /// Adds a text (for example `--set a.b=c`) and returns its source index.
    pub fn add(&mut self, name: String, text: String) -> usize {
        self.texts.push((name, text));
        self.texts.len() - 1
    }

    /// The text of source `index`.
    pub fn text(&self, index: usize) -> &str {
        self.texts.get(index).map_or("", |(_, t)| t.as_str())
    }
}

/// Every configuration error found in one workflow file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{}` has {} configuration error{}", path.display(), errors.len(), if errors.len() == 1 { "" } else { "s" })]
pub struct ConfigErrors {
    /// The workflow file.
    pub path: PathBuf,
    /// The errors, in file order.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Collects `errors`, attaching each to the text its span points into.
    pub fn new(path: &Path, mut errors: Vec<ConfigError>, sources: &Sources) -> Self {
        errors.sort_by_key(|e| e.span.map(|s| (s.source, s.offset)));
        for error in &mut errors {
            if let Some(span) = error.span {
                if let Some((name, text)) = sources.texts.get(span.source) {
                    error.source = Some(NamedSource::new(name.clone(), text.clone()));
                }
            }
        }
        Self {
            path: path.to_path_buf(),
            errors,
        }
    }

    /// A single error with no position (a missing file, say).
    pub fn single(path: &Path, error: ConfigError) -> Self {
        Self {
            path: path.to_path_buf(),
            errors: vec![error],
        }
    }
}

/// The closest of `candidates` to `word`, if it is close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `help:` text suggesting `candidate`, or listing what is allowed.
pub fn suggestion(word: &str, candidates: &[&str], what: &str) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if candidates.is_empty() => format!("no {what} is defined"),
        None => format!(
            "known {what}s: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("neds", ["needs", "uses"]), Some("needs"));
        assert_eq!(did_you_mean("zzz", ["needs", "uses"]), None);
    }
}
