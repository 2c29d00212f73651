//! Result stores for `flow`: the sinks `sink.sqlite` (the embedded
//! default), `sink.postgres`, `sink.subtitles` (SRT/VTT) and `sink.jsonl`,
//! and the query API `flow search` uses ([`open`], [`Index::nearest`]).
//! Every sink is idempotent: a repeated or resumed run replaces an item's
//! rows instead of adding to them. See `docs/store.md`.

pub mod jsonl;
mod paths;
pub mod postgres;
mod postgres_db;
pub mod record;
pub mod search;
pub mod sqlite;
pub mod sqlite_db;
pub mod subtitles;

use std::path::PathBuf;

use flow_engine::Registry;

pub use record::ItemRecord;
pub use search::{open, Hit, Index};
pub use sqlite::SqliteSinkConfig;

/// Why a store could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file does not exist.
    #[error("there is no database at `{}`", .0.display())]
    Missing(PathBuf),
    /// The file is a SQLite database without flow's tables.
    #[error("`{}` is not a flow database (it has no `embeddings` table)", .0.display())]
    NotAStore(PathBuf),
    /// A SQLite error.
    #[error("`{}`: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// A file-system error.
    #[error("cannot create `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The database was written by a newer flow.
    #[error("`{}` has schema version {found}, newer than this flow knows ({}): upgrade flow or write to another file", path.display(), sqlite_db::SCHEMA_VERSION)]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// No stored vector has the query's width.
    #[error("the vectors in `{}` have {found} dimensions but the query has {query}: the database was embedded with another model than the workflow's `text.embed` stage names now", path.display())]
    Dimension {
        /// The database file.
        path: PathBuf,
        /// The stored width.
        found: usize,
        /// The query's width.
        query: usize,
    },
}

/// Adds this crate's stage kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(sqlite::SqliteSinkKind);
    registry.register(postgres::PostgresSinkKind);
    registry.register(subtitles::SubtitlesSinkKind);
    registry.register(jsonl::JsonlSinkKind);
}
