//! The PostgreSQL side of `sink.postgres`: a connection on its own small
//! runtime, the schema (the SQLite one with PostgreSQL types), and the
//! per-item write in one transaction.

use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

use crate::postgres::VectorType;
use crate::record::ItemRecord;
use crate::sqlite_db::Written;

/// How the `embeddings.vector` column stores vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorColumn {
    /// pgvector's `vector(N)`.
    Vector(usize),
    /// `real[]`.
    RealArray,
}

/// An open connection with the tables in place.
pub struct PgStore {
    rt: Runtime,
    client: Client,
    /// The quoted schema name.
    schema: String,
    /// Whether the pgvector extension is usable.
    pgvector: bool,
    /// What the settings ask for.
    wanted: VectorType,
    /// The embeddings column, once the table exists.
    column: Option<VectorColumn>,
}

fn tables(s: &str) -> String {
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.sources (
    item            TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    title           TEXT NOT NULL,
    duration        DOUBLE PRECISION,
    status          TEXT NOT NULL,
    reason          TEXT,
    language        TEXT,
    speaker_mode    TEXT,
    segment_count   BIGINT NOT NULL,
    chunk_count     BIGINT NOT NULL,
    embedding_count BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.segments (
    item               TEXT NOT NULL REFERENCES {s}.sources(item) ON DELETE CASCADE,
    segment            BIGINT NOT NULL,
    start_s            DOUBLE PRECISION NOT NULL,
    end_s              DOUBLE PRECISION NOT NULL,
    text               TEXT NOT NULL,
    speaker            TEXT,
    speaker_confidence DOUBLE PRECISION,
    avg_logprob        DOUBLE PRECISION,
    no_speech_prob     DOUBLE PRECISION,
    compression_ratio  DOUBLE PRECISION,
    temperature        DOUBLE PRECISION,
    PRIMARY KEY (item, segment)
);
CREATE TABLE IF NOT EXISTS {s}.chunks (
    item     TEXT NOT NULL REFERENCES {s}.sources(item) ON DELETE CASCADE,
    chunk    BIGINT NOT NULL,
    start_s  DOUBLE PRECISION NOT NULL,
    end_s    DOUBLE PRECISION NOT NULL,
    text     TEXT NOT NULL,
    speakers TEXT[] NOT NULL,
    segments BIGINT[] NOT NULL,
    PRIMARY KEY (item, chunk)
);
"#
    )
}

fn embeddings_table(s: &str, column: VectorColumn) -> String {
    let ty = match column {
        VectorColumn::Vector(n) => format!("vector({n})"),
        VectorColumn::RealArray => "REAL[]".to_string(),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {s}.embeddings (
    item      TEXT NOT NULL REFERENCES {s}.sources(item) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('segments', 'chunks')),
    row_index BIGINT NOT NULL,
    model     TEXT NOT NULL,
    dim       BIGINT NOT NULL,
    vector    {ty} NOT NULL,
    PRIMARY KEY (item, kind, row_index)
)"
    )
}

/// Reads a `format_type` of the vector column: `vector(384)`, `real[]`.
fn parse_column(ty: &str) -> Option<VectorColumn> {
    if ty == "real[]" {
        return Some(VectorColumn::RealArray);
    }
    let n = ty.strip_prefix("vector(")?.strip_suffix(')')?;
    n.parse().ok().map(VectorColumn::Vector)
}

/// A vector as PostgreSQL text: `[1,2]` for pgvector, `{1,2}` for arrays.
fn vector_text(row: &[f32], column: VectorColumn) -> String {
    let body: Vec<String> = row.iter().map(|v| v.to_string()).collect();
    match column {
        VectorColumn::Vector(_) => format!("[{}]", body.join(",")),
        VectorColumn::RealArray => format!("{{{}}}", body.join(",")),
    }
}

