//! The committed JSON Schema matches the code, and graphs render.

mod common;

use common::{flow, text};

#[test]
fn committed_schema_matches_the_types() {
    let output = flow().arg("schema").output().unwrap();
    assert!(output.status.success());
    let generated: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/workflow.schema.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        generated == committed,
        "schemas/workflow.schema.json is out of date: run `cargo run -- schema > schemas/workflow.schema.json`"
    );
    let stage = &generated["$defs"]["StageSpec"];
    assert_eq!(stage["additionalProperties"], false);
    assert!(stage["properties"]["needs"]["description"]
        .as_str()
        .unwrap()
        .contains("matched"));
}

#[test]
fn dot_output_is_accepted_by_graphviz() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = flow()
        .args(["graph", "--format", "dot"])
        .arg(root.join("workflows/demo.yaml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let mut dot = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("graphviz `dot` is installed by scripts/setup.sh");
    use std::io::Write;
    dot.stdin.take().unwrap().write_all(&output.stdout).unwrap();
    let svg = dot.wait_with_output().unwrap();
    assert!(svg.status.success());
    let svg = String::from_utf8_lossy(&svg.stdout);
    assert!(svg.contains("<svg") && svg.contains("checksum"));
}

#[test]
fn mermaid_output_has_every_edge() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = flow()
        .args(["graph", "--format", "mermaid"])
        .arg(root.join("workflows/demo.yaml"))
        .output()
        .unwrap();
    let (stdout, _) = text(&output);
    assert!(stdout.starts_with("flowchart LR"));
    for edge in [
        "copy -- audio --> size",
        "copy -- audio --> checksum",
        "size -- files --> report",
        "checksum -- files --> report",
    ] {
        assert!(stdout.contains(edge), "{stdout}");
    }
}

#[test]
fn stages_lists_kinds_with_ports() {
    let output = flow().arg("stages").output().unwrap();
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains("exec") && stdout.contains("sink.files") && stdout.contains("out: files")
    );
}
