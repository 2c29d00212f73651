//! `flow run FILE` and `flow resume [RUN]`.

use std::sync::Arc;

use flow_engine::state::{RunArgs as StoredArgs, RunStatus, Store};
use flow_engine::{execute, Plan, RunRequest, RunSummary, Workflow};

use super::load;
use crate::cli::{ResumeArgs, RunArgs, Tuning};
use crate::errors::{CliError, EXIT_ITEMS_FAILED};
use crate::locate;
use crate::progress;

/// Runs a workflow.
pub fn run(args: RunArgs) -> Result<i32, CliError> {
    let workflow = load(&args.workflow, &args.tuning)?;
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| locate::state_dir_of(&args.workflow));
    let stored = StoredArgs {
        overrides: args.tuning.overrides,
        inputs: args.tuning.inputs,
        fresh: args.fresh,
    };
    start(workflow, state_dir, stored, None)
}

/// Continues an unfinished run with the settings it was started with.
pub fn resume(args: ResumeArgs) -> Result<i32, CliError> {
    let state_dir = locate::find(&args.place)?;
    let record = {
        let store = Store::open(&state_dir)?;
        match args.run {
            Some(id) => store.run(id).ok_or_else(|| {
                CliError::Message(format!("there is no run {id} in `{}`", state_dir.display()))
            })?,
            None => store.last_unfinished_run().ok_or_else(|| {
                CliError::Message(format!(
                    "every run in `{}` has finished; `flow run` starts a new one",
                    state_dir.display()
                ))
            })?,
        }
    };
    if record.status == RunStatus::Finished {
        eprintln!(
            "run {} had finished; running it again reuses every result",
            record.id
        );
    }
    let tuning = Tuning {
        overrides: record.args.overrides.clone(),
        inputs: record.args.inputs.clone(),
    };
    let workflow = load(std::path::Path::new(&record.workflow), &tuning)?;
    eprintln!("resuming run {} of `{}`", record.id, record.workflow);
    start(workflow, state_dir, record.args.clone(), Some(record.id))
}

fn start(
    workflow: Workflow,
    state_dir: std::path::PathBuf,
    args: StoredArgs,
    resume: Option<u64>,
) -> Result<i32, CliError> {
    let plan = Plan::naive(&workflow);
    let reporter = progress::reporter();
    let summary = execute(RunRequest {
        workflow: Arc::new(workflow),
        plan,
        state_dir,
        args,
        resume,
        reporter: Arc::clone(&reporter),
    })?;
    print_summary(&summary);
    Ok(if summary.failed == 0 {
        0
    } else {
        EXIT_ITEMS_FAILED
    })
}

fn print_summary(summary: &RunSummary) {
    eprintln!(
        "run {}: {} items, {} succeeded, {} failed; {} results computed, {} reused; {:.1}s",
        summary.run,
        summary.items,
        summary.succeeded,
        summary.failed,
        summary.computed,
        summary.cached,
        summary.millis as f64 / 1000.0
    );
    if summary.failed > 0 {
        eprintln!(
            "`flow status {}` lists the failed items and why",
            summary.run
        );
    }
}
