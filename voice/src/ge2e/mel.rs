//! The GE2E front end: librosa's `melspectrogram` as Resemblyzer calls it
//! (`sr=16000, n_fft=400, hop_length=160, n_mels=40`; a periodic Hann
//! window, `center=True` with librosa ≥ 0.10's zero padding, power 2, the
//! Slaney-style mel filterbank with Slaney area normalisation). Not a log
//! mel: the network reads mel power.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Sample rate the encoder expects (Hz).
pub const SAMPLE_RATE: usize = 16_000;
/// FFT size and window length: 25 ms.
pub const N_FFT: usize = 400;
/// Hop between frames: 10 ms.
pub const HOP: usize = 160;
/// Mel bands per frame.
pub const N_MELS: usize = 40;
/// FFT bins kept (`n_fft / 2 + 1`).
pub const N_BINS: usize = N_FFT / 2 + 1;

/// A mel spectrogram: `frames × N_MELS` power values, frame-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Mel {
    /// Number of frames (`1 + samples / HOP`).
    pub frames: usize,
    /// `frames × N_MELS` values; frame `t` is `data[t * N_MELS..(t + 1) * N_MELS]`.
    pub data: Vec<f32>,
}

impl Mel {
    /// The 40 mel values of frame `t`.
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * N_MELS..(t + 1) * N_MELS]
    }
}

/// The mel front end: filterbank, window and FFT plan, built once.
pub struct MelFrontEnd {
    /// `N_MELS × N_BINS` filter weights, band-major.
    filters: Vec<f64>,
    window: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for MelFrontEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelFrontEnd").finish_non_exhaustive()
    }
}

impl Default for MelFrontEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontEnd {
    /// Builds the filterbank and the FFT plan.
    pub fn new() -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .collect();
        Self {
            filters: mel_filters(SAMPLE_RATE as f64, N_FFT, N_MELS),
            window,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    /// The mel filter weights, `N_MELS × N_BINS` (as librosa's
    /// `filters.mel(sr=16000, n_fft=400, n_mels=40)`, in f64).
    pub fn filters(&self) -> &[f64] {
        &self.filters
    }

    /// The mel power spectrogram of 16 kHz mono `samples`: `1 + len / 160`
    /// frames, frame `t` centred on sample `160 t` (zeros beyond the ends).
    pub fn compute(&self, samples: &[f32]) -> Mel {
        let frames = 1 + samples.len() / HOP;
        let half = (N_FFT / 2) as isize;
        let mut data = Vec::with_capacity(frames * N_MELS);
        let mut buf = vec![Complex::new(0.0, 0.0); N_FFT];
        let mut scratch = vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0.0f64; N_BINS];
        for t in 0..frames {
            let start = (t * HOP) as isize - half;
            for (n, slot) in buf.iter_mut().enumerate() {
                let i = start + n as isize;
                let x = if i >= 0 && (i as usize) < samples.len() {
                    f64::from(samples[i as usize])
                } else {
                    0.0
                };
                *slot = Complex::new(x * self.window[n], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for band in self.filters.chunks_exact(N_BINS) {
                let v: f64 = band.iter().zip(&power).map(|(w, p)| w * p).sum();
                data.push(v as f32);
            }
        }
        Mel { frames, data }
    }
}

/// Hz → mel on the Slaney scale (librosa's default, `htk=False`): linear
/// below 1 kHz, logarithmic above.
pub fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

/// Mel → Hz, the inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// librosa's `filters.mel(sr, n_fft, n_mels)` with its defaults (`fmin=0`,
/// `fmax=sr/2`, `htk=False`, `norm="slaney"`): triangles between
/// `n_mels + 2` points equally spaced in mel, each scaled to unit area.
/// `n_mels × (n_fft / 2 + 1)` weights, band-major.
pub fn mel_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f64> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|k| k as f64 * (sr / 2.0) / (bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0.0; n_mels * bins];
    for m in 0..n_mels {
        let (f0, f1, f2) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (f2 - f0);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - f0) / (f1 - f0);
            let upper = (f2 - f) / (f2 - f1);
            weights[m * bins + k] = lower.min(upper).max(0.0) * enorm;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_is_linear_below_1khz() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        for hz in [0.0, 123.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }

    #[test]
    fn filterbank_triangles_have_unit_area_in_hz() {
        let w = mel_filters(16000.0, 400, 40);
        assert_eq!(w.len(), 40 * 201);
        // Slaney normalisation: each triangle's integral over Hz is ~1
        // (bins are 40 Hz apart; coarse for the lowest, narrow bands).
        for band in w.chunks_exact(201).skip(8) {
            let area: f64 = band.iter().sum::<f64>() * 40.0;
            assert!((area - 1.0).abs() < 0.05, "{area}");
        }
    }

    #[test]
    fn frame_count_and_a_sine_lands_in_its_band() {
        let fe = MelFrontEnd::new();
        let sine: Vec<f32> = (0..16000)
            .map(|n| (2.0 * std::f32::consts::PI * 440.0 * n as f32 / 16000.0).sin())
            .collect();
        let mel = fe.compute(&sine);
        assert_eq!(mel.frames, 101);
        let frame = mel.frame(50);
        let peak = (0..N_MELS)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap_or(0);
        // 440 Hz is 6.6 mel: between the centres of bands 5 and 6.
        assert!(peak == 5 || peak == 6, "{peak}");
    }
}
