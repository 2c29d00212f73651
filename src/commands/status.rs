//! `flow status [RUN]`

use flow_engine::memory::human;
use flow_engine::report::Event;
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
        "{:<20} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7}",
        "stage", "done", "cached", "degraded", "failed", "blocked", "pending"
    );
    for s in &report.stages {
        if s.standby > 0 && s.standby + s.done == report.run.items {
            println!("{:<20} fallback only: ran for {} items", s.stage, s.done);
            continue;
        }
        println!(
            "{:<20} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7}",
            s.stage, s.done, s.cached, s.degraded, s.failed, s.blocked, s.pending
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
    print_memory(&report.memory);
    if !report.degraded.is_empty() {
        println!("\ndegraded items (a stage gave up; its fallback carried on):");
        for f in &report.degraded {
            println!("  {} in `{}`: {}", f.item, f.stage, f.reason);
        }
    }
    if !report.failures.is_empty() {
        println!("\nfailed items:");
        for f in &report.failures {
            println!("  {} in `{}`: {}", f.item, f.stage, f.reason);
        }
    }
    Ok(0)
}

/// Prints the out-of-memory ladder steps, batch size changes, warnings and
/// leaks of the run.
fn print_memory(events: &[Event]) {
    if events.is_empty() {
        return;
    }
    println!("\nmemory events:");
    for event in events {
        let line = match event {
            Event::Oom {
                stage,
                device,
                step,
                batch,
                detail,
                ..
            } => format!(
                "{stage} on {device}: out of memory in a batch of {batch}: {step}: {detail}"
            ),
            Event::BatchSize {
                stage,
                device,
                from,
                to,
                reason,
            } => format!("{stage} on {device}: batch size {from} -> {to} ({reason})"),
            Event::MemoryWarning {
                device,
                percent,
                used,
                total,
            } => format!(
                "{device}: over {percent} % of memory ({} of {})",
                human(*used),
                human(*total)
            ),
            Event::MemoryLeak {
                device,
                model,
                leaked,
                loaded,
            } => format!(
                "{device}: model `{model}` left {} of its {} behind after unloading (leak?)",
                human(*leaked),
                human(*loaded)
            ),
            _ => continue,
        };
        println!("  {line}");
    }
}
