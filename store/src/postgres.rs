//! `sink.postgres`: the `sink.sqlite` tables in a PostgreSQL database,
//! vectors as pgvector's `vector(N)` when the extension can be enabled and
//! `real[]` otherwise. The connection string comes from an environment
//! variable and is never printed: it is scrubbed from every message.

use std::sync::{Arc, Mutex};

use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::postgres_db::PgStore;
use crate::record::ItemRecord;

/// How `sink.postgres` stores vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VectorType {
    /// pgvector's `vector(N)` when `CREATE EXTENSION IF NOT EXISTS vector`
    /// succeeds, else `real[]`.
    #[default]
    Auto,
    /// pgvector's `vector(N)`; items fail when the extension is missing.
    Vector,
    /// `real[]`, even when pgvector is installed.
    RealArray,
}

/// Settings of `sink.postgres`.
///
/// ```yaml
/// pg:
///   uses: sink.postgres
///   needs: [speakers, chunk, embed]
///   with: { url_env: FLOW_POSTGRES_URL, schema: talks }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// The environment variable that holds the connection string, like
    /// `postgresql://user:password@host:5432/db` (default
    /// `FLOW_POSTGRES_URL`). It is read when the run starts and never
    /// printed or logged. TLS is not supported yet: use `sslmode=disable`
    /// or `prefer` and a trusted network (or a local socket).
    #[serde(default = "default_url_env")]
    pub url_env: String,
    /// The schema the tables live in, created when missing (default
    /// `public`). Letters, digits and `_`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// How vectors are stored: `auto` (default), `vector`, `real_array`.
    /// The type is fixed when the `embeddings` table is created.
    #[serde(default)]
    pub vectors: VectorType,
}

fn default_url_env() -> String {
    "FLOW_POSTGRES_URL".to_string()
}

fn default_schema() -> String {
    "public".to_string()
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// A connection string that never shows itself.
#[derive(Clone)]
pub struct Secret {
    url: String,
    /// The password inside it, when it has one.
    password: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Wraps a connection string.
    pub fn new(url: String) -> Self {
        let password = url
            .parse::<tokio_postgres::Config>()
            .ok()
            .and_then(|c| {
                c.get_password()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
            })
            .filter(|p| !p.is_empty());
        Self { url, password }
    }

    /// `message` with the connection string and its password replaced by
    /// `***`.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.replace(&self.url, "***");
        if let Some(p) = &self.password {
            out = out.replace(p.as_str(), "***");
        }
        out
    }
}

/// The `sink.postgres` kind.
pub struct PostgresSinkKind;

impl Settings for PostgresSinkConfig {}

impl TypedKind for PostgresSinkKind {
    type Config = PostgresSinkConfig;

    fn name(&self) -> &'static str {
        "sink.postgres"
    }

    fn summary(&self) -> &'static str {
        "Upsert each item's source row, segments, chunks and vectors (pgvector or real[]) into PostgreSQL"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &PostgresSinkConfig) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if c.url_env.trim().is_empty() || c.url_env.contains('=') {
            problems.push(
                ConfigProblem::new(
                    &["url_env"],
                    "`url_env` is not an environment variable name",
                )
                .help("name the variable that holds the connection string, like FLOW_POSTGRES_URL"),
            );
        }
        if !is_identifier(&c.schema) {
            problems.push(
                ConfigProblem::new(
                    &["schema"],
                    format!("`{}` is not a plain schema name", c.schema),
                )
                .help("use letters, digits and `_`, starting with a letter"),
            );
        }
        problems
    }

    fn ports(&self, _config: &PostgresSinkConfig) -> Ports {
        Ports::default()
    }

    fn resources(&self) -> Resources {
        Resources {
            always_run: true,
            ..Resources::default()
        }
    }

    fn build(
        &self,
        _ctx: &BuildContext<'_>,
        config: PostgresSinkConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        let url = match std::env::var(&config.url_env) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                return Err(format!(
                    "the environment variable `{}` is not set: export it with the connection string (postgresql://USER:PASSWORD@HOST:5432/DB)",
                    config.url_env
                ))
            }
        };
        Ok(Arc::new(PostgresSink {
            secret: Secret::new(url),
            schema: config.schema,
            vectors: config.vectors,
            store: Mutex::new(None),
        }))
    }
}

struct PostgresSink {
    secret: Secret,
    schema: String,
    vectors: VectorType,
    /// Connected on the first item; items are written one at a time.
    store: Mutex<Option<PgStore>>,
}

impl Stage for PostgresSink {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let record = ItemRecord::read(input)?;
        let fail = |m: String| StageError::failed(self.secret.scrub(&m));
        let mut slot = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(PgStore::is_closed) {
            *slot = None;
            let store =
                PgStore::connect(&self.secret.url, &self.schema, self.vectors).map_err(fail)?;
            *slot = Some(store);
        }
        let store = slot
            .as_mut()
            .ok_or_else(|| StageError::failed("not connected to PostgreSQL"))?;
        let written = store.write_item(&record).map_err(fail)?;
        let vectors = store.vector_kind();
        Ok(StageOutput {
            outputs: vec![Output {
                port: "written".to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({
                    "schema": self.schema,
                    "status": record.status.as_str(),
                    "segments": written.segments,
                    "chunks": written.chunks,
                    "embeddings": written.embeddings,
                    "vectors": vectors,
                })),
            }],
        })
    }

    fn finish(&self) -> Result<(), String> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        let s = Secret::new("postgresql://flow:hunter2@db.local:5432/talks".into());
        let m = s.scrub("cannot connect to postgresql://flow:hunter2@db.local:5432/talks: password hunter2 rejected");
        assert!(!m.contains("hunter2"), "{m}");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(is_identifier("talks_2") && !is_identifier("a;drop") && !is_identifier("1a"));
    }
}
