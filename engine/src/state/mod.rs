//! Durable state: the sled database and the artifact store.

mod artifacts;
mod item_files;
mod migrate;
mod records;
mod store;

pub use artifacts::Artifacts;
pub use item_files::ItemWriter;
pub use records::{now_ms, ItemStage, ResultRecord, RunArgs, RunRecord, RunStatus};
pub use store::{StateError, Store};
