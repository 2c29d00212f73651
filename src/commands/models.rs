//! `flow models fetch` and `flow models list`: the model cache.

use flow_engine::memory::human;
use flow_models::{describe, ModelError, Store};

use super::load;
use crate::cli::{Format, ModelsArgs, ModelsCommand, ModelsFetchArgs, ModelsListArgs};
use crate::errors::CliError;

/// Runs a `flow models` subcommand.
pub fn models(args: ModelsArgs) -> Result<i32, CliError> {
    match args.command {
        ModelsCommand::Fetch(args) => fetch(args),
        ModelsCommand::List(args) => list(args),
    }
}

/// Makes every model of the workflow available, one progress line per
/// step on stderr, then each model's path and layout on stdout.
fn fetch(args: ModelsFetchArgs) -> Result<i32, CliError> {
    let workflow = load(&args.workflow, &args.tuning)?;
    let store = Store::default().verify_hashes(args.verify);
    if workflow.spec.models.is_empty() {
        eprintln!("`{}` names no models", args.workflow.display());
        return Ok(0);
    }
    let (mut fetched, mut reused) = (0, 0);
    for (name, spec) in &workflow.spec.models {
        let model = store
            .ensure(spec, &workflow.dir, &mut |p| eprintln!("{p}"))
            .map_err(|e| model_error(name.as_str(), &e))?;
        if model.from_cache {
            reused += 1;
        } else {
            fetched += 1;
        }
        println!("{name}: {}", model.dir.display());
        println!("  {}", describe(&model.dir));
    }
    eprintln!(
        "{} models ready: {fetched} fetched, {reused} already here (cache: {})",
        fetched + reused,
        store.cache_dir().display()
    );
    Ok(0)
}

/// The error for model `name`, with its `help:` line.
pub(super) fn model_error(name: &str, error: &ModelError) -> CliError {
    let mut message = format!("model `{name}`: {error}");
    if let Some(help) = error.help_text() {
        message.push_str(&format!("\n  help: {help}"));
    }
    CliError::Message(message)
}

/// Prints the cached packages: package, version, size, files, fetched, path.
fn list(args: ModelsListArgs) -> Result<i32, CliError> {
    let store = Store::default();
    let models = store.list();
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&models).unwrap_or_default()
        );
        return Ok(0);
    }
    if models.is_empty() {
        eprintln!(
            "no models in {}; `flow models fetch FILE` fetches a workflow's models",
            store.cache_dir().display()
        );
        return Ok(0);
    }
    let width = |header: &str, cell: &dyn Fn(&flow_models::CachedModel) -> usize| {
        models.iter().map(cell).max().unwrap_or(0).max(header.len())
    };
    let wp = width("package", &|m| m.package.len());
    let wv = width("version", &|m| m.version.len());
    println!(
        "{:wp$}  {:wv$}  {:>8}  {:>5}  {:16}  path",
        "package", "version", "size", "files", "fetched"
    );
    for m in &models {
        let fetched: String = m
            .fetched_at
            .replacen('T', " ", 1)
            .chars()
            .take(16)
            .collect();
        println!(
            "{:wp$}  {:wv$}  {:>8}  {:>5}  {:16}  {}",
            m.package,
            m.version,
            human(m.bytes),
            m.files,
            fetched,
            m.dir.display()
        );
    }
    let total: u64 = models.iter().map(|m| m.bytes).sum();
    eprintln!(
        "{} packages, {} in {}",
        models.len(),
        human(total),
        store.cache_dir().display()
    );
    Ok(0)
}
