//! `flow models fetch` and `flow models list`, end to end, against the
//! package index (silero-vad only: a small wheel).

mod common;

use common::{flow, text};

const WORKFLOW: &str = r#"name: vad
inputs: { items: ["a"] }
models:
  vad: { source: "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors" }
  local: { path: weights }
stages:
  noop:
    uses: exec
    with: { command: ["true"] }
"#;

#[test]
fn models_fetch_then_list_shows_them_and_a_second_fetch_needs_no_pip() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(dir.path().join("weights")).unwrap();
    std::fs::write(dir.path().join("weights/encoder.pt"), b"checkpoint").unwrap();
    let workflow = dir.path().join("vad.yaml");
    std::fs::write(&workflow, WORKFLOW).unwrap();
    let workflow = workflow.to_str().unwrap();

    let out = flow()
        .env("FLOW_MODEL_CACHE", &cache)
        .args(["models", "fetch", workflow])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("fetching silero-vad==6.2.3 (pip download)…"),
        "{stderr}"
    );
    assert!(stderr.contains("unpacked 18 files, "), "{stderr}");
    assert!(
        stderr.contains("2 models ready: 1 fetched, 1 already here"),
        "{stderr}"
    );
    let weights = cache.join("silero-vad-6.2.3/silero_vad/data/silero_vad_16k.safetensors");
    assert!(weights.is_file());
    assert!(
        stdout.contains(&format!(
            "vad: {}\n  safetensors: weights ",
            weights.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  PyTorch checkpoint: weights encoder.pt"),
        "{stdout}"
    );

    let out = flow()
        .env("FLOW_MODEL_CACHE", &cache)
        .args(["models", "list"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("package     version  "), "{stdout}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..2], ["silero-vad", "6.2.3"], "{stdout}");
    assert_eq!(row[4], "18", "{stdout}");
    assert_eq!(
        row.last().copied(),
        cache.join("silero-vad-6.2.3").to_str(),
        "{stdout}"
    );

    // Offline: no pip or python on `PATH`, the cache is enough (and checks
    // out by hash).
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = flow()
        .env("FLOW_MODEL_CACHE", &cache)
        .env("PATH", &empty)
        .env_remove("FLOW_PIP")
        .args(["models", "fetch", "--verify", workflow])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("silero-vad==6.2.3: cached, 18 files, "),
        "{stderr}"
    );
    assert!(stderr.contains("(hashes checked)"), "{stderr}");
}

#[test]
fn a_missing_pip_with_an_empty_cache_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("vad.yaml");
    std::fs::write(
        &workflow,
        WORKFLOW.replace("  local: { path: weights }\n", ""),
    )
    .unwrap();
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = flow()
        .env("FLOW_MODEL_CACHE", dir.path().join("cache"))
        .env("PATH", &empty)
        .env_remove("FLOW_PIP")
        .args(["models", "fetch", workflow.to_str().unwrap()])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: model `vad`: pip is not installed: install python3-pip, or give the model a `path:` (tried `python3 -m pip`, `pip3`, `pip`)"),
        "{stderr}"
    );
    assert!(stderr.contains("help: "), "{stderr}");
}

#[test]
fn list_on_an_empty_cache_says_how_to_fill_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = flow()
        .env("FLOW_MODEL_CACHE", dir.path())
        .args(["models", "list"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("flow models fetch FILE"), "{stderr}");
}
