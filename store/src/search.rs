//! Nearest-neighbour search over a `sink.sqlite` database: brute-force
//! cosine similarity, streaming the `embeddings` table row by row and
//! keeping only the best `k` in a heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::StoreError;

/// One search result: a segment or chunk and how close it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The item id.
    pub item: String,
    /// `segments` or `chunks`: what the vector embeds.
    pub kind: String,
    /// The segment's or chunk's position in the item.
    pub index: i64,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The speaker (a chunk's speakers joined with `, `), when known.
    pub speaker: Option<String>,
    /// The text.
    pub text: String,
    /// Cosine similarity with the query, in [-1, 1].
    pub score: f32,
}

/// A `sink.sqlite` database opened for reading.
pub struct Index {
    conn: Connection,
    path: PathBuf,
}

/// Opens the database at `path` for reading (`PRAGMA query_only`).
///
/// # Errors
/// [`StoreError::Missing`] when there is no such file (the workflow has not
/// run yet), or a SQLite error.
pub fn open(path: &Path) -> Result<Index, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    let sql = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    // Read-write (never creating) when allowed, so closing cleans up the
    // WAL's side files; `query_only` keeps it from writing anything.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .or_else(|_| {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    })
    .map_err(sql)?;
    conn.pragma_update(None, "query_only", "ON").map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql)?;
    let has_table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    if has_table.is_none() {
        return Err(StoreError::NotAStore(path.to_path_buf()));
    }
    Ok(Index {
        conn,
        path: path.to_path_buf(),
    })
}

/// A candidate in the top-k heap, ordered so the heap's top is the worst.
struct Candidate {
    score: f32,
    item: String,
    kind: String,
    index: i64,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: a higher score is "less", so `peek` is the lowest score.
        other.score.total_cmp(&self.score)
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

impl Index {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many vectors the database holds.
    ///
    /// # Errors
    /// A SQLite error.
    pub fn embedding_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM embeddings", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The `k` segments or chunks whose vectors are nearest to `query` by
    /// cosine similarity, best first. Vectors of another width than the
    /// query (another model) are passed over; when every stored vector is,
    /// that is an error.
    ///
    /// # Errors
    /// [`StoreError::Dimension`] when no stored vector has the query's
    /// width, or a SQLite error.
    pub fn nearest(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, StoreError> {
        let qn = norm(query).max(1e-12);
        let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(k + 1);
        let mut other_dim = None;
        let mut matched = 0u64;
        let mut stmt = self
            .conn
            .prepare("SELECT item, kind, row_index, dim, vector FROM embeddings")
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        let mut v = Vec::with_capacity(query.len());
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let dim: i64 = row.get(3).map_err(|e| self.sql(e))?;
            let blob = match row.get_ref(4).map_err(|e| self.sql(e))? {
                ValueRef::Blob(b) => b,
                _ => &[],
            };
            if dim as usize != query.len() || blob.len() != query.len() * 4 {
                other_dim = Some(dim);
                continue;
            }
            matched += 1;
            v.clear();
            v.extend(
                blob.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            let dot: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            let score = dot / (norm(&v).max(1e-12) * qn);
            if k == 0 || (heap.len() == k && heap.peek().is_some_and(|w| w.score >= score)) {
                continue;
            }
            heap.push(Candidate {
                score,
                item: row.get(0).map_err(|e| self.sql(e))?,
                kind: row.get(1).map_err(|e| self.sql(e))?,
                index: row.get(2).map_err(|e| self.sql(e))?,
            });
            if heap.len() > k {
                heap.pop();
            }
        }
        if matched == 0 {
            if let Some(found) = other_dim {
                return Err(StoreError::Dimension {
                    path: self.path.clone(),
                    found: found as usize,
                    query: query.len(),
                });
            }
        }
        // `into_sorted_vec` is ascending by `Ord`, which is descending score.
        heap.into_sorted_vec()
            .into_iter()
            .map(|c| self.hit(c))
            .collect()
    }

    fn hit(&self, c: Candidate) -> Result<Hit, StoreError> {
        let (sql, chunk) = match c.kind.as_str() {
            "segments" => (
                "SELECT start_s, end_s, speaker, text FROM segments WHERE item = ?1 AND segment = ?2",
                false,
            ),
            _ => (
                "SELECT start_s, end_s, speakers, text FROM chunks WHERE item = ?1 AND chunk = ?2",
                true,
            ),
        };
        let found = self
            .conn
            .query_row(sql, params![c.item, c.index], |r| {
                Ok((
                    r.get::<_, f64>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        let (start, end, speaker, text) = found.unwrap_or((0.0, 0.0, None, String::new()));
        let speaker = match (chunk, speaker) {
            (true, Some(json)) => {
                let list: Vec<String> = serde_json::from_str(&json).unwrap_or_default();
                (!list.is_empty()).then(|| list.join(", "))
            }
            (_, s) => s,
        };
        Ok(Hit {
            item: c.item,
            kind: c.kind,
            index: c.index,
            start,
            end,
            speaker,
            text,
            score: c.score,
        })
    }
}
