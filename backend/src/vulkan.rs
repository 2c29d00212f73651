//! Vulkan adapters opened through burn's wgpu backend, and reopened when
//! cubecl's device server dies.
//!
//! cubecl 0.10 serves each device from a thread of its own (named `DS…`).
//! An allocation it cannot make (a buffer over the adapter's largest, a
//! heap that is full) panics *that* thread: the device's memory pool is
//! gone, and every later call on the device fails with `CallError`. flow
//! treats that as the out-of-memory it is: the panic's text is recorded
//! here (a panic hook), [`crate::pools`] reports it to the engine as out of
//! memory, and the next [`current`] call sees the dead server and opens a
//! fresh one on the same wgpu device (`init_device`). Model stages notice
//! that their [`Compute`](crate::Compute) is no longer current and load
//! their weights again, so the ladder's retries (clear the cache, a smaller
//! batch) run on a live device.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};

use burn::backend::wgpu::{
    graphics, init_device, init_setup, RuntimeOptions, WgpuDevice, WgpuRuntime, WgpuSetup,
};
use burn::cubecl::Runtime;

/// The device in use for each ordinal, and the wgpu setup it was made on.
struct Open {
    setup: WgpuSetup,
    device: WgpuDevice,
}

static OPEN: Mutex<BTreeMap<u32, Open>> = Mutex::new(BTreeMap::new());

/// The most recent panics of cubecl's device threads, oldest first.
static RUNTIME_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
const KEPT_PANICS: usize = 16;

thread_local! {
    /// Set while this thread asks a device whether it is alive: the panic
    /// of a dead device's client is the answer, not news.
    static PROBING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether `device`'s server still answers.
fn alive(device: &WgpuDevice) -> bool {
    PROBING.with(|p| p.set(true));
    // Both servers: burn's fusion stream and cubecl's device.
    let answer = catch_unwind(AssertUnwindSafe(|| {
        use burn::tensor::backend::Backend;
        crate::Vk::sync(device).is_ok() && WgpuRuntime::client(device).memory_usage().is_ok()
    }))
    .unwrap_or(false);
    PROBING.with(|p| p.set(false));
    answer
}

/// The live wgpu device for `vulkan:ordinal`, whose adapter cubecl selects
/// as `adapter`: opened on first use, opened again when its server died.
pub(crate) fn current(ordinal: u32, adapter: WgpuDevice) -> WgpuDevice {
    record_runtime_panics();
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    match open.get_mut(&ordinal) {
        None => {
            let setup = init_setup::<graphics::Vulkan>(&adapter, RuntimeOptions::default());
            open.insert(
                ordinal,
                Open {
                    setup,
                    device: adapter.clone(),
                },
            );
            adapter
        }
        Some(o) => {
            if !alive(&o.device) {
                o.device = init_device(o.setup.clone(), RuntimeOptions::default());
            }
            o.device.clone()
        }
    }
}

/// Whether `device` is the one [`current`] hands out now for its ordinal.
pub(crate) fn is_current(ordinal: u32, device: &WgpuDevice) -> bool {
    let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    open.get(&ordinal).is_some_and(|o| &o.device == device) && alive(device)
}

/// Takes the recorded panics of cubecl's device threads.
pub(crate) fn take_runtime_panics() -> Vec<String> {
    std::mem::take(&mut *RUNTIME_PANICS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Installs (once) a panic hook that keeps the text of panics on cubecl's
/// device threads and prints one line for them instead of a backtrace;
/// every other panic goes to the previous hook.
fn record_runtime_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or_default();
            if PROBING.with(|p| p.get()) {
                return;
            }
            if !name.starts_with("DS") {
                return previous(info);
            }
            let text = flow_engine::memory::pool::panic_text(info.payload());
            let first = text.lines().next().unwrap_or_default().to_string();
            eprintln!("flow: the GPU runtime's device thread `{name}` failed: {first}");
            let mut kept = RUNTIME_PANICS.lock().unwrap_or_else(|e| e.into_inner());
            kept.push(text);
            let excess = kept.len().saturating_sub(KEPT_PANICS);
            kept.drain(..excess);
        }));
    });
}
