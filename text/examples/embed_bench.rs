//! Texts per second of flow's text encoder on the CPU.
//!
//! `embed_bench SOURCE` prints the model folder of a store source (fetching
//! it); `embed_bench DIR TEXTS.jsonl [BATCH [burn|DEVICE]]` embeds every
//! `text` of the file (one JSON object per line) and prints the throughput,
//! after one warm-up batch: with the CPU kernels `flow` runs on the CPU, with
//! `burn`, burn's implementation (the GPU code path) on burn's CPU backend,
//! or with a device (`cuda:0`, `vulkan:0`), burn on that GPU.

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
            let device: DeviceId = match rest.get(1) {
                Some(d) if d != "burn" => d.parse().map_err(|e| format!("{e}"))?,
                _ => DeviceId::Cpu,
            };
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
                false => flow_text::Embedder::load(dir, device)?,
            };
            embedder.embed(&refs[..refs.len().min(batch)], batch)?;
            let start = Instant::now();
            let vectors = embedder.embed(&refs, batch)?;
            let secs = start.elapsed().as_secs_f64();
            let dim = embedder.dim();
            println!(
                "flow ({}): {} texts ({} x {dim}) in {secs:.2} s: {:.1} texts/s",
                match (burn, device) {
                    (true, _) => "burn ndarray".to_string(),
                    (false, DeviceId::Cpu) => "CPU kernels".to_string(),
                    (false, d) => format!("burn on {d}"),
                },
                refs.len(),
                vectors.len() / dim,
                refs.len() as f64 / secs
            );
            Ok(())
        }
        _ => Err(
            "usage: embed_bench SOURCE | embed_bench DIR TEXTS.jsonl [BATCH [burn|DEVICE]]".into(),
        ),
    }
}
