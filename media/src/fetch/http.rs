//! HTTP(S) downloads that survive: retries with backoff on network errors
//! and 5xx answers, and a partial file that the next attempt (or the next
//! run, after a crash) resumes with `Range`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flow_engine::registry::StageError;
use flow_engine::size::ByteSize;

use super::url::{redact, Url};

/// First pause between attempts; it doubles each time, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(8);
/// A connection that sends nothing for this long is dropped (and retried).
const STALL: Duration = Duration::from_secs(60);

/// One download's settings.
pub(crate) struct Download<'a> {
    /// What to download.
    pub url: &'a Url,
    /// The partial file, kept between attempts and runs.
    pub part: PathBuf,
    /// Attempts after the first.
    pub retries: u32,
    /// The largest size accepted.
    pub max_size: ByteSize,
    /// The stage's time limit over all attempts.
    pub timeout: Option<Duration>,
}

/// How one attempt ended, when not with the whole file.
enum Attempt {
    /// Worth another try (network error, 5xx, short body); the reason.
    Retry(String),
    /// Not worth another try: the item fails with this reason.
    Fail(String),
}

impl Download<'_> {
    /// Downloads into [`Download::part`] until it holds the whole file;
    /// returns its size.
    pub(crate) fn run(&self) -> Result<u64, StageError> {
        let started = Instant::now();
        let public = self.url.public();
        let mut pause = FIRST_PAUSE;
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                if let Some(limit) = self.timeout {
                    if started.elapsed() + pause >= limit {
                        return Err(self.timed_out(limit, &last));
                    }
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
            let remaining = self.timeout.map(|t| t.saturating_sub(started.elapsed()));
            match self.attempt(remaining) {
                Ok(size) => return Ok(size),
                Err(Attempt::Fail(reason)) => return Err(StageError::failed(redact(&reason))),
                Err(Attempt::Retry(reason)) => last = reason,
            }
        }
        let kept = std::fs::metadata(&self.part).map_or(0, |m| m.len());
        let resume = if kept > 0 {
            format!(
                "; {} kept in `{}`, the next run resumes from there",
                ByteSize(kept),
                self.part.display()
            )
        } else {
            String::new()
        };
        let attempts = self.retries + 1;
        Err(StageError::failed(redact(&format!(
            "downloading `{public}` failed after {attempts} attempt{}: {last}{resume}",
            if attempts == 1 { "" } else { "s" }
        ))))
    }

    fn timed_out(&self, limit: Duration, last: &str) -> StageError {
        StageError::timeout(redact(&format!(
            "downloading `{}` timed out after {} (last problem: {last})",
            self.url.public(),
            flow_engine::duration::Span(limit)
        )))
    }

    /// One request: resumes from the partial file's length when there is one.
    fn attempt(&self, remaining: Option<Duration>) -> Result<u64, Attempt> {
        let public = self.url.public();
        let have = std::fs::metadata(&self.part).map_or(0, |m| m.len());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(STALL))
            .timeout_global(remaining)
            .build()
            .new_agent();
        let mut request = agent
            .get(&public)
            .header("Accept-Encoding", "identity")
            .header(
                "User-Agent",
                concat!("flow-media/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(auth) = self.url.basic_auth() {
            request = request.header("Authorization", auth);
        }
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request
            .call()
            .map_err(|e| Attempt::Retry(format!("request failed: {e}")))?;
        let status = response.status();
        let range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(ContentRange::parse);
        let body_length = response.body().content_length();
        let (start, total) = match status.as_u16() {
            200 => (0, body_length),
            206 => match range {
                Some(Some(ContentRange { start, total })) if start == have => (start, total),
                _ => {
                    self.discard();
                    return Err(Attempt::Retry(format!(
                        "the server answered `Range: bytes={have}-` with a different range; starting over"
                    )));
                }
            },
            416 => {
                let total = range.flatten().and_then(|r| r.total);
                if have > 0 && total == Some(have) {
                    return Ok(have);
                }
                self.discard();
                return Err(Attempt::Retry(
                    "the server refused to resume the partial download; starting over".to_string(),
                ));
            }
            code @ (408 | 429 | 500..=599) => {
                return Err(Attempt::Retry(format!("HTTP {code} {}", reason(status))))
            }
            code => {
                return Err(Attempt::Fail(format!(
                    "HTTP {code} {} for `{public}`",
                    reason(status)
                )))
            }
        };
        if let Some(total) = total {
            if total > self.max_size.bytes() {
                self.discard();
                return Err(Attempt::Fail(format!(
                    "`{public}` is {}, more than max_size {}",
                    ByteSize(total),
                    self.max_size
                )));
            }
        }
        let file = if start == 0 {
            File::create(&self.part)
        } else {
            OpenOptions::new().append(true).open(&self.part)
        }
        .map_err(|e| Attempt::Fail(format!("cannot write `{}`: {e}", self.part.display())))?;
        let size = self.copy(response.into_body().into_reader(), file, start)?;
        match total {
            Some(total) if size < total => Err(Attempt::Retry(format!(
                "the connection closed after {size} of {total} bytes"
            ))),
            _ => Ok(size),
        }
    }

    /// Appends the body to the partial file; returns the file's new size.
    fn copy(&self, mut body: impl Read, file: File, start: u64) -> Result<u64, Attempt> {
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size = start;
        let write_error = |e: std::io::Error| {
            Attempt::Fail(format!("cannot write `{}`: {e}", self.part.display()))
        };
        let result = loop {
            let n = match body.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(format!("the connection broke after {size} bytes: {e}")),
            };
            size += n as u64;
            if size > self.max_size.bytes() {
                drop(out);
                self.discard();
                return Err(Attempt::Fail(format!(
                    "`{}` is larger than max_size {}",
                    self.url.public(),
                    self.max_size
                )));
            }
            out.write_all(&buffer[..n]).map_err(write_error)?;
        };
        // Keep what arrived, durably, so that the next attempt resumes.
        out.flush().map_err(write_error)?;
        out.get_ref().sync_all().map_err(write_error)?;
        result.map_err(Attempt::Retry)?;
        Ok(size)
    }

    /// Deletes the partial file.
    pub(crate) fn discard(&self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

fn reason(status: ureq::http::StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("")
}

/// A `Content-Range: bytes START-END/TOTAL` header.
#[derive(Debug, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    total: Option<u64>,
}

impl ContentRange {
    /// Parses the header; `bytes */TOTAL` (in a 416) has start 0.
    fn parse(text: &str) -> Option<Self> {
        let spec = text.trim().strip_prefix("bytes")?.trim();
        let (range, total) = spec.split_once('/')?;
        let total = match total.trim() {
            "*" => None,
            n => Some(n.parse().ok()?),
        };
        let start = match range.trim() {
            "*" => 0,
            r => r.split_once('-')?.0.trim().parse().ok()?,
        };
        Some(Self { start, total })
    }
}

/// The SHA-256 of the file at `path`, in lower-case hex.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(
            ContentRange::parse("bytes 100-199/200"),
            Some(ContentRange {
                start: 100,
                total: Some(200)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes */200"),
            Some(ContentRange {
                start: 0,
                total: Some(200)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes 5-9/*"),
            Some(ContentRange {
                start: 5,
                total: None
            })
        );
        assert_eq!(ContentRange::parse("items 1-2/3"), None);
    }
}
