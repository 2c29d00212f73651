//! `sink.sqlite`: every item's source row, transcript segments, chunks and
//! vectors in one SQLite file (the embedded default store; `flow search`
//! reads it).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flow_engine::duration::Span;
use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use rusqlite::Connection;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::ItemRecord;
use crate::sqlite_db::{open_for_writing, write_item};

/// Settings of `sink.sqlite`.
///
/// ```yaml
/// db:
///   uses: sink.sqlite
///   needs: [speakers, chunk, embed]
///   with: { path: out/chaffee.db }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// The database file, relative to the workflow file; it is created
    /// (with its folder) when missing. Default: `out/<stage id>.db`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// How long a write waits for another process holding the database
    /// (a `flow search`, another run) before the item fails. Default `10s`.
    #[serde(default = "default_busy_timeout")]
    pub busy_timeout: Span,
}

fn default_busy_timeout() -> Span {
    Span(std::time::Duration::from_secs(10))
}

impl SqliteSinkConfig {
    /// The database file of a stage `stage_id` of a workflow in
    /// `workflow_dir` with these settings.
    pub fn db_path(&self, workflow_dir: &Path, stage_id: &str) -> PathBuf {
        match &self.path {
            Some(p) => workflow_dir.join(p),
            None => workflow_dir.join("out").join(format!("{stage_id}.db")),
        }
    }
}

/// The `sink.sqlite` kind.
pub struct SqliteSinkKind;

impl Settings for SqliteSinkConfig {}

impl TypedKind for SqliteSinkKind {
    type Config = SqliteSinkConfig;

    fn name(&self) -> &'static str {
        "sink.sqlite"
    }

    fn summary(&self) -> &'static str {
        "Upsert each item's source row, segments (with speakers), chunks and vectors into a SQLite file"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &SqliteSinkConfig) -> Vec<ConfigProblem> {
        if c.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return vec![ConfigProblem::new(&["path"], "`path` is empty")
                .help("name a database file, like `out/talks.db`")];
        }
        Vec::new()
    }

    fn ports(&self, _config: &SqliteSinkConfig) -> Ports {
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
        ctx: &BuildContext<'_>,
        config: SqliteSinkConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(SqliteSink {
            path: config.db_path(ctx.workflow_dir, ctx.stage_id),
            busy: config.busy_timeout.0,
            conn: Mutex::new(None),
        }))
    }
}

struct SqliteSink {
    path: PathBuf,
    busy: std::time::Duration,
    /// Opened on the first item (so `flow plan` never creates the file);
    /// items are written one at a time through it.
    conn: Mutex<Option<Connection>>,
}

impl Stage for SqliteSink {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let record = ItemRecord::read(input)?;
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let conn = open_for_writing(&self.path, self.busy)
                .map_err(|e| StageError::failed(e.to_string()))?;
            *slot = Some(conn);
        }
        let conn = slot
            .as_mut()
            .ok_or_else(|| StageError::failed("the database is not open"))?;
        let written = write_item(conn, &record).map_err(|e| {
            StageError::failed(format!(
                "cannot write item `{}` to `{}`: {e}",
                record.item,
                self.path.display()
            ))
        })?;
        Ok(StageOutput {
            outputs: vec![Output {
                port: "written".to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({
                    "db": self.path.display().to_string(),
                    "status": record.status.as_str(),
                    "segments": written.segments,
                    "chunks": written.chunks,
                    "embeddings": written.embeddings,
                })),
            }],
        })
    }

    fn finish(&self) -> Result<(), String> {
        // Closing checkpoints the WAL into the database file.
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        match conn {
            Some(c) => c
                .close()
                .map_err(|(_, e)| format!("cannot close `{}`: {e}", self.path.display())),
            None => Ok(()),
        }
    }
}
