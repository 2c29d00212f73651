//! Stages placed on a (simulated) accelerator run on its device worker,
//! batched across items, with the same results as on the CPU.

mod common;

use common::{make_items, run_in, text};

#[test]
fn a_stage_on_a_sim_device_gives_the_same_results_as_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("i{i}.txt")).collect();
    make_items(dir.path(), &names);
    let yaml = "name: dev\ninputs: { files: \"items/*.txt\" }\ndevices:\n  sim:0: { capacity: 16GiB }\nstages:\n  up:\n    uses: exec\n    device: sim:0\n    batch: { size: 4, max: 4 }\n    with: { command: [cp, '{input}', '{out}/x.txt'] }\n  out:\n    uses: sink.files\n    needs: [up]\n    with: { dir: out, copy_files: true }\n";
    std::fs::write(dir.path().join("dev.yaml"), yaml).unwrap();
    let output = run_in(dir.path(), &["run", "dev.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let on_sim = common::outputs(dir.path());
    assert_eq!(on_sim.len(), 10);
    // Device is not part of the cache key: moving the stage reuses results.
    let output = run_in(
        dir.path(),
        &["run", "dev.yaml", "--set", "stages.up.device=cpu"],
    );
    let (_, stderr) = text(&output);
    assert!(stderr.contains("10 reused"), "{stderr}");
    std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    let output = run_in(
        dir.path(),
        &[
            "run",
            "dev.yaml",
            "--fresh",
            "--set",
            "stages.up.device=cpu",
        ],
    );
    assert!(output.status.success());
    assert_eq!(common::outputs(dir.path()), on_sim);
}
