//! Decoding of 30 s windows (greedy, or sampled at a temperature) with Whisper's logit rules:
//! blank suppression at the start, non-speech token suppression, and the
//! timestamp rules (pairs, never decreasing, an initial timestamp within
//! the first second, timestamps forced when they are likelier than text).

use crate::network::Network;
use crate::tokens::Specials;

/// Decoding rules of one model.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Special ids.
    pub specials: Specials,
    /// Tokens never generated (non-speech symbols and task tokens).
    pub suppress: Vec<u32>,
    /// Tokens not generated first (a blank, end of text).
    pub suppress_begin: Vec<u32>,
    /// The latest first timestamp, in 20 ms steps (50: one second).
    pub max_initial_timestamp: Option<u32>,
}

/// The result of decoding one window.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The generated tokens, without the end of text.
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the generated tokens (and the end).
    pub sum_logprob: f64,
    /// Probability of `<|nospeech|>` at the first step.
    pub no_speech_prob: f64,
}

fn log_softmax(x: &[f32]) -> Vec<f64> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    x.iter().map(|&v| v as f64 - lse).collect()
}

impl Rules {
    /// Masks `logits` for the next token after `generated`.
    pub fn apply(&self, logits: &mut [f32], generated: &[u32]) {
        let s = &self.specials;
        let ninf = f32::NEG_INFINITY;
        let tb = s.timestamp_begin as usize;
        let eot = s.eot as usize;
        let mask = |range: std::ops::Range<usize>, logits: &mut [f32]| {
            let end = range.end.min(logits.len());
            for v in &mut logits[range.start.min(end)..end] {
                *v = ninf;
            }
        };
        if generated.is_empty() {
            for &t in &self.suppress_begin {
                logits[t as usize] = ninf;
            }
        }
        for &t in &self.suppress {
            if let Some(v) = logits.get_mut(t as usize) {
                *v = ninf;
            }
        }
        logits[s.no_timestamps as usize] = ninf;
        let n = generated.len();
        let last_ts = n >= 1 && generated[n - 1] >= s.timestamp_begin;
        let penult_ts = n < 2 || generated[n - 2] >= s.timestamp_begin;
        if last_ts {
            if penult_ts {
                mask(tb..logits.len(), logits);
            } else {
                mask(0..eot, logits);
            }
        }
        if let Some(&last) = generated.iter().rev().find(|&&t| t >= s.timestamp_begin) {
            let bound = if last_ts && !penult_ts {
                last
            } else {
                last + 1
            };
            mask(tb..bound as usize, logits);
        }
        if generated.is_empty() {
            mask(0..tb, logits);
            if let Some(m) = self.max_initial_timestamp {
                mask(tb + m as usize + 1..logits.len(), logits);
            }
        }
        let lp = log_softmax(logits);
        let ts = &lp[tb..];
        let ts_max = ts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ts_lse = ts_max + ts.iter().map(|v| (v - ts_max).exp()).sum::<f64>().ln();
        let text_max = lp[..tb].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if ts_lse > text_max {
            mask(0..tb, logits);
        }
    }
}

fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// A small deterministic random generator (SplitMix64) for sampling at a
/// temperature: the same seed gives the same transcript.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A uniform number in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How the next token is chosen.
pub enum Choice<'a> {
    /// The likeliest token (temperature 0).
    Greedy,
    /// A token drawn from the softmax of the logits divided by
    /// `temperature` (Whisper's fallback when greedy output is bad).
    Sample {
        /// Above 0.
        temperature: f64,
        /// The generator.
        rng: &'a mut Rng,
    },
}

impl Choice<'_> {
    fn pick(&mut self, logits: &[f32]) -> usize {
        match self {
            Choice::Greedy => argmax(logits),
            Choice::Sample { temperature, rng } => {
                let t = temperature.max(1e-6);
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let weights: Vec<f64> = logits
                    .iter()
                    .map(|&v| ((v as f64 - max) / t).exp())
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut target = rng.uniform() * total;
                for (i, w) in weights.iter().enumerate() {
                    if *w > 0.0 && target < *w {
                        return i;
                    }
                    target -= w;
                }
                argmax(logits)
            }
        }
    }
}

