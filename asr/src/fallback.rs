//! Decoding windows with Whisper's temperature fallback, as faster-whisper
//! does it: decode at the first temperature; a window whose output is too
//! repetitive (compression ratio above the threshold) or too unlikely (mean
//! log-probability below the threshold) is decoded again at the next
//! temperature, sampling `best_of` candidates; if every temperature fails,
//! the likeliest result whose compression ratio passed (else the likeliest
//! of all) is kept. Windows that are silence are never re-decoded.

use crate::decode::{decode, Choice, Decoded, Rng};
use crate::network::Network;
use crate::transcribe::{compression_ratio, Options, Transcriber};

/// One decoded window with the figures that judged it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Tokens and log-probabilities.
    pub decoded: Decoded,
    /// Mean log-probability per token (the end of text counted).
    pub avg_logprob: f64,
    /// Of the decoded text, trimmed.
    pub compression_ratio: f64,
    /// The temperature that produced it.
    pub temperature: f64,
}

impl Outcome {
    fn new<N: Network>(t: &Transcriber<N>, decoded: Decoded, temperature: f64) -> Self {
        let avg_logprob = decoded.sum_logprob / (decoded.tokens.len() + 1) as f64;
        let text = t.vocab.decode(&decoded.tokens);
        Self {
            compression_ratio: compression_ratio(text.trim()),
            avg_logprob,
            decoded,
            temperature,
        }
    }

    /// Whether the window is silence by the no-speech rule.
    pub fn is_silence(&self, opts: &Options) -> bool {
        let silent = opts
            .no_speech_threshold
            .is_some_and(|th| self.decoded.no_speech_prob > th);
        silent
            && !opts
                .log_prob_threshold
                .is_some_and(|lp| self.avg_logprob > lp)
    }

    fn cr_ok(&self, opts: &Options) -> bool {
        !opts
            .compression_ratio_threshold
            .is_some_and(|th| self.compression_ratio > th)
    }

    fn needs_fallback(&self, opts: &Options) -> bool {
        let low = opts
            .log_prob_threshold
            .is_some_and(|lp| self.avg_logprob < lp);
        let silence = opts
            .no_speech_threshold
            .is_some_and(|th| self.decoded.no_speech_prob > th)
            && low;
        (!self.cr_ok(opts) || low) && !silence
    }
}

impl<N: Network> Transcriber<N> {
    /// Decodes a batch of encoded windows (`audio`: `[n, frames, d_model]`)
    /// after `prompts` (one per window, all the same length), with the
    /// temperature fallback of `opts`. The first temperature runs batched;
    /// fallbacks run per window.
    pub fn decode_windows(
        &self,
        audio: N::Audio,
        prompts: &[Vec<u32>],
        opts: &Options,
        rng: &mut Rng,
    ) -> Vec<Outcome> {
        let temps: &[f64] = match opts.temperatures.is_empty() {
            true => &[0.0],
            false => &opts.temperatures,
        };
        let first = self.decode_at(audio.clone(), prompts, temps[0], opts, rng);
        first
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| {
                if temps.len() == 1 || !outcome.needs_fallback(opts) {
                    return outcome;
                }
                let row = self.model.select(&audio, &[i]);
                self.fall_back(row, &prompts[i], outcome, &temps[1..], opts, rng)
            })
            .collect()
    }

    fn fall_back(
        &self,
        row: N::Audio,
        prompt: &[u32],
        first: Outcome,
        temps: &[f64],
        opts: &Options,
        rng: &mut Rng,
    ) -> Outcome {
        let mut tried = vec![first];
        for &t in temps {
            let outcome = self
                .decode_at(row.clone(), &[prompt.to_vec()], t, opts, rng)
                .pop()
                .unwrap_or_else(|| tried[0].clone());
            if !outcome.needs_fallback(opts) {
                return outcome;
            }
            tried.push(outcome);
        }
        let best = |set: Vec<Outcome>| {
            set.into_iter()
                .max_by(|a, b| a.avg_logprob.total_cmp(&b.avg_logprob))
        };
        let passing: Vec<Outcome> = tried.iter().filter(|o| o.cr_ok(opts)).cloned().collect();
        best(passing)
            .or_else(|| best(tried.clone()))
            .unwrap_or_else(|| tried[0].clone())
    }

    /// Decodes every window at one temperature: greedy at 0, otherwise the
    /// best of `opts.best_of` samples per window.
    fn decode_at(
        &self,
        audio: N::Audio,
        prompts: &[Vec<u32>],
        temperature: f64,
        opts: &Options,
        rng: &mut Rng,
    ) -> Vec<Outcome> {
        let max_new = self
            .model
            .dims()
            .text_ctx
            .saturating_sub(prompts.first().map_or(0, Vec::len))
            .max(1);
        if temperature <= 0.0 {
            let mut state = self.model.start(audio);
            let decoded = decode(
                &self.model,
                &mut state,
                prompts,
                &self.rules,
                max_new,
                &mut Choice::Greedy,
            );
            return decoded
                .into_iter()
                .map(|d| Outcome::new(self, d, 0.0))
                .collect();
        }
        let k = opts.best_of.max(1);
        (0..prompts.len())
            .map(|i| {
                let rows = self.model.select(&audio, &vec![i; k]);
                let mut state = self.model.start(rows);
                let candidates = decode(
                    &self.model,
                    &mut state,
                    &vec![prompts[i].clone(); k],
                    &self.rules,
                    max_new,
                    &mut Choice::Sample { temperature, rng },
                );
                // CTranslate2 ranks hypotheses by log-probability per token.
                let score = |d: &Decoded| d.sum_logprob / (d.tokens.len() + 1) as f64;
                let best = candidates
                    .into_iter()
                    .max_by(|a, b| score(a).total_cmp(&score(b)))
                    .unwrap_or(Decoded {
                        tokens: Vec::new(),
                        sum_logprob: f64::NEG_INFINITY,
                        no_speech_prob: 0.0,
                    });
                Outcome::new(self, best, temperature)
            })
            .collect()
    }
}
