//! `audio.decode` on real files: every supported format, mono and stereo,
//! exactness at equal rates, resampling quality against sox, and the
//! reasons given for files that cannot be decoded.

mod common;

use std::path::{Path, PathBuf};

use common::{reference, s, sh, Harness};
use flow_engine::registry::{ResolvedOutput, Upstream};
use flow_media::{read_audio, AudioDecodeKind, AUDIO_FILE};

/// Decodes `path` at 16 kHz; returns the samples and the output's value.
fn decode(path: &Path) -> (Vec<f32>, serde_json::Value) {
    let harness = Harness::new(&AudioDecodeKind, serde_json::Value::Null);
    let (result, out_dir) = harness.run(s(path));
    let output = result.unwrap_or_else(|e| panic!("decoding `{}` failed: {e}", path.display()));
    let [output] = output.outputs.as_slice() else {
        panic!("expected one output, got {output:?}");
    };
    assert_eq!(output.port, "audio");
    assert_eq!(output.files, vec![AUDIO_FILE.to_string()]);
    let value = output.value.clone().unwrap();
    let samples = read_audio(&out_dir.join(AUDIO_FILE)).unwrap();
    assert_eq!(value["sample_rate"], 16000);
    assert_eq!(value["samples"], samples.len() as u64);
    let seconds = value["seconds"].as_f64().unwrap();
    assert!((seconds - samples.len() as f64 / 16000.0).abs() < 1e-9);
    (samples, value)
}

/// The samples of a 16-bit PCM WAV file, scaled to [-1, 1) (the test's own
/// reader, independent of symphonia).
fn read_pcm16(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let end = (at + 8 + len).min(bytes.len());
            return bytes[at + 8..end]
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
        }
        at += 8 + len + len % 2;
    }
    panic!("no data chunk in `{}`", path.display());
}

/// The best normalised correlation of `a` and `b` over lags within
/// ±`max_lag` samples, and that lag.
fn correlation(a: &[f32], b: &[f32], max_lag: isize) -> (f64, isize) {
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (x, y) = if lag >= 0 {
            (&a[lag as usize..], b)
        } else {
            (a, &b[(-lag) as usize..])
        };
        let n = x.len().min(y.len());
        let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let (p, q) = (f64::from(x[i]), f64::from(y[i]));
            xy += p * q;
            xx += p * p;
            yy += q * q;
        }
        let r = xy / (xx.sqrt() * yy.sqrt()).max(1e-12);
        if r > best.0 {
            best = (r, lag);
        }
    }
    best
}

/// A temporary folder with a stereo 44.1 kHz test signal (`tone.wav`:
/// 440 Hz left, 660 Hz right, 2 s) and 4 s of mono 22.05 kHz speech
/// (`speech.wav`, from the reference recording).
fn sources() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    let speech = dir.path().join("speech.wav");
    sh(
        "sox",
        &[
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            "-b",
            "16",
            s(&tone),
            "synth",
            "2",
            "sine",
            "440",
            "sine",
            "660",
            "gain",
            "-6",
        ],
    );
    sh(
        "sox",
        &[s(&reference("solo_us.wav")), s(&speech), "trim", "0", "4"],
    );
    (dir, tone, speech)
}

/// Encodes `source` to `name` with ffmpeg and `codec_args`.
fn encode(source: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    let target = source.with_file_name(name);
    let mut args = vec!["-nostdin", "-v", "error", "-y", "-i", s(source)];
    args.extend_from_slice(codec_args);
    args.push(s(&target));
    sh("ffmpeg", &args);
    target
}

/// Decodes `encoded` and checks it against the decode of its lossless
/// `source`: same length (within `slack` seconds), same audio (correlation
/// above `min_r`), and the reported source format.
fn same_audio(source: &Path, encoded: &Path, format: &str, channels: u64, min_r: f64, slack: f64) {
    let (expected, _) = decode(source);
    let (actual, value) = decode(encoded);
    assert_eq!(value["source_format"], format, "{value}");
    assert_eq!(value["source_channels"], channels, "{value}");
    let diff = (actual.len() as f64 - expected.len() as f64).abs() / 16000.0;
    assert!(
        diff <= slack,
        "`{}`: {} samples, the source gives {}",
        encoded.display(),
        actual.len(),
        expected.len()
    );
    let (r, lag) = correlation(&actual, &expected, 1200);
    assert!(
        r > min_r,
        "`{}`: correlation {r:.4} (lag {lag}) with the source, want > {min_r}",
        encoded.display()
    );
}

