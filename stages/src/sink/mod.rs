//! Sinks: stages that write results out of the state directory.

mod files;

pub use files::{safe_relative, FilesSinkKind};
