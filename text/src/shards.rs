//! Embedding rows streamed to disk: safetensors shards of `shard_rows` rows,
//! an append-only row manifest, and an open tail that survives crashes.
//!
//! Layout of the folder (see `docs/text.md`):
//! - `manifest.json`: dim, shard size, committed row count, sealed shards.
//!   Rewritten atomically when appended rows commit: it is the commit
//!   point. Items appended by several threads meanwhile commit together
//!   (one sync for all of them, see [`ShardWriter`]).
//! - `rows.jsonl`: one line per row, `{"row", "item", "index"}`, in row
//!   order (the manifest of row ids).
//! - `shard-NNNNN.safetensors`: tensor `embeddings`, `[rows, dim]` f32.
//! - `open-NNNNN.f32`: rows of the shard being filled, raw little-endian
//!   f32; sealed into `shard-NNNNN.safetensors` when full or at the end of
//!   a run.
//! - `index.bin`: item key → its first row ([`KeyIndex`], a hash table in
//!   a file), so an item whose rows are already committed is never appended
//!   twice (a re-run after a crash, `--fresh`, or a later run over the same
//!   corpus). Folders written before it have a sled database `index/`
//!   instead; it is copied into `index.bin` and removed when the folder is
//!   opened.
//!
//! Writing holds no shard of vectors in memory (a seal streams the open
//! file into the safetensors file); reading holds one.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::key_index::KeyIndex;

/// A sealed shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// File name within the folder.
    pub file: String,
    /// Global index of its first row.
    pub first_row: u64,
    /// Rows in it.
    pub rows: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Width of every row.
    pub dim: usize,
    /// Rows per full shard.
    pub shard_rows: u64,
    /// Rows committed (sealed and open).
    pub rows: u64,
    /// Sealed shards, in row order.
    pub shards: Vec<ShardInfo>,
    /// The model that produced the vectors.
    #[serde(default)]
    pub model: String,
}

impl Manifest {
    fn sealed_rows(&self) -> u64 {
        self.shards.iter().map(|s| s.rows).sum()
    }
}

/// One row's id in `rows.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowId {
    /// Global row index.
    pub row: u64,
    /// The item it came from.
    pub item: String,
    /// Its index within the item (chunk or segment id).
    pub index: usize,
}

/// The writer of one embeddings folder.
///
/// Rows are appended with [`ShardWriter::append_pending`] and made durable
/// by running the [`CommitJob`] it hands out, which needs no access to the
/// writer: callers on several threads append one after another and one
/// `fsync` commits all of them (group commit), instead of four per item.
pub struct ShardWriter {
    dir: PathBuf,
    manifest: Manifest,
    open: File,
    rows_log: File,
    index: KeyIndex,
    /// Rows the manifest on disk records; held while it is written.
    durable: Arc<Mutex<u64>>,
}

/// Makes the rows appended so far durable (see [`ShardWriter`]).
pub struct CommitJob {
    dir: PathBuf,
    manifest: Manifest,
    open: File,
    rows_log: File,
    /// The index's file (see [`KeyIndex::file`]).
    index: File,
    durable: Arc<Mutex<u64>>,
}

impl CommitJob {
    /// Syncs the rows, the row ids and the index, then writes the manifest
    /// (the commit point) — unless a manifest covering these rows was
    /// already written, by another job or a seal, after their bytes.
    ///
    /// # Errors
    /// I/O errors: the rows are then not committed.
    pub fn run(self) -> Result<(), String> {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        if *durable >= self.manifest.rows {
            return Ok(());
        }
        persist(
            &self.dir,
            (&self.open, &self.rows_log, &self.index),
            &self.manifest,
            &mut durable,
        )
    }
}

