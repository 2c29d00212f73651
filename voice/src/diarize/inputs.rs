//! Reading the inputs of `speaker.identify` and `speaker.diarize` from
//! upstream results, in the shapes of `docs/data-contracts.md`.

use std::path::Path;

use flow_engine::registry::{port, StageInput};
use serde_json::{Map, Value};

use super::Span;

/// An item's `voice_embeddings`: speaker vectors over windows of its audio.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceWindows {
    /// Length of each vector.
    pub dim: usize,
    /// One vector per window (L2-normalised).
    pub vectors: Vec<Vec<f32>>,
    /// The windows, seconds; `windows[i]` is where `vectors[i]` was heard.
    pub windows: Vec<Span>,
    /// The encoder's weights, when the producer names them.
    pub model: Option<String>,
}

impl VoiceWindows {
    /// Reads `voice.f32` (`count × dim` little-endian f32) with its value.
    ///
    /// # Errors
    /// A message when the file cannot be read or does not match the value.
    pub fn from_output(value: &Value, file: &Path) -> Result<Self, String> {
        let field = |name: &str| {
            value[name]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| format!("the `voice_embeddings` value has no `{name}`"))
        };
        let (dim, count) = (field("dim")?, field("count")?);
        let windows: Vec<Span> = match value["windows"].as_array() {
            Some(list) => list.iter().map(Span::from_value).collect::<Option<_>>(),
            None => None,
        }
        .ok_or("the `voice_embeddings` value has no `windows` list of {start, end}")?;
        if windows.len() != count {
            return Err(format!(
                "the `voice_embeddings` value lists {} windows for {count} vectors",
                windows.len()
            ));
        }
        let bytes =
            std::fs::read(file).map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
        if dim == 0 || bytes.len() != count * dim * 4 {
            return Err(format!(
                "`{}` has {} bytes, not {count} × {dim} f32 values",
                file.display(),
                bytes.len()
            ));
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self {
            dim,
            vectors: values.chunks(dim).map(<[f32]>::to_vec).collect(),
            windows,
            model: value["model"].as_str().map(str::to_string),
        })
    }

    /// The item's `voice_embeddings`, if a stage among its `needs` made them.
    ///
    /// # Errors
    /// A message when they exist but cannot be read.
    pub fn find(input: &StageInput) -> Result<Option<Self>, String> {
        let Some(output) = input.find(port::VOICE_EMBEDDINGS).next() else {
            return Ok(None);
        };
        let value = output
            .value
            .as_ref()
            .ok_or("the `voice_embeddings` output has no value")?;
        let file = output
            .files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "f32"))
            .ok_or("the `voice_embeddings` output has no `.f32` file")?;
        Self::from_output(value, file).map(Some)
    }
}

/// One transcript segment: its times and every field it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// All its fields (`id`, `text`, `tokens`, …), passed through.
    pub fields: Map<String, Value>,
}

/// The segments of an item's transcript: from `transcript`, or from an
/// upstream `speakers` output (whose segments carry the transcript's
/// fields).
///
/// # Errors
/// A message when there is neither, or a segment has no times.
pub fn segments(input: &StageInput) -> Result<Vec<Segment>, String> {
    let value = [port::TRANSCRIPT, port::SPEAKERS]
        .iter()
        .find_map(|p| input.find(p).find_map(|o| o.value.as_ref()))
        .ok_or("no `transcript` input: wire an asr.whisper stage into this stage's `needs`")?;
    parse_segments(value)
}

/// The segments of a `transcript` (or `speakers`) value.
///
/// # Errors
/// A message when `segments` is missing or a segment has no `start`/`end`.
pub fn parse_segments(value: &Value) -> Result<Vec<Segment>, String> {
    let list = value["segments"]
        .as_array()
        .ok_or("the transcript has no `segments` list")?;
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let fields = s
                .as_object()
                .ok_or_else(|| format!("transcript segment {i} is not an object"))?;
            match (s["start"].as_f64(), s["end"].as_f64()) {
                (Some(start), Some(end)) => Ok(Segment {
                    start,
                    end: end.max(start),
                    fields: fields.clone(),
                }),
                _ => Err(format!(
                    "transcript segment {i} has no `start`/`end` seconds"
                )),
            }
        })
        .collect()
}

/// The item's `speech_regions`, if a stage among its `needs` made them.
///
/// # Errors
/// A message when they exist but are malformed.
pub fn speech_regions(input: &StageInput) -> Result<Option<Vec<Span>>, String> {
    let Some(value) = input
        .find(port::SPEECH_REGIONS)
        .find_map(|o| o.value.as_ref())
    else {
        return Ok(None);
    };
    let mut regions: Vec<Span> = value["regions"]
        .as_array()
        .and_then(|l| l.iter().map(Span::from_value).collect())
        .ok_or("the `speech_regions` value has no `regions` list of {start, end}")?;
    regions.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(Some(regions))
}

/// An upstream `speakers` value (from `speaker.identify`), if any.
pub fn upstream_speakers(input: &StageInput) -> Option<&Value> {
    input.find(port::SPEAKERS).find_map(|o| o.value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_voice_embeddings_and_checks_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("voice.f32");
        let data: Vec<u8> = [1.0f32, 0.0, 0.0, 1.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        std::fs::write(&file, data).unwrap();
        let value = serde_json::json!({ "dim": 2, "count": 2,
            "windows": [{"start": 0.0, "end": 1.6}, {"start": 0.8, "end": 2.4}] });
        let v = VoiceWindows::from_output(&value, &file).unwrap();
        assert_eq!(v.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(v.windows[1], Span::new(0.8, 2.4));
        let wrong = serde_json::json!({ "dim": 4, "count": 2,
            "windows": [{"start": 0.0, "end": 1.6}, {"start": 0.8, "end": 2.4}] });
        let err = VoiceWindows::from_output(&wrong, &file).unwrap_err();
        assert!(err.contains("not 2 × 4"), "{err}");
    }

    #[test]
    fn parses_segments_and_refuses_untimed_ones() {
        let v = serde_json::json!({ "segments": [{ "id": 0, "start": 0.5, "end": 2.0, "text": " Hi" }] });
        let s = parse_segments(&v).unwrap();
        assert_eq!((s[0].start, s[0].end), (0.5, 2.0));
        assert_eq!(s[0].fields["text"], " Hi");
        let bad = serde_json::json!({ "segments": [{ "id": 0, "text": " Hi" }] });
        assert!(parse_segments(&bad).is_err());
    }
}
