//! `flow`'s engine: workflow files, the stage DAG, plans, the executor and
//! durable state. It knows nothing of burn or of progress bars: stage kinds
//! live in `flow-stages`, the terminal UI in the `flow` binary.
//!
//! ```text
//! workflow.yaml ─▶ spec::load ─▶ Workflow (DAG) ─▶ Plan ─▶ exec::execute ─▶ state
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod cache_key;
pub mod device;
pub mod diag;
pub mod duration;
pub mod exec;
pub mod explain;
pub mod graph;
pub mod ident;
pub mod items;
pub mod memory;
pub mod plan;
pub mod planner;
pub mod registry;
pub mod render;
pub mod report;
pub mod rows;
pub mod size;
pub mod spec;
pub mod state;
pub mod status;

pub use diag::{ConfigError, ConfigErrors, EXIT_CONFIG};
pub use exec::{execute, ExecError, RunRequest, RunSummary};
pub use graph::Workflow;
pub use plan::Plan;
pub use registry::{Registry, Stage, StageKind};
pub use spec::{load, LoadOptions};
