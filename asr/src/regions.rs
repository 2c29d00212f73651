//! Transcription over voice-activity regions, batched (WhisperX's
//! approach): speech regions are merged into chunks of at most 30 s, each
//! chunk is decoded on its own (no prompt from the text before it), and the
//! windows of every chunk — of every item in the batch — go through the
//! encoder and decoder together. A chunk whose decoding stops at a
//! timestamp before its end continues from there in the next round, as the
//! 30 s seek loop does.

use crate::decode::Rng;
use crate::mel::{Mel, HOP, SAMPLE_RATE, WINDOW_FRAMES};
use crate::network::Network;
use crate::transcribe::{round, split, Options, Segment, Transcriber};

/// Seconds per mel frame.
const FRAME_SECONDS: f64 = HOP as f64 / SAMPLE_RATE as f64;

/// Merges sorted speech regions (`(start, end)` seconds) into chunks of at
/// most `max_seconds`: a region joins the current chunk while the chunk
/// stays within the limit (WhisperX's `merge_chunks`); a region longer
/// than the limit is cut into equal parts.
pub fn merge_regions(regions: &[(f64, f64)], max_seconds: f64) -> Vec<(f64, f64)> {
    let max = max_seconds.max(1.0);
    let mut pieces = Vec::new();
    for &(start, end) in regions.iter().filter(|(s, e)| e > s) {
        let parts = ((end - start) / max).ceil().max(1.0) as usize;
        let step = (end - start) / parts as f64;
        for k in 0..parts {
            pieces.push((start + k as f64 * step, start + (k + 1) as f64 * step));
        }
    }
    let mut chunks: Vec<(f64, f64)> = Vec::new();
    for (start, end) in pieces {
        match chunks.last_mut() {
            Some(c) if end - c.0 <= max => c.1 = end,
            _ => chunks.push((start, end)),
        }
    }
    chunks
}

/// One item for [`Transcriber::transcribe_regions`]: its 16 kHz samples
/// and its speech regions (`(start, end)` seconds).
pub type RegionItem<'a> = (&'a [f32], Vec<(f64, f64)>);

/// One chunk being transcribed.
struct Job {
    item: usize,
    /// Seconds from the start of the item.
    offset: f64,
    mel: usize,
    seek: usize,
}

impl<N: Network> Transcriber<N> {
    /// Transcribes several items, each given as its 16 kHz samples and its
    /// speech regions (seconds), with at most `max_windows` windows per
    /// forward pass. Returns each item's segments, in time order.
    ///
    /// # Errors
    /// A message for an unknown language.
    pub fn transcribe_regions(
        &self,
        items: &[RegionItem<'_>],
        opts: &Options,
        max_windows: usize,
    ) -> Result<Vec<Vec<Segment>>, String> {
        let sot = self.vocab.sot_sequence(&opts.language)?;
        let tb = self.vocab.specials.timestamp_begin;
        let mut mels: Vec<Mel> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        for (item, (samples, regions)) in items.iter().enumerate() {
            let seconds = samples.len() as f64 / SAMPLE_RATE as f64;
            for (start, end) in merge_regions(regions, 30.0) {
                let a = ((start.max(0.0) * SAMPLE_RATE as f64) as usize).min(samples.len());
                let b = ((end.min(seconds) * SAMPLE_RATE as f64).ceil() as usize)
                    .clamp(a, samples.len());
                if b <= a {
                    continue;
                }
                jobs.push(Job {
                    item,
                    offset: a as f64 / SAMPLE_RATE as f64,
                    mel: mels.len(),
                    seek: 0,
                });
                mels.push(self.mel(&samples[a..b]));
            }
        }
        let mut out: Vec<Vec<Segment>> = vec![Vec::new(); items.len()];
        let mut rng = Rng::new(opts.seed);
        while !jobs.is_empty() {
            let take = jobs.len().min(max_windows.max(1));
            let round_jobs: Vec<Job> = jobs.drain(..take).collect();
            let windows: Vec<(&Mel, usize, usize)> = round_jobs
                .iter()
                .map(|j| {
                    let mel = &mels[j.mel];
                    let content = mel.frames.saturating_sub(1);
                    (mel, j.seek, WINDOW_FRAMES.min(content - j.seek))
                })
                .collect();
            let audio = self.encode_windows(&windows);
            let prompts = vec![sot.clone(); round_jobs.len()];
            let outcomes = self.decode_windows(audio, &prompts, opts, &mut rng);
            for ((job, (mel, seek, size)), outcome) in round_jobs.iter().zip(&windows).zip(outcomes)
            {
                let content = mel.frames.saturating_sub(1);
                let mut next = seek + size;
                if !outcome.is_silence(opts) {
                    let offset = job.offset + *seek as f64 * FRAME_SECONDS;
                    let pieces = split(
                        &outcome.decoded.tokens,
                        tb,
                        offset,
                        *size as f64 * FRAME_SECONDS,
                    );
                    if let Some(frames) = pieces.advance {
                        next = seek + frames.max(1);
                    }
                    for (start, end, piece) in pieces.segments {
                        let text = self.vocab.decode(&piece);
                        if start == end || text.trim().is_empty() {
                            continue;
                        }
                        out[job.item].push(Segment {
                            id: 0,
                            start: round(start),
                            end: round(end),
                            text,
                            tokens: piece,
                            avg_logprob: outcome.avg_logprob,
                            no_speech_prob: outcome.decoded.no_speech_prob,
                            compression_ratio: outcome.compression_ratio,
                            temperature: outcome.temperature,
                        });
                    }
                }
                if next < content {
                    jobs.push(Job { seek: next, ..*job });
                }
            }
        }
        for segments in &mut out {
            segments.sort_by(|a, b| a.start.total_cmp(&b.start));
            for (i, s) in segments.iter_mut().enumerate() {
                s.id = i;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::merge_regions;

    #[test]
    fn regions_merge_into_chunks_of_at_most_the_limit() {
        let regions = [(0.5, 4.0), (5.0, 12.0), (13.0, 29.0), (31.0, 33.0)];
        assert_eq!(
            merge_regions(&regions, 30.0),
            vec![(0.5, 29.0), (31.0, 33.0)]
        );
        // A 70 s region is cut in three parts of 23.3 s.
        let long = merge_regions(&[(0.0, 70.0)], 30.0);
        assert_eq!(long.len(), 3);
        assert!(long.iter().all(|(s, e)| e - s <= 30.0 + 1e-9));
        assert!(merge_regions(&[(3.0, 3.0)], 30.0).is_empty());
    }
}