/// Greedily decodes after `prompt` for every window in `state` (one
/// prompt per window, all of the same length), at most `max_new` tokens.
pub fn greedy<N: Network>(
    model: &N,
    state: &mut N::State,
    prompts: &[Vec<u32>],
    rules: &Rules,
    max_new: usize,
) -> Vec<Decoded> {
    decode(model, state, prompts, rules, max_new, &mut Choice::Greedy)
}

/// Decodes after `prompt` for every window in `state` (one prompt per
/// window, all of the same length), at most `max_new` tokens, choosing
/// tokens by `choice`. `sum_logprob` is always of the unscaled
/// log-probabilities, as faster-whisper reports it.
pub fn decode<N: Network>(
    model: &N,
    state: &mut N::State,
    prompts: &[Vec<u32>],
    rules: &Rules,
    max_new: usize,
    choice: &mut Choice<'_>,
) -> Vec<Decoded> {
    let b = prompts.len();
    let vocab = model.dims().vocab;
    let mut out: Vec<Decoded> = (0..b)
        .map(|_| Decoded {
            tokens: Vec::new(),
            sum_logprob: 0.0,
            no_speech_prob: 0.0,
        })
        .collect();
    let mut active: Vec<usize> = (0..b).collect();
    let mut logits = model.step(state, prompts);
    for (row, o) in out.iter_mut().enumerate() {
        let lp = log_softmax(&logits[row * vocab..(row + 1) * vocab]);
        o.no_speech_prob = lp[rules.specials.no_speech as usize].exp();
    }
    for _ in 0..max_new {
        let mut next = Vec::with_capacity(active.len());
        let mut still = Vec::new();
        let mut keep_rows = Vec::new();
        for (row, &seq) in active.iter().enumerate() {
            let l = &mut logits[row * vocab..(row + 1) * vocab];
            rules.apply(l, &out[seq].tokens);
            let lp = log_softmax(l);
            let t = choice.pick(l);
            out[seq].sum_logprob += lp[t];
            if t as u32 == rules.specials.eot {
                continue;
            }
            out[seq].tokens.push(t as u32);
            next.push(vec![t as u32]);
            still.push(seq);
            keep_rows.push(row);
        }
        if still.is_empty() {
            break;
        }
        if keep_rows.len() != active.len() {
            model.retain(state, &keep_rows);
        }
        active = still;
        logits = model.step(state, &next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Choice, Rng};

    #[test]
    fn sampling_is_seeded_and_follows_the_temperature() {
        let logits = [2.0f32, 1.0, 0.0, f32::NEG_INFINITY];
        let draw = |t: f64, seed: u64| {
            let mut rng = Rng::new(seed);
            let mut counts = [0usize; 4];
            for _ in 0..4000 {
                let mut c = Choice::Sample {
                    temperature: t,
                    rng: &mut rng,
                };
                counts[c.pick(&logits)] += 1;
            }
            counts
        };
        assert_eq!(draw(1.0, 7), draw(1.0, 7), "same seed, same draws");
        let hot = draw(1.0, 7);
        assert_eq!(hot[3], 0, "a masked token is never drawn");
        // softmax(2, 1, 0) = 0.665, 0.245, 0.090
        assert!((hot[0] as f64 / 4000.0 - 0.665).abs() < 0.03, "{hot:?}");
        assert!((hot[2] as f64 / 4000.0 - 0.090).abs() < 0.02, "{hot:?}");
        let cold = draw(0.05, 7);
        assert!(
            cold[0] > 3990,
            "a low temperature is nearly greedy: {cold:?}"
        );
    }
}
