//! Choosing a burn backend and device at run time.

use burn::backend::ndarray::NdArrayDevice;
use flow_engine::device::DeviceId;
use flow_engine::memory::cuda::{self, CudaProbe};
#[cfg(feature = "vulkan")]
use flow_engine::memory::vulkan::VulkanAdapter;
use flow_engine::memory::vulkan::{self, VulkanProbe};

/// The CPU backend: burn's NdArray with f32.
pub type Cpu = burn::backend::NdArray<f32>;

/// The CUDA backend: burn's CUDA (with kernel fusion) with f32.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32, i32>;

/// The Vulkan backend: burn's wgpu (with kernel fusion) on Vulkan's SPIR-V
/// compiler, with f32.
#[cfg(feature = "vulkan")]
pub type Vk = burn::backend::Vulkan<f32, i32>;

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// `cuda:N` was asked for and CUDA cannot run here.
    #[error("cannot use {device}: {reason}")]
    CudaUnavailable {
        /// The device asked for.
        device: DeviceId,
        /// Why (no driver, no NVRTC, no such device, not built with CUDA).
        reason: String,
    },
    /// `vulkan:N` was asked for and cannot be used.
    #[error("cannot use {device}: {reason}")]
    VulkanUnavailable {
        /// The device asked for.
        device: DeviceId,
        /// Why (no loader, no such adapter, not built with Vulkan).
        reason: String,
    },
}

/// Where a model computes: a burn backend and its device.
#[derive(Debug, Clone)]
pub enum Compute {
    /// NdArray on the host CPU (also used for simulated devices).
    Cpu(NdArrayDevice),
    /// CUDA device `N`.
    #[cfg(feature = "cuda")]
    Cuda(burn::backend::cuda::CudaDevice),
    /// Vulkan adapter `N` (burn's wgpu backend).
    #[cfg(feature = "vulkan")]
    Vulkan(u32, burn::backend::wgpu::WgpuDevice),
}

/// The Vulkan probe, taken once per process (it opens the loader and an
/// instance).
pub fn vulkan_probe() -> &'static VulkanProbe {
    static PROBE: std::sync::OnceLock<VulkanProbe> = std::sync::OnceLock::new();
    PROBE.get_or_init(vulkan::probe)
}

