//! `sink.subtitles`: an SRT and/or WebVTT file per item from its
//! `speakers` (else `transcript`) segments, with speaker labels.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{safe_relative, write_atomic};
use crate::record::{ItemRecord, Segment};

/// A subtitle file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// SubRip: numbered cues, `00:00:01,500 --> 00:00:04,200`, labels as
    /// `[speaker] text`.
    Srt,
    /// WebVTT: a `WEBVTT` header, `00:00:01.500 --> 00:00:04.200`, labels
    /// as voice spans `<v speaker>text`.
    Vtt,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Srt => "srt",
            Format::Vtt => "vtt",
        }
    }
}

/// Settings of `sink.subtitles`.
///
/// ```yaml
/// subtitles:
///   uses: sink.subtitles
///   needs: [speakers]
///   with: { dir: out/subtitles, formats: [srt, vtt] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubtitlesSinkConfig {
    /// The folder, relative to the workflow file. Item `media/talk.mp4`
    /// gets `DIR/media/talk.srt` and `DIR/media/talk.vtt`, rewritten on
    /// every run. Default `out/subtitles`.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// The formats to write (default both).
    #[serde(default = "default_formats")]
    pub formats: Vec<Format>,
    /// Prefix each cue with its speaker when the segment has one
    /// (default true).
    #[serde(default = "default_true")]
    pub speakers: bool,
}

fn default_dir() -> PathBuf {
    PathBuf::from("out/subtitles")
}

fn default_formats() -> Vec<Format> {
    vec![Format::Srt, Format::Vtt]
}

fn default_true() -> bool {
    true
}

/// `seconds` as `HH:MM:SS` plus `sep` and milliseconds.
pub fn timestamp(seconds: f64, sep: char) -> String {
    let ms = if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    };
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

/// The text as cue lines: no blank lines (they end a cue).
fn cue_text(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn escape_vtt(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The segments as a SubRip file.
pub fn srt(segments: &[Segment], speakers: bool) -> String {
    let mut out = String::new();
    let cues = segments.iter().filter(|s| !cue_text(&s.text).is_empty());
    for (n, s) in cues.enumerate() {
        let text = cue_text(&s.text);
        let label = match (&s.speaker, speakers) {
            (Some(who), true) => format!("[{who}] "),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}\n{} --> {}\n{label}{text}\n\n",
            n + 1,
            timestamp(s.start, ','),
            timestamp(s.end.max(s.start), ','),
        ));
    }
    out
}

/// The segments as a WebVTT file.
pub fn vtt(segments: &[Segment], speakers: bool) -> String {
    let mut out = String::from("WEBVTT\n\n");
    let cues = segments.iter().filter(|s| !cue_text(&s.text).is_empty());
    for s in cues {
        let text = escape_vtt(&cue_text(&s.text));
        let label = match (&s.speaker, speakers) {
            (Some(who), true) => format!("<v {}>", escape_vtt(who)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{} --> {}\n{label}{text}\n\n",
            timestamp(s.start, '.'),
            timestamp(s.end.max(s.start), '.'),
        ));
    }
    out
}

/// The `sink.subtitles` kind.
pub struct SubtitlesSinkKind;

impl Settings for SubtitlesSinkConfig {}

impl TypedKind for SubtitlesSinkKind {
    type Config = SubtitlesSinkConfig;

    fn name(&self) -> &'static str {
        "sink.subtitles"
    }

    fn summary(&self) -> &'static str {
        "Write SRT and/or WebVTT subtitles per item, with speaker labels, from its speakers or transcript"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &SubtitlesSinkConfig) -> Vec<ConfigProblem> {
        if c.formats.is_empty() {
            return vec![ConfigProblem::new(
                &["formats"],
                "`formats` is empty: nothing would be written",
            )
            .help("list `srt`, `vtt` or both")];
        }
        Vec::new()
    }

    fn ports(&self, _config: &SubtitlesSinkConfig) -> Ports {
        Ports::default()
    }

    fn resources(&self) -> Resources {
        Resources {
            always_run: true,
            ..Resources::default()
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: SubtitlesSinkConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        let mut formats: Vec<Format> = Vec::new();
        for f in &config.formats {
            if !formats.contains(f) {
                formats.push(*f);
            }
        }
        Ok(Arc::new(SubtitlesSink {
            dir: ctx.workflow_dir.join(&config.dir),
            formats,
            speakers: config.speakers,
            claimed: Mutex::new(HashMap::new()),
        }))
    }
}

struct SubtitlesSink {
    dir: PathBuf,
    formats: Vec<Format>,
    speakers: bool,
    /// File stem → the item that wrote it in this run (two items
    /// `a.wav` and `a.mp3` must not overwrite each other's `a.srt`).
    claimed: Mutex<HashMap<PathBuf, String>>,
}

impl Stage for SubtitlesSink {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let record = ItemRecord::read(input)?;
        let stem = self
            .dir
            .join(safe_relative(&record.item).with_extension(""));
        {
            let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
            let owner = claimed
                .entry(stem.clone())
                .or_insert_with(|| record.item.clone());
            if *owner != record.item {
                return Err(StageError::failed(format!(
                    "items `{owner}` and `{}` would both write `{}.*`: rename one of them",
                    record.item,
                    stem.display()
                )));
            }
        }
        let mut files = Vec::new();
        for format in &self.formats {
            let text = match format {
                Format::Srt => srt(&record.segments, self.speakers),
                Format::Vtt => vtt(&record.segments, self.speakers),
            };
            let mut name = stem.clone().into_os_string();
            name.push(".");
            name.push(format.extension());
            let path = PathBuf::from(name);
            write_atomic(&path, text.as_bytes()).map_err(StageError::failed)?;
            files.push(path.display().to_string());
        }
        Ok(StageOutput {
            outputs: vec![Output {
                port: "written".to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({
                    "files": files,
                    "status": record.status.as_str(),
                    "cues": record.segments.iter().filter(|s| !cue_text(&s.text).is_empty()).count(),
                })),
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::timestamp;

    #[test]
    fn timestamps_round_to_milliseconds() {
        assert_eq!(timestamp(1.5, ','), "00:00:01,500");
        assert_eq!(timestamp(3723.0004, '.'), "01:02:03.000");
        assert_eq!(timestamp(59.9996, ','), "00:01:00,000");
        assert_eq!(timestamp(-1.0, ','), "00:00:00,000");
    }
}
