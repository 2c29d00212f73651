//! What `speaker.embed` reads from upstream (audio, speech regions) and
//! the fixed windows it cuts.

use std::path::Path;

use flow_engine::registry::{port, StageInput};

use super::mel::SAMPLE_RATE;

/// The item's 16 kHz samples from its `audio` input.
///
/// # Errors
/// A message saying what to wire or fix.
pub fn item_audio(input: &StageInput) -> Result<Vec<f32>, String> {
    let output = input
        .find(port::AUDIO)
        .next()
        .ok_or("no `audio` input (wire an audio.decode stage)")?;
    if let Some(rate) = output
        .value
        .as_ref()
        .and_then(|v| v["sample_rate"].as_u64())
    {
        if rate != SAMPLE_RATE as u64 {
            return Err(format!(
                "the audio is at {rate} Hz; the GE2E encoder needs 16000 Hz: set `sample_rate: 16000` on the audio.decode stage"
            ));
        }
    }
    let path: &Path = output
        .files
        .first()
        .ok_or("the `audio` input has no file (wire an audio.decode stage)")?;
    flow_media::read_audio(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// The item's speech regions `(start, end)` in seconds, if a stage among
/// its `needs` produced `speech_regions`.
///
/// # Errors
/// A message when the value is not `{ "regions": [ {start, end}, … ] }`.
pub fn speech_spans(input: &StageInput) -> Result<Option<Vec<(f64, f64)>>, String> {
    let Some(value) = input
        .find(port::SPEECH_REGIONS)
        .find(|o| o.port == port::SPEECH_REGIONS)
        .and_then(|o| o.value.as_ref())
    else {
        return Ok(None);
    };
    let list = value["regions"]
        .as_array()
        .ok_or("the `speech_regions` value has no `regions` list of {start, end}")?;
    list.iter()
        .enumerate()
        .map(|(i, r)| match (r["start"].as_f64(), r["end"].as_f64()) {
            (Some(s), Some(e)) => Ok((s, e.max(s))),
            _ => Err(format!("speech region {i} has no `start`/`end` seconds")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Fixed windows over `spans` (seconds): in each span at least
/// `min_duration` long, windows of `window` seconds every `hop` seconds,
/// plus one ending at the span's end when the steps stop short of it; a
/// span no longer than `window` is one window.
pub fn plan_windows(
    spans: &[(f64, f64)],
    window: f64,
    hop: f64,
    min_duration: f64,
) -> Vec<(f64, f64)> {
    const EPS: f64 = 1e-6;
    let mut out = Vec::new();
    for &(start, end) in spans {
        let length = end - start;
        if length < min_duration.max(EPS) {
            continue;
        }
        if length <= window + EPS {
            out.push((start, end));
            continue;
        }
        let mut t = start;
        while t + window <= end + EPS {
            out.push((t, t + window));
            t += hop;
        }
        if out.last().is_some_and(|&(_, e)| e < end - EPS) {
            out.push((end - window, end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::plan_windows;

    #[test]
    fn windows_cover_each_span_and_skip_short_ones() {
        let w = plan_windows(&[(0.0, 4.0), (5.0, 6.0), (7.0, 7.1)], 1.6, 0.8, 0.3);
        let starts: Vec<f64> = w.iter().map(|&(s, _)| (s * 10.0).round() / 10.0).collect();
        // 0.0, 0.8, 1.6, 2.4 (ends 4.0), then the short span whole.
        assert_eq!(starts, vec![0.0, 0.8, 1.6, 2.4, 5.0]);
        assert_eq!(w[4], (5.0, 6.0));
        // A tail window is added when the hops stop short of the end.
        let w = plan_windows(&[(0.0, 3.0)], 1.6, 0.8, 0.3);
        let (s, e) = w.last().copied().unwrap_or_default();
        assert!((s - 1.4).abs() < 1e-9 && e == 3.0, "{s} {e}");
        assert_eq!(w.len(), 3);
    }
}
