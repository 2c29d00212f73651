//! `flow validate`: every mistake reported at once, pointing at its line.

mod common;

use common::{fixture, flow, text};

fn validate(yaml: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, yaml).unwrap();
    let output = flow()
        .arg("validate")
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    (output.status.code().unwrap(), text(&output).1)
}

#[test]
fn five_mistakes_give_five_diagnostics_with_lines_and_exit_78() {
    let output = flow()
        .arg("validate")
        .arg(fixture("five_mistakes.yaml"))
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    // Each diagnostic: its code, and the file:line:column it points at.
    for (code, line) in [
        ("flow::unknown_kind", 6),
        ("flow::unknown_key", 10),
        ("flow::bad_size", 11),
        ("flow::missing_need", 15),
        ("flow::cycle", 19),
    ] {
        assert!(stderr.contains(code), "missing {code} in:\n{stderr}");
        assert!(
            stderr.contains(&format!("five_mistakes.yaml:{line}:")),
            "missing line {line} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean `exec`?"));
    assert!(stderr.contains("did you mean `needs`?"));
    assert!(stderr.contains("did you mean `count`?"));
    assert!(stderr.contains("[ a -> b -> a ]"));
    assert!(stderr.contains("has 5 configuration errors"));
}

#[test]
fn the_bundled_workflow_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = flow()
        .arg("validate")
        .arg(root.join("workflows/demo.yaml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
}

#[test]
fn port_types_must_match_between_connected_stages() {
    let (code, stderr) = validate(
        "name: p\ninputs: { files: x }\nstages:\n  a:\n    uses: exec\n    with: { command: [cp, '{input}', '{out}/a.wav'], output: audio }\n  b:\n    uses: exec\n    needs: [a]\n    with: { command: [cat, '{input.transcript}'] }\n",
        &[],
    );
    assert_eq!(code, 78);
    assert!(stderr.contains("flow::port_mismatch"), "{stderr}");
    assert!(
        stderr.contains("needs input of type `transcript`, but its upstream produces `audio` (a)"),
        "{stderr}"
    );
    assert!(stderr.contains("w.yaml:9:"), "{stderr}");
}

#[test]
fn duplicate_ids_unknown_models_and_devices_are_reported_together() {
    let (code, stderr) = validate(
        "name: d\ninputs: { items: [a.wav] }\nmodels:\n  whisper: { source: 'pip:pkg==1.0#m' }\nstages:\n  a:\n    uses: exec\n    model: wisper\n    device: sim:0\n    with: { command: ['true'] }\n  a:\n    uses: exec\n    device: gpu\n    with: { command: ['true'] }\n",
        &[],
    );
    assert_eq!(code, 78);
    assert!(
        stderr.contains("flow::duplicate_id") && stderr.contains("w.yaml:11:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("flow::unknown_model") && stderr.contains("did you mean `whisper`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("flow::unknown_device")
            && stderr.contains("`sim:0`, which is not declared"),
        "{stderr}"
    );
}

#[test]
fn yaml_syntax_errors_point_at_the_line() {
    let (code, stderr) = validate("name: s\ninputs: { files: x\nstages: {}\n", &[]);
    assert_eq!(code, 78);
    assert!(stderr.contains("flow::yaml"), "{stderr}");
    assert!(
        stderr.contains("w.yaml:3:") || stderr.contains("w.yaml:2:"),
        "{stderr}"
    );
}

#[test]
fn overrides_are_validated_like_the_file() {
    let yaml = "name: o\ninputs: { files: x }\nstages:\n  a:\n    uses: exec\n    with: { command: ['true'] }\n";
    let (code, stderr) = validate(
        yaml,
        &[
            "--set",
            "stages.a.device=gpu:1",
            "--set",
            "stages.nope.device=cpu",
        ],
    );
    assert_eq!(code, 78);
    assert!(stderr.contains("[--set:1:"), "{stderr}");
    assert!(stderr.contains("is not a device"), "{stderr}");
    assert!(stderr.contains("there is no stage `nope`"), "{stderr}");
    let (code, stderr) = validate(
        yaml,
        &[
            "--set",
            "stages.a.batch.max=8",
            "--set",
            "stages.a.device=cpu",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_missing_file_is_a_configuration_error() {
    let output = flow()
        .args(["validate", "/nonexistent/w.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(text(&output).1.contains("cannot read"));
}

#[test]
fn a_stage_listed_twice_in_needs_is_an_error() {
    let (code, stderr) = validate(
        "name: n\ninputs: { files: x }\nstages:\n  a:\n    uses: exec\n    with: { command: ['true'] }\n  b:\n    uses: exec\n    needs: [a, a]\n    with: { command: ['true'] }\n",
        &[],
    );
    assert_eq!(code, 78);
    assert!(
        stderr.contains("lists `a` twice in `needs`") && stderr.contains("w.yaml:9:"),
        "{stderr}"
    );
}
