//! The fallback for what symphonia cannot read (Opus, WebM, WMA, AMR, …):
//! `ffmpeg` decodes, downmixes and resamples, and its raw `f32le` output is
//! streamed into the artifact.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flow_engine::registry::StageError;

use super::artifact::ArtifactWriter;
use super::decode::Decoded;
use super::sniff::Container;
use crate::tools::{find_on_path, run_streaming, RunError};

/// Decodes `path` with `ffmpeg` to mono `f32` at `rate` Hz into `writer`.
/// `label` names the detected format (`Ogg/Opus`) and `why` says why
/// symphonia could not, both for the error when `ffmpeg` is missing.
pub(crate) fn decode(
    path: &Path,
    container: Container,
    label: &str,
    why: &str,
    rate: u32,
    mut writer: ArtifactWriter,
    timeout: Option<Duration>,
) -> Result<Decoded, StageError> {
    let Some(ffmpeg) = find_on_path("ffmpeg") else {
        return Err(StageError::failed(format!(
            "format `{label}` needs ffmpeg, which is not on PATH ({why}); install ffmpeg (scripts/setup.sh does)"
        )));
    };
    let mut command = Command::new(ffmpeg);
    command
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-f", "f32le", "-ac", "1", "-ar"])
        .arg(rate.to_string())
        .arg("-");
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut samples: Vec<f32> = Vec::new();
    let result = run_streaming(command, timeout, |bytes| {
        samples.clear();
        let mut rest = bytes;
        if !carry.is_empty() {
            let take = (4 - carry.len()).min(rest.len());
            carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if carry.len() == 4 {
                samples.push(f32::from_le_bytes([carry[0], carry[1], carry[2], carry[3]]));
                carry.clear();
            }
        }
        let whole = rest.len() / 4 * 4;
        samples.extend(
            rest[..whole]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        carry.extend_from_slice(&rest[whole..]);
        writer.write(&samples)
    });
    match result {
        Ok(()) => {}
        Err(RunError::Timeout(limit)) => {
            return Err(StageError::timeout(format!(
                "decoding {label} with ffmpeg timed out after {}",
                flow_engine::duration::Span(limit)
            )))
        }
        Err(RunError::Exit { stderr, .. }) if writer.samples() > 0 => {
            return Err(StageError::failed(format!(
                "ffmpeg failed on {label} after {}: {stderr}",
                super::decode::seconds(writer.samples(), Some(rate))
            )))
        }
        Err(e) => {
            return Err(StageError::failed(format!(
                "cannot decode {label}: {}",
                e.describe("ffmpeg")
            )))
        }
    }
    let samples = writer
        .finish()
        .map_err(|e| StageError::failed(format!("cannot write the audio artifact: {e}")))?;
    if samples == 0 {
        return Err(StageError::failed(format!(
            "ffmpeg decoded no audio from {label} file `{}`",
            path.display()
        )));
    }
    let probe = probe(path);
    Ok(Decoded {
        source_format: match &probe.codec {
            Some(codec) if codec != container.short() => format!("{}/{codec}", container.short()),
            _ => container.short().to_string(),
        },
        source_sample_rate: probe.sample_rate,
        source_channels: probe.channels,
        samples,
    })
}

/// What `ffprobe` says about the first audio stream.
#[derive(Debug, Default)]
struct Probe {
    codec: Option<String>,
    sample_rate: Option<u32>,
    channels: Option<u32>,
}

/// Asks `ffprobe` (shipped with ffmpeg) about the source; empty when it is
/// missing or says nothing.
fn probe(path: &Path) -> Probe {
    let Some(ffprobe) = find_on_path("ffprobe") else {
        return Probe::default();
    };
    let output = Command::new(ffprobe)
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .args(["stream=codec_name,sample_rate,channels", "-of", "json"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(output) = output else {
        return Probe::default();
    };
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let stream = &json["streams"][0];
    let number = |v: &serde_json::Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
    };
    Probe {
        codec: stream["codec_name"].as_str().map(String::from),
        sample_rate: number(&stream["sample_rate"]),
        channels: number(&stream["channels"]),
    }
}