impl PgStore {
    /// Connects to `url` and creates the schema `schema` (a plain
    /// identifier) and its tables when missing.
    ///
    /// # Errors
    /// The error's message (which may quote the URL: the caller scrubs it).
    pub fn connect(url: &str, schema: &str, wanted: VectorType) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the PostgreSQL client: {e}"))?;
        let (client, connection) = rt
            .block_on(tokio_postgres::connect(url, NoTls))
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        // Driven while the client is used inside `block_on`.
        rt.spawn(async move {
            let _ = connection.await;
        });
        let schema = format!("\"{schema}\"");
        let pgvector = wanted != VectorType::RealArray
            && rt
                .block_on(client.batch_execute("CREATE EXTENSION IF NOT EXISTS vector"))
                .is_ok();
        if wanted == VectorType::Vector && !pgvector {
            return Err("`vectors: vector` needs the pgvector extension, and `CREATE EXTENSION IF NOT EXISTS vector` failed: install pgvector on the server (Debian: postgresql-NN-pgvector) or use `vectors: auto`".into());
        }
        rt.block_on(client.batch_execute(&tables(&schema)))
            .map_err(|e| format!("cannot create the tables: {}", db_message(&e)))?;
        let mut store = Self {
            rt,
            client,
            schema,
            pgvector,
            wanted,
            column: None,
        };
        store.column = store.existing_column()?;
        Ok(store)
    }

    /// The vector column of an existing `embeddings` table.
    fn existing_column(&self) -> Result<Option<VectorColumn>, String> {
        let table = format!("{}.embeddings", self.schema);
        let row = self
            .rt
            .block_on(self.client.query_opt(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attname = 'vector'
                   AND NOT a.attisdropped",
                &[&table],
            ))
            .map_err(|e| format!("cannot read the embeddings table: {}", db_message(&e)))?;
        let Some(row) = row else { return Ok(None) };
        let ty: String = row.get(0);
        parse_column(&ty).map(Some).ok_or_else(|| {
            format!("{table}.vector has type `{ty}`, neither vector(N) nor real[]: drop or rename the table")
        })
    }

    /// How the `embeddings` table stores vectors (`vector` or `real[]`),
    /// once it exists.
    pub fn vector_kind(&self) -> Option<&'static str> {
        match self.column {
            Some(VectorColumn::Vector(_)) => Some("vector"),
            Some(VectorColumn::RealArray) => Some("real[]"),
            None => None,
        }
    }

    /// The embeddings column for vectors of `dim`, creating the table on
    /// the first vectors.
    fn column_for(&mut self, dim: usize) -> Result<VectorColumn, String> {
        if self.column.is_none() {
            let column = if self.pgvector {
                VectorColumn::Vector(dim)
            } else {
                VectorColumn::RealArray
            };
            self.rt
                .block_on(
                    self.client
                        .batch_execute(&embeddings_table(&self.schema, column)),
                )
                .map_err(|e| format!("cannot create the embeddings table: {}", db_message(&e)))?;
            self.column = self.existing_column()?;
        }
        match self.column {
            Some(VectorColumn::Vector(n)) if n != dim => Err(format!(
                "{}.embeddings holds vectors of {n} dimensions, these have {dim}: write them to another `schema`",
                self.schema
            )),
            Some(VectorColumn::RealArray) if self.wanted == VectorType::Vector => Err(format!(
                "{}.embeddings stores real[] vectors, not pgvector's: drop the table or use `vectors: auto`",
                self.schema
            )),
            Some(c) => Ok(c),
            None => Err("the embeddings table could not be created".into()),
        }
    }

    /// Stores `record` in one transaction, replacing what the item had.
    ///
    /// # Errors
    /// A message (the server's, which may quote values, never the URL).
    pub fn write_item(&mut self, record: &ItemRecord) -> Result<Written, String> {
        let column = match &record.embeddings {
            Some(e) => Some(self.column_for(e.dim)?),
            None => None,
        };
        let s = self.schema.clone();
        let has_embeddings = self.column.is_some();
        let Self { rt, client, .. } = self;
        rt.block_on(write(client, &s, record, column, has_embeddings))
            .map_err(|e| format!("cannot write item `{}`: {}", record.item, db_message(&e)))
    }

    /// Whether the connection is gone (the next item reconnects).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// The server's message and detail, or the client error.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

