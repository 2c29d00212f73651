//! Long-form transcription: the 30 s window loop that seeks to the last
//! timestamp the model produced, as faster-whisper does it, with the
//! previous text as the prompt.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::decode::{Rng, Rules};
use crate::fallback::Outcome;
use crate::mel::{Mel, MelFrontEnd, HOP, SAMPLE_RATE, WINDOW_FRAMES};
use crate::network::Network;
use crate::tokens::Vocabulary;

/// Seconds per mel frame.
const FRAME_SECONDS: f64 = HOP as f64 / SAMPLE_RATE as f64;
/// Seconds per timestamp step.
const TIMESTAMP_SECONDS: f64 = 0.02;

/// One transcript segment (see `docs/data-contracts.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Index within the item.
    pub id: usize,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The text (with Whisper's leading space).
    pub text: String,
    /// Generated token ids, timestamps included.
    pub tokens: Vec<u32>,
    /// Mean log-probability of the window's tokens.
    pub avg_logprob: f64,
    /// Probability that the window has no speech.
    pub no_speech_prob: f64,
    /// Text length over its zlib-compressed length.
    pub compression_ratio: f64,
    /// Sampling temperature that produced it.
    pub temperature: f64,
}

/// Decoding settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Language code for multilingual models.
    pub language: String,
    /// Prompt each window with the text so far.
    pub condition_on_previous_text: bool,
    /// Windows whose no-speech probability is above this (and whose
    /// average log-probability is below `log_prob_threshold`) are skipped.
    pub no_speech_threshold: Option<f64>,
    /// See `no_speech_threshold`; also a window whose mean log-probability
    /// is below this is decoded again at the next temperature.
    pub log_prob_threshold: Option<f64>,
    /// Temperatures tried in turn (0: greedy); a window falls back to the
    /// next when its output is too repetitive or too unlikely.
    pub temperatures: Vec<f64>,
    /// A window whose compression ratio is above this falls back.
    pub compression_ratio_threshold: Option<f64>,
    /// Candidates sampled per window at a temperature above 0.
    pub best_of: usize,
    /// Above this temperature the next window is not prompted with the
    /// text before it (it may be garbage).
    pub prompt_reset_on_temperature: f64,
    /// Seed of the sampler (fallbacks are reproducible).
    pub seed: u64,
}

impl Default for Options {
    /// faster-whisper's defaults: greedy first, then 0.2, 0.4, … 1.0.
    fn default() -> Self {
        Self {
            language: "en".into(),
            condition_on_previous_text: true,
            no_speech_threshold: Some(0.6),
            log_prob_threshold: Some(-1.0),
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: Some(2.4),
            best_of: 5,
            prompt_reset_on_temperature: 0.5,
            seed: 0,
        }
    }
}

impl Options {
    /// Greedy decoding only, no fallback: the settings of the reference
    /// transcripts (faster-whisper with `temperature=0`).
    pub fn greedy() -> Self {
        Self {
            temperatures: vec![0.0],
            ..Self::default()
        }
    }
}

/// A model with its tokenizer, rules and front end.
pub struct Transcriber<N> {
    /// The network.
    pub model: N,
    /// The vocabulary.
    pub vocab: Vocabulary,
    /// The decoding rules.
    pub rules: Rules,
    front: MelFrontEnd,
}

/// Text length over zlib-compressed length (high: repetitive output).
pub fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(text.as_bytes());
    let compressed = z.finish().map(|v| v.len()).unwrap_or(1).max(1);
    text.len() as f64 / compressed as f64
}

impl<N: Network> Transcriber<N> {
    /// Combines the parts.
    pub fn new(model: N, vocab: Vocabulary, rules: Rules) -> Self {
        let front = MelFrontEnd::new(model.dims().n_mels);
        Self {
            model,
            vocab,
            rules,
            front,
        }
    }

    /// The log-mel spectrogram the windows are cut from (160 samples of
    /// padding, as faster-whisper computes it).
    pub fn mel(&self, samples: &[f32]) -> Mel {
        self.front.compute(samples, HOP)
    }

