//! The CUDA driver probe: which GPUs exist, their names and memory, and
//! whether the libraries burn's CUDA backend needs (`libcuda`, `libnvrtc`)
//! can be loaded. Nothing here panics when there is no driver: the library
//! is looked for before any driver call, and every call is guarded.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cudarc::driver::{result, sys};
use serde::Serialize;

/// One CUDA device as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CudaDevice {
    /// The ordinal (`cuda:N`).
    pub ordinal: u32,
    /// The product name.
    pub name: String,
    /// Memory on the card, bytes.
    pub total: u64,
    /// Memory free now, bytes.
    pub free: u64,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CudaProbe {
    /// The driver answered.
    Available {
        /// The driver's CUDA version, for example `12.4`.
        driver: String,
        /// Whether `libnvrtc` (runtime compilation, needed by burn) loads.
        nvrtc: bool,
        /// The devices.
        devices: Vec<CudaDevice>,
    },
    /// No usable driver: why.
    Unavailable {
        /// The reason, for `flow doctor`.
        reason: String,
    },
}

impl CudaProbe {
    /// The devices found (none when unavailable).
    pub fn devices(&self) -> &[CudaDevice] {
        match self {
            CudaProbe::Available { devices, .. } => devices,
            CudaProbe::Unavailable { .. } => &[],
        }
    }
}

/// Asks the driver what is there. Never panics.
pub fn probe() -> CudaProbe {
    if !library_loads(&["libcuda.so.1", "libcuda.so"]) {
        return CudaProbe::Unavailable {
            reason: "no NVIDIA driver: libcuda.so.1 cannot be loaded".into(),
        };
    }
    match catch_unwind(AssertUnwindSafe(probe_driver)) {
        Ok(Ok(probe)) => probe,
        Ok(Err(reason)) => CudaProbe::Unavailable { reason },
        Err(_) => CudaProbe::Unavailable {
            reason: "the CUDA driver library failed to load its entry points".into(),
        },
    }
}

/// Whether `libnvrtc` can be loaded (burn compiles its kernels with it).
pub fn nvrtc_loads() -> bool {
    let mut names = vec!["libnvrtc.so".to_string()];
    for major in [13, 12, 11] {
        names.push(format!("libnvrtc.so.{major}"));
        for minor in 0..10 {
            names.push(format!("libnvrtc.so.{major}.{minor}"));
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    library_loads(&names)
}

fn library_loads(names: &[&str]) -> bool {
    names.iter().any(|name| {
        // SAFETY: loading a shared library runs its initialisers; the CUDA
        // libraries are designed to be loaded this way (cudarc does the same).
        unsafe { libloading::Library::new(name) }.is_ok()
    })
}

fn probe_driver() -> Result<CudaProbe, String> {
    // SAFETY: checks that the library and its symbols load, without calling them.
    if !unsafe { sys::is_culib_present() } {
        return Err("libcuda loads but lacks the driver API flow needs (driver too old?)".into());
    }
    result::init().map_err(|e| format!("the CUDA driver did not initialise: {e:?}"))?;
    let mut version = 0;
    // SAFETY: a plain out-parameter call after a successful cuInit.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(|e| format!("cannot read the driver version: {e:?}"))?;
    let count = result::device::get_count().map_err(|e| format!("cannot count devices: {e:?}"))?;
    let mut devices = Vec::new();
    for ordinal in 0..count {
        let (free, total) = device_memory(ordinal)?;
        let device = result::device::get(ordinal).map_err(|e| format!("{e:?}"))?;
        devices.push(CudaDevice {
            ordinal: ordinal as u32,
            name: result::device::get_name(device).unwrap_or_else(|_| "CUDA device".into()),
            total,
            free,
        });
    }
    Ok(CudaProbe::Available {
        driver: format!("{}.{}", version / 1000, (version % 1000) / 10),
        nvrtc: nvrtc_loads(),
        devices,
    })
}

/// Free and total memory of device `ordinal`, read through its primary
/// context (made current on this thread).
///
/// # Errors
/// The driver's error, as text.
pub fn device_memory(ordinal: i32) -> Result<(u64, u64), String> {
    let device = result::device::get(ordinal).map_err(|e| format!("{e:?}"))?;
    // SAFETY: `device` came from cuDeviceGet; the primary context is retained
    // (and released below), so it stays valid while it is current.
    unsafe {
        let context = result::primary_ctx::retain(device).map_err(|e| format!("{e:?}"))?;
        result::ctx::set_current(context).map_err(|e| format!("{e:?}"))?;
        let info = result::mem_get_info().map_err(|e| format!("{e:?}"));
        let _ = result::primary_ctx::release(device);
        let (free, total) = info?;
        Ok((free as u64, total as u64))
    }
}

/// A reader of one CUDA device's free and total memory, for run-time
/// snapshots. `None` from [`CudaMeter::new`] when the driver is unusable.
pub struct CudaMeter {
    ordinal: i32,
}

impl CudaMeter {
    /// A meter for `cuda:ordinal`, if the driver answers for it.
    pub fn new(ordinal: u32) -> Option<Self> {
        let meter = Self {
            ordinal: ordinal as i32,
        };
        meter.read().map(|_| meter)
    }

    /// `(free, total)` bytes now.
    pub fn read(&self) -> Option<(u64, u64)> {
        if !library_loads(&["libcuda.so.1", "libcuda.so"]) {
            return None;
        }
        let ordinal = self.ordinal;
        catch_unwind(move || {
            result::init().ok()?;
            device_memory(ordinal).ok()
        })
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_never_panics() {
        match probe() {
            CudaProbe::Available { devices, .. } => {
                for d in devices {
                    assert!(d.total > 0 && d.free <= d.total);
                }
            }
            CudaProbe::Unavailable { reason } => assert!(!reason.is_empty()),
        }
    }
}