#[test]
fn wav_mono_and_stereo() {
    let (_dir, tone, speech) = sources();
    let (samples, value) = decode(&tone);
    assert_eq!(value["source_format"], "wav/pcm_s16le");
    assert_eq!(value["source_sample_rate"], 44100);
    assert_eq!(value["source_channels"], 2);
    assert_eq!(samples.len(), 32000);
    // The mono mix of 440 Hz and 660 Hz at -6 dB each peaks near 0.5.
    let peak = samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!((0.4..0.52).contains(&peak), "peak {peak}");
    let (samples, value) = decode(&speech);
    assert_eq!(value["source_channels"], 1);
    assert_eq!(value["source_sample_rate"], 22050);
    assert_eq!(samples.len(), 64000);
}

#[test]
fn flac_mono_and_stereo() {
    let (_dir, tone, speech) = sources();
    for (source, channels) in [(&tone, 2), (&speech, 1)] {
        let flac = encode(source, "a.flac", &["-c:a", "flac"]);
        same_audio(source, &flac, "flac", channels, 0.9999, 0.0);
    }
}

#[test]
fn mp3_mono_and_stereo() {
    let (_dir, tone, speech) = sources();
    for (source, channels) in [(&tone, 2), (&speech, 1)] {
        let mp3 = encode(source, "a.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]);
        same_audio(source, &mp3, "mp3", channels, 0.98, 0.06);
    }
}

#[test]
fn ogg_vorbis_mono_and_stereo() {
    let (_dir, tone, speech) = sources();
    for (source, channels) in [(&tone, 2), (&speech, 1)] {
        let ogg = encode(source, "a.ogg", &["-c:a", "libvorbis", "-q:a", "5"]);
        same_audio(source, &ogg, "ogg/vorbis", channels, 0.98, 0.06);
    }
}

#[test]
fn m4a_aac_mono_and_stereo() {
    let (_dir, tone, speech) = sources();
    for (source, channels) in [(&tone, 2), (&speech, 1)] {
        let m4a = encode(source, "a.m4a", &["-c:a", "aac", "-b:a", "128k"]);
        same_audio(source, &m4a, "mp4/aac", channels, 0.98, 0.1);
    }
}

#[test]
fn opus_goes_through_ffmpeg() {
    let (_dir, tone, speech) = sources();
    for (source, channels) in [(&tone, 2), (&speech, 1)] {
        let opus = encode(source, "a.opus", &["-c:a", "libopus", "-b:a", "96k"]);
        same_audio(source, &opus, "ogg/opus", channels, 0.98, 0.06);
        let (_, value) = decode(&opus);
        assert_eq!(value["source_sample_rate"], 48000, "{value}");
    }
}

#[test]
fn sixteen_khz_passes_through_exactly() {
    let path = reference("solo_us.16k.wav");
    let (samples, value) = decode(&path);
    assert_eq!(value["source_sample_rate"], 16000);
    assert_eq!(samples, read_pcm16(&path));
}

#[test]
fn resampling_matches_sox() {
    // solo_us.wav is espeak-ng speech at 22050 Hz; solo_us.16k.wav is the
    // same file resampled by sox. Measured on the first 5 s: correlation
    // 0.99983, RMS difference 1.65e-3 of full scale against a signal RMS of
    // 0.088 (-35 dB; the filters differ near 8 kHz), gain 1.0002, no lag.
    // The bars: correlation > 0.9995 and RMS difference < 3e-3; the test
    // also checks that output shifted by one sample fails the RMS bar.
    let (ours, value) = decode(&reference("solo_us.wav"));
    let sox = read_pcm16(&reference("solo_us.16k.wav"));
    assert_eq!(value["source_sample_rate"], 22050);
    assert_eq!(ours.len(), sox.len());
    let n = 5 * 16000;
    let (r, lag) = correlation(&ours[..n], &sox[..n], 4);
    assert_eq!(lag, 0, "our output is shifted by {lag} samples against sox");
    let rms = |ours: &[f32]| {
        (ours
            .iter()
            .zip(&sox[..n])
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt()
    };
    let shifted = rms(&ours[1..=n]);
    let rms = rms(&ours[..n]);
    eprintln!("against sox: correlation {r:.6}, RMS difference {rms:.2e}");
    assert!(r > 0.9995, "correlation {r:.6} with sox's resampling");
    assert!(rms < 3e-3, "RMS difference {rms:.2e} from sox's resampling");
    assert!(
        shifted > 3e-3,
        "a one-sample shift gives only {shifted:.2e}"
    );
}

#[test]
fn a_media_file_from_an_upstream_stage() {
    let (_dir, tone, _) = sources();
    let harness = Harness::new(&AudioDecodeKind, serde_json::json!({ "sample_rate": 8000 }));
    let upstream = vec![Upstream {
        stage: "fetch".to_string(),
        outputs: vec![ResolvedOutput {
            port: "media".to_string(),
            files: Vec::new(),
            value: Some(serde_json::json!({ "path": s(&tone) })),
        }],
    }];
    // The item itself is a URL; the fetched file is what gets decoded.
    let (result, out_dir) = harness.run_with("https://example.com/tone.wav", upstream, None);
    let output = result.unwrap();
    assert_eq!(
        output.outputs[0].value.as_ref().unwrap()["sample_rate"],
        8000
    );
    assert_eq!(read_audio(&out_dir.join(AUDIO_FILE)).unwrap().len(), 16000);
}

#[test]
fn a_url_without_fetch_says_what_to_add() {
    let harness = Harness::new(&AudioDecodeKind, serde_json::Value::Null);
    assert_eq!(
        harness.fail("https://user:secret@example.com/a.mp3"),
        "`https://example.com/a.mp3` is a URL: add a `media.fetch` stage to this stage's `needs` to download it"
    );
}

#[test]
fn empty_text_and_random_files_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::new(&AudioDecodeKind, serde_json::Value::Null);
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(harness.fail(s(&empty)), "empty file (0 bytes): `empty.wav`");
    let text = dir.path().join("notes.mp3");
    std::fs::write(&text, "hello, this is not audio\nat all\n").unwrap();
    assert_eq!(
        harness.fail(s(&text)),
        "not a media file: `notes.mp3` is plain text (starts with \"hello, this is not audio\")"
    );
    let noise = dir.path().join("noise.wav");
    let mut state = 0x2545_f491_u32;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(&noise, &bytes).unwrap();
    let first: Vec<String> = bytes[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        harness.fail(s(&noise)),
        format!(
            "not a media file: `noise.wav` is unrecognised binary data (starts with bytes {})",
            first.join(" ")
        )
    );
}

/// Keeps the first half of `path` in `name`.
fn cut_in_half(path: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(path).unwrap();
    let target = path.with_file_name(name);
    std::fs::write(&target, &bytes[..bytes.len() / 2]).unwrap();
    target
}

#[test]
fn truncated_flac_and_mp3_fail_with_the_time_reached() {
    let (_dir, _, speech) = sources();
    let harness = Harness::new(&AudioDecodeKind, serde_json::Value::Null);
    let flac = encode(&speech, "speech.flac", &["-c:a", "flac"]);
    let reason = harness.fail(s(&cut_in_half(&flac, "half.flac")));
    assert!(
        reason.starts_with("truncated FLAC stream after ")
            && reason.ends_with(" (its header says 4.0 s)"),
        "{reason}"
    );
    let mp3 = encode(
        &speech,
        "speech.mp3",
        &["-c:a", "libmp3lame", "-b:a", "64k"],
    );
    let reason = harness.fail(s(&cut_in_half(&mp3, "half.mp3")));
    assert!(
        reason.starts_with("truncated MP3 stream after ")
            && reason.ends_with(" (its header says 4.0 s)"),
        "{reason}"
    );
    // About half of the 4 s were decoded before the end.
    let at: f64 = reason["truncated MP3 stream after ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1.5..2.5).contains(&at), "{reason}");
}

#[test]
fn rejects_an_impossible_sample_rate() {
    use flow_engine::registry::StageKind;
    let problems = AudioDecodeKind.check(&serde_json::json!({ "sample_rate": 12 }));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, vec!["sample_rate"]);
    assert_eq!(
        problems[0].message,
        "`sample_rate` is 12 Hz, outside 1000 to 384000 Hz"
    );
    let problems = AudioDecodeKind.check(&serde_json::json!({ "rate": 16000 }));
    assert!(
        problems[0].message.contains("unknown field `rate`"),
        "{:?}",
        problems
    );
}

/// Overwrites 3000 bytes in the middle of `path` with garbage, in `name`.
fn damage_the_middle(path: &Path, name: &str) -> PathBuf {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    for (i, byte) in bytes[middle..middle + 3000].iter_mut().enumerate() {
        *byte = (i * 13) as u8;
    }
    let target = path.with_file_name(name);
    std::fs::write(&target, &bytes).unwrap();
    target
}

#[test]
fn damaged_and_cut_streams_are_not_silently_shortened() {
    let (_dir, _, speech) = sources();
    let harness = Harness::new(&AudioDecodeKind, serde_json::Value::Null);
    let flac = encode(&speech, "speech.flac", &["-c:a", "flac"]);
    let reason = harness.fail(s(&damage_the_middle(&flac, "damaged.flac")));
    assert!(reason.starts_with("damaged FLAC stream: "), "{reason}");
    assert!(reason.contains(" s of audio missing at "), "{reason}");
    let ogg = encode(&speech, "speech.ogg", &["-c:a", "libvorbis"]);
    let reason = harness.fail(s(&damage_the_middle(&ogg, "damaged.ogg")));
    assert!(reason.starts_with("damaged Ogg stream: "), "{reason}");
    let reason = harness.fail(s(&cut_in_half(&ogg, "half.ogg")));
    assert!(
        reason.starts_with("truncated Ogg stream after ")
            && reason.ends_with(" (the file ends without its end-of-stream page)"),
        "{reason}"
    );
}
