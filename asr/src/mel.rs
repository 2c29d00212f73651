//! Whisper's log-mel front end: 80 (or 128) mel bins from 25 ms Hann
//! windows every 10 ms of 16 kHz audio, log10, clamped to 8 decades below
//! the loudest bin, scaled to roughly [-1, 1].

use std::f64::consts::PI;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Samples per second Whisper expects.
pub const SAMPLE_RATE: usize = 16_000;
/// FFT size (25 ms).
pub const N_FFT: usize = 400;
/// Hop between frames (10 ms).
pub const HOP: usize = 160;
/// Frames in one 30 s window.
pub const WINDOW_FRAMES: usize = 3000;
/// Samples in one 30 s window.
pub const WINDOW_SAMPLES: usize = WINDOW_FRAMES * HOP;

/// A log-mel spectrogram, `n_mels × frames`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Mel {
    /// Mel bins (rows).
    pub n_mels: usize,
    /// Frames (columns), 100 per second.
    pub frames: usize,
    /// The values, `n_mels × frames`.
    pub data: Vec<f32>,
}

impl Mel {
    /// Frames `start..start + len` as an `n_mels × WINDOW_FRAMES` window,
    /// zero-padded past the end (as faster-whisper's `pad_or_trim` does).
    pub fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.n_mels * WINDOW_FRAMES];
        let end = (start + len.min(WINDOW_FRAMES)).min(self.frames);
        for m in 0..self.n_mels {
            let row = &self.data[m * self.frames..(m + 1) * self.frames];
            if start < end {
                out[m * WINDOW_FRAMES..m * WINDOW_FRAMES + end - start]
                    .copy_from_slice(&row[start..end]);
            }
        }
        out
    }
}

/// Computes mel spectrograms; holds the filterbank and the FFT plan.
pub struct MelFrontEnd {
    n_mels: usize,
    filters: Vec<f64>,
    window: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl MelFrontEnd {
    /// A front end with `n_mels` bins (80 for most Whisper models, 128 for
    /// large-v3).
    pub fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f64 / N_FFT as f64).cos())
            .collect();
        Self {
            n_mels,
            filters: mel_filters(SAMPLE_RATE as f64, N_FFT, n_mels),
            window,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    /// The log-mel spectrogram of `samples` followed by `padding` zeros:
    /// one frame per hop (centred, reflect-padded STFT, last frame dropped).
    pub fn compute(&self, samples: &[f32], padding: usize) -> Mel {
        let len = samples.len() + padding;
        let frames = len / HOP;
        let bins = N_FFT / 2 + 1;
        let half = N_FFT / 2;
        let at = |i: isize| -> f64 {
            // Reflect padding around the (zero-extended) signal.
            let n = len as isize;
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            samples.get(j as usize).map_or(0.0, |&s| f64::from(s))
        };
        let mut power = vec![0.0f64; bins];
        let mut buf = vec![Complex::new(0.0, 0.0); N_FFT];
        let mut mel = vec![0.0f64; self.n_mels * frames];
        for f in 0..frames {
            let start = (f * HOP) as isize - half as isize;
            for (k, b) in buf.iter_mut().enumerate() {
                *b = Complex::new(at(start + k as isize) * self.window[k], 0.0);
            }
            self.fft.process(&mut buf);
            for (p, c) in power.iter_mut().zip(&buf[..bins]) {
                *p = c.norm_sqr();
            }
            for m in 0..self.n_mels {
                let row = &self.filters[m * bins..(m + 1) * bins];
                mel[m * frames + f] = row.iter().zip(&power).map(|(w, p)| w * p).sum();
            }
        }
        let mut max = f64::NEG_INFINITY;
        for v in &mut mel {
            *v = v.max(1e-10).log10();
            max = max.max(*v);
        }
        let data = mel
            .iter()
            .map(|v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32)
            .collect();
        Mel {
            n_mels: self.n_mels,
            frames,
            data,
        }
    }
}

/// librosa's Slaney-style mel filterbank (`htk=False`, `norm="slaney"`),
/// `n_mels × (n_fft / 2 + 1)`, row-major.
pub fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f64> {
    let bins = n_fft / 2 + 1;
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= min_log_hz {
            min_log_mel + (f / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    };
    let top = hz_to_mel(sample_rate / 2.0);
    let points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let freqs: Vec<f64> = (0..bins)
        .map(|i| i as f64 * sample_rate / n_fft as f64)
        .collect();
    let mut out = vec![0.0; n_mels * bins];
    for m in 0..n_mels {
        let (lo, mid, hi) = (points[m], points[m + 1], points[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, &f) in freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            out[m * bins + k] = lower.min(upper).max(0.0) * norm;
        }
    }
    out
}