/// Whether burn's wgpu backend can run on `vulkan:ordinal` here: built
/// with the `vulkan` feature, the loader answers and the adapter exists.
/// `Err` says why not.
pub fn vulkan_ready(ordinal: u32) -> Result<(), String> {
    if !cfg!(feature = "vulkan") {
        return Err("flow was built without the `vulkan` feature".into());
    }
    match vulkan_probe().unusable(ordinal) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// The wgpu device for an adapter: cubecl names adapters by type and index
/// among the adapters of that type, in the order the loader lists them.
#[cfg(feature = "vulkan")]
fn wgpu_device(adapter: &VulkanAdapter, all: &[VulkanAdapter]) -> burn::backend::wgpu::WgpuDevice {
    use burn::backend::wgpu::WgpuDevice;
    use flow_engine::memory::vulkan::AdapterType;
    let index = all
        .iter()
        .filter(|a| a.kind == adapter.kind && a.ordinal < adapter.ordinal)
        .count();
    match adapter.kind {
        AdapterType::Discrete => WgpuDevice::DiscreteGpu(index),
        AdapterType::Integrated => WgpuDevice::IntegratedGpu(index),
        AdapterType::Virtual => WgpuDevice::VirtualGpu(index),
        AdapterType::Cpu => WgpuDevice::Cpu,
        AdapterType::Other => WgpuDevice::DefaultDevice,
    }
}

/// Whether burn's CUDA backend can run on `cuda:ordinal` here: the driver
/// answers, the device exists and NVRTC loads. `Err` says why not.
pub fn cuda_ready(ordinal: u32) -> Result<(), String> {
    if !cfg!(feature = "cuda") {
        return Err("flow was built without the `cuda` feature".into());
    }
    match cuda::probe() {
        CudaProbe::Unavailable { reason } => Err(reason),
        CudaProbe::Available { nvrtc, devices, .. } => {
            if !devices.iter().any(|d| d.ordinal == ordinal) {
                Err(format!(
                    "there is no CUDA device {ordinal} ({} found)",
                    devices.len()
                ))
            } else if !nvrtc {
                Err("libnvrtc (the CUDA runtime compiler burn needs) cannot be loaded".into())
            } else {
                Ok(())
            }
        }
    }
}

impl Compute {
    /// The backend for a plan device: NdArray for `cpu` and `sim:N`, CUDA
    /// for `cuda:N` once [`cuda_ready`] says it can run, wgpu for
    /// `vulkan:N` once [`vulkan_ready`] says it can.
    ///
    /// # Errors
    /// [`BackendError::CudaUnavailable`] or
    /// [`BackendError::VulkanUnavailable`] with the reason.
    pub fn for_device(device: DeviceId) -> Result<Self, BackendError> {
        match device {
            DeviceId::Cpu | DeviceId::Sim(_) => Ok(Compute::Cpu(NdArrayDevice::Cpu)),
            DeviceId::Cuda(n) => {
                cuda_ready(n).map_err(|reason| BackendError::CudaUnavailable { device, reason })?;
                Self::cuda(n, device)
            }
            DeviceId::Vulkan(n) => {
                vulkan_ready(n)
                    .map_err(|reason| BackendError::VulkanUnavailable { device, reason })?;
                Self::vulkan(n, device)
            }
        }
    }

    #[cfg(feature = "vulkan")]
    fn vulkan(n: u32, device: DeviceId) -> Result<Self, BackendError> {
        let all = vulkan_probe().adapters();
        let adapter =
            all.iter()
                .find(|a| a.ordinal == n)
                .ok_or_else(|| BackendError::VulkanUnavailable {
                    device,
                    reason: format!("there is no Vulkan adapter {n}"),
                })?;
        let live = crate::vulkan::current(n, wgpu_device(adapter, all));
        Ok(Compute::Vulkan(n, live))
    }

    /// Whether models loaded for this compute can still run: false once a
    /// Vulkan device's runtime server died (an allocation failure) and
    /// [`Compute::for_device`] opens a fresh one; the model must then be
    /// loaded again.
    pub fn is_current(&self) -> bool {
        match self {
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(n, device) => crate::vulkan::is_current(*n, device),
            _ => true,
        }
    }

    #[cfg(not(feature = "vulkan"))]
    fn vulkan(_: u32, device: DeviceId) -> Result<Self, BackendError> {
        Err(BackendError::VulkanUnavailable {
            device,
            reason: "flow was built without the `vulkan` feature".into(),
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda(n: u32, _: DeviceId) -> Result<Self, BackendError> {
        Ok(Compute::Cuda(burn::backend::cuda::CudaDevice::new(
            n as usize,
        )))
    }

    #[cfg(not(feature = "cuda"))]
    fn cuda(_: u32, device: DeviceId) -> Result<Self, BackendError> {
        Err(BackendError::CudaUnavailable {
            device,
            reason: "flow was built without the `cuda` feature".into(),
        })
    }

    /// A short name: `ndarray (cpu)`, `cuda:0` or `vulkan:0`.
    pub fn describe(&self) -> String {
        match self {
            Compute::Cpu(_) => "ndarray (cpu)".into(),
            #[cfg(feature = "cuda")]
            Compute::Cuda(d) => format!("cuda:{}", d.index),
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(n, _) => format!("vulkan:{n}"),
        }
    }

    /// Whether models here can compute in f16: on a CUDA device or Vulkan
    /// adapter whose backend reports f16 arithmetic; never on the CPU
    /// backend (NdArray computes in f32 and f64 only).
    pub fn supports_f16(&self) -> bool {
        match self {
            Compute::Cpu(_) => false,
            #[cfg(feature = "cuda")]
            Compute::Cuda(device) => {
                use burn::tensor::backend::Backend;
                Gpu::supports_dtype(device, burn::tensor::DType::F16)
            }
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_, device) => {
                use burn::tensor::backend::Backend;
                Vk::supports_dtype(device, burn::tensor::DType::F16)
            }
        }
    }

    /// Bytes in use and reserved by the backend's memory pool of the device
    /// (CUDA and Vulkan; the whole device's pool, every model on it).
    pub fn memory_usage(&self) -> Option<flow_engine::registry::MemoryUsage> {
        match self {
            Compute::Cpu(_) => None,
            #[cfg(feature = "cuda")]
            Compute::Cuda(device) => {
                use burn::cubecl::Runtime;
                let client = burn::cubecl::cuda::CudaRuntime::client(device);
                let usage = client.memory_usage().ok()?;
                Some(flow_engine::registry::MemoryUsage {
                    in_use: usage.bytes_in_use,
                    reserved: usage.bytes_reserved,
                })
            }
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_, device) => {
                use burn::cubecl::Runtime;
                use burn::tensor::backend::Backend;
                // Finish queued work first: burn's fusion frees tensors
                // lazily, and a reading should show what is really held.
                // A dead device has no reading.
                let usage = std::panic::catch_unwind(|| {
                    Vk::sync(device).ok()?;
                    burn::backend::wgpu::WgpuRuntime::client(device)
                        .memory_usage()
                        .ok()
                })
                .ok()??;
                Some(flow_engine::registry::MemoryUsage {
                    in_use: usage.bytes_in_use,
                    reserved: usage.bytes_reserved,
                })
            }
        }
    }

    /// Returns cached blocks of the backend's memory pool to the device.
    pub fn clear_cache(&self) {
        match self {
            Compute::Cpu(_) => {}
            #[cfg(feature = "cuda")]
            Compute::Cuda(device) => {
                use burn::cubecl::Runtime;
                burn::cubecl::cuda::CudaRuntime::client(device).memory_cleanup();
            }
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_, device) => {
                use burn::cubecl::Runtime;
                use burn::tensor::backend::Backend;
                let _ = std::panic::catch_unwind(|| {
                    let _ = Vk::sync(device);
                    burn::backend::wgpu::WgpuRuntime::client(device).memory_cleanup();
                });
            }
        }
    }
}

/// Runs `$body` with `$B` bound to the backend type and `$device` to its
/// device, for whichever backend `$compute` names:
///
/// ```ignore
/// let sum = with_backend!(compute, |B, device| {
///     let t = burn::tensor::Tensor::<B, 1>::from_floats([1.0, 2.0], &device);
///     t.sum().into_scalar()
/// });
/// ```
#[macro_export]
macro_rules! with_backend {
    ($compute:expr, |$B:ident, $device:ident| $body:expr) => {{
        match $compute {
            $crate::Compute::Cpu(d) => {
                type $B = $crate::Cpu;
                let $device = d.clone();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::Compute::Cuda(d) => {
                type $B = $crate::Gpu;
                let $device = d.clone();
                $body
            }
            #[cfg(feature = "vulkan")]
            $crate::Compute::Vulkan(_, d) => {
                type $B = $crate::Vk;
                let $device = d.clone();
                $body
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tensor;

    #[test]
    fn the_cpu_backend_multiplies_matrices() {
        let compute = Compute::for_device(DeviceId::Cpu).unwrap();
        let out: Vec<f32> = with_backend!(&compute, |B, device| {
            let a = Tensor::<B, 2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
            let b = Tensor::<B, 2>::from_floats([[5.0, 6.0], [7.0, 8.0]], &device);
            a.matmul(b).into_data().to_vec::<f32>().unwrap()
        });
        assert_eq!(out, vec![19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    fn the_cpu_backend_computes_in_f32_only() {
        assert!(!Compute::for_device(DeviceId::Cpu).unwrap().supports_f16());
    }

    #[test]
    fn simulated_devices_compute_on_the_cpu() {
        assert!(matches!(
            Compute::for_device(DeviceId::Sim(0)),
            Ok(Compute::Cpu(_))
        ));
    }

    #[test]
    fn cuda_without_a_driver_is_an_error_not_a_panic() {
        if cuda_ready(0).is_ok() {
            return; // a real GPU: covered by docs/gpu.md's run
        }
        let err = Compute::for_device(DeviceId::Cuda(0)).unwrap_err();
        assert!(err.to_string().starts_with("cannot use cuda:0: "), "{err}");
    }
}
