//! What the store reports while it works. Each event prints as one line
//! for people (`Display`); callers decide where lines go.

use std::fmt;
use std::path::PathBuf;

use flow_engine::memory::human;

/// A step of [`crate::Store::ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// pip is about to download a wheel.
    Fetching {
        /// `PACKAGE==VERSION`.
        requirement: String,
    },
    /// pip downloaded the wheel.
    Downloaded {
        /// The wheel's file name.
        wheel: String,
        /// Its size.
        bytes: u64,
    },
    /// The wheel was unpacked into the cache.
    Unpacked {
        /// How many files.
        files: usize,
        /// Their total size.
        bytes: u64,
        /// The package folder in the cache.
        dir: PathBuf,
    },
    /// The cache already held the package, and its files checked out.
    Cached {
        /// `PACKAGE==VERSION`.
        requirement: String,
        /// How many files.
        files: usize,
        /// Their total size.
        bytes: u64,
        /// Whether every hash was checked (not only sizes).
        hashed: bool,
    },
    /// The cached copy failed its check; it is fetched again.
    Damaged {
        /// `PACKAGE==VERSION`.
        requirement: String,
        /// The first problem found.
        problem: String,
    },
    /// A `path:` model, used in place.
    Local {
        /// The file or folder.
        path: PathBuf,
        /// How many files.
        files: usize,
        /// Their total size.
        bytes: u64,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Fetching { requirement } => {
                write!(f, "fetching {requirement} (pip download)…")
            }
            Progress::Downloaded { wheel, bytes } => {
                write!(f, "downloaded {wheel} ({})", human(*bytes))
            }
            Progress::Unpacked { files, bytes, dir } => write!(
                f,
                "unpacked {files} files, {} into {}",
                human(*bytes),
                dir.display()
            ),
            Progress::Cached {
                requirement,
                files,
                bytes,
                hashed,
            } => write!(
                f,
                "{requirement}: cached, {files} files, {} ({} checked)",
                human(*bytes),
                if *hashed { "hashes" } else { "sizes" }
            ),
            Progress::Damaged {
                requirement,
                problem,
            } => write!(
                f,
                "{requirement}: the cached copy is damaged ({problem}); fetching it again"
            ),
            Progress::Local { path, files, bytes } => write!(
                f,
                "using {} in place, {files} files, {}",
                path.display(),
                human(*bytes)
            ),
        }
    }
}
