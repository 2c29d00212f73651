//! Memory: what devices exist and how much they hold ([`inventory`]), what
//! each stage needs ([`footprint`], [`weights`], [`calibration`]), and the
//! CUDA driver and Vulkan loader probes ([`cuda`], [`vulkan`]).

pub mod calibration;
pub mod cuda;
pub mod footprint;
pub mod host;
pub mod inventory;
pub mod pool;
pub mod vulkan;
pub mod weights;

pub use footprint::{Footprint, MemoryEstimate};
pub use inventory::{DeviceInfo, Inventory, Origin};

/// Formats bytes for people: `3.0 GiB`, `512 MiB`, `12 KiB`.
pub fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else if b >= MIB {
        format!("{:.0} MiB", b / MIB)
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}