    /// Encodes windows of `mel` (`(seek, size)` each) in one batch.
    pub(crate) fn encode_windows(&self, mels: &[(&Mel, usize, usize)]) -> N::Audio {
        let n_mels = self.model.dims().n_mels;
        let mut data = Vec::with_capacity(mels.len() * n_mels * WINDOW_FRAMES);
        for (mel, seek, size) in mels {
            data.extend(mel.window(*seek, *size));
        }
        self.model.encode(data, mels.len())
    }

    /// Transcribes 16 kHz mono samples.
    ///
    /// # Errors
    /// A message for an unknown language.
    pub fn transcribe(&self, samples: &[f32], opts: &Options) -> Result<Vec<Segment>, String> {
        Ok(self
            .transcribe_many(&[samples], opts, 1)?
            .pop()
            .unwrap_or_default())
    }

    /// Transcribes several items (16 kHz mono samples each) with the seek
    /// loop, their windows batched: each round takes the current window of
    /// up to `max_windows` unfinished items, encodes them in one forward
    /// pass and decodes together the windows whose prompts have the same
    /// length (every item's first window; later ones when the previous text
    /// is not a prompt). Each item's transcript is the one it gets alone.
    ///
    /// # Errors
    /// A message for an unknown language.
    pub fn transcribe_many(
        &self,
        items: &[&[f32]],
        opts: &Options,
        max_windows: usize,
    ) -> Result<Vec<Vec<Segment>>, String> {
        let sot = self.vocab.sot_sequence(&opts.language)?;
        let mut states: Vec<Seeking> = items.iter().map(|s| Seeking::new(self.mel(s))).collect();
        let mut rng = Rng::new(opts.seed);
        loop {
            let active: Vec<usize> = (0..states.len())
                .filter(|&i| states[i].seek < states[i].content)
                .take(max_windows.max(1))
                .collect();
            if active.is_empty() {
                break;
            }
            let windows: Vec<(&Mel, usize, usize)> =
                active.iter().map(|&i| states[i].window()).collect();
            let sizes: Vec<usize> = windows.iter().map(|w| w.2).collect();
            let prompts: Vec<Vec<u32>> = active
                .iter()
                .map(|&i| self.prompt(&states[i], &sot, opts))
                .collect();
            let audio = self.encode_windows(&windows);
            let mut outcomes: Vec<Option<Outcome>> = vec![None; active.len()];
            let mut lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
            lengths.sort_unstable();
            lengths.dedup();
            for len in lengths {
                let rows: Vec<usize> = (0..prompts.len())
                    .filter(|&r| prompts[r].len() == len)
                    .collect();
                let group = match rows.len() == prompts.len() {
                    true => audio.clone(),
                    false => self.model.select(&audio, &rows),
                };
                let same: Vec<Vec<u32>> = rows.iter().map(|&r| prompts[r].clone()).collect();
                let decoded = self.decode_windows(group, &same, opts, &mut rng);
                for (&r, outcome) in rows.iter().zip(decoded) {
                    outcomes[r] = Some(outcome);
                }
            }
            for ((&i, size), outcome) in active.iter().zip(sizes).zip(outcomes) {
                self.advance(&mut states[i], size, outcome, opts);
            }
        }
        Ok(states.into_iter().map(|s| s.segments).collect())
    }

    /// The prompt of an item's next window: the text so far (when
    /// `condition_on_previous_text`, at most half the text context), then
    /// the start-of-transcript sequence.
    fn prompt(&self, state: &Seeking, sot: &[u32], opts: &Options) -> Vec<u32> {
        let max_prompt = self.model.dims().text_ctx / 2 - 1;
        let mut prompt = Vec::new();
        let previous = &state.all_tokens[state.prompt_from..];
        if opts.condition_on_previous_text && !previous.is_empty() {
            prompt.push(self.vocab.specials.sot_prev);
            let from = previous.len().saturating_sub(max_prompt);
            prompt.extend_from_slice(&previous[from..]);
        }
        prompt.extend_from_slice(sot);
        prompt
    }

