//! The sink's item index on disk: item key → first row, in a file that is
//! an open-addressing hash table (`index.bin`), read and written a slot at a
//! time. It holds nothing in memory, whatever the number of items — the
//! sled database it replaces kept a few dozen bytes of bookkeeping per
//! record for as long as it was open (`docs/benchmarks.md`, "Peak RSS").
//!
//! Layout: a 32-byte header (`FLOWIDX1`, the slot count as `u64` LE), then
//! the slots, 32 bytes each (so none straddles a disk page): the first 16
//! bytes of the key's BLAKE3 hash, the value as `u64` LE, 8 bytes zero. An
//! all-zero slot is empty. Linear probing; the table doubles (rewritten to
//! a new file, then renamed over the old) before it is half full.
//!
//! Durability is the caller's: [`KeyIndex::sync`] before the commit point.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"FLOWIDX1";
const HEADER: u64 = 32;
const SLOT: u64 = 32;
const FIRST_CAPACITY: u64 = 1024;
/// Slots read per probe (4 KiB).
const PROBE: u64 = 128;

type Hash = [u8; 16];

/// An item key → `u64` table in a file (see the module docs).
pub struct KeyIndex {
    path: PathBuf,
    file: File,
    capacity: u64,
    used: u64,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("`{}`: {e}", path.display())
}

fn hash(key: &str) -> Hash {
    let mut h = [0u8; 16];
    h.copy_from_slice(&blake3::hash(key.as_bytes()).as_bytes()[..16]);
    // Never all zero: that is an empty slot.
    h[0] |= 1;
    h
}

fn slot_bytes(h: &Hash, value: u64) -> [u8; SLOT as usize] {
    let mut s = [0u8; SLOT as usize];
    s[..16].copy_from_slice(h);
    s[16..24].copy_from_slice(&value.to_le_bytes());
    s
}

/// A slot's hash and value, or `None` when it is empty.
fn parse(slot: &[u8]) -> Option<(Hash, u64)> {
    let h: Hash = slot[..16].try_into().ok()?;
    (h != [0; 16]).then(|| {
        let v = u64::from_le_bytes(slot[16..24].try_into().unwrap_or_default());
        (h, v)
    })
}

