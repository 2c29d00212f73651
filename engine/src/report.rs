//! Progress reporting and the run's event log.
//!
//! The engine reports through the [`Reporter`] trait; the CLI draws progress
//! bars with it, tests may collect events. Every run also writes a JSON-lines
//! event log to `runs/<id>/events.jsonl` in the state directory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::registry::FailureKind;

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run started.
    RunStarted {
        /// Run number.
        run: u64,
        /// The workflow name.
        workflow: String,
        /// Number of items.
        items: usize,
        /// Stage ids in plan order.
        stages: Vec<String>,
    },
    /// The first item entered a stage.
    StageStarted {
        /// Stage id.
        stage: String,
    },
    /// Every item has passed a stage.
    StageFinished {
        /// Stage id.
        stage: String,
        /// Items done (computed or cached).
        done: usize,
        /// Of those, reused from the cache.
        cached: usize,
        /// Items that failed here.
        failed: usize,
        /// Items not run because an upstream stage failed.
        blocked: usize,
        /// Milliseconds from the stage's first item to its last.
        millis: u64,
    },
    /// An item failed in a stage.
    ItemFailed {
        /// Item id.
        item: String,
        /// Stage id.
        stage: String,
        /// Failure kind.
        kind: FailureKind,
        /// The reason.
        reason: String,
    },
    /// A plan memory node ran (`load`, `unload`, `clear_cache`).
    PlanNode {
        /// What ran.
        node: String,
        /// On which device.
        device: String,
    },
    /// Device memory after a plan node (or a stage's last batch of a wave).
    Memory {
        /// The device.
        device: String,
        /// The node: `load asr`, `run asr`, `unload asr`, `clear_cache`.
        node: String,
        /// Bytes in use.
        in_use: u64,
        /// Bytes held, in use plus cached.
        reserved: u64,
        /// The device's total.
        total: u64,
        /// This process's resident host memory.
        host_rss: u64,
    },
    /// A device went over 70 % or 85 % of its memory.
    MemoryWarning {
        /// The device.
        device: String,
        /// 70 or 85.
        percent: u8,
        /// Bytes at the peak.
        used: u64,
        /// The device's total.
        total: u64,
    },
    /// Memory did not come back after a model's unload.
    MemoryLeak {
        /// The device.
        device: String,
        /// The model.
        model: String,
        /// Bytes still held.
        leaked: u64,
        /// Bytes its load took.
        loaded: u64,
    },
    /// A step of the out-of-memory ladder was taken for a batch.
    Oom {
        /// The stage.
        stage: String,
        /// The device where the batch ran out of memory.
        device: String,
        /// The step: `clear_cache`, `shrink_batch`, `device`, `gave_up`.
        step: String,
        /// The batch size that failed.
        batch: u32,
        /// Items of the batch.
        items: Vec<String>,
        /// What happened.
        detail: String,
    },
    /// A stage's batch size changed at run time.
    BatchSize {
        /// The stage.
        stage: String,
        /// The device.
        device: String,
        /// The old size.
        from: u32,
        /// The new size.
        to: u32,
        /// Why.
        reason: String,
    },
    /// An item went on without a stage's own result (`fallback`).
    Degraded {
        /// The item.
        item: String,
        /// The stage that gave up.
        stage: String,
        /// Why it gave up.
        reason: String,
        /// The stage whose result stands in, or `skip`.
        via: String,
    },
    /// A stage's memory was measured (`flow calibrate`).
    Calibrated {
        /// The stage.
        stage: String,
        /// The calibration key.
        key: String,
        /// Weight bytes.
        weights: u64,
        /// Working bytes per batch element.
        per_item: u64,
        /// Working bytes per batch.
        fixed: u64,
    },
    /// The run ended.
    RunFinished {
        /// Run number.
        run: u64,
        /// Items that finished every stage.
        succeeded: usize,
        /// Items with at least one failure.
        failed: usize,
        /// Item-stage results computed in this run.
        computed: usize,
        /// Item-stage results reused from the cache.
        cached: usize,
        /// Items that finished with a stage skipped or replaced by its
        /// fallback.
        #[serde(default)]
        degraded: usize,
        /// Wall time.
        millis: u64,
    },
}

/// What the engine tells its user while a run goes on.
pub trait Reporter: Send + Sync {
    /// The run starts: stage ids and the number of items.
    fn start(&self, stages: &[String], items: usize);
    /// An item finished a stage: `cached` when reused, `ok` false on failure
    /// (or when blocked by an upstream failure).
    fn item_stage(&self, stage: usize, ok: bool, cached: bool);
    /// A notable event.
    fn event(&self, event: &Event);
    /// The run is over.
    fn finish(&self);
}

/// A reporter that says nothing.
pub struct Silent;

impl Reporter for Silent {
    fn start(&self, _: &[String], _: usize) {}
    fn item_stage(&self, _: usize, _: bool, _: bool) {}
    fn event(&self, _: &Event) {}
    fn finish(&self) {}
}

/// The JSON-lines event log of one run.
pub struct EventLog {
    file: Mutex<BufWriter<File>>,
}

impl EventLog {
    /// Creates `path` (and its folder).
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Appends an event with a timestamp, and flushes the line.
    pub fn write(&self, event: &Event) {
        let mut line = serde_json::to_value(event).unwrap_or_default();
        if let Some(map) = line.as_object_mut() {
            map.insert("at_ms".into(), crate::state::now_ms().into());
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(file, "{line}");
        let _ = file.flush();
    }
}
