//! `text.chunk`: merges an item's transcript segments into chunks for
//! embedding and search, by characters (default 1100–1400, the original
//! pipeline's choice), by tokens of an embedding model's tokenizer, or by
//! seconds; each chunk keeps its time span, speakers and segment ids.

use std::path::PathBuf;
use std::sync::Arc;

use flow_engine::registry::{
    port, BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError,
    StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

/// What chunk sizes are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Characters of the joined text.
    Characters,
    /// Tokens of the stage's model's `tokenizer.json` (`model:` required).
    Tokens,
    /// Seconds from the chunk's start to its end.
    Seconds,
}

/// Settings of `text.chunk`.
///
/// ```yaml
/// with: { by: characters, min: 1100, max: 1400 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkConfig {
    /// The unit of `min` and `max`: `characters` (default), `tokens` (of the
    /// tokenizer of the stage's `model:`) or `seconds`.
    #[serde(default = "characters")]
    pub by: Unit,
    /// A chunk is closed once it has at least this much and the next
    /// segment would take it past `max`. Default 1100 characters, 200
    /// tokens or 30 seconds.
    #[serde(default)]
    pub min: Option<f64>,
    /// The most a chunk holds. Segments are never cut, so a chunk goes past
    /// it only when the segment that does so arrived while the chunk was
    /// still below `min`. Default 1400 characters, 256 tokens or 60
    /// seconds.
    #[serde(default)]
    pub max: Option<f64>,
    /// Start a new chunk whenever the speaker changes (default false: a
    /// chunk lists every speaker in it).
    #[serde(default)]
    pub split_on_speaker: bool,
    /// The input port to read: `speakers` or `transcript`. Default: the
    /// `speakers` output when an upstream stage produces one, else the
    /// `transcript`.
    #[serde(default)]
    pub from: Option<String>,
}

fn characters() -> Unit {
    Unit::Characters
}

impl ChunkConfig {
    fn bounds(&self) -> (f64, f64) {
        let (min, max): (f64, f64) = match self.by {
            Unit::Characters => (1100.0, 1400.0),
            Unit::Tokens => (200.0, 256.0),
            Unit::Seconds => (30.0, 60.0),
        };
        let max = self.max.unwrap_or(max);
        (self.min.unwrap_or(min.min(max)), max)
    }
}

/// A transcript segment as chunking sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Piece {
    /// Segment id.
    pub id: usize,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Text.
    pub text: String,
    /// Speaker label, when known.
    #[serde(default)]
    pub speaker: Option<String>,
}

/// One chunk (see `docs/data-contracts.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Index within the item.
    pub id: usize,
    /// Start of its first segment, seconds.
    pub start: f64,
    /// End of its last segment, seconds.
    pub end: f64,
    /// The segments' trimmed texts joined by single spaces.
    pub text: String,
    /// Speakers in order of first appearance (none when unknown).
    pub speakers: Vec<String>,
    /// The ids of the merged segments.
    pub segments: Vec<usize>,
}

/// Merges `pieces` into chunks; `measure` gives a text's size in the
/// configured unit (unused for seconds).
pub fn chunk(
    pieces: &[Piece],
    min: f64,
    max: f64,
    unit: Unit,
    split_on_speaker: bool,
    measure: &dyn Fn(&str) -> f64,
) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut open: Option<Chunk> = None;
    let size = |c: &Chunk| match unit {
        Unit::Seconds => c.end - c.start,
        _ => measure(&c.text),
    };
    for p in pieces {
        let text = p.text.trim();
        if text.is_empty() {
            continue;
        }
        let close = open.as_ref().is_some_and(|c| {
            let speaker_changed =
                split_on_speaker && p.speaker.is_some() && c.speakers.last() != p.speaker.as_ref();
            let mut grown = c.clone();
            grown.text = format!("{} {text}", c.text);
            grown.end = p.end;
            let too_big = size(&grown) > max && size(c) >= min;
            speaker_changed || too_big || size(c) >= max
        });
        if close {
            chunks.extend(open.take());
        }
        let c = open.get_or_insert_with(|| Chunk {
            id: chunks.len(),
            start: p.start,
            end: p.end,
            text: String::new(),
            speakers: Vec::new(),
            segments: Vec::new(),
        });
        if !c.text.is_empty() {
            c.text.push(' ');
        }
        c.text.push_str(text);
        c.end = p.end;
        c.segments.push(p.id);
        if let Some(s) = &p.speaker {
            if !c.speakers.contains(s) {
                c.speakers.push(s.clone());
            }
        }
    }
    chunks.extend(open);
    chunks
}

