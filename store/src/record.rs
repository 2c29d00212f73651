//! What a sink keeps of one item, read from its upstream results as
//! `docs/data-contracts.md` describes them: `speakers` (else `transcript`)
//! segments, `chunks`, `embeddings` (a little-endian `f32` file) and the
//! `audio` duration. Every sink of this crate starts from an [`ItemRecord`].

use std::path::Path;

use flow_engine::registry::{port, StageError, StageInput};
use serde::Serialize;

/// How far an item got, as stored in the `sources` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A transcript (with speakers when the workflow identifies them), or
    /// the text of a row of `inputs: { rows: … }`.
    Complete,
    /// A transcript, but speaker identification could not be done
    /// (`speakers.mode = "degraded"`): speakers are unknown.
    Degraded,
    /// No `speakers` or `transcript` reached the sink: an upstream stage was
    /// given up with `fallback: skip`, or the workflow transcribes nothing.
    NoTranscript,
}

impl Status {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Degraded => "degraded",
            Status::NoTranscript => "no_transcript",
        }
    }
}

/// One transcript segment. Times are seconds from the start of the audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// Its position in the item's transcript (Whisper's segment `id`).
    pub index: i64,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The text, trimmed.
    pub text: String,
    /// The speaker label (`chaffee`, `SPEAKER_1`), when known.
    pub speaker: Option<String>,
    /// How sure the speaker stage was of the label (0–1).
    pub speaker_confidence: Option<f64>,
    /// Whisper's mean token log-probability.
    pub avg_logprob: Option<f64>,
    /// Whisper's probability that the segment is not speech.
    pub no_speech_prob: Option<f64>,
    /// Whisper's gzip compression ratio of the text (high: repetition).
    pub compression_ratio: Option<f64>,
    /// The decoding temperature Whisper settled on.
    pub temperature: Option<f64>,
}

/// One text chunk (`text.chunk`), or the text of a row of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    /// Its position in the item's chunks.
    pub index: i64,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The text, trimmed.
    pub text: String,
    /// The speakers in the chunk, in order of appearance.
    pub speakers: Vec<String>,
    /// The transcript segments merged into it.
    pub segments: Vec<i64>,
}

/// What a set of vectors embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Of {
    /// Row i is segment i.
    Segments,
    /// Row i is chunk i.
    Chunks,
}

impl Of {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Of::Segments => "segments",
            Of::Chunks => "chunks",
        }
    }
}

/// The item's embedding vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The model, as `text.embed` names it.
    pub model: String,
    /// Width of each vector.
    pub dim: usize,
    /// What the rows are.
    pub of: Of,
    /// `rows × dim` values, row-major.
    pub vectors: Vec<f32>,
}

impl Embeddings {
    /// The rows, one slice of `dim` values each.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.vectors.chunks_exact(self.dim.max(1))
    }
}

/// Everything a sink stores of one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    /// The item id.
    pub item: String,
    /// The item's path or URL.
    pub source: String,
    /// A title: an upstream `title`, else the file name without extension.
    pub title: String,
    /// Seconds of audio (`audio`, else the transcript's `seconds`).
    pub duration: Option<f64>,
    /// How far the item got.
    pub status: Status,
    /// Why it is degraded, when it is.
    pub reason: Option<String>,
    /// The transcript's language.
    pub language: Option<String>,
    /// `speakers.mode` (`monologue`, `diarized`, `identified`, `degraded`).
    pub speaker_mode: Option<String>,
    /// The transcript segments.
    pub segments: Vec<Segment>,
    /// The chunks.
    pub chunks: Vec<Chunk>,
    /// The vectors, when an upstream stage embedded the item.
    pub embeddings: Option<Embeddings>,
}

fn value<'a>(input: &'a StageInput, name: &'a str) -> Option<&'a serde_json::Value> {
    input.find(name).find_map(|o| o.value.as_ref())
}

fn num(v: &serde_json::Value, key: &str) -> Option<f64> {
    v.get(key).and_then(serde_json::Value::as_f64)
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .map(String::from)
}

/// The file name of an item id or URL without its extension.
fn title_of(id: &str) -> String {
    let last = id
        .trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(id);
    let last = last.split(['?', '#']).next().unwrap_or(last);
    let stem = Path::new(last)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem.is_empty() {
        id.to_string()
    } else {
        stem
    }
}

fn segment(index: usize, v: &serde_json::Value) -> Segment {
    Segment {
        index: index as i64,
        start: num(v, "start").unwrap_or(0.0),
        end: num(v, "end").unwrap_or(0.0),
        text: v["text"].as_str().unwrap_or("").trim().to_string(),
        speaker: text(v, "speaker"),
        speaker_confidence: num(v, "speaker_confidence"),
        avg_logprob: num(v, "avg_logprob"),
        no_speech_prob: num(v, "no_speech_prob"),
        compression_ratio: num(v, "compression_ratio"),
        temperature: num(v, "temperature"),
    }
}

fn chunk(index: usize, v: &serde_json::Value) -> Chunk {
    let list = |key: &str| v.get(key).and_then(|s| s.as_array()).cloned();
    Chunk {
        index: index as i64,
        start: num(v, "start").unwrap_or(0.0),
        end: num(v, "end").unwrap_or(0.0),
        text: v["text"].as_str().unwrap_or("").trim().to_string(),
        speakers: list("speakers")
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        segments: list("segments")
            .unwrap_or_default()
            .iter()
            .filter_map(serde_json::Value::as_i64)
            .collect(),
    }
}