/// Syncs the open shard, the row ids and the index, then writes
/// `manifest` (the commit point) and records its rows in `durable`.
fn persist(
    dir: &Path,
    (open, rows_log, index): (&File, &File, &File),
    manifest: &Manifest,
    durable: &mut u64,
) -> Result<(), String> {
    let open_path = dir.join(format!("open-{:05}.f32", manifest.shards.len()));
    open.sync_data().map_err(|e| io_err(&open_path, e))?;
    let log = dir.join("rows.jsonl");
    rows_log.sync_data().map_err(|e| io_err(&log, e))?;
    index
        .sync_data()
        .map_err(|e| io_err(&dir.join("index.bin"), e))?;
    let text = serde_json::to_string_pretty(manifest).unwrap_or_default();
    write_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    *durable = manifest.rows;
    Ok(())
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("`{}`: {e}", path.display())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Writes `open`'s first `rows × dim` f32 as the safetensors file `path`
/// (tensor `embeddings`, with `metadata`), streaming them from the open
/// file rather than holding a shard in memory, atomically.
fn write_shard(
    path: &Path,
    open: &File,
    [rows, dim]: [u64; 2],
    metadata: serde_json::Value,
) -> Result<(), String> {
    let bytes = rows * dim * 4;
    let header = serde_json::json!({
        "__metadata__": metadata,
        "embeddings": {
            "dtype": "F32",
            "shape": [rows, dim],
            "data_offsets": [0, bytes],
        },
    });
    let mut header = serde_json::to_vec(&header).map_err(|e| io_err(path, e))?;
    // The format pads the header with spaces to a multiple of 8 bytes.
    header.resize(header.len().next_multiple_of(8), b' ');
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        let mut source = open;
        source.seek(SeekFrom::Start(0))?;
        let copied = std::io::copy(&mut source.take(bytes), &mut out)?;
        if copied != bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the open shard holds {copied} of {bytes} bytes"),
            ));
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    write().map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

