//! burn's memory pools as the engine's [`DevicePools`]: readings and
//! clean-ups of the pool of each GPU device, and the one place that tells an
//! allocation failure of cubecl from other panics.

use std::any::Any;

use flow_engine::device::DeviceId;
use flow_engine::memory::pool::{self, DevicePools};
use flow_engine::registry::MemoryUsage;

use crate::compute::{cuda_ready, vulkan_ready, Compute};

/// What cubecl and wgpu say when memory runs out (their errors reach flow
/// only as panic messages): cubecl's `IoError::BufferTooBig` ("can't
/// allocate buffer of size: N", larger than the device's largest buffer),
/// its `OutOfMemory` launch error, and wgpu's and the drivers' out-of-memory
/// errors. Matched without case.
const OUT_OF_MEMORY: [&str; 6] = [
    "can't allocate buffer",
    "buffertoobig",
    "out of memory",
    "outofmemory",
    "out_of_device_memory",
    "out_of_host_memory",
];

/// The pools of burn's GPU backends.
struct BurnPools;

impl BurnPools {
    /// The backend of `device` if it is a GPU that can be opened (a reading
    /// never initialises a device that cannot run).
    fn compute(device: DeviceId) -> Option<Compute> {
        let ready = match device {
            DeviceId::Cuda(n) => cuda_ready(n),
            DeviceId::Vulkan(n) => vulkan_ready(n),
            DeviceId::Cpu | DeviceId::Sim(_) => return None,
        };
        ready.ok()?;
        Compute::for_device(device).ok()
    }
}

impl DevicePools for BurnPools {
    fn usage(&self, device: DeviceId) -> Option<MemoryUsage> {
        Self::compute(device)?.memory_usage()
    }

    fn clear(&self, device: DeviceId) {
        if let Some(compute) = Self::compute(device) {
            compute.clear_cache();
        }
    }

    fn is_out_of_memory(&self, panic: &(dyn Any + Send)) -> bool {
        let text = pool::panic_text(panic);
        // The caller sees the allocation failure itself, or (cubecl's device
        // thread panicked on it) a closed channel to that thread, whose own
        // panic was recorded.
        #[cfg(feature = "vulkan")]
        let recorded = crate::vulkan::take_runtime_panics();
        #[cfg(not(feature = "vulkan"))]
        let recorded: Vec<String> = Vec::new();
        is_allocation_failure(&text) || recorded.iter().any(|r| is_allocation_failure(r))
    }

    fn take_runtime_failure(&self) -> Option<(String, bool)> {
        #[cfg(feature = "vulkan")]
        let recorded = crate::vulkan::take_runtime_panics();
        #[cfg(not(feature = "vulkan"))]
        let recorded: Vec<String> = Vec::new();
        let oom = recorded.iter().any(|r| is_allocation_failure(r));
        let first = recorded
            .iter()
            .find(|r| !oom || is_allocation_failure(r))?
            .clone();
        Some((first, oom))
    }
}

/// Whether a runtime's panic message reports an allocation failure.
pub fn is_allocation_failure(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    OUT_OF_MEMORY.iter().any(|m| message.contains(m))
}

/// Installs burn's pools into the engine (once per process): device
/// workers then read and clear real pools and treat cubecl's allocation
/// panics as out of memory.
pub fn install_pools() {
    pool::install(Box::new(BurnPools));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_failures_are_told_from_other_panics() {
        assert!(is_allocation_failure(
            "called `Result::unwrap()` on an `Err` value: can't allocate buffer of size: 805306368"
        ));
        assert!(is_allocation_failure("Out of Memory"));
        assert!(!is_allocation_failure("index out of bounds: the len is 3"));
    }

    #[test]
    fn the_cpu_has_no_pool() {
        assert!(BurnPools.usage(DeviceId::Cpu).is_none());
        assert!(BurnPools.usage(DeviceId::Sim(0)).is_none());
    }
}
