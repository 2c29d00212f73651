//! Durable state: the sled database and the artifact store.

mod artifacts;
mod records;
mod store;

pub use artifacts::Artifacts;
pub use records::{now_ms, ItemStage, ResultRecord, RunArgs, RunRecord, RunStatus};
pub use store::{StateError, Store};
