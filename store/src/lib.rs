//! Stage kinds of the `store` crate (work in progress: see docs/).

use flow_engine::Registry;

/// Adds this crate's stage kinds to `registry`.
pub fn register(_registry: &mut Registry) {}
