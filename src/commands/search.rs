//! `flow search "QUERY" --workflow FILE`: the transcript segments or
//! chunks nearest to a question, from the workflow's `sink.sqlite`
//! database, with the query embedded by its `text.embed` model.

use std::path::{Path, PathBuf};

use clap::Args;
use flow_engine::device::DeviceId;
use flow_engine::graph::StageNode;
use flow_engine::registry::parse_config;
use flow_engine::Workflow;
use flow_store::SqliteSinkConfig;

use crate::cli::Tuning;
use crate::errors::CliError;

/// `flow search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The question or phrase to look for.
    pub query: String,
    /// The workflow whose database and embedding model to use.
    #[arg(long, short = 'w')]
    pub workflow: PathBuf,
    /// How many segments to print.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    /// The `sink.sqlite` stage to read, when the workflow has several.
    #[arg(long, value_name = "ID")]
    pub stage: Option<String>,
}

fn message(text: impl Into<String>) -> CliError {
    CliError::Message(text.into())
}

/// The `sink.sqlite` stage to read.
fn sqlite_stage<'a>(
    workflow: &'a Workflow,
    wanted: Option<&str>,
    file: &Path,
) -> Result<&'a StageNode, CliError> {
    let sinks: Vec<&StageNode> = workflow
        .stages
        .iter()
        .filter(|s| s.kind.name() == "sink.sqlite")
        .collect();
    let ids = || {
        sinks
            .iter()
            .map(|s| format!("`{}`", s.id.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (wanted, sinks.as_slice()) {
        (_, []) => Err(message(format!(
            "`{}` has no `sink.sqlite` stage, so there is no database to search\n  help: add one that needs your `text.embed` stage, like `db: {{ uses: sink.sqlite, needs: [chunk, embed] }}`, then `flow run {}`",
            file.display(),
            file.display()
        ))),
        (None, [one]) => Ok(one),
        (None, _) => Err(message(format!(
            "`{}` has several `sink.sqlite` stages ({}): pick one with `--stage ID`",
            file.display(),
            ids()
        ))),
        (Some(id), _) => sinks
            .iter()
            .find(|s| s.id.as_str() == id)
            .copied()
            .ok_or_else(|| {
                message(format!(
                    "`{id}` is not a `sink.sqlite` stage of `{}` (those are {})",
                    file.display(),
                    ids()
                ))
            }),
    }
}

/// The first `text.embed` stage among `sink`'s upstream stages.
fn embed_stage<'a>(workflow: &'a Workflow, sink: &StageNode) -> Option<&'a StageNode> {
    let mut seen = vec![false; workflow.stages.len()];
    let mut queue: std::collections::VecDeque<usize> = sink.needs.iter().copied().collect();
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let stage = &workflow.stages[i];
        if stage.kind.name() == "text.embed" {
            return Some(stage);
        }
        queue.extend(stage.needs.iter().copied());
    }
    None
}

/// The folder of `stage`'s model, fetched into the cache when missing.
fn model_dir(workflow: &Workflow, stage: &StageNode) -> Result<PathBuf, CliError> {
    let name = stage.spec.model.as_ref().ok_or_else(|| {
        message(format!(
            "stage `{}` names no `model:`, so the query cannot be embedded like the database",
            stage.id.as_str()
        ))
    })?;
    let spec = workflow
        .spec
        .models
        .get(name)
        .ok_or_else(|| message(format!("model `{}` is not under `models:`", name.as_str())))?;
    let resolved = flow_models::Store::default()
        .ensure(spec, &workflow.dir, &mut |p| {
            if !matches!(p, flow_models::Progress::Cached { .. }) {
                eprintln!("{p}");
            }
        })
        .map_err(|e| super::models::model_error(name.as_str(), &e))?;
    Ok(resolved.dir)
}

/// Seconds as `M:SS.s`, or `H:MM:SS.s` from an hour on.
fn clock(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0).round() as u64;
    let (h, m, s, t) = (
        tenths / 36_000,
        tenths / 600 % 60,
        tenths / 10 % 60,
        tenths % 10,
    );
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{t}")
    } else {
        format!("{m}:{s:02}.{t}")
    }
}

/// Prints the nearest segments.
pub fn search(args: SearchArgs) -> Result<i32, CliError> {
    let tuning = Tuning {
        overrides: Vec::new(),
        inputs: None,
        devices: Vec::new(),
    };
    let workflow = super::load(&args.workflow, &tuning)?;
    let file = &args.workflow;
    let sink = sqlite_stage(&workflow, args.stage.as_deref(), file)?;
    let config: SqliteSinkConfig =
        parse_config(&sink.spec.config).map_err(|p| message(p.message))?;
    let db = config.db_path(&workflow.dir, sink.id.as_str());
    let embed = embed_stage(&workflow, sink).ok_or_else(|| {
        message(format!(
            "stage `{}` stores no vectors: add a `text.embed` stage to its `needs`, then `flow run {}`",
            sink.id.as_str(),
            file.display()
        ))
    })?;
    let index = flow_store::open(&db).map_err(|e| match e {
        flow_store::StoreError::Missing(_) => message(format!(
            "the database `{}` does not exist yet: run `flow run {}` first",
            db.display(),
            file.display()
        )),
        other => message(other.to_string()),
    })?;
    if index
        .embedding_count()
        .map_err(|e| message(e.to_string()))?
        == 0
    {
        return Err(message(format!(
            "the database `{}` holds no vectors yet: run `flow run {}` (items that failed have none; `flow status` lists them)",
            db.display(),
            file.display()
        )));
    }
    let dir = model_dir(&workflow, embed)?;
    let embedder = flow_text::Embedder::load(&dir, DeviceId::Cpu)
        .map_err(|e| message(format!("cannot load the embedding model: {e}")))?;
    let query = embedder
        .embed(&[args.query.as_str()], 1)
        .map_err(|e| message(format!("cannot embed the query: {e}")))?;
    let hits = index
        .nearest(&query, args.k)
        .map_err(|e| message(e.to_string()))?;
    for (n, hit) in hits.iter().enumerate() {
        let speaker = hit
            .speaker
            .as_deref()
            .map(|s| format!("  [{s}]"))
            .unwrap_or_default();
        // Rows of a table have no time range.
        let range = if hit.end > 0.0 {
            format!("  {}–{}", clock(hit.start), clock(hit.end))
        } else {
            String::new()
        };
        println!("{}. {:.3}  {}{range}{speaker}", n + 1, hit.score, hit.item);
        println!("   {}", hit.text);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clocks_read_like_players_show_them() {
        assert_eq!(clock(62.54), "1:02.5");
        assert_eq!(clock(3723.0), "1:02:03.0");
        assert_eq!(clock(0.0), "0:00.0");
    }
}
