//! Helpers shared by the integration tests: external tools, fixtures, and
//! running one stage on one item the way the executor does.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use flow_engine::device::DeviceId;
use flow_engine::items::Item;
use flow_engine::registry::{
    BuildContext, StageError, StageInput, StageKind, StageOutput, Upstream,
};
use flow_engine::spec::StageSpec;

/// The shared reference recordings (espeak-ng speech, and sox's 16 kHz
/// versions of them).
pub fn reference(name: &str) -> PathBuf {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/reference/audio"
    ));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "reference recording `{}` is missing: these tests need /work/shared/reference/audio",
        path.display()
    );
    path
}

/// Fails the test (does not skip it) when `program` is missing.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not on PATH: run `bash scripts/setup.sh` (it installs sox, ffmpeg and espeak-ng)"
    );
}

/// Runs `program args…` and fails the test if it fails.
pub fn sh(program: &str, args: &[&str]) {
    require(program);
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A path as a `&str` (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// One stage kind, built once, run on items in a temporary state folder.
pub struct Harness {
    pub dir: tempfile::TempDir,
    stage: Arc<dyn flow_engine::Stage>,
    runs: std::cell::Cell<u32>,
}

impl Harness {
    /// Builds `kind` with `config` (the `with:` mapping).
    pub fn new(kind: &dyn StageKind, config: serde_json::Value) -> Self {
        assert!(kind.check(&config).is_empty(), "invalid settings {config}");
        let dir = tempfile::tempdir().unwrap();
        let stage = Self::build(kind, config, dir.path());
        Self {
            dir,
            stage,
            runs: std::cell::Cell::new(0),
        }
    }

    /// Builds `kind` again, as a new run on the same state folder would.
    pub fn rebuild(&mut self, kind: &dyn StageKind, config: serde_json::Value) {
        self.stage = Self::build(kind, config, self.dir.path());
    }

    fn build(
        kind: &dyn StageKind,
        config: serde_json::Value,
        dir: &Path,
    ) -> Arc<dyn flow_engine::Stage> {
        let spec: StageSpec =
            serde_json::from_value(serde_json::json!({ "uses": kind.name() })).unwrap();
        let ctx = BuildContext {
            stage_id: "stage",
            spec: &spec,
            workflow_dir: dir,
            state_dir: &dir.join(".flow"),
            model_dir: None,
        };
        kind.build(&ctx, &config).unwrap()
    }

    /// The state directory the stage was built with.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".flow")
    }

    /// Runs the stage on the item `source` (a path or a URL) with
    /// `upstream` results; returns the result and its output folder.
    pub fn run_with(
        &self,
        source: &str,
        upstream: Vec<Upstream>,
        timeout: Option<Duration>,
    ) -> (Result<StageOutput, StageError>, PathBuf) {
        self.runs.set(self.runs.get() + 1);
        let out_dir = self.dir.path().join(format!("out{}", self.runs.get()));
        let input = StageInput {
            item: Arc::new(Item {
                id: source.rsplit('/').next().unwrap_or(source).to_string(),
                source: source.to_string(),
                fingerprint: "test".to_string(),
                error: None,
                row: None,
            }),
            upstream,
            out_dir: out_dir.clone(),
            device: DeviceId::Cpu,
            timeout,
        };
        (self.stage.run(&input), out_dir)
    }

    /// Runs the stage on the item `source` alone.
    pub fn run(&self, source: &str) -> (Result<StageOutput, StageError>, PathBuf) {
        self.run_with(source, Vec::new(), None)
    }

    /// Runs the stage and returns its failure reason (the test fails if it
    /// succeeded).
    pub fn fail(&self, source: &str) -> String {
        match self.run(source).0 {
            Ok(output) => panic!("expected `{source}` to fail, got {output:?}"),
            Err(e) => e.message,
        }
    }
}
