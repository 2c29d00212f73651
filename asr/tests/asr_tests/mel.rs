//! The log-mel front end against faster-whisper's features for the first
//! 30 s window of `solo_us.16k.wav` (padded with 30 s of zeros).

use crate::common;

use flow_asr::mel::{MelFrontEnd, WINDOW_FRAMES, WINDOW_SAMPLES};

#[test]
fn log_mel_matches_faster_whisper_within_1e_3() {
    let samples = common::wav(&common::reference("solo_us.16k.wav"));
    let (shape, expected) = common::npy(&common::reference("solo_us.16k.mel.npy"));
    assert_eq!(shape, vec![80, 3000]);
    let mel = MelFrontEnd::new(80).compute(&samples, WINDOW_SAMPLES);
    let window = mel.window(0, WINDOW_FRAMES);
    let max_diff = window
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff <= 1e-3, "max |difference| {max_diff}");
}

#[test]
fn filterbank_rows_are_slaney_normalised_triangles() {
    let f = flow_asr::mel::mel_filters(16_000.0, 400, 80);
    assert_eq!(f.len(), 80 * 201);
    // Every filter has weight, and none is negative.
    for m in 0..80 {
        let row = &f[m * 201..(m + 1) * 201];
        assert!(row.iter().all(|&w| w >= 0.0));
        assert!(row.iter().sum::<f64>() > 0.0, "filter {m} is empty");
    }
}
