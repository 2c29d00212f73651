//! `flow run FILE` and `flow resume [RUN]`.

use std::sync::Arc;

use flow_engine::state::{RunArgs as StoredArgs, RunStatus, Store};
use flow_engine::{execute, RunRequest, RunSummary, Workflow};

use super::{load, make_plan};
use crate::cli::{ResumeArgs, RunArgs, Tuning};
use crate::errors::{CliError, EXIT_ITEMS_FAILED};
use crate::locate;
use crate::progress;

/// Runs a workflow.
pub fn run(args: RunArgs) -> Result<i32, CliError> {
    let workflow = load(&args.workflow, &args.tuning)?;
    let state_dir = locate::state_dir_for(args.state_dir, &args.workflow);
    let stored = StoredArgs {
        overrides: args.tuning.overrides,
        inputs: args.tuning.inputs,
        devices: args.tuning.devices,
        fresh: args.fresh,
    };
    start(workflow, state_dir, stored, None, false, None)
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
        devices: record.args.devices.clone(),
    };
    let workflow = load(std::path::Path::new(&record.workflow), &tuning)?;
    eprintln!("resuming run {} of `{}`", record.id, record.workflow);
    let items = record.items;
    start(
        workflow,
        state_dir,
        record.args.clone(),
        Some((record.id, items)),
        false,
        None,
    )
}

/// Plans and runs; `resume` is the run to continue and its item count.
pub(super) fn start(
    workflow: Workflow,
    state_dir: std::path::PathBuf,
    args: StoredArgs,
    resume: Option<(u64, usize)>,
    calibrate: bool,
    max_items: Option<usize>,
) -> Result<i32, CliError> {
    let items = match resume {
        Some((_, n)) => n,
        None => {
            let n = flow_engine::items::count(&workflow.spec.inputs, &workflow.dir).unwrap_or(0);
            max_items.map_or(n, |m| n.min(m))
        }
    };
    fetch_models(&workflow)?;
    let (plan, inventory) = make_plan(&workflow, &state_dir, items)?;
    for (stage, p) in plan.placements.iter().enumerate() {
        let declared = inventory
            .get(p.device)
            .is_some_and(|d| d.origin == flow_engine::memory::Origin::Declared);
        if declared {
            return Err(CliError::Message(format!(
                "stage `{}` is placed on {}, which is declared for planning but not on this machine: `flow plan` can plan for it, `flow run` cannot run on it (use `device: auto`)",
                workflow.stages[stage].id, p.device
            )));
        }
    }
    for (stage, p) in plan.placements.iter().enumerate() {
        if p.auto && p.device == flow_engine::device::DeviceId::Cpu {
            eprintln!(
                "note: stage `{}` runs on the CPU ({})",
                workflow.stages[stage].id, p.why
            );
        }
    }
    let reporter = progress::reporter();
    let summary = execute(RunRequest {
        workflow: Arc::new(workflow),
        plan,
        state_dir,
        args,
        resume: resume.map(|(id, _)| id),
        reporter: Arc::clone(&reporter),
        calibrate,
        max_items,
    })?;
    print_summary(&summary);
    Ok(if summary.failed == 0 {
        0
    } else {
        EXIT_ITEMS_FAILED
    })
}

/// Makes every model of the workflow available before planning (the plan
/// reads weight sizes from the files): fetches what the cache lacks.
fn fetch_models(workflow: &Workflow) -> Result<(), CliError> {
    let store = flow_models::Store::default();
    for (name, spec) in &workflow.spec.models {
        store
            .ensure(spec, &workflow.dir, &mut |p| {
                if !matches!(p, flow_models::Progress::Cached { .. }) {
                    eprintln!("{p}");
                }
            })
            .map_err(|e| super::models::model_error(name.as_str(), &e))?;
    }
    Ok(())
}

fn print_summary(summary: &RunSummary) {
    eprintln!(
        "run {}: {} items, {} succeeded{}, {} failed; {} results computed, {} reused; {:.1}s",
        summary.run,
        summary.items,
        summary.succeeded,
        if summary.degraded > 0 {
            format!(" ({} degraded)", summary.degraded)
        } else {
            String::new()
        },
        summary.failed,
        summary.computed,
        summary.cached,
        summary.millis as f64 / 1000.0
    );
    if summary.failed > 0 || summary.degraded > 0 {
        eprintln!(
            "`flow status {}` lists the failed and degraded items and why",
            summary.run
        );
    }
}
