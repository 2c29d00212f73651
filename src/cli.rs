//! Command-line definitions (clap). Command bodies live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// flow: declarative, checkpointed, resumable workflows for GPU media jobs.
#[derive(Debug, Parser)]
#[command(name = "flow", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow over its inputs, reusing every result already computed.
    Run(RunArgs),
    /// Continue the last unfinished run (or run RUN).
    Resume(ResumeArgs),
    /// Check workflow files and report every problem.
    Validate(ValidateArgs),
    /// Print the JSON Schema of workflow files.
    Schema,
    /// Draw a workflow's stage graph.
    Graph(GraphArgs),
    /// Print the plan a run would execute.
    Plan(PlanArgs),
    /// List stage kinds and their ports (or one kind's settings).
    Stages(StagesArgs),
    /// Show per-stage progress and failures of a run.
    Status(StatusArgs),
    /// Explain an item-stage's cache key and what changed since its result.
    Explain(ExplainArgs),
    /// Show the devices, memory and libraries flow finds on this machine.
    Doctor(DoctorArgs),
    /// Measure each GPU stage's memory (batches of 1 and 2) for later plans.
    Calibrate(CalibrateArgs),
    /// Fetch a workflow's model weights into the cache, or list the cache.
    Models(ModelsArgs),
    /// Build a voice profile (voices/NAME.json) from recordings of one speaker.
    Enroll(crate::commands::enroll::EnrollArgs),
    /// Find the transcript segments nearest to a question in a workflow's database.
    Search(crate::commands::search::SearchArgs),
}

/// Options that change a workflow without editing it.
#[derive(Debug, Clone, Args)]
pub struct Tuning {
    /// Override a key: `--set stages.embed.device=cpu`, `--set stages.asr.batch.max=8`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Replace `inputs:` with this glob (relative to the current directory).
    #[arg(long, value_name = "GLOB")]
    pub inputs: Option<String>,
    /// Declare or cap a device's memory: `--device sim:0=16GiB` (a simulated
    /// GPU), `--device cuda:0=16GiB` (use at most 16 GiB of the card, or plan
    /// for such a card on a machine without one).
    #[arg(long = "device", value_name = "DEVICE=SIZE")]
    pub devices: Vec<String>,
}

/// `flow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    /// Overrides.
    #[command(flatten)]
    pub tuning: Tuning,
    /// Ignore results from earlier runs and compute everything again.
    #[arg(long)]
    pub fresh: bool,
    /// The state directory (default: `.flow/` beside the workflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `flow resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run number (default: the last unfinished run).
    pub run: Option<u64>,
    /// Where to look for runs.
    #[command(flatten)]
    pub place: Place,
}

/// Where a command finds the state directory.
#[derive(Debug, Clone, Args)]
pub struct Place {
    /// A workflow file: its `.flow/` is used.
    #[arg(long, short = 'w', value_name = "FILE")]
    pub workflow: Option<PathBuf>,
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `flow validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files.
    #[arg(required = true)]
    pub workflows: Vec<PathBuf>,
    /// Overrides, checked like the file.
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Graph formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// `flow graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
}

/// Text or JSON.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// `flow plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    /// Overrides.
    #[command(flatten)]
    pub tuning: Tuning,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also draw the memory timeline per device into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
}

/// `flow doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also show the budgets of this workflow's devices.
    pub workflow: Option<PathBuf>,
    /// Overrides (`--device` declares simulated devices).
    #[command(flatten)]
    pub tuning: Tuning,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `flow calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    /// Overrides.
    #[command(flatten)]
    pub tuning: Tuning,
    /// How many items to run (the first ones; at least 3: a batch of 1, then 2).
    #[arg(long, default_value_t = 3)]
    pub items: usize,
    /// The state directory (default: `.flow/` beside the workflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `flow stages`.
#[derive(Debug, Args)]
pub struct StagesArgs {
    /// Show this kind's settings (JSON Schema of `with:`).
    pub kind: Option<String>,
}

/// `flow status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run number (default: the latest run).
    pub run: Option<u64>,
    /// Where to look for runs.
    #[command(flatten)]
    pub place: Place,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also list every item's state in every stage.
    #[arg(long)]
    pub items: bool,
}

/// `flow explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The item id (as `flow status` shows it, e.g. `media/a.wav`).
    pub item: String,
    /// The stage id.
    pub stage: String,
    /// Where to look for runs.
    #[command(flatten)]
    pub place: Place,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `flow models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// What to do with models.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// The `flow models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch every model a workflow names (reusing what the cache holds).
    Fetch(ModelsFetchArgs),
    /// List the packages in the model cache.
    List(ModelsListArgs),
}

/// `flow models fetch`.
#[derive(Debug, Args)]
pub struct ModelsFetchArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    /// Overrides (`--set models.asr.path=...`).
    #[command(flatten)]
    pub tuning: Tuning,
    /// Check every cached file's hash, not only its size, before reusing it.
    #[arg(long)]
    pub verify: bool,
}

/// `flow models list`.
#[derive(Debug, Args)]
pub struct ModelsListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}
