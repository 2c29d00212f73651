//! The artifact store: files of finished results, made visible atomically.
//!
//! A stage writes into a fresh folder under `tmp/`. When it succeeds, every
//! file and the folder are fsynced, the folder is renamed to
//! `artifacts/<key[..2]>/<key>`, and only then is the result recorded in the
//! database. A crash before the record leaves at most an unreferenced folder
//! (replaced on the next attempt), never a half-written visible result.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The artifact folders of one state directory.
#[derive(Debug)]
pub struct Artifacts {
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl Artifacts {
    /// Opens (and creates) the store under `state_dir`, clearing `tmp/`
    /// left by a crashed run. Call only while holding the database lock.
    ///
    /// # Errors
    /// I/O errors creating the folders.
    pub fn open(state_dir: &Path) -> io::Result<Self> {
        let root = state_dir.join("artifacts");
        let tmp = state_dir.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&root)?;
        fs::create_dir_all(&tmp)?;
        Ok(Self {
            root,
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    /// A fresh path for a stage to write into; the stage creates it only
    /// if it writes files.
    pub fn scratch(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{}-{n}", std::process::id()))
    }

    /// The final folder of the result with cache key `key`.
    pub fn dir(&self, key: &str) -> PathBuf {
        self.root.join(&key[..2.min(key.len())]).join(key)
    }

    /// Makes `scratch` the durable artifact folder of `key`. A missing or
    /// empty scratch folder means the result has no files.
    ///
    /// # Errors
    /// I/O errors while syncing or renaming.
    pub fn commit(&self, scratch: &Path, key: &str) -> io::Result<PathBuf> {
        let target = self.dir(key);
        if !scratch.exists() {
            return Ok(target);
        }
        if fs::read_dir(scratch)?.next().is_none() {
            fs::remove_dir(scratch)?;
            return Ok(target);
        }
        sync_tree(scratch)?;
        let parent = target.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent)?;
        if target.exists() {
            fs::remove_dir_all(&target)?;
        }
        fs::rename(scratch, &target)?;
        File::open(parent)?.sync_all()?;
        Ok(target)
    }

    /// Throws a scratch folder away (the stage failed).
    pub fn discard(&self, scratch: &Path) {
        let _ = fs::remove_dir_all(scratch);
    }
}

fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_moves_files_into_the_keyed_folder() {
        let state = tempfile::tempdir().unwrap();
        let store = Artifacts::open(state.path()).unwrap();
        let scratch = store.scratch();
        fs::create_dir_all(&scratch).unwrap();
        fs::write(scratch.join("a.txt"), "hello").unwrap();
        let dir = store.commit(&scratch, "abcdef").unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "hello");
        assert!(!scratch.exists());
        // Reopening clears leftovers of crashed runs but keeps artifacts.
        let left = store.scratch();
        fs::create_dir_all(&left).unwrap();
        drop(store);
        Artifacts::open(state.path()).unwrap();
        assert!(!left.exists());
        assert!(dir.join("a.txt").exists());
    }
}
