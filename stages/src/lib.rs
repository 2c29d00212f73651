//! Built-in stage kinds of `flow`.

pub mod exec;
pub mod sink;

use flow_engine::Registry;

/// A registry with every built-in stage kind.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    register_builtins(&mut registry);
    registry
}

/// Adds the built-in stage kinds to `registry`.
pub fn register_builtins(registry: &mut Registry) {
    registry
        .register(exec::ExecKind)
        .register(sink::FilesSinkKind);
}
