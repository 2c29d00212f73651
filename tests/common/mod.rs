//! Helpers for end-to-end tests of the `flow` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `flow` binary under test.
pub fn flow() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow"));
    cmd.env("FLOW_NO_PROGRESS", "1");
    cmd
}

/// Runs `flow ARGS` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    flow()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("flow runs")
}

/// stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Writes `count` text items `items/itemNN.txt` (plus extra names) in `dir`.
pub fn make_items(dir: &Path, names: &[String]) {
    std::fs::create_dir_all(dir.join("items")).unwrap();
    for name in names {
        std::fs::write(dir.join("items").join(name), format!("content of {name}\n")).unwrap();
    }
}

/// A workflow of `step.sh` stages: a → b → c, a → d, then a sink with
/// copied files. `sleep` is the seconds each execution takes.
pub fn step_workflow(dir: &Path, sleep: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("marks")).unwrap();
    let step = fixture("step.sh");
    let step = step.to_string_lossy();
    let stage = |id: &str, input: &str| {
        format!(
            r#"    with: {{ command: ["{step}", "{id}", "{{item}}", "{input}", "{{out}}", "marks", "{sleep}"] }}"#
        )
    };
    let yaml = format!(
        "name: steps\ninputs: {{ files: \"items/*.txt\" }}\nstages:\n  a:\n    uses: exec\n{}\n  b:\n    uses: exec\n    needs: [a]\n{}\n  c:\n    uses: exec\n    needs: [b]\n{}\n  d:\n    uses: exec\n    needs: [a]\n{}\n  out:\n    uses: sink.files\n    needs: [c, d]\n    with: {{ dir: out, copy_files: true }}\n",
        stage("a", "{input}"),
        stage("b", "{input.a}"),
        stage("c", "{input.b}"),
        stage("d", "{input.a}"),
    );
    let path = dir.join("steps.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// How many times each `ITEM.STAGE` ran, from the marker files.
pub fn marks(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("marks")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let lines = std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .lines()
                .count();
            counts.insert(name, lines);
        }
    }
    counts
}

/// Every copied output file under `out/`, relative path → content
/// (the JSON reports are left out: they hold absolute paths).
pub fn outputs(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "txt") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(&dir.join("out"), &dir.join("out"), &mut out);
    out
}
