//! Runs the `custom-stage` binary on a copy of the example workflow.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXAMPLE: &str = env!("CARGO_MANIFEST_DIR");

fn run(workflow: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custom-stage"))
        .arg(workflow)
        .output()
        .expect("the binary starts")
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Copies `workflow.yaml` and `texts/` into a fresh folder.
fn copy_example() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(EXAMPLE);
    std::fs::copy(
        example.join("workflow.yaml"),
        dir.path().join("workflow.yaml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("texts")).unwrap();
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(example.join("texts")).unwrap() {
        let path = entry.unwrap().path();
        let copy = dir.path().join("texts").join(path.file_name().unwrap());
        std::fs::copy(&path, &copy).unwrap();
        texts.push(copy);
    }
    texts.sort();
    (dir, texts)
}

#[test]
fn counts_every_text_and_reuses_results() {
    let (dir, texts) = copy_example();
    assert_eq!(texts.len(), 3);
    let workflow = dir.path().join("workflow.yaml");

    let first = run(&workflow);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        text(&first).contains("3 items, 3 succeeded, 0 failed"),
        "{}",
        text(&first)
    );

    for path in &texts {
        let name = path.file_name().unwrap().to_string_lossy();
        let content = std::fs::read_to_string(path).unwrap();
        assert!(!content.trim().is_empty(), "{name} is empty");
        let report = dir.path().join("out").join(format!("{name}.json"));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("a report per text"))
                .unwrap();
        assert_eq!(report["item"], name.as_ref());
        let counts = &report["results"]["count"][0];
        assert_eq!(counts["port"], "counts");
        let value = &counts["value"];
        assert_eq!(
            value["words"],
            content.split_whitespace().count(),
            "{name}: {report:#}"
        );
        assert_eq!(value["lines"], content.lines().count(), "{name}");
        let top = value["top"].as_array().unwrap();
        assert!(
            !top.is_empty() && top.len() <= 3,
            "{name}: `top: 3` lists {}",
            top.len()
        );
        let counts: Vec<u64> = top.iter().map(|pair| pair[1].as_u64().unwrap()).collect();
        assert!(
            counts.windows(2).all(|w| w[0] >= w[1]),
            "{name}: not most frequent first: {counts:?}"
        );
    }

    // Nothing changed: the counts come from the cache, the sink runs again.
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let second = run(&workflow);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        text(&second).contains("3 results computed, 3 reused"),
        "{}",
        text(&second)
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        3
    );
}

#[test]
fn unknown_setting_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("workflow.yaml");
    std::fs::write(
        &workflow,
        "name: typo\ninputs:\n  files: \"texts/*.txt\"\nstages:\n  count:\n    uses: text.wordcount\n    with:\n      topp: 3\n",
    )
    .unwrap();
    let output = run(&workflow);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("topp"), "{message}");
    assert!(
        message.contains("takes lowercase, top"),
        "the kind's help: {message}"
    );
    assert!(
        message.contains("workflow.yaml:8:"),
        "the error points at line 8: {message}"
    );
    assert!(!dir.path().join(".flow").exists(), "nothing ran");
}