    /// Moves an item past its decoded window of `size` frames, keeping its
    /// segments.
    fn advance(&self, state: &mut Seeking, size: usize, outcome: Option<Outcome>, opts: &Options) {
        let Some(outcome) = outcome.filter(|o| !o.is_silence(opts)) else {
            state.seek += size;
            return;
        };
        let tb = self.vocab.specials.timestamp_begin;
        let time_offset = state.seek as f64 * FRAME_SECONDS;
        let duration = size as f64 * FRAME_SECONDS;
        // As faster-whisper: text decoded hot does not prompt what follows.
        let reset = outcome.temperature > opts.prompt_reset_on_temperature;
        let Outcome {
            decoded: d,
            avg_logprob,
            compression_ratio: ratio,
            temperature,
        } = outcome;
        let pieces = split(&d.tokens, tb, time_offset, duration);
        state.seek += pieces.advance.unwrap_or(size);
        for (start, end, piece) in pieces.segments {
            let text = self.vocab.decode(&piece);
            if start == end || text.trim().is_empty() {
                continue;
            }
            state.all_tokens.extend_from_slice(&piece);
            state.segments.push(Segment {
                id: state.segments.len(),
                start: round(start),
                end: round(end),
                text,
                tokens: piece,
                avg_logprob,
                no_speech_prob: d.no_speech_prob,
                compression_ratio: ratio,
                temperature,
            });
        }
        if reset {
            state.prompt_from = state.all_tokens.len();
        }
    }
}

/// One item in the seek loop.
struct Seeking {
    mel: Mel,
    /// Frames of audio (the mel's last frame is padding).
    content: usize,
    /// The next window's first frame.
    seek: usize,
    /// Every token of its segments so far.
    all_tokens: Vec<u32>,
    /// Where the prompt's text starts in `all_tokens`.
    prompt_from: usize,
    segments: Vec<Segment>,
}

impl Seeking {
    fn new(mel: Mel) -> Self {
        Self {
            content: mel.frames.saturating_sub(1),
            mel,
            seek: 0,
            all_tokens: Vec::new(),
            prompt_from: 0,
            segments: Vec::new(),
        }
    }

    /// The next window: the mel, its first frame and its length.
    fn window(&self) -> (&Mel, usize, usize) {
        (
            &self.mel,
            self.seek,
            WINDOW_FRAMES.min(self.content - self.seek),
        )
    }
}

pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A window's tokens cut at timestamp pairs.
pub(crate) struct Pieces {
    pub(crate) segments: Vec<(f64, f64, Vec<u32>)>,
    /// Frames to seek forward, when the window ended on an open timestamp.
    pub(crate) advance: Option<usize>,
}

pub(crate) fn split(tokens: &[u32], tb: u32, offset: f64, duration: f64) -> Pieces {
    let is_ts = |t: u32| t >= tb;
    let n = tokens.len();
    let single_ending = n >= 2 && !is_ts(tokens[n - 2]) && is_ts(tokens[n - 1]);
    let mut cuts: Vec<usize> = (1..n)
        .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
        .collect();
    let time = |t: u32| offset + f64::from(t - tb) * TIMESTAMP_SECONDS;
    if !cuts.is_empty() {
        if single_ending {
            cuts.push(n);
        }
        let mut segments = Vec::new();
        let mut last = 0;
        for &cut in &cuts {
            let piece = tokens[last..cut].to_vec();
            let (first, end) = (piece[0], piece[piece.len() - 1]);
            let start = if is_ts(first) { time(first) } else { offset };
            let stop = if is_ts(end) {
                time(end)
            } else {
                offset + duration
            };
            segments.push((start, stop, piece));
            last = cut;
        }
        let advance = if single_ending {
            None
        } else {
            Some((tokens[last - 1] - tb) as usize * 2)
        };
        return Pieces { segments, advance };
    }
    let mut end = duration;
    if let Some(&t) = tokens.iter().rev().find(|&&t| is_ts(t)) {
        if t != tb {
            end = f64::from(t - tb) * TIMESTAMP_SECONDS;
        }
    }
    Pieces {
        segments: vec![(offset, offset + end, tokens.to_vec())],
        advance: None,
    }
}