async fn write(
    client: &mut Client,
    s: &str,
    r: &ItemRecord,
    column: Option<VectorColumn>,
    has_embeddings: bool,
) -> Result<Written, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let embedded = r.embeddings.as_ref().map_or(0, |e| e.rows().count());
    tx.execute(
        &format!(
            "INSERT INTO {s}.sources (item, source, title, duration, status, reason, language,
                 speaker_mode, segment_count, chunk_count, embedding_count, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
             ON CONFLICT (item) DO UPDATE SET
                 source = excluded.source, title = excluded.title,
                 duration = excluded.duration, status = excluded.status,
                 reason = excluded.reason, language = excluded.language,
                 speaker_mode = excluded.speaker_mode,
                 segment_count = excluded.segment_count,
                 chunk_count = excluded.chunk_count,
                 embedding_count = excluded.embedding_count,
                 updated_at = excluded.updated_at"
        ),
        &[
            &r.item,
            &r.source,
            &r.title,
            &r.duration,
            &r.status.as_str(),
            &r.reason,
            &r.language,
            &r.speaker_mode,
            &(r.segments.len() as i64),
            &(r.chunks.len() as i64),
            &(embedded as i64),
        ],
    )
    .await?;
    for table in ["segments", "chunks", "embeddings"] {
        if table == "embeddings" && !has_embeddings {
            continue;
        }
        tx.execute(
            &format!("DELETE FROM {s}.{table} WHERE item = $1"),
            &[&r.item],
        )
        .await?;
    }
    let seg = &r.segments;
    let col = |f: fn(&crate::record::Segment) -> Option<f64>| seg.iter().map(f).collect::<Vec<_>>();
    tx.execute(
        &format!(
            "INSERT INTO {s}.segments (item, segment, start_s, end_s, text, speaker,
                 speaker_confidence, avg_logprob, no_speech_prob, compression_ratio, temperature)
             SELECT $1::text, * FROM UNNEST($2::bigint[], $3::float8[], $4::float8[], $5::text[],
                 $6::text[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[])"
        ),
        &[
            &r.item,
            &seg.iter().map(|x| x.index).collect::<Vec<_>>(),
            &seg.iter().map(|x| x.start).collect::<Vec<_>>(),
            &seg.iter().map(|x| x.end).collect::<Vec<_>>(),
            &seg.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(),
            &seg.iter().map(|x| x.speaker.as_deref()).collect::<Vec<_>>(),
            &col(|x| x.speaker_confidence),
            &col(|x| x.avg_logprob),
            &col(|x| x.no_speech_prob),
            &col(|x| x.compression_ratio),
            &col(|x| x.temperature),
        ],
    )
    .await?;
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {s}.chunks (item, chunk, start_s, end_s, text, speakers, segments)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .await?;
    for c in &r.chunks {
        tx.execute(
            &insert,
            &[
                &r.item,
                &c.index,
                &c.start,
                &c.end,
                &c.text,
                &c.speakers,
                &c.segments,
            ],
        )
        .await?;
    }
    if let (Some(e), Some(column)) = (&r.embeddings, column) {
        let cast = match column {
            VectorColumn::Vector(_) => "vector",
            VectorColumn::RealArray => "real[]",
        };
        let rows: Vec<i64> = (0..embedded as i64).collect();
        let texts: Vec<String> = e.rows().map(|v| vector_text(v, column)).collect();
        tx.execute(
            &format!(
                "INSERT INTO {s}.embeddings (item, kind, row_index, model, dim, vector)
                 SELECT $1::text, $2::text, v.i, $3::text, $4::bigint, v.t::{cast} FROM UNNEST($5::bigint[], $6::text[]) AS v(i, t)"
            ),
            &[&r.item, &e.of.as_str(), &e.model, &(e.dim as i64), &rows, &texts],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Written {
        segments: r.segments.len(),
        chunks: r.chunks.len(),
        embeddings: embedded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_columns_are_read_back() {
        assert_eq!(parse_column("vector(384)"), Some(VectorColumn::Vector(384)));
        assert_eq!(parse_column("real[]"), Some(VectorColumn::RealArray));
        assert_eq!(parse_column("text"), None);
        assert_eq!(
            vector_text(&[1.0, -0.5], VectorColumn::Vector(2)),
            "[1,-0.5]"
        );
        assert_eq!(
            vector_text(&[1.0, -0.5], VectorColumn::RealArray),
            "{1,-0.5}"
        );
    }
}
