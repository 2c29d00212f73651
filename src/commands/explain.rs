//! `flow explain ITEM STAGE`

use flow_engine::state::Store;

use super::load;
use crate::cli::{ExplainArgs, Format, Tuning};
use crate::errors::CliError;
use crate::locate;

/// Shows what an item-stage's cache key is made of and what changed.
pub fn explain(args: ExplainArgs) -> Result<i32, CliError> {
    let state_dir = locate::find(&args.place)?;
    let store = Store::open(&state_dir)?;
    let run = store
        .runs()
        .pop()
        .ok_or_else(|| CliError::Message(format!("no runs in `{}`", state_dir.display())))?;
    let workflow_path = args
        .place
        .workflow
        .clone()
        .unwrap_or_else(|| run.workflow.clone().into());
    let tuning = Tuning {
        overrides: run.args.overrides.clone(),
        inputs: run.args.inputs.clone(),
        devices: run.args.devices.clone(),
    };
    let workflow = load(&workflow_path, &tuning)?;
    let items = flow_engine::items::discover(&workflow.spec.inputs, &workflow.dir)
        .map_err(|e| CliError::Message(e.to_string()))?;
    let item = items.iter().find(|i| i.id == args.item).ok_or_else(|| {
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        CliError::Message(format!(
            "no item `{}` in the workflow's inputs; {}",
            args.item,
            flow_engine::diag::suggestion(&args.item, &ids, "item")
        ))
    })?;
    let explanation = flow_engine::explain::explain(&workflow, &store, item, &args.stage)
        .map_err(CliError::Message)?;
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&explanation).unwrap_or_default()
        );
        return Ok(0);
    }
    println!("{} in `{}`", explanation.item, explanation.stage);
    println!("cache key: {}", explanation.key);
    println!(
        "made of:\n{}",
        serde_json::to_string_pretty(&explanation.components).unwrap_or_default()
    );
    match (explanation.cached_by_run, &explanation.previous_key) {
        (Some(run), _) => {
            println!("a stored result matches (computed by run {run}): it will be reused")
        }
        (None, Some(previous)) => {
            println!("no stored result matches; the latest stored result ({previous}) differs in:");
            for change in &explanation.changes {
                println!("  {change}");
            }
        }
        (None, None) => println!("no result of this stage for this item has been stored yet"),
    }
    Ok(0)
}