impl ShardWriter {
    /// Opens `dir` for appending rows of width `dim`, creating it, or
    /// continuing what an earlier (possibly crashed) run left: uncommitted
    /// bytes past the manifest's row count are cut off.
    ///
    /// # Errors
    /// I/O errors, or a folder that holds rows of another width.
    pub fn open(dir: &Path, dim: usize, shard_rows: u64, model: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join("manifest.json");
        let manifest = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let m: Manifest = serde_json::from_str(&text).map_err(|e| io_err(&path, e))?;
                if m.dim != dim {
                    return Err(format!(
                        "`{}` holds {}-wide rows, this model makes {dim}-wide ones: use another folder",
                        dir.display(),
                        m.dim
                    ));
                }
                m
            }
            Err(_) => Manifest {
                dim,
                shard_rows: shard_rows.max(1),
                rows: 0,
                shards: Vec::new(),
                model: model.to_string(),
            },
        };
        let index = manifest.shards.len();
        let open_path = dir.join(format!("open-{index:05}.f32"));
        let open_rows = manifest.rows - manifest.sealed_rows();
        let open = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&open_path)
            .map_err(|e| io_err(&open_path, e))?;
        open.set_len(open_rows * dim as u64 * 4)
            .map_err(|e| io_err(&open_path, e))?;
        let rows_log = Self::open_rows_log(dir, manifest.rows)?;
        let mut index = KeyIndex::open(&dir.join("index.bin"))?;
        migrate_sled_index(dir, &mut index)?;
        // Marks of items whose rows never committed (a crash between the
        // mark and the manifest): once later items append rows, such a mark
        // would otherwise look committed and its item would be skipped.
        let rows = manifest.rows;
        index.retain(|first| first == u64::MAX || first < rows)?;
        let mut w = Self {
            dir: dir.to_path_buf(),
            durable: Arc::new(Mutex::new(manifest.rows)),
            manifest,
            open,
            rows_log,
            index,
        };
        // A seal that crashed before the manifest recorded it, and open
        // files of shards already sealed.
        if open_rows >= w.manifest.shard_rows {
            w.seal()?;
        }
        w.save_manifest()?;
        for i in 0..w.manifest.shards.len() {
            let _ = std::fs::remove_file(dir.join(format!("open-{i:05}.f32")));
        }
        Ok(w)
    }

    /// Opens `rows.jsonl`, cutting it to `rows` lines.
    fn open_rows_log(dir: &Path, rows: u64) -> Result<File, String> {
        let path = dir.join("rows.jsonl");
        let mut keep_bytes = 0u64;
        if let Ok(f) = File::open(&path) {
            let mut reader = BufReader::new(f);
            let mut line = Vec::new();
            for _ in 0..rows {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| io_err(&path, e))?;
                if n == 0 {
                    return Err(format!(
                        "`{}` has fewer rows than the manifest counts ({rows}): the folder is damaged",
                        path.display()
                    ));
                }
                keep_bytes += n as u64;
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        log.set_len(keep_bytes).map_err(|e| io_err(&path, e))?;
        Ok(log)
    }

    /// The manifest as committed.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The first row of `key`'s committed rows, if they are in the folder
    /// (the key names an item and its version: see the sink).
    pub fn committed(&self, key: &str) -> Option<u64> {
        let first = self.index.get(key).ok()??;
        // An entry written just before a crash that never committed its rows.
        (first < self.manifest.rows || first == u64::MAX).then_some(first)
    }

    /// Appends `vectors` (`count × dim`) of `item` and commits them under
    /// `key`: [`ShardWriter::append_pending`], then its commit.
    ///
    /// # Errors
    /// I/O errors; the rows are then not committed.
    pub fn append(&mut self, item: &str, key: &str, vectors: &[f32]) -> Result<u64, String> {
        let first = self.append_pending(item, key, vectors)?;
        self.commit_job()?.run()?;
        Ok(first)
    }

    /// The job that commits every row appended so far; run it without
    /// holding the writer.
    ///
    /// # Errors
    /// The open files cannot be shared with the job.
    pub fn commit_job(&self) -> Result<CommitJob, String> {
        let clone =
            |f: &File, name: &str| f.try_clone().map_err(|e| io_err(&self.dir.join(name), e));
        Ok(CommitJob {
            dir: self.dir.clone(),
            manifest: self.manifest.clone(),
            open: clone(&self.open, "open")?,
            rows_log: clone(&self.rows_log, "rows.jsonl")?,
            index: clone(self.index.file(), "index.bin")?,
            durable: self.durable.clone(),
        })
    }

    /// Writes `vectors` (`count × dim`) of `item` under `key`, not yet
    /// durable: they commit when a [`CommitJob`] taken after this call has
    /// run (or a shard fills and is sealed). Seals every shard that fills.
    /// Returns the global index of the first row.
    ///
    /// # Errors
    /// I/O errors; the rows are then not committed.
    pub fn append_pending(
        &mut self,
        item: &str,
        key: &str,
        vectors: &[f32],
    ) -> Result<u64, String> {
        let dim = self.manifest.dim;
        if !vectors.len().is_multiple_of(dim) {
            return Err(format!(
                "{} values are not a whole number of {dim}-wide rows",
                vectors.len()
            ));
        }
        let first = self.manifest.rows;
        // Recorded before the rows commit; `committed` ignores it until they
        // do. An item with no rows is recorded as `u64::MAX`.
        let mark = if vectors.is_empty() { u64::MAX } else { first };
        self.index.insert(key, mark)?;
        let mut rest = vectors;
        let mut index = 0usize;
        while !rest.is_empty() {
            let open_rows = self.manifest.rows - self.manifest.sealed_rows();
            let room = (self.manifest.shard_rows - open_rows) as usize;
            let take = room.min(rest.len() / dim);
            let (now, later) = rest.split_at(take * dim);
            let bytes: Vec<u8> = now.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut ids = String::new();
            for i in 0..take {
                let id = RowId {
                    row: self.manifest.rows + i as u64,
                    item: item.to_string(),
                    index: index + i,
                };
                ids.push_str(&serde_json::to_string(&id).unwrap_or_default());
                ids.push('\n');
            }
            let open_path = self.open_path();
            self.open
                .write_all(&bytes)
                .map_err(|e| io_err(&open_path, e))?;
            let log_path = self.dir.join("rows.jsonl");
            self.rows_log
                .write_all(ids.as_bytes())
                .map_err(|e| io_err(&log_path, e))?;
            self.manifest.rows += take as u64;
            index += take;
            rest = later;
            if self.manifest.rows - self.manifest.sealed_rows() >= self.manifest.shard_rows {
                self.seal()?;
            }
        }
        Ok(first)
    }

    fn open_path(&self) -> PathBuf {
        self.dir
            .join(format!("open-{:05}.f32", self.manifest.shards.len()))
    }

    /// Syncs everything written and records it in the manifest.
    fn save_manifest(&self) -> Result<(), String> {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        persist(
            &self.dir,
            (&self.open, &self.rows_log, self.index.file()),
            &self.manifest,
            &mut durable,
        )
    }

    /// Turns the open rows (if any) into a sealed safetensors shard.
    ///
    /// # Errors
    /// I/O errors; the rows then stay in the open file.
    pub fn seal(&mut self) -> Result<(), String> {
        let first_row = self.manifest.sealed_rows();
        let rows = self.manifest.rows - first_row;
        if rows == 0 {
            return Ok(());
        }
        let index = self.manifest.shards.len();
        let open_path = self.open_path();
        let file = format!("shard-{index:05}.safetensors");
        let path = self.dir.join(&file);
        let metadata = serde_json::json!({
            "first_row": first_row.to_string(),
            "model": self.manifest.model,
        });
        let shape = [rows, self.manifest.dim as u64];
        write_shard(&path, &self.open, shape, metadata)?;
        self.manifest.shards.push(ShardInfo {
            file,
            first_row,
            rows,
        });
        self.save_manifest()?;
        let next = self.open_path();
        self.open = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&next)
            .map_err(|e| io_err(&next, e))?;
        self.open.set_len(0).map_err(|e| io_err(&next, e))?;
        let _ = std::fs::remove_file(&open_path);
        Ok(())
    }
}