/// Reads a little-endian `f32` file.
///
/// # Errors
/// A message naming the file.
pub fn read_f32(path: &Path) -> Result<Vec<f32>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "`{}` is not a file of f32 values ({} bytes)",
            path.display(),
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

impl ItemRecord {
    /// Reads what the sink stores of `input`'s item.
    ///
    /// # Errors
    /// A [`StageError`] when the `embeddings` input does not match the
    /// item's chunks or segments, or its file cannot be read.
    pub fn read(input: &StageInput) -> Result<Self, StageError> {
        let item = &input.item;
        let speakers = value(input, port::SPEAKERS);
        let transcript = value(input, port::TRANSCRIPT);
        let words = speakers.or(transcript);
        let segments: Vec<Segment> = words
            .and_then(|v| v["segments"].as_array())
            .map(|list| {
                list.iter()
                    .enumerate()
                    .map(|(i, s)| segment(i, s))
                    .collect()
            })
            .unwrap_or_default();
        let mut chunks: Vec<Chunk> = value(input, port::CHUNKS)
            .and_then(|v| v["chunks"].as_array())
            .map(|list| list.iter().enumerate().map(|(i, c)| chunk(i, c)).collect())
            .unwrap_or_default();
        let mode = speakers.and_then(|v| text(v, "mode"));
        let (status, reason) = match (words, mode.as_deref()) {
            // A row of a table has its text, not a transcript.
            (None, _) if item.row.is_some() => (Status::Complete, None),
            (None, _) => (Status::NoTranscript, None),
            (Some(v), Some("degraded")) => (Status::Degraded, text(v, "reason")),
            _ => (Status::Complete, None),
        };
        let duration = value(input, port::AUDIO)
            .and_then(|v| num(v, "seconds"))
            .or_else(|| words.and_then(|v| num(v, "seconds")))
            .or_else(|| segments.iter().map(|s| s.end).reduce(f64::max));
        let title = input
            .upstream
            .iter()
            .flat_map(|u| &u.outputs)
            .find_map(|o| o.value.as_ref().and_then(|v| text(v, "title")))
            .unwrap_or_else(|| title_of(&item.id));
        let embeddings = match input.find(port::EMBEDDINGS).next() {
            None => None,
            Some(out) => {
                let v = out.value.clone().unwrap_or_default();
                let of = match v["of"].as_str() {
                    Some("segments") => Of::Segments,
                    Some("rows") => {
                        // An item of `inputs: { rows: … }`: its one vector is
                        // of the row's text, stored as the item's one chunk.
                        let text =
                            flow_engine::items::row_text(item).map_err(StageError::failed)?;
                        chunks = vec![Chunk {
                            index: 0,
                            start: 0.0,
                            end: 0.0,
                            text: text.trim().to_string(),
                            speakers: Vec::new(),
                            segments: Vec::new(),
                        }];
                        Of::Chunks
                    }
                    _ => Of::Chunks,
                };
                Some(read_embeddings(out, &v, of)?)
            }
        };
        let record = ItemRecord {
            item: item.id.clone(),
            source: item.source.clone(),
            title,
            duration,
            status,
            reason,
            language: words.and_then(|v| text(v, "language")),
            speaker_mode: mode,
            segments,
            chunks,
            embeddings,
        };
        record.check_rows()?;
        Ok(record)
    }

    fn check_rows(&self) -> Result<(), StageError> {
        let Some(e) = &self.embeddings else {
            return Ok(());
        };
        let rows = e.vectors.len() / e.dim.max(1);
        let texts = match e.of {
            Of::Segments => self.segments.len(),
            Of::Chunks => self.chunks.len(),
        };
        if rows == texts {
            return Ok(());
        }
        Err(StageError::failed(format!(
            "the `embeddings` input has {rows} rows of {of} but the item has {texts} {of}: wire the sink to the same `{of}` stage that `text.embed` read",
            of = e.of.as_str(),
        )))
    }
}

fn read_embeddings(
    out: &flow_engine::registry::ResolvedOutput,
    v: &serde_json::Value,
    of: Of,
) -> Result<Embeddings, StageError> {
    let dim = v["dim"].as_u64().unwrap_or(0) as usize;
    let vectors = match out.files.first() {
        Some(f) => read_f32(f).map_err(StageError::failed)?,
        None => Vec::new(),
    };
    if dim == 0 || vectors.len() % dim != 0 {
        return Err(StageError::failed(format!(
            "the `embeddings` input is malformed: {} values do not make rows of dim {dim}",
            vectors.len()
        )));
    }
    Ok(Embeddings {
        model: v["model"].as_str().unwrap_or("").to_string(),
        dim,
        of,
        vectors,
    })
}

#[cfg(test)]
mod tests {
    use super::title_of;

    #[test]
    fn titles_are_file_stems() {
        assert_eq!(title_of("media/talk one.wav"), "talk one");
        assert_eq!(title_of("https://x.org/a/b.mp3?x=1"), "b");
        assert_eq!(title_of("row-17"), "row-17");
    }
}
