//! Checkpoints and resume: a run killed with SIGKILL continues where it
//! stopped, finishes with the same outputs as an uninterrupted run, and does
//! not execute finished item-stages again.

mod common;

use std::time::{Duration, Instant};

use common::{flow, make_items, marks, outputs, run_in, step_workflow, text};

fn twenty_items(dir: &std::path::Path) {
    let names: Vec<String> = (0..20).map(|i| format!("item{i:02}.txt")).collect();
    make_items(dir, &names);
}

/// Item-stages recorded as done in the latest run, as `ITEM.STAGE`.
fn done_item_stages(dir: &std::path::Path) -> Vec<String> {
    let output = run_in(
        dir,
        &["status", "--items", "--format", "json", "-w", "steps.yaml"],
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut done = Vec::new();
    for item in report["items"].as_array().unwrap() {
        let id = item["item"].as_str().unwrap();
        for (stage, state) in item["stages"].as_object().unwrap() {
            if state == "done" || state == "cached" {
                done.push(format!("{id}.{stage}"));
            }
        }
    }
    done
}

#[test]
fn kill_nine_then_rerun_finishes_identically_without_redoing_work() {
    // The reference: an uninterrupted run.
    let reference = tempfile::tempdir().unwrap();
    twenty_items(reference.path());
    step_workflow(reference.path(), "0");
    let output = run_in(reference.path(), &["run", "steps.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let expected = outputs(reference.path());
    assert_eq!(expected.len(), 40, "c and d for 20 items");
    assert!(marks(reference.path()).values().all(|n| *n == 1));

    // The same workflow, slower, killed mid-run.
    let dir = tempfile::tempdir().unwrap();
    twenty_items(dir.path());
    step_workflow(dir.path(), "0.1");
    let mut child = flow()
        .current_dir(dir.path())
        .args(["run", "steps.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while marks(dir.path()).values().sum::<usize>() < 25 {
        assert!(Instant::now() < deadline, "the run made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = marks(dir.path());
    let ran_before: usize = before.values().sum();
    assert!(
        ran_before < 80,
        "killed before the end ({ran_before} executions)"
    );
    let done = done_item_stages(dir.path());
    assert!(
        !done.is_empty(),
        "some results were checkpointed before the kill"
    );

    // Rerun: finishes, reuses what was done.
    let output = run_in(dir.path(), &["run", "steps.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let after = marks(dir.path());
    for key in &done {
        assert_eq!(
            after.get(key),
            before.get(key),
            "{key} was checkpointed yet executed again"
        );
    }
    assert_eq!(after.len(), 80, "every item-stage ran");
    let repeated: usize = after.values().map(|n| n - 1).sum();
    // Only work not yet durable at the kill may run twice: what was in
    // flight (at most the per-stage concurrency, cores, in each of the 4
    // stages) and what finished while the group commit's last flush was
    // still writing (at most as much again). Without checkpoints every one
    // of the ≥ 25 executions before the kill would repeat.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!(repeated <= 2 * 4 * cores, "{repeated} executions repeated");
    assert_eq!(outputs(dir.path()), expected);
}

#[test]
fn resume_continues_the_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    twenty_items(dir.path());
    step_workflow(dir.path(), "0.05");
    let mut child = flow()
        .current_dir(dir.path())
        .args(["run", "steps.yaml", "--set", "stages.out.with.dir=out"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while marks(dir.path()).values().sum::<usize>() < 10 {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let output = run_in(dir.path(), &["status"]);
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains("run 1 of") && stdout.contains("unfinished"),
        "{stdout}"
    );

    let output = run_in(dir.path(), &["resume"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming run 1"), "{stderr}");
    assert!(stderr.contains("run 1: 20 items, 20 succeeded"), "{stderr}");
    assert_eq!(outputs(dir.path()).len(), 40);
    let output = run_in(dir.path(), &["resume"]);
    assert_ne!(output.status.code(), Some(0), "nothing left to resume");
}

#[test]
fn a_cached_rerun_executes_nothing_and_fresh_recomputes() {
    let dir = tempfile::tempdir().unwrap();
    make_items(dir.path(), &["x.txt".into(), "y.txt".into()]);
    step_workflow(dir.path(), "0");
    assert!(run_in(dir.path(), &["run", "steps.yaml"]).status.success());
    assert!(run_in(dir.path(), &["run", "steps.yaml"]).status.success());
    assert!(
        marks(dir.path()).values().all(|n| *n == 1),
        "{:?}",
        marks(dir.path())
    );
    // Changing stage b's settings recomputes b and what depends on it only.
    let output = run_in(
        dir.path(),
        &[
            "run",
            "steps.yaml",
            "--set",
            "stages.b.with.command.6='0.0'",
        ],
    );
    assert!(output.status.success(), "{:?}", text(&output));
    let m = marks(dir.path());
    assert_eq!(
        (m["x.txt.a"], m["x.txt.b"], m["x.txt.c"], m["x.txt.d"]),
        (1, 2, 2, 1)
    );
    // `flow explain` names what changed since the stored result.
    let output = run_in(dir.path(), &["explain", "x.txt", "c", "-w", "steps.yaml"]);
    let (stdout, _) = text(&output);
    assert!(stdout.contains("cache key:"), "{stdout}");
    let output = run_in(dir.path(), &["run", "steps.yaml", "--fresh"]);
    assert!(output.status.success());
    assert!(marks(dir.path()).values().all(|n| *n >= 2));
}

#[test]
fn explain_shows_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    make_items(dir.path(), &["x.txt".into()]);
    step_workflow(dir.path(), "0");
    assert!(run_in(dir.path(), &["run", "steps.yaml"]).status.success());
    std::fs::write(dir.path().join("items/x.txt"), "new content, new size\n").unwrap();
    let output = run_in(dir.path(), &["explain", "x.txt", "a", "-w", "steps.yaml"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("no stored result matches"), "{stdout}");
    assert!(stdout.contains("item.fingerprint: \"file:"), "{stdout}");
}
