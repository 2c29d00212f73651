//! For tests of the GPU paths: the Vulkan adapter to test on, or a visible
//! reason to skip.

use flow_engine::device::DeviceId;

use crate::compute::{vulkan_probe, vulkan_ready};

/// `vulkan:0` when it can run here. Otherwise the test is skipped with the
/// reason on stderr, unless `FLOW_REQUIRE_VULKAN=1` (set by
/// `scripts/test.sh`, which installs lavapipe): then a missing adapter
/// fails the test instead of passing it unchecked.
///
/// # Panics
/// When `FLOW_REQUIRE_VULKAN=1` and `vulkan:0` cannot run.
pub fn vulkan_or_skip(test: &str) -> Option<DeviceId> {
    match vulkan_ready(0) {
        Ok(()) => {
            if let Some(a) = vulkan_probe().adapters().first() {
                eprintln!("{test}: on vulkan:0 ({}, {})", a.name, a.driver);
            }
            Some(DeviceId::Vulkan(0))
        }
        Err(reason) if std::env::var("FLOW_REQUIRE_VULKAN").as_deref() == Ok("1") => {
            panic!("{test}: FLOW_REQUIRE_VULKAN=1 and vulkan:0 cannot run: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED {test}: vulkan:0 cannot run here ({reason})");
            None
        }
    }
}
