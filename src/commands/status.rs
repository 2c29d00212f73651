//! `flow status [RUN]`

use flow_engine::state::{RunStatus, Store};
use flow_engine::status;

use crate::cli::{Format, StatusArgs};
use crate::errors::CliError;
use crate::locate;

/// Prints per-stage counts and every failure of a run.
pub fn status(args: StatusArgs) -> Result<i32, CliError> {
    let state_dir = locate::find(&args.place)?;
    let store = Store::open(&state_dir)?;
    let run = match args.run {
        Some(id) => store.run(id),
        None => store.runs().pop(),
    }
    .ok_or_else(|| CliError::Message(format!("no such run in `{}`", state_dir.display())))?;
    let report = status::report(&store, run, args.items);
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return Ok(0);
    }
    let state = match report.run.status {
        RunStatus::Running => "unfinished (running, or interrupted: `flow resume` continues it)",
        RunStatus::Finished => "finished",
    };
    println!(
        "run {} of `{}`: {} items, {state}",
        report.run.id, report.run.workflow, report.run.items
    );
    println!(
        "{:<20} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "stage", "done", "cached", "failed", "blocked", "pending"
    );
    for s in &report.stages {
        println!(
            "{:<20} {:>7} {:>7} {:>7} {:>7} {:>7}",
            s.stage, s.done, s.cached, s.failed, s.blocked, s.pending
        );
    }
    for item in &report.items {
        let states: Vec<String> = item
            .stages
            .iter()
            .map(|(s, st)| format!("{s}={st}"))
            .collect();
        println!("  {}: {}", item.item, states.join(" "));
    }
    if !report.failures.is_empty() {
        println!("\nfailed items:");
        for f in &report.failures {
            println!("  {} in `{}`: {}", f.item, f.stage, f.reason);
        }
    }
    Ok(0)
}
