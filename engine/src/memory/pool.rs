//! Device memory pools: how the executor reads and empties the memory pool
//! of a real GPU runtime, and tells an allocation failure from other
//! failures, without knowing the runtime.
//!
//! The engine knows nothing of burn; the program that links a runtime (the
//! `flow` binary, through `flow-backend`) installs a [`DevicePools`] once at
//! start. Device workers then read the pool at every plan node (the memory
//! snapshot events), empty it at `ClearCache` nodes and on the
//! out-of-memory ladder, and ask it whether a panic that escaped a stage
//! was an allocation failure (cubecl panics on some) so that the ladder
//! treats it as out of memory. With nothing installed, readings fall back
//! to the worker's ledger and every panic is a plain failure.

use std::any::Any;
use std::sync::OnceLock;

use crate::device::DeviceId;
use crate::registry::MemoryUsage;

/// A runtime's memory pools, one per device.
pub trait DevicePools: Send + Sync {
    /// The pool of `device` now: bytes in live tensors and bytes held.
    /// `None` where the runtime has no pool on that device (the CPU, a
    /// simulated device) or the device cannot be opened.
    fn usage(&self, device: DeviceId) -> Option<MemoryUsage>;

    /// Returns the pool's cached blocks on `device` to the device.
    fn clear(&self, device: DeviceId);

    /// Whether a panic's payload reports an allocation failure of the
    /// runtime (then the item goes down the out-of-memory ladder).
    fn is_out_of_memory(&self, panic: &(dyn Any + Send)) -> bool;

    /// A failure of the runtime's own threads since the last call (the
    /// text of their panics), and whether it was an allocation failure.
    /// A batch that returned while the runtime failed under it is not
    /// trusted: its results may be zeros read from a dead device.
    fn take_runtime_failure(&self) -> Option<(String, bool)> {
        None
    }
}

static POOLS: OnceLock<Box<dyn DevicePools>> = OnceLock::new();

/// Installs the runtime's pools (once; later calls are ignored).
pub fn install(pools: Box<dyn DevicePools>) {
    let _ = POOLS.set(pools);
}

/// The installed pools' reading of `device`.
pub fn usage(device: DeviceId) -> Option<MemoryUsage> {
    POOLS.get().and_then(|p| p.usage(device))
}

/// Empties the pool of `device`, where one is installed.
pub fn clear(device: DeviceId) {
    if let Some(p) = POOLS.get() {
        p.clear(device);
    }
}

/// The text of a panic's payload (`panic!` with a string or a format).
pub fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Whether the installed runtime says `panic` is an allocation failure.
pub fn is_out_of_memory(panic: &(dyn Any + Send)) -> bool {
    POOLS.get().is_some_and(|p| p.is_out_of_memory(panic))
}

/// See [`DevicePools::take_runtime_failure`].
pub fn take_runtime_failure() -> Option<(String, bool)> {
    POOLS.get().and_then(|p| p.take_runtime_failure())
}
