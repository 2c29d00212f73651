//! Cutting audio into the model's frames, as `silero_vad` does: 512-sample
//! frames, the last one padded with zeros, each preceded by the last 64
//! samples of the frame before (zeros before the first) and reflect-padded
//! by 64 on the right; then the four STFT windows of each frame.

use super::model::{COLUMNS, CONTEXT, FRAME, HOP, N_FFT, REFLECT};

/// Frames of `samples` samples: `ceil(samples / 512)`. The last, partial
/// frame is padded with zeros (as `get_speech_timestamps` does).
pub fn count(samples: usize) -> usize {
    samples.div_ceil(FRAME)
}

/// Sample `i` of `audio`, zero past its end.
fn at(audio: &[f32], i: usize) -> f32 {
    audio.get(i).copied().unwrap_or(0.0)
}

/// The 640 samples the model sees for frame `f`: context, frame, reflection.
fn padded(audio: &[f32], f: usize, out: &mut [f32; CONTEXT + FRAME + REFLECT]) {
    let start = f * FRAME;
    for (k, v) in out[..CONTEXT].iter_mut().enumerate() {
        *v = match f {
            0 => 0.0,
            _ => at(audio, start - CONTEXT + k),
        };
    }
    for (k, v) in out[CONTEXT..CONTEXT + FRAME].iter_mut().enumerate() {
        *v = at(audio, start + k);
    }
    // torch's `reflect`: the edge sample is not repeated.
    let n = CONTEXT + FRAME;
    for k in 0..REFLECT {
        out[n + k] = out[n - 2 - k];
    }
}

/// Appends the STFT windows of frames `first..first + steps` of every
/// stream to `out`, time-major: for each step `t`, for each stream `s`, the
/// [`COLUMNS`] windows of [`N_FFT`] samples. Streams shorter than the step
/// get frames of zeros (their probabilities are dropped afterwards).
///
/// The result is a `[steps · streams · COLUMNS, N_FFT]` matrix.
pub fn windows(streams: &[&[f32]], first: usize, steps: usize, out: &mut Vec<f32>) {
    out.clear();
    out.reserve(steps * streams.len() * COLUMNS * N_FFT);
    let mut buf = [0.0f32; CONTEXT + FRAME + REFLECT];
    for f in first..first + steps {
        for audio in streams {
            padded(audio, f, &mut buf);
            for j in 0..COLUMNS {
                out.extend_from_slice(&buf[j * HOP..j * HOP + N_FFT]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_up_and_carry_context() {
        assert_eq!(count(0), 0);
        assert_eq!(count(1), 1);
        assert_eq!(count(1024), 2);
        assert_eq!(count(1025), 3);
        let audio: Vec<f32> = (0..1100).map(|i| i as f32).collect();
        let mut buf = [0.0; CONTEXT + FRAME + REFLECT];
        padded(&audio, 0, &mut buf);
        assert_eq!(buf[..CONTEXT], [0.0; CONTEXT]);
        assert_eq!(buf[CONTEXT], 0.0);
        assert_eq!(buf[CONTEXT + FRAME - 1], 511.0);
        assert_eq!(buf[CONTEXT + FRAME], 510.0);
        assert_eq!(buf[CONTEXT + FRAME + REFLECT - 1], 447.0);
        padded(&audio, 1, &mut buf);
        assert_eq!(buf[0], 448.0);
        assert_eq!(buf[CONTEXT], 512.0);
        padded(&audio, 2, &mut buf);
        assert_eq!(buf[CONTEXT + 75], 1099.0);
        assert_eq!(buf[CONTEXT + 76], 0.0);
        let mut out = Vec::new();
        windows(&[&audio, &audio[..10]], 0, 2, &mut out);
        assert_eq!(out.len(), 2 * 2 * COLUMNS * N_FFT);
        // step 1, stream 1 (10 samples): context and frame are zeros.
        let w = &out[3 * COLUMNS * N_FFT..];
        assert!(w.iter().all(|&v| v == 0.0));
    }
}
