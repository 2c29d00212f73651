//! Texts per second of flow's text encoder on the CPU.
//!
//! `embed_bench SOURCE` prints the model folder of a store source (fetching
//! it); `embed_bench DIR TEXTS.jsonl [BATCH [burn]]` embeds every `text` of
//! the file (one JSON object per line) and prints the throughput, after one
//! warm-up batch: with the CPU kernels `flow` runs on the CPU, or with
//! `burn`, burn's implementation (the CUDA code path) on burn's CPU backend.

use std::time::Instant;

use flow_engine::device::DeviceId;
use flow_engine::spec::ModelSpec;

fn main() {
    if let Err(e) = run() {
        eprintln!("embed_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [source] => {
            let spec = ModelSpec {
                source: Some(source.clone()),
                path: None,
            };
            let model = flow_models::Store::default()
                .ensure(&spec, std::path::Path::new("."), &mut |_| {})
                .map_err(|e| e.to_string())?;
            println!("{}", model.dir.display());
            Ok(())
        }
        [dir, file, rest @ ..] => {
            let batch: usize = rest
                .first()
                .map_or(Ok(32), |b| b.parse())
                .map_err(|e| format!("batch: {e}"))?;
            let burn = rest.get(1).is_some_and(|a| a == "burn");
            let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            let texts: Vec<String> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["text"].as_str().map(str::to_string))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let dir = std::path::Path::new(dir);
            let embedder = match burn {
                true => flow_text::Embedder::load_burn(dir, DeviceId::Cpu)?,
                false => flow_text::Embedder::load(dir, DeviceId::Cpu)?,
            };
            embedder.embed(&refs[..refs.len().min(batch)], batch)?;
            let start = Instant::now();
            let vectors = embedder.embed(&refs, batch)?;
            let secs = start.elapsed().as_secs_f64();
            let dim = embedder.dim();
            println!(
                "flow ({}): {} texts ({} x {dim}) in {secs:.2} s: {:.1} texts/s",
                if burn { "burn ndarray" } else { "CPU kernels" },
                refs.len(),
                vectors.len() / dim,
                refs.len() as f64 / secs
            );
            Ok(())
        }
        _ => Err("usage: embed_bench SOURCE | embed_bench DIR TEXTS.jsonl [BATCH [burn]]".into()),
    }
}
