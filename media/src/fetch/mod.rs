//! `media.fetch`: makes an item's media a local file.
//!
//! - A local path passes through without a copy: the output has no file and
//!   the value `{"path": "/abs/path", "bytes": N}`.
//! - An `http(s)` URL is downloaded into the result's folder ([`http`]),
//!   through a partial file under the state directory that survives crashes.
//! - A video page (YouTube, Vimeo, or any URL with `yt_dlp: true`) goes
//!   through `yt-dlp -x` ([`ytdlp`]).

mod http;
pub(crate) mod url;
mod ytdlp;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use flow_engine::size::ByteSize;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::port::MEDIA;
pub use url::redact;
use url::Url;

/// Settings of a `media.fetch` stage.
///
/// ```yaml
/// with: { retries: 5, max_size: 2GiB }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaFetchConfig {
    /// How many times to try again after a network error, a dropped
    /// connection or a 5xx answer (default 3). Each try resumes where the
    /// last one stopped; pauses start at 0.5 s and double, up to 8 s.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The largest download accepted (default `4GiB`). A larger file fails
    /// the item as soon as its size is known, and its partial file is
    /// deleted.
    #[serde(default = "default_max_size")]
    pub max_size: ByteSize,
    /// The expected SHA-256 of the downloaded file, in hex. On a mismatch
    /// the item fails and the download is deleted. Unset: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Fetch every URL with `yt-dlp -x` (audio only), not only pages of
    /// youtube.com, youtu.be and vimeo.com (default false).
    #[serde(default)]
    pub yt_dlp: bool,
}

fn default_retries() -> u32 {
    3
}

fn default_max_size() -> ByteSize {
    ByteSize::gib(4)
}

/// The `media.fetch` stage kind.
pub struct MediaFetchKind;

/// `retries` and `max_size` decide whether a fetch succeeds, not what it
/// produces; a checksum keys in lower case.
impl Settings for MediaFetchConfig {
    const OPERATIONAL: &'static [&'static str] = &["retries", "max_size"];

    fn normalized(mut self) -> Self {
        self.sha256 = self.sha256.map(|s| s.to_ascii_lowercase());
        self
    }
}

impl TypedKind for MediaFetchKind {
    type Config = MediaFetchConfig;

    fn name(&self) -> &'static str {
        "media.fetch"
    }

    fn summary(&self) -> &'static str {
        "Make the item's media local: pass paths through, download http(s) URLs (retries, resume, checksum), yt-dlp for video pages"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, config: &MediaFetchConfig) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if let Some(sum) = &config.sha256 {
            if sum.len() != 64 || !sum.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(
                    ConfigProblem::new(&["sha256"], format!("`{sum}` is not a SHA-256 in hex"))
                        .help("write the 64 hex digits that `sha256sum FILE` prints"),
                );
            }
        }
        if config.retries > 100 {
            problems.push(ConfigProblem::new(
                &["retries"],
                format!("`retries` is {}, more than 100", config.retries),
            ));
        }
        problems
    }

    fn ports(&self, _config: &MediaFetchConfig) -> Ports {
        Ports {
            inputs: Vec::new(),
            outputs: vec![MEDIA.to_string()],
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: MediaFetchConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(MediaFetch {
            downloads: ctx.state_dir.join("downloads"),
            config,
        }))
    }
}

/// A built `media.fetch` stage.
struct MediaFetch {
    /// Where partial downloads live: `{state_dir}/downloads`.
    downloads: PathBuf,
    config: MediaFetchConfig,
}

impl Stage for MediaFetch {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let source = input.item.source.as_str();
        if let Some(path) = source.strip_prefix("file://") {
            return local(Path::new(path));
        }
        if !source.contains("://") {
            return local(Path::new(source));
        }
        let url = Url::parse(source).ok_or_else(|| {
            StageError::failed(format!("`{}` is not a valid URL", redact(source)))
        })?;
        if url.scheme != "http" && url.scheme != "https" {
            return Err(StageError::failed(format!(
                "`{}` has the scheme `{}`: media.fetch downloads http and https URLs",
                url.public(),
                url.scheme
            )));
        }
        let out = input
            .create_out_dir()
            .map_err(|e| StageError::failed(format!("cannot create the output folder: {e}")))?;
        if self.config.yt_dlp || url.is_video_page() {
            let name = ytdlp::fetch(&url, source, out, input.timeout)?;
            return finish(&url, out, name, "yt-dlp", None);
        }
        self.download(&url, out, input)
    }
}

impl MediaFetch {
    fn download(
        &self,
        url: &Url,
        out: &Path,
        input: &StageInput,
    ) -> Result<StageOutput, StageError> {
        std::fs::create_dir_all(&self.downloads).map_err(|e| {
            StageError::failed(format!("cannot create `{}`: {e}", self.downloads.display()))
        })?;
        // Keyed by the URL as given (credentials included: another user's
        // partial file is not ours), so a rerun finds it.
        let key = blake3::hash(input.item.source.as_bytes()).to_hex();
        let download = http::Download {
            url,
            part: self.downloads.join(format!("{key}.part")),
            retries: self.config.retries,
            max_size: self.config.max_size,
            timeout: input.timeout,
        };
        download.run()?;
        let actual = http::sha256_file(&download.part).map_err(|e| {
            StageError::failed(format!("cannot read `{}`: {e}", download.part.display()))
        })?;
        if let Some(expected) = &self.config.sha256 {
            if !actual.eq_ignore_ascii_case(expected) {
                download.discard();
                return Err(StageError::failed(format!(
                    "sha256 mismatch for `{}`: expected {}, got {actual}; the download was deleted",
                    url.public(),
                    expected.to_ascii_lowercase()
                )));
            }
        }
        let name = url.file_name();
        let target = out.join(&name);
        if std::fs::rename(&download.part, &target).is_err() {
            // Another file system: copy, then drop the partial file.
            std::fs::copy(&download.part, &target).map_err(|e| {
                StageError::failed(format!(
                    "cannot move the download to `{}`: {e}",
                    target.display()
                ))
            })?;
            download.discard();
        }
        finish(url, out, name, "http", Some(actual))
    }
}

/// The output for a fetched file `name` in `out` (its SHA-256 computed
/// here unless given).
fn finish(
    url: &Url,
    out: &Path,
    name: String,
    via: &str,
    sha256: Option<String>,
) -> Result<StageOutput, StageError> {
    let path = out.join(&name);
    let bytes = std::fs::metadata(&path)
        .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", path.display())))?
        .len();
    let sha256 = match sha256 {
        Some(sum) => sum,
        None => http::sha256_file(&path)
            .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", path.display())))?,
    };
    Ok(StageOutput {
        outputs: vec![Output {
            port: MEDIA.to_string(),
            value: Some(serde_json::json!({
                "url": url.public(),
                "file": name,
                "bytes": bytes,
                "sha256": sha256,
                "via": via,
            })),
            files: vec![name],
        }],
    })
}

/// A local file passes through: its absolute path in the value, no copy.
fn local(path: &Path) -> Result<StageOutput, StageError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| StageError::failed(format!("cannot resolve `{}`: {e}", path.display())))?;
    let meta = std::fs::metadata(&absolute)
        .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", absolute.display())))?;
    if !meta.is_file() {
        return Err(StageError::failed(format!(
            "`{}` is not a file",
            absolute.display()
        )));
    }
    Ok(StageOutput {
        outputs: vec![Output {
            port: MEDIA.to_string(),
            files: Vec::new(),
            value: Some(serde_json::json!({
                "path": absolute.to_string_lossy(),
                "bytes": meta.len(),
            })),
        }],
    })
}