/// Copies the sled database `index/` of a folder written by an earlier
/// version into `index`, then removes it (a crash before the removal copies
/// it again: the same entries).
fn migrate_sled_index(dir: &Path, index: &mut KeyIndex) -> Result<(), String> {
    let old = dir.join("index");
    if !old.join("conf").exists() {
        return Ok(());
    }
    let db = sled::open(&old).map_err(|e| io_err(&old, e))?;
    for entry in db.iter() {
        let (key, value) = entry.map_err(|e| io_err(&old, e))?;
        let Ok(first) = value.as_ref().try_into().map(u64::from_le_bytes) else {
            continue;
        };
        index.insert(&String::from_utf8_lossy(&key), first)?;
    }
    drop(db);
    index.sync()?;
    std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))
}

/// Reads every committed row of an embeddings folder in order, shard by
/// shard (sealed shards, then the open rows), calling `each(row, vector)`.
///
/// # Errors
/// A missing or damaged file.
pub fn for_each_row(dir: &Path, mut each: impl FnMut(u64, &[f32])) -> Result<Manifest, String> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| io_err(&path, e))?;
    let mut row = 0u64;
    for s in &m.shards {
        let p = dir.join(&s.file);
        let bytes = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| io_err(&p, e))?;
        let t = st.tensor("embeddings").map_err(|e| io_err(&p, e))?;
        let values: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        for v in values.chunks_exact(m.dim) {
            each(row, v);
            row += 1;
        }
    }
    let open = dir.join(format!("open-{:05}.f32", m.shards.len()));
    if row < m.rows {
        let mut f = File::open(&open).map_err(|e| io_err(&open, e))?;
        let mut buf = vec![0u8; m.dim * 4];
        while row < m.rows {
            f.read_exact(&mut buf).map_err(|e| io_err(&open, e))?;
            let v: Vec<f32> = buf
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            each(row, &v);
            row += 1;
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(start: usize, n: usize, dim: usize) -> Vec<f32> {
        (start * dim..(start + n) * dim).map(|v| v as f32).collect()
    }

    #[test]
    fn a_mark_whose_rows_never_committed_does_not_hide_its_item_later() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
            w.append("a", "a", &rows(0, 3, 2)).unwrap();
            // "b" was marked, then the process died before its rows committed.
            w.index.insert("b", 3).unwrap();
            w.index.sync().unwrap();
        }
        let mut w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
        w.append("c", "c", &rows(3, 3, 2)).unwrap();
        assert_eq!(w.committed("a"), Some(0));
        assert_eq!(w.committed("c"), Some(3));
        assert_eq!(
            w.committed("b"),
            None,
            "b must be written when it comes again"
        );
    }

    #[test]
    fn rows_fill_shards_and_the_tail_is_sealed_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::open(dir.path(), 4, 10, "m").unwrap();
        for i in 0..5 {
            let item = format!("item{i}");
            w.append(&item, &item, &rows(i * 7, 7, 4)).unwrap();
        }
        assert_eq!(w.manifest().shards.len(), 3);
        w.seal().unwrap();
        let m = w.manifest().clone();
        assert_eq!(m.rows, 35);
        let sizes: Vec<u64> = m.shards.iter().map(|s| s.rows).collect();
        assert_eq!(sizes, [10, 10, 10, 5]);
        let mut seen = Vec::new();
        for_each_row(dir.path(), |r, v| {
            assert_eq!(v[0], (r * 4) as f32);
            seen.push(r);
        })
        .unwrap();
        assert_eq!(seen, (0..35).collect::<Vec<u64>>());
        // A shard any safetensors reader opens: its shape, values and
        // metadata.
        let bytes = std::fs::read(dir.path().join("shard-00001.safetensors")).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let metadata = header.metadata().clone().unwrap();
        assert_eq!(metadata["first_row"], "10");
        assert_eq!(metadata["model"], "m");
        let shard = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensor = shard.tensor("embeddings").unwrap();
        assert_eq!(tensor.shape(), [10, 4]);
        assert_eq!(tensor.data().len(), 10 * 4 * 4);
        assert_eq!(&tensor.data()[..4], 40f32.to_le_bytes());
        let ids = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
        let last: RowId = serde_json::from_str(ids.lines().last().unwrap()).unwrap();
        assert_eq!(
            last,
            RowId {
                row: 34,
                item: "item4".into(),
                index: 6
            }
        );
    }

    #[test]
    fn a_crash_loses_only_uncommitted_rows_and_the_next_run_continues() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
            w.append("a", "a", &rows(0, 3, 2)).unwrap();
            w.append("b", "b", &rows(3, 3, 2)).unwrap();
            // "c" was being written when the process died: its index entry
            // exists, its rows did not commit.
            w.index.insert("c", 6).unwrap();
            // Dropped without sealing: a crash.
        }
        // Half-written bytes of a batch in flight, past the commit point.
        let open = dir.path().join("open-00001.f32");
        let mut f = OpenOptions::new().append(true).open(&open).unwrap();
        f.write_all(&[1, 2, 3, 4, 5]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("rows.jsonl"))
            .unwrap()
            .write_all(b"{\"row\": 6, \"item\": \"c\", \"ind")
            .unwrap();

        let mut w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
        assert_eq!(w.manifest().rows, 6);
        assert_eq!(w.committed("b"), Some(3));
        assert_eq!(w.committed("c"), None);
        assert_eq!(w.committed("never"), None);
        assert_eq!(w.append("c", "c", &rows(6, 2, 2)).unwrap(), 6);
        assert_eq!(w.committed("c"), Some(6));
        w.seal().unwrap();
        let mut values = Vec::new();
        let m = for_each_row(dir.path(), |_, v| values.extend_from_slice(v)).unwrap();
        assert_eq!(m.rows, 8);
        assert_eq!(values, rows(0, 8, 2));
        let lines = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 8);
        assert!(lines
            .lines()
            .all(|l| serde_json::from_str::<RowId>(l).is_ok()));
    }

    fn manifest_on_disk(dir: &Path) -> Manifest {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    }

    #[test]
    fn one_commit_covers_every_item_appended_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::open(dir.path(), 2, 100, "m").unwrap();
        w.append_pending("a", "a", &rows(0, 3, 2)).unwrap();
        let early = w.commit_job().unwrap();
        w.append_pending("b", "b", &rows(3, 2, 2)).unwrap();
        let late = w.commit_job().unwrap();
        assert_eq!(manifest_on_disk(dir.path()).rows, 0, "nothing durable yet");
        late.run().unwrap();
        assert_eq!(manifest_on_disk(dir.path()).rows, 5);
        // The earlier job's rows are covered: it must not write its older
        // manifest over the newer one.
        early.run().unwrap();
        assert_eq!(manifest_on_disk(dir.path()).rows, 5);
    }

    #[test]
    fn a_commit_taken_before_a_seal_does_not_undo_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
        w.append_pending("a", "a", &rows(0, 3, 2)).unwrap();
        let before = w.commit_job().unwrap();
        // Fills the shard: sealed (and committed) right away.
        w.append_pending("b", "b", &rows(3, 3, 2)).unwrap();
        assert_eq!(manifest_on_disk(dir.path()).shards.len(), 1);
        before.run().unwrap();
        let m = manifest_on_disk(dir.path());
        assert_eq!(
            (m.shards.len(), m.rows),
            (1, 4),
            "the seal's manifest stays"
        );
        w.commit_job().unwrap().run().unwrap();
        assert_eq!(manifest_on_disk(dir.path()).rows, 6);
        drop(w);
        let w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
        assert_eq!((w.committed("a"), w.committed("b")), (Some(0), Some(3)));
    }

    #[test]
    fn a_folder_with_the_earlier_sled_index_keeps_its_items() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
            w.append("a", "a", &rows(0, 3, 2)).unwrap();
        }
        // The earlier layout: no index.bin, a sled database with the marks.
        std::fs::remove_file(dir.path().join("index.bin")).unwrap();
        {
            let db = sled::open(dir.path().join("index")).unwrap();
            db.insert("a", &0u64.to_le_bytes()).unwrap();
            db.insert("empty", &u64::MAX.to_le_bytes()).unwrap();
            db.flush().unwrap();
        }
        let w = ShardWriter::open(dir.path(), 2, 4, "m").unwrap();
        assert_eq!(w.committed("a"), Some(0));
        assert_eq!(w.committed("empty"), Some(u64::MAX));
        assert_eq!(w.committed("b"), None);
        assert!(!dir.path().join("index").exists());
    }

    #[test]
    fn a_folder_of_another_width_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        ShardWriter::open(dir.path(), 4, 10, "m").unwrap();
        let err = ShardWriter::open(dir.path(), 8, 10, "m").err().unwrap();
        assert!(err.contains("4-wide"), "{err}");
    }
}
