//! `custom-stage WORKFLOW`: runs a workflow with the built-in stage kinds
//! plus `text.wordcount`. Exits 0 when every item succeeded, 2 when some
//! failed, 78 on configuration errors and 1 when the run cannot start.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use custom_stage::WordCountKind;
use flow_engine::{execute, load, report::Silent, LoadOptions, Registry, RunRequest, EXIT_CONFIG};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: custom-stage WORKFLOW.yaml");
        return ExitCode::from(64);
    };
    let mut registry = Registry::new();
    flow_stages::register_builtins(&mut registry);
    registry.register(WordCountKind);

    let workflow = match load(&path, &LoadOptions::default(), &registry) {
        Ok(workflow) => workflow,
        Err(errors) => {
            eprintln!("{errors}");
            for error in &errors.errors {
                let line = error.line().map_or_else(String::new, |n| format!(":{n}"));
                eprintln!(
                    "  {}{line}: [{}] {}",
                    errors.path.display(),
                    error.code,
                    error.message
                );
                if let Some(help) = &error.help {
                    eprintln!("    help: {help}");
                }
            }
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    let state_dir = workflow.dir.join(".flow");
    let plan = match flow_engine::planner::plan_here(&workflow, &state_dir, 0) {
        Ok((plan, _)) => plan,
        Err(errors) => {
            for error in &errors.errors {
                eprintln!("{}: {}", errors.path.display(), error.message);
            }
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    let request = RunRequest {
        plan,
        calibrate: false,
        max_items: None,
        state_dir,
        args: Default::default(),
        resume: None,
        reporter: Arc::new(Silent),
        workflow: Arc::new(workflow),
    };
    match execute(request) {
        Ok(s) => {
            println!(
                "run {}: {} items, {} succeeded, {} failed; {} results computed, {} reused",
                s.run, s.items, s.succeeded, s.failed, s.computed, s.cached
            );
            ExitCode::from(if s.failed == 0 { 0 } else { 2 })
        }
        Err(error) => {
            eprintln!("cannot run `{}`: {error}", path.display());
            ExitCode::FAILURE
        }
    }
}