/// The `text.chunk` kind.
pub struct ChunkKind;

/// Every setting changes the chunks; `min` and `max` key with their
/// per-unit defaults written out.
impl Settings for ChunkConfig {
    fn normalized(mut self) -> Self {
        let (min, max) = self.bounds();
        self.min = Some(min);
        self.max = Some(max);
        self
    }
}

impl TypedKind for ChunkKind {
    type Config = ChunkConfig;

    fn name(&self) -> &'static str {
        "text.chunk"
    }

    fn summary(&self) -> &'static str {
        "Merge transcript segments into chunks by characters, tokens or seconds, keeping times and speakers"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &ChunkConfig) -> Vec<ConfigProblem> {
        let (min, max) = c.bounds();
        let mut problems = Vec::new();
        if max.is_nan() || max <= 0.0 {
            problems.push(ConfigProblem::new(&["max"], "`max` must be above 0"));
        }
        if !(0.0..=max).contains(&min) {
            problems.push(ConfigProblem::new(
                &["min"],
                format!("`min` must be between 0 and `max` ({max})"),
            ));
        }
        if let Some(f) = c.from.as_deref() {
            if f != port::SPEAKERS && f != port::TRANSCRIPT {
                problems.push(ConfigProblem::new(
                    &["from"],
                    "`from` is `speakers` or `transcript`",
                ));
            }
        }
        problems
    }

    fn ports(&self, config: &ChunkConfig) -> Ports {
        Ports {
            inputs: config.from.clone().into_iter().collect(),
            outputs: vec![port::CHUNKS.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        Resources {
            inline: true,
            ..Resources::default()
        }
    }

    fn build(&self, ctx: &BuildContext<'_>, config: ChunkConfig) -> Result<Arc<dyn Stage>, String> {
        let tokenizer = match config.by {
            Unit::Tokens => {
                let dir: PathBuf = ctx.model_dir.clone().ok_or_else(|| {
                    format!(
                        "stage `{}` chunks by tokens: add `model:` naming the embedding model whose tokenizer counts them",
                        ctx.stage_id
                    )
                })?;
                let path = dir.join("tokenizer.json");
                let mut t = Tokenizer::from_file(&path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                t.with_padding(None);
                t.with_truncation(None).map_err(|e| e.to_string())?;
                Some(t)
            }
            _ => None,
        };
        Ok(Arc::new(ChunkStage { config, tokenizer }))
    }
}

struct ChunkStage {
    config: ChunkConfig,
    tokenizer: Option<Tokenizer>,
}

/// The segments of the item's `speakers` (preferred) or `transcript`
/// input, or of the port `from` names.
pub(crate) fn segments(
    input: &StageInput,
    from: Option<&str>,
) -> Result<Vec<serde_json::Value>, StageError> {
    let ports: Vec<&str> = match from {
        Some(f) => vec![f],
        None => vec![port::SPEAKERS, port::TRANSCRIPT],
    };
    let value = ports
        .iter()
        .find_map(|p| input.find(p).find_map(|o| o.value.as_ref()))
        .ok_or_else(|| {
            StageError::failed(format!(
                "no `{}` input: wire a stage that produces it into `needs`",
                ports.join("` or `")
            ))
        })?;
    Ok(value["segments"].as_array().cloned().unwrap_or_default())
}

impl Stage for ChunkStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let segments = segments(input, self.config.from.as_deref())?;
        let pieces: Vec<Piece> = segments
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| StageError::failed(format!("a transcript segment is malformed: {e}")))?;
        let measure = |text: &str| -> f64 {
            match &self.tokenizer {
                Some(t) => t
                    .encode(text, false)
                    .map(|e| e.get_ids().len() as f64)
                    .unwrap_or(f64::INFINITY),
                None => text.chars().count() as f64,
            }
        };
        let (min, max) = self.config.bounds();
        let chunks = chunk(
            &pieces,
            min,
            max,
            self.config.by,
            self.config.split_on_speaker,
            &measure,
        );
        Ok(StageOutput {
            outputs: vec![Output {
                port: port::CHUNKS.to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({ "chunks": chunks })),
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(id: usize, text: &str, speaker: Option<&str>) -> Piece {
        Piece {
            id,
            start: id as f64 * 5.0,
            end: id as f64 * 5.0 + 4.5,
            text: format!(" {text}"),
            speaker: speaker.map(String::from),
        }
    }

    fn chars(t: &str) -> f64 {
        t.chars().count() as f64
    }

    #[test]
    fn chunks_stay_within_the_bounds_and_keep_every_segment_once() {
        let sentence = "Fat is the preferred fuel of the human body, most of the time.";
        let pieces: Vec<Piece> = (0..100).map(|i| piece(i, sentence, None)).collect();
        let chunks = chunk(&pieces, 1100.0, 1400.0, Unit::Characters, false, &chars);
        let ids: Vec<usize> = chunks.iter().flat_map(|c| c.segments.clone()).collect();
        assert_eq!(ids, (0..100).collect::<Vec<_>>());
        for c in &chunks[..chunks.len() - 1] {
            let n = c.text.chars().count();
            assert!(
                (1100..=1400).contains(&n),
                "chunk {} has {n} characters",
                c.id
            );
        }
        assert_eq!(chunks[0].start, 0.0);
        assert_eq!(chunks[0].end, pieces[chunks[0].segments.len() - 1].end);
        assert!(chunks.iter().enumerate().all(|(i, c)| c.id == i));
    }

    #[test]
    fn segments_are_never_cut() {
        let long = "word ".repeat(400);
        let pieces = vec![
            piece(0, "short", None),
            piece(1, &long, None),
            piece(2, "tail", None),
        ];
        let chunks = chunk(&pieces, 10.0, 100.0, Unit::Characters, false, &chars);
        let groups: Vec<Vec<usize>> = chunks.iter().map(|c| c.segments.clone()).collect();
        // "short" is below `min`, so it takes the long segment in; the
        // chunk is then past `max` and closes.
        assert_eq!(groups, [vec![0, 1], vec![2]]);
        assert!(chunks[0].text.starts_with("short word"));
    }

    #[test]
    fn speakers_are_listed_and_can_split_chunks() {
        let pieces = vec![
            piece(0, "Hello.", Some("chaffee")),
            piece(1, "Hi.", Some("SPEAKER_1")),
            piece(2, "So.", Some("chaffee")),
        ];
        let merged = chunk(&pieces, 1100.0, 1400.0, Unit::Characters, false, &chars);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].speakers, ["chaffee", "SPEAKER_1"]);
        assert_eq!(merged[0].text, "Hello. Hi. So.");
        let split = chunk(&pieces, 1100.0, 1400.0, Unit::Characters, true, &chars);
        assert_eq!(split.len(), 3);
    }

    #[test]
    fn seconds_bound_the_time_span() {
        let pieces: Vec<Piece> = (0..30).map(|i| piece(i, "x", None)).collect();
        let chunks = chunk(&pieces, 20.0, 30.0, Unit::Seconds, false, &chars);
        for c in &chunks {
            assert!(c.end - c.start <= 30.0, "{c:?}");
        }
        assert!(chunks.len() >= 5);
    }
}
