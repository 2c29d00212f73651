//! The state database (sled): runs, results and events; and the runs'
//! item lists, in files beside it (`item_files`).
//!
//! Writes go straight into sled; a background thread flushes them to disk in
//! groups (group commit), so a `kill -9` loses at most the last few
//! milliseconds of finished work — which is then simply redone — and sled's
//! log guarantees that what survives is a consistent prefix.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::item_files::{self, ItemWriter};
use super::records::{ItemStage, ResultRecord, RunRecord, RunStatus};
use crate::items::Item;

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another `flow` process holds the database.
    #[error("the state directory `{}` is in use by another flow process", path.display())]
    Locked {
        /// The state directory.
        path: PathBuf,
    },
    /// sled failed.
    #[error("state database error in `{}`: {source}", path.display())]
    Db {
        /// The state directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// A record could not be decoded (written by another flow version?).
    #[error("corrupt state record: {0}")]
    Decode(String),
    /// Files could not be written.
    #[error("state directory I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The sled database of one state directory.
pub struct Store {
    pub(super) db: sled::Db,
    results: sled::Tree,
    runs: sled::Tree,
    /// The folder of item lists (`item_files`).
    pub(super) items: PathBuf,
    item_stages: sled::Tree,
    events: sled::Tree,
    calibration: sled::Tree,
    flusher: Flusher,
}

struct Flusher {
    shared: Arc<(Mutex<FlushState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct FlushState {
    dirty: bool,
    stop: bool,
}

impl Store {
    /// Opens (or creates) the database in `state_dir/db`.
    ///
    /// # Errors
    /// [`StateError::Locked`] when another process uses it (after waiting
    /// up to [`LOCK_WAIT`] for it to be released).
    pub fn open(state_dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(state_dir)?;
        let db = open_db(state_dir)?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StateError::Db {
                path: state_dir.to_path_buf(),
                source,
            })
        };
        let store = Self {
            // Keyed (stage, item, cache key); earlier versions keyed
            // `results` by cache key alone, with a `latest` index beside
            // it: one sled key more per item-stage (see `result_key`).
            results: tree("stage_results")?,
            runs: tree("runs")?,
            items: item_files::folder(state_dir),
            item_stages: tree("item_stages")?,
            events: tree("events")?,
            calibration: tree("calibration")?,
            flusher: Flusher::start(db.clone()),
            db,
        };
        super::migrate::run(&store).map_err(|source| StateError::Db {
            path: state_dir.to_path_buf(),
            source,
        })?;
        Ok(store)
    }

    fn put<T: Serialize>(&self, tree: &sled::Tree, key: impl AsRef<[u8]>, value: &T) {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        if tree.insert(key.as_ref(), bytes).is_ok() {
            self.flusher.mark_dirty();
        }
    }

    /// Makes every write so far durable before returning.
    pub fn flush(&self) {
        let _ = self.db.flush();
    }

    /// The stored result of `stage` for `item` under cache `key`.
    pub fn result(&self, stage: &str, item: &str, key: &str) -> Option<ResultRecord> {
        decode(self.results.get(result_key(stage, item, key)).ok()??)
    }

    /// Stores a finished result.
    pub fn put_result(&self, record: &ResultRecord) {
        let key = result_key(&record.stage, &record.item, &record.key);
        self.put(&self.results, key, record);
    }

    /// The most recently finished result of `stage` for `item`, if any.
    pub fn latest_result(&self, stage: &str, item: &str) -> Option<ResultRecord> {
        self.results
            .scan_prefix(result_key(stage, item, ""))
            .filter_map(|r| decode::<ResultRecord>(r.ok()?.1))
            .max_by_key(|r| (r.finished_at, r.run))
    }

    /// The number the next run gets.
    pub fn next_run_id(&self) -> u64 {
        self.runs
            .last()
            .ok()
            .flatten()
            .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
            .map_or(1, |id| id + 1)
    }

    /// Stores (or updates) a run record, durably.
    pub fn put_run(&self, run: &RunRecord) {
        self.put(&self.runs, run.id.to_be_bytes(), run);
        self.flush();
    }

    /// A run by number.
    pub fn run(&self, id: u64) -> Option<RunRecord> {
        decode(self.runs.get(id.to_be_bytes()).ok()??)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.runs.iter().filter_map(|r| decode(r.ok()?.1)).collect()
    }

    /// The newest run that has not finished.
    pub fn last_unfinished_run(&self) -> Option<RunRecord> {
        self.runs()
            .into_iter()
            .rev()
            .find(|r| r.status == RunStatus::Running)
    }

    /// Stores the items of a run.
    ///
    /// # Errors
    /// The list's files could not be written.
    pub fn put_items(&self, run: u64, items: &[Item]) -> std::io::Result<()> {
        let mut writer = self.item_writer(run)?;
        items.iter().cloned().for_each(|item| writer.push(item));
        writer.finish().map(drop)
    }

    /// A writer that stores a run's items as they are listed, so no list
    /// of every item is ever held in memory.
    ///
    /// # Errors
    /// The list's files could not be created.
    pub fn item_writer(&self, run: u64) -> std::io::Result<ItemWriter> {
        ItemWriter::new(&self.items, run)
    }

    /// The items of a run, in order.
    pub fn items(&self, run: u64) -> Vec<Item> {
        item_files::all(&self.items, run)
    }

    /// Up to `len` items of a run from the `start`-th, in order.
    pub fn items_range(&self, run: u64, start: usize, len: usize) -> Vec<Item> {
        item_files::range(&self.items, run, start, len)
    }

    /// The `index`-th item of a run.
    pub fn item(&self, run: u64, index: usize) -> Option<Item> {
        item_files::range(&self.items, run, index, 1).pop()
    }

    /// Records where `item` stands in `stage` for `run`.
    pub fn set_item_stage(&self, run: u64, item: usize, stage: usize, state: &ItemStage) {
        self.put(&self.item_stages, triple(run, item, stage), state);
    }

    /// Every recorded item-stage state of `run`, as (item, stage, state).
    pub fn item_stages(&self, run: u64) -> Vec<(usize, usize, ItemStage)> {
        self.item_stages
            .scan_prefix(run.to_be_bytes())
            .filter_map(|r| {
                let (k, v) = r.ok()?;
                let item = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?) as usize;
                let stage = u32::from_be_bytes(k.get(16..20)?.try_into().ok()?) as usize;
                Some((item, stage, decode(v)?))
            })
            .collect()
    }

    /// Appends a notable event (failures, warnings) to `run`'s history.
    pub fn add_event(&self, run: u64, event: &impl Serialize) {
        let seq = self.db.generate_id().unwrap_or(0);
        self.put(&self.events, pair(run, seq), event);
    }

    /// Stores a calibration record under `key`.
    pub fn put_calibration<T: Serialize>(&self, key: &str, record: &T) {
        self.put(&self.calibration, key, record);
    }

    /// Every calibration record, by key.
    pub fn calibrations<T: DeserializeOwned>(&self) -> Vec<(String, T)> {
        self.calibration
            .iter()
            .filter_map(|r| {
                let (k, v) = r.ok()?;
                Some((String::from_utf8(k.to_vec()).ok()?, decode(v)?))
            })
            .collect()
    }

    /// The notable events of `run`, in order.
    pub fn events<T: DeserializeOwned>(&self, run: u64) -> Vec<T> {
        self.events
            .scan_prefix(run.to_be_bytes())
            .filter_map(|r| decode(r.ok()?.1))
            .collect()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.flusher.stop();
        self.flush();
    }
}

