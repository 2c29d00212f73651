//! A run's items in two files beside the database, written once when the
//! run starts: `items/run-N.jsonl`, an item per line in order, and
//! `items/run-N.index`, the byte offset (`u64`, little-endian) of every
//! [`PAGE`]-th line, so a range is read with one seek.
//!
//! Why not sled: sled kept the B-tree pages an item list was inserted into
//! in memory, cache or not (heaptrack: 15 MB of a 200 000-item list's
//! records still live after the list was written, plus the page table), so
//! a run's memory grew with its items (`docs/benchmarks.md`, "Peak RSS").
//! The list never changes once written, so a file needs none of sled's
//! machinery: it costs no memory, and reading it is a seek and a line read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::items::Item;

/// Lines per index entry.
pub const PAGE: usize = 16;

/// The folder of item lists in a state directory.
pub(super) fn folder(state_dir: &Path) -> PathBuf {
    state_dir.join("items")
}

fn lines_path(dir: &Path, run: u64) -> PathBuf {
    dir.join(format!("run-{run}.jsonl"))
}

fn index_path(dir: &Path, run: u64) -> PathBuf {
    dir.join(format!("run-{run}.index"))
}

/// Stores a run's items in order as they are pushed
/// ([`Store::item_writer`](super::Store::item_writer)); an earlier list of
/// the same run (one a crash cut off before its run was recorded) is
/// replaced.
pub struct ItemWriter {
    dir: PathBuf,
    lines: BufWriter<File>,
    index: BufWriter<File>,
    offset: u64,
    count: usize,
    error: Option<io::Error>,
}

impl ItemWriter {
    pub(super) fn new(dir: &Path, run: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            lines: BufWriter::new(File::create(lines_path(dir, run))?),
            index: BufWriter::new(File::create(index_path(dir, run))?),
            offset: 0,
            count: 0,
            error: None,
        })
    }

    /// Adds the next item. A write that fails is reported by
    /// [`finish`](Self::finish).
    pub fn push(&mut self, item: Item) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.write(&item) {
            self.error = Some(e);
        }
    }

    fn write(&mut self, item: &Item) -> io::Result<()> {
        if self.count.is_multiple_of(PAGE) {
            self.index.write_all(&self.offset.to_le_bytes())?;
        }
        let mut line = serde_json::to_vec(item)?;
        line.push(b'\n');
        self.lines.write_all(&line)?;
        self.offset += line.len() as u64;
        self.count += 1;
        Ok(())
    }

    /// Whether every write so far succeeded (listing can stop early when
    /// not: [`finish`](Self::finish) reports why).
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// How many items were pushed.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Makes every item durable; returns how many there are. A run's
    /// record is written after its items, so a crash halfway leaves no run
    /// to resume from a partial list.
    ///
    /// # Errors
    /// The first write that failed, or the sync.
    pub fn finish(self) -> io::Result<usize> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for file in [self.lines, self.index] {
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(self.count)
    }
}

/// Up to `len` items of `run` from the `start`-th, in order.
pub fn range(dir: &Path, run: u64, start: usize, len: usize) -> Vec<Item> {
    if len == 0 {
        return Vec::new();
    }
    let Some(lines) = lines_from(dir, run, start / PAGE) else {
        return Vec::new();
    };
    let first = start / PAGE * PAGE;
    lines
        .skip(start - first)
        .take(len)
        .filter_map(|line| decode(&line.ok()?))
        .collect()
}

/// Every item of `run`, in order.
pub fn all(dir: &Path, run: u64) -> Vec<Item> {
    lines_from(dir, run, 0)
        .into_iter()
        .flatten()
        .filter_map(|line| decode(&line.ok()?))
        .collect()
}

/// The lines of `run`'s list from the `entry`-th index entry on; `None`
/// when there is no such list or entry.
fn lines_from(dir: &Path, run: u64, entry: usize) -> Option<io::Lines<BufReader<File>>> {
    let mut index = File::open(index_path(dir, run)).ok()?;
    index.seek(SeekFrom::Start(entry as u64 * 8)).ok()?;
    let mut offset = [0u8; 8];
    index.read_exact(&mut offset).ok()?;
    let mut file = File::open(lines_path(dir, run)).ok()?;
    file.seek(SeekFrom::Start(u64::from_le_bytes(offset)))
        .ok()?;
    Some(BufReader::with_capacity(16 << 10, file).lines())
}

fn decode(line: &str) -> Option<Item> {
    serde_json::from_str(line).ok()
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    fn item(i: usize) -> Item {
        Item {
            id: format!("row-{i}"),
            source: "rows.jsonl".into(),
            fingerprint: "f".into(),
            error: None,
            row: None,
        }
    }

    #[test]
    fn items_written_in_pages_read_back_in_any_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut writer = store.item_writer(3).unwrap();
        for i in 0..4_500 {
            writer.push(item(i));
        }
        assert_eq!(writer.finish().unwrap(), 4_500);
        let page = store.items_range(3, 1_999, 3);
        assert_eq!(page, vec![item(1_999), item(2_000), item(2_001)]);
        let across: Vec<Item> = (PAGE - 2..3 * PAGE + 5).map(item).collect();
        assert_eq!(store.items_range(3, PAGE - 2, 2 * PAGE + 7), across);
        assert_eq!(store.items_range(3, 4_499, 10), vec![item(4_499)]);
        assert!(store.items_range(3, 4_500, 10).is_empty());
        assert!(store.items_range(3, 7, 0).is_empty());
        assert_eq!(store.item(3, 4_000), Some(item(4_000)));
        assert_eq!(store.item(3, 4_500), None);
        assert_eq!(store.items(3), (0..4_500).map(item).collect::<Vec<_>>());
        // Another run's items are not mixed in.
        store.put_items(4, &[item(7)]).unwrap();
        assert_eq!(store.items_range(3, 4_499, 10), vec![item(4_499)]);
        assert_eq!(store.items(4), vec![item(7)]);
        drop(store);
        // And they survive a reopen.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.items_range(3, 255, 2), vec![item(255), item(256)]);
        // A list that a crash cut off is replaced by the run's next list.
        let mut torn = store.item_writer(5).unwrap();
        (0..40).for_each(|i| torn.push(item(i)));
        drop(torn);
        store.put_items(5, &[item(9), item(10)]).unwrap();
        assert_eq!(store.items(5), vec![item(9), item(10)]);
        assert!(store.items(6).is_empty());
        assert!(store.items_range(6, 0, 5).is_empty());
    }
}
