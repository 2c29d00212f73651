//! Stage kinds of the `voice` crate (work in progress: see docs/).

use flow_engine::Registry;

/// Adds this crate's stage kinds to `registry`.
pub fn register(_registry: &mut Registry) {}