impl Flusher {
    fn start(db: sled::Db) -> Self {
        let shared = Arc::new((Mutex::new(FlushState::default()), Condvar::new()));
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("flow-state-flush".into())
            .spawn(move || {
                let (lock, signal) = &*thread_shared;
                loop {
                    {
                        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while !state.dirty && !state.stop {
                            state = signal
                                .wait_timeout(state, Duration::from_millis(200))
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        if state.stop {
                            return;
                        }
                        state.dirty = false;
                    }
                    let _ = db.flush();
                }
            })
            .ok();
        Self { shared, thread }
    }

    fn mark_dirty(&self) {
        let (lock, signal) = &*self.shared;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !state.dirty {
            state.dirty = true;
            signal.notify_one();
        }
    }

    fn stop(&mut self) {
        {
            let (lock, signal) = &*self.shared;
            lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            signal.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long [`Store::open`] waits for a database that is locked. sled
/// releases its file lock from a background thread after the `Db` is
/// dropped (spacejam/sled#1289), so a store reopened at once in the same
/// process can find its own lock still held for a few milliseconds.
/// Another live `flow` process holds it longer and is reported.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

pub(super) fn open_db(state_dir: &Path) -> Result<sled::Db, StateError> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match try_open_db(state_dir) {
            Err(StateError::Locked { .. }) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn try_open_db(state_dir: &Path) -> Result<sled::Db, StateError> {
    sled::Config::new()
        .path(state_dir.join("db"))
        .flush_every_ms(None)
        // sled caches up to 1 GiB by default: memory that grew with the
        // number of items a run records. Its capacity counts the
        // on-disk size of cached pages, which take several times that
        // in memory; at 64 MiB only large runs filled it, so their
        // memory grew with their items, while 8 MiB fills in a small
        // run too (2 MiB measured no smaller). A result is read back
        // about once per item-stage, so a small cache costs little
        // (`docs/benchmarks.md`).
        .cache_capacity(8 << 20)
        .open()
        .map_err(|source| match &source {
            sled::Error::Io(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
            {
                StateError::Locked {
                    path: state_dir.to_path_buf(),
                }
            }
            _ => StateError::Db {
                path: state_dir.to_path_buf(),
                source,
            },
        })
}

fn decode<T: DeserializeOwned>(bytes: sled::IVec) -> Option<T> {
    serde_json::from_slice(&bytes).ok()
}

/// `len(stage) stage len(item) item key` (lengths as big-endian `u32`),
/// so the results of one stage and item share a prefix and no id can run
/// into the next.
fn result_key(stage: &str, item: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + stage.len() + item.len() + key.len());
    for part in [stage, item] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(key.as_bytes());
    out
}

pub(super) fn pair(run: u64, n: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&run.to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

fn triple(run: u64, item: usize, stage: usize) -> [u8; 20] {
    let mut key = [0; 20];
    key[..16].copy_from_slice(&pair(run, item as u64));
    key[16..].copy_from_slice(&(stage as u32).to_be_bytes());
    key
}