impl KeyIndex {
    /// Opens `path`, creating an empty table if there is none.
    ///
    /// # Errors
    /// I/O errors, or a file that is not such a table.
    pub fn open(path: &Path) -> Result<Self, String> {
        if !path.exists() {
            let mut index = Self::create(&path.with_extension("tmp"), FIRST_CAPACITY)?;
            index.file.sync_all().map_err(|e| io_err(&index.path, e))?;
            index.rename_to(path)?;
            return Ok(index);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let size = file.metadata().map_err(|e| io_err(path, e))?.len();
        let mut header = [0u8; HEADER as usize];
        if size >= HEADER {
            file.read_exact_at(&mut header, 0)
                .map_err(|e| io_err(path, e))?;
        }
        let capacity = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        if &header[..8] != MAGIC || capacity == 0 || size != HEADER + capacity * SLOT {
            return Err(format!(
                "`{}` is not an index written by flow (delete it and run again: rows already written would be written again)",
                path.display()
            ));
        }
        let mut index = Self {
            path: path.to_path_buf(),
            file,
            capacity,
            used: 0,
        };
        let mut used = 0;
        index.each_entry(|_, _| {
            used += 1;
            Ok(())
        })?;
        index.used = used;
        Ok(index)
    }

    fn create(path: &Path, capacity: u64) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        file.set_len(HEADER + capacity * SLOT)
            .map_err(|e| io_err(path, e))?;
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&capacity.to_le_bytes());
        file.write_all_at(&header, 0).map_err(|e| io_err(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            capacity,
            used: 0,
        })
    }

    /// Moves this table's file to `path` (replacing what is there) and
    /// syncs the folder.
    fn rename_to(&mut self, path: &Path) -> Result<(), String> {
        std::fs::rename(&self.path, path).map_err(|e| io_err(path, e))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err(dir, e))?;
        }
        self.path = path.to_path_buf();
        Ok(())
    }

    /// The value stored for `key`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn get(&self, key: &str) -> Result<Option<u64>, String> {
        Ok(self.find(&hash(key))?.1)
    }

    /// The slot holding `h`, or the empty slot where it would go, with its
    /// value if it is there.
    fn find(&self, h: &Hash) -> Result<(u64, Option<u64>), String> {
        let start = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default()) % self.capacity;
        let mut buf = [0u8; (PROBE * SLOT) as usize];
        let mut at = start;
        // The table is never more than half full, so an empty slot comes.
        loop {
            let n = PROBE.min(self.capacity - at);
            let bytes = &mut buf[..(n * SLOT) as usize];
            self.file
                .read_exact_at(bytes, HEADER + at * SLOT)
                .map_err(|e| io_err(&self.path, e))?;
            for (i, slot) in bytes.chunks_exact(SLOT as usize).enumerate() {
                match parse(slot) {
                    None => return Ok((at + i as u64, None)),
                    Some((stored, value)) if &stored == h => {
                        return Ok((at + i as u64, Some(value)))
                    }
                    Some(_) => {}
                }
            }
            at = (at + n) % self.capacity;
            if at == start {
                return Err(format!("`{}` is full", self.path.display()));
            }
        }
    }

    /// Stores `value` for `key` (replacing an earlier value), doubling the
    /// table first when it would become half full.
    ///
    /// # Errors
    /// I/O errors.
    pub fn insert(&mut self, key: &str, value: u64) -> Result<(), String> {
        if (self.used + 1) * 2 > self.capacity {
            self.rebuild(self.capacity * 2, |_| true)?;
        }
        self.put(&hash(key), value)
    }

    /// Writes `value` for the hash `h` into its slot.
    fn put(&mut self, h: &Hash, value: u64) -> Result<(), String> {
        let (slot, old) = self.find(h)?;
        self.file
            .write_all_at(&slot_bytes(h, value), HEADER + slot * SLOT)
            .map_err(|e| io_err(&self.path, e))?;
        self.used += u64::from(old.is_none());
        Ok(())
    }

    /// Keeps only the entries whose value `keep` accepts.
    ///
    /// # Errors
    /// I/O errors.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) -> Result<(), String> {
        let mut all_kept = true;
        self.each_entry(|_, v| {
            all_kept &= keep(v);
            Ok(())
        })?;
        if all_kept {
            return Ok(());
        }
        self.rebuild(self.capacity, keep)
    }

    /// Rewrites the table with `capacity` slots and the entries `keep`
    /// accepts, into a new file renamed over this one.
    fn rebuild(&mut self, capacity: u64, keep: impl Fn(u64) -> bool) -> Result<(), String> {
        let mut next = Self::create(&self.path.with_extension("tmp"), capacity)?;
        self.each_entry(|h, value| {
            if keep(value) {
                next.put(&h, value)?;
            }
            Ok(())
        })?;
        next.file.sync_all().map_err(|e| io_err(&next.path, e))?;
        next.rename_to(&self.path.clone())?;
        *self = next;
        Ok(())
    }

    /// Calls `each` with every entry, in slot order, reading the file a
    /// chunk at a time.
    fn each_entry(
        &self,
        mut each: impl FnMut(Hash, u64) -> Result<(), String>,
    ) -> Result<(), String> {
        let chunk = 2048u64;
        let mut buf = vec![0u8; (chunk * SLOT) as usize];
        let mut at = 0;
        while at < self.capacity {
            let n = chunk.min(self.capacity - at);
            let bytes = &mut buf[..(n * SLOT) as usize];
            self.file
                .read_exact_at(bytes, HEADER + at * SLOT)
                .map_err(|e| io_err(&self.path, e))?;
            for (h, v) in bytes.chunks_exact(SLOT as usize).filter_map(parse) {
                each(h, v)?;
            }
            at += n;
        }
        Ok(())
    }

    /// Makes every insert so far durable.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&self) -> Result<(), String> {
        self.file.sync_data().map_err(|e| io_err(&self.path, e))
    }

    /// The table's file, to sync from another thread: its inserts so far
    /// are durable once it is synced (a later growth writes a new file,
    /// synced before it replaces this one).
    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_after_growth_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        let mut index = KeyIndex::open(&path).unwrap();
        for i in 0..5000u64 {
            index
                .insert(&format!("row-{i}\u{0}row:{i:x}"), i * 3)
                .unwrap();
        }
        index.insert("row-7\u{0}row:7", 99).unwrap();
        index.sync().unwrap();
        drop(index);
        let index = KeyIndex::open(&path).unwrap();
        assert!(index.capacity >= 10_000, "{}", index.capacity);
        assert_eq!(index.used, 5000);
        assert_eq!(index.get("row-4999\u{0}row:1387").unwrap(), Some(4999 * 3));
        assert_eq!(index.get("row-7\u{0}row:7").unwrap(), Some(99));
        assert_eq!(index.get("row-5000\u{0}row:1388").unwrap(), None);
        assert!(!dir.path().join("index.tmp").exists());
    }

    #[test]
    fn retain_drops_entries_and_keeps_the_rest_findable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        let mut index = KeyIndex::open(&path).unwrap();
        for i in 0..300u64 {
            index.insert(&i.to_string(), i).unwrap();
        }
        index.retain(|v| v % 2 == 0).unwrap();
        assert_eq!(index.used, 150);
        assert_eq!(index.get("42").unwrap(), Some(42));
        assert_eq!(index.get("43").unwrap(), None);
    }

    #[test]
    fn a_file_of_something_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        std::fs::write(&path, b"not an index").unwrap();
        let err = KeyIndex::open(&path).err().unwrap();
        assert!(err.contains("not an index written by flow"), "{err}");
    }
}
