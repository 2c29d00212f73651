//! Video pages (YouTube, Vimeo, …): `yt-dlp -x` extracts the audio track.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flow_engine::registry::StageError;

use super::url::{redact, Url};
use crate::tools::{find_on_path, run_streaming, RunError};

/// Downloads the audio of the video page `url` into `out`; returns the
/// name of the file `yt-dlp` wrote there.
pub(crate) fn fetch(
    url: &Url,
    raw: &str,
    out: &Path,
    timeout: Option<Duration>,
) -> Result<String, StageError> {
    let public = url.public();
    let Some(program) = find_on_path("yt-dlp") else {
        return Err(StageError::failed(format!(
            "`{public}` is a video page: fetching it needs yt-dlp, which is not on PATH; install yt-dlp or give a direct media URL"
        )));
    };
    let mut command = Command::new(program);
    command
        .args(["--no-playlist", "--no-progress", "--quiet", "--no-warnings"])
        .args(["--extract-audio", "--output"])
        .arg(out.join("%(id)s.%(ext)s"))
        .arg("--")
        .arg(raw);
    match run_streaming(command, timeout, |_| Ok(())) {
        Ok(()) => {}
        Err(RunError::Timeout(limit)) => {
            return Err(StageError::timeout(format!(
                "yt-dlp timed out after {} on `{public}`",
                flow_engine::duration::Span(limit)
            )))
        }
        Err(e) => return Err(StageError::failed(redact(&e.describe("yt-dlp")))),
    }
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| StageError::failed(format!("cannot list `{}`: {e}", out.display())))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".part") && !name.ends_with(".ytdl"))
        .collect();
    names.sort();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(StageError::failed(format!(
            "yt-dlp finished but wrote no file for `{public}`"
        ))),
        many => Err(StageError::failed(format!(
            "yt-dlp wrote {} files for `{public}` ({}); expected one",
            many.len(),
            many.join(", ")
        ))),
    }
}
