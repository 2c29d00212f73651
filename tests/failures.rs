//! A stage that fails for some items fails those items only.

mod common;

use common::{make_items, run_in, text};

#[test]
fn two_failing_items_leave_the_others_done_and_status_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = ["a1", "bad1", "a2", "bad2", "a3", "a4"]
        .iter()
        .map(|n| format!("{n}.txt"))
        .collect();
    make_items(dir.path(), &names);
    std::fs::create_dir_all(dir.path().join("marks")).unwrap();
    let step = common::fixture("step.sh");
    let yaml = format!(
        "name: f\ninputs: {{ files: \"items/*.txt\" }}\nstages:\n  check:\n    uses: exec\n    with: {{ command: [\"{s}\", check, \"{{item}}\", \"{{input}}\", \"{{out}}\", marks, \"0\"] }}\n  after:\n    uses: exec\n    needs: [check]\n    with: {{ command: [\"{s}\", after, \"{{item}}\", \"{{input.check}}\", \"{{out}}\", marks, \"0\"] }}\n",
        s = step.display()
    );
    std::fs::write(dir.path().join("f.yaml"), yaml).unwrap();
    let output = run_in(dir.path(), &["run", "f.yaml"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("6 items, 4 succeeded, 2 failed"),
        "{stderr}"
    );

    let output = run_in(dir.path(), &["status", "-w", "f.yaml"]);
    let (stdout, _) = text(&output);
    assert!(stdout.contains("bad1.txt in `check`: `"), "{stdout}");
    assert!(
        stdout.contains("exited with code 3: checksum mismatch in bad1.txt"),
        "{stdout}"
    );
    assert!(stdout.contains("bad2.txt in `check`"), "{stdout}");
    let check = stdout.lines().find(|l| l.starts_with("check")).unwrap();
    let after = stdout.lines().find(|l| l.starts_with("after")).unwrap();
    let numbers = |line: &str| {
        line.split_whitespace()
            .skip(1)
            .map(|n| n.parse::<usize>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(check),
        [4, 0, 0, 2, 0, 0],
        "done cached degraded failed blocked pending"
    );
    assert_eq!(numbers(after), [4, 0, 0, 0, 2, 0]);
    // The event log recorded both failures.
    let log = std::fs::read_to_string(dir.path().join(".flow/runs/1/events.jsonl")).unwrap();
    assert_eq!(log.matches("\"event\":\"item_failed\"").count(), 2);
    assert!(log.contains("\"event\":\"stage_finished\""));
}

#[test]
fn a_missing_input_and_a_timeout_fail_their_items_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    make_items(dir.path(), &["ok.txt".into()]);
    let yaml = "name: t\ninputs: { items: [items/ok.txt, items/missing.txt] }\nstages:\n  slow:\n    uses: exec\n    timeout: 300ms\n    with: { command: [sleep, '5'] }\n";
    std::fs::write(dir.path().join("t.yaml"), yaml).unwrap();
    let started = std::time::Instant::now();
    let output = run_in(dir.path(), &["run", "t.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the timeout killed the program"
    );
    let (stdout, _) = text(&run_in(dir.path(), &["status", "-w", "t.yaml"]));
    assert!(
        stdout.contains("items/ok.txt in `slow`: `sleep` timed out after 300ms"),
        "{stdout}"
    );
    assert!(
        stdout.contains("items/missing.txt in `slow`: cannot read input"),
        "{stdout}"
    );
}
