//! The SQLite database of `sink.sqlite`: its schema and the per-item
//! write (one transaction: the source row upserted, the item's segments,
//! chunks and vectors replaced). `docs/store.md` documents the tables.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::record::ItemRecord;
use crate::StoreError;

/// The version of the schema below, kept in `meta.schema_version`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    item            TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    title           TEXT NOT NULL,
    duration        REAL,
    status          TEXT NOT NULL,
    reason          TEXT,
    language        TEXT,
    speaker_mode    TEXT,
    segment_count   INTEGER NOT NULL,
    chunk_count     INTEGER NOT NULL,
    embedding_count INTEGER NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS segments (
    item               TEXT NOT NULL REFERENCES sources(item) ON DELETE CASCADE,
    segment            INTEGER NOT NULL,
    start_s            REAL NOT NULL,
    end_s              REAL NOT NULL,
    text               TEXT NOT NULL,
    speaker            TEXT,
    speaker_confidence REAL,
    avg_logprob        REAL,
    no_speech_prob     REAL,
    compression_ratio  REAL,
    temperature        REAL,
    PRIMARY KEY (item, segment)
);
CREATE TABLE IF NOT EXISTS chunks (
    item     TEXT NOT NULL REFERENCES sources(item) ON DELETE CASCADE,
    chunk    INTEGER NOT NULL,
    start_s  REAL NOT NULL,
    end_s    REAL NOT NULL,
    text     TEXT NOT NULL,
    speakers TEXT NOT NULL,
    segments TEXT NOT NULL,
    PRIMARY KEY (item, chunk)
);
CREATE TABLE IF NOT EXISTS embeddings (
    item      TEXT NOT NULL REFERENCES sources(item) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('segments', 'chunks')),
    row_index INTEGER NOT NULL,
    model     TEXT NOT NULL,
    dim       INTEGER NOT NULL,
    vector    BLOB NOT NULL,
    PRIMARY KEY (item, kind, row_index)
);
"#;

/// Opens (creating when missing, with its folder) the database at `path`
/// for writing: WAL journal, foreign keys on, `busy` to wait for another
/// writer, and the schema in place.
///
/// # Errors
/// A [`StoreError`] when the file cannot be opened or holds a newer schema.
pub fn open_for_writing(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
            path: parent.to_path_buf(),
            source: e,
        })?;
    }
    let sql = |source: rusqlite::Error| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(sql)?;
    // SQLite takes milliseconds as an i32: a day is plenty.
    conn.busy_timeout(busy.min(Duration::from_secs(86_400)))
        .map_err(sql)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // A file system without shared memory: stay in the default mode.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
    } else {
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    match version.and_then(|v| v.parse::<i64>().ok()) {
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: v,
        }),
        Some(_) => Ok(conn),
        None => {
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )
            .map_err(sql)?;
            Ok(conn)
        }
    }
}

/// What one write stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Segment rows.
    pub segments: usize,
    /// Chunk rows.
    pub chunks: usize,
    /// Vector rows.
    pub embeddings: usize,
}

/// Stores `record` in one transaction: its source row is inserted or
/// updated, its segments, chunks and vectors replace the ones stored
/// before, so writing the same item twice leaves the same rows.
///
/// # Errors
/// A SQLite error; nothing of the item is changed then.
pub fn write_item(conn: &mut Connection, record: &ItemRecord) -> rusqlite::Result<Written> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let embedded = record.embeddings.as_ref().map_or(0, |e| e.rows().count());
    tx.execute(
        "INSERT INTO sources (item, source, title, duration, status, reason, language,
             speaker_mode, segment_count, chunk_count, embedding_count, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         ON CONFLICT (item) DO UPDATE SET
             source = excluded.source, title = excluded.title,
             duration = excluded.duration, status = excluded.status,
             reason = excluded.reason, language = excluded.language,
             speaker_mode = excluded.speaker_mode,
             segment_count = excluded.segment_count,
             chunk_count = excluded.chunk_count,
             embedding_count = excluded.embedding_count,
             updated_at = excluded.updated_at",
        params![
            record.item,
            record.source,
            record.title,
            record.duration,
            record.status.as_str(),
            record.reason,
            record.language,
            record.speaker_mode,
            record.segments.len() as i64,
            record.chunks.len() as i64,
            embedded as i64,
        ],
    )?;
    for table in ["segments", "chunks", "embeddings"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE item = ?1"),
            [&record.item],
        )?;
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO segments (item, segment, start_s, end_s, text, speaker,
                 speaker_confidence, avg_logprob, no_speech_prob, compression_ratio, temperature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for s in &record.segments {
            insert.execute(params![
                record.item,
                s.index,
                s.start,
                s.end,
                s.text,
                s.speaker,
                s.speaker_confidence,
                s.avg_logprob,
                s.no_speech_prob,
                s.compression_ratio,
                s.temperature,
            ])?;
        }
        let mut insert = tx.prepare_cached(
            "INSERT INTO chunks (item, chunk, start_s, end_s, text, speakers, segments)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for c in &record.chunks {
            insert.execute(params![
                record.item,
                c.index,
                c.start,
                c.end,
                c.text,
                serde_json::to_string(&c.speakers).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&c.segments).unwrap_or_else(|_| "[]".into()),
            ])?;
        }
        if let Some(e) = &record.embeddings {
            let mut insert = tx.prepare_cached(
                "INSERT INTO embeddings (item, kind, row_index, model, dim, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (i, row) in e.rows().enumerate() {
                let blob: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
                insert.execute(params![
                    record.item,
                    e.of.as_str(),
                    i as i64,
                    e.model,
                    e.dim as i64,
                    blob
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(Written {
        segments: record.segments.len(),
        chunks: record.chunks.len(),
        embeddings: embedded,
    })
}
