//! The Vulkan probe: which adapters the Vulkan loader lists (`vulkan:N` is
//! the Nth, in the loader's order, which is the order wgpu enumerates them
//! in), their type, driver, memory heaps and budget, and whether they
//! compute in f16. Like the CUDA probe it never panics: the loader library
//! is opened at run time, and a missing loader or a failing driver is a
//! reason, not a crash.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ash::vk;
use serde::Serialize;

/// What kind of adapter the driver says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterType {
    /// A card of its own.
    Discrete,
    /// A GPU sharing memory with the CPU.
    Integrated,
    /// A GPU behind a hypervisor.
    Virtual,
    /// A software rasteriser on the CPU (Mesa's lavapipe): `auto` never
    /// picks it, since flow's CPU kernels are faster.
    Cpu,
    /// Anything else.
    Other,
}

impl AdapterType {
    fn from_vk(t: vk::PhysicalDeviceType) -> Self {
        match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => Self::Discrete,
            vk::PhysicalDeviceType::INTEGRATED_GPU => Self::Integrated,
            vk::PhysicalDeviceType::VIRTUAL_GPU => Self::Virtual,
            vk::PhysicalDeviceType::CPU => Self::Cpu,
            _ => Self::Other,
        }
    }

    /// A word for people: `discrete`, `integrated`, `virtual`, `CPU`, `other`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Discrete => "discrete",
            Self::Integrated => "integrated",
            Self::Virtual => "virtual",
            Self::Cpu => "CPU",
            Self::Other => "other",
        }
    }
}

/// One Vulkan adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VulkanAdapter {
    /// The index (`vulkan:N`).
    pub ordinal: u32,
    /// The product name (`AMD Radeon RX 7900 XTX`, `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// Discrete, integrated, virtual or CPU.
    pub kind: AdapterType,
    /// The driver and its version (`llvmpipe: Mesa 22.3.6 (LLVM 15.0.6)`).
    pub driver: String,
    /// The size of each device-local memory heap, bytes.
    pub heaps: Vec<u64>,
    /// The total of the device-local heaps, bytes.
    pub total: u64,
    /// What the driver says this process may still allocate
    /// (`VK_EXT_memory_budget`), bytes, where it says.
    pub budget: Option<u64>,
    /// Whether shaders compute in f16 and buffers hold it (what burn's f16
    /// needs: `shaderFloat16` and 16-bit storage).
    pub f16: bool,
    /// The largest storage buffer a shader can bind, bytes: cubecl's largest
    /// allocation on the adapter (one tensor can be no larger).
    pub max_buffer: u64,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VulkanProbe {
    /// The loader answered.
    Available {
        /// The instance's Vulkan version, for example `1.3.239`.
        version: String,
        /// The adapters, in the loader's order.
        adapters: Vec<VulkanAdapter>,
    },
    /// No Vulkan here: why.
    Unavailable {
        /// The reason, for `flow doctor` and planning errors.
        reason: String,
    },
}

impl VulkanProbe {
    /// The adapters found (none when unavailable).
    pub fn adapters(&self) -> &[VulkanAdapter] {
        match self {
            VulkanProbe::Available { adapters, .. } => adapters,
            VulkanProbe::Unavailable { .. } => &[],
        }
    }

    /// Why `vulkan:ordinal` cannot be used, or `None` when it can.
    pub fn unusable(&self, ordinal: u32) -> Option<String> {
        match self {
            VulkanProbe::Unavailable { reason } => Some(reason.clone()),
            VulkanProbe::Available { adapters, .. } => {
                (!adapters.iter().any(|a| a.ordinal == ordinal)).then(|| {
                    format!(
                        "there is no Vulkan adapter {ordinal} ({} found)",
                        adapters.len()
                    )
                })
            }
        }
    }
}

/// Asks the Vulkan loader what is there. Never panics.
pub fn probe() -> VulkanProbe {
    match catch_unwind(AssertUnwindSafe(probe_loader)) {
        Ok(Ok(probe)) => probe,
        Ok(Err(reason)) => VulkanProbe::Unavailable { reason },
        Err(_) => VulkanProbe::Unavailable {
            reason: "the Vulkan loader panicked while listing adapters".into(),
        },
    }
}

fn version_text(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}

fn c_text(text: Result<&CStr, std::ffi::FromBytesUntilNulError>) -> String {
    text.map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn probe_loader() -> Result<VulkanProbe, String> {
    // SAFETY: loading the system's Vulkan loader runs its initialisers; it
    // is the library every Vulkan program loads, and nothing else of ours
    // is touched while it loads.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| {
        format!(
            "no Vulkan loader: libvulkan.so.1 cannot be loaded ({e}); install `libvulkan1` and a driver (`mesa-vulkan-drivers` for lavapipe)"
        )
    })?;
    // SAFETY: `entry` holds valid loader entry points.
    let version = unsafe { entry.try_enumerate_instance_version() }
        .map_err(|e| format!("the Vulkan loader failed: {e}"))?
        .unwrap_or(vk::API_VERSION_1_0);
    if version < vk::API_VERSION_1_1 {
        return Err(format!(
            "the Vulkan loader is version {}; flow needs 1.1 or later",
            version_text(version)
        ));
    }
    let app = vk::ApplicationInfo::default().api_version(version.min(vk::API_VERSION_1_3));
    let info = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: `info` and `app` outlive the call; no extensions or layers.
    let instance = unsafe { entry.create_instance(&info, None) }
        .map_err(|e| format!("cannot create a Vulkan instance: {e}"))?;
    // SAFETY: the instance is live until `destroy_instance` below, and no
    // handle made from it is kept past that.
    let adapters = unsafe { list_adapters(&instance) };
    // SAFETY: created above, destroyed once, nothing uses it afterwards.
    unsafe { instance.destroy_instance(None) };
    Ok(VulkanProbe::Available {
        version: version_text(version),
        adapters: adapters?,
    })
}

/// # Safety
/// `instance` must be a live instance of Vulkan 1.1 or later.
unsafe fn list_adapters(instance: &ash::Instance) -> Result<Vec<VulkanAdapter>, String> {
    // SAFETY: the caller's contract.
    let devices = unsafe { instance.enumerate_physical_devices() }
        .map_err(|e| format!("cannot list Vulkan adapters: {e}"))?;
    let mut out = Vec::with_capacity(devices.len());
    for (ordinal, &pd) in devices.iter().enumerate() {
        // SAFETY: `pd` was just listed by this live instance.
        out.push(unsafe { describe(instance, pd, ordinal as u32) });
    }
    Ok(out)
}

/// # Safety
/// `pd` must be a physical device of the live `instance` (Vulkan ≥ 1.1).
unsafe fn describe(
    instance: &ash::Instance,
    pd: vk::PhysicalDevice,
    ordinal: u32,
) -> VulkanAdapter {
    // SAFETY (every call below): the caller's contract; each output struct
    // and the chain pushed onto it live on this stack frame for the call.
    let extensions =
        unsafe { instance.enumerate_device_extension_properties(pd) }.unwrap_or_default();
    let has = |name: &CStr| {
        extensions
            .iter()
            .any(|e| e.extension_name_as_c_str() == Ok(name))
    };
    let mut driver = vk::PhysicalDeviceDriverProperties::default();
    let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
    unsafe { instance.get_physical_device_properties2(pd, &mut props) };
    let base = props.properties;
    let name = c_text(base.device_name_as_c_str());
    let kind = AdapterType::from_vk(base.device_type);
    let driver = match (
        c_text(driver.driver_name_as_c_str()),
        c_text(driver.driver_info_as_c_str()),
    ) {
        (n, i) if n.is_empty() => i,
        (n, i) if i.is_empty() => n,
        (n, i) => format!("{n}: {i}"),
    };

    let has_budget = has(vk::EXT_MEMORY_BUDGET_NAME);
    let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
    let mut memory = vk::PhysicalDeviceMemoryProperties2::default();
    if has_budget {
        memory = memory.push_next(&mut budget);
    }
    unsafe { instance.get_physical_device_memory_properties2(pd, &mut memory) };
    let mem = memory.memory_properties;
    let local: Vec<usize> = (0..mem.memory_heap_count as usize)
        .filter(|&i| {
            mem.memory_heaps[i]
                .flags
                .contains(vk::MemoryHeapFlags::DEVICE_LOCAL)
        })
        .collect();
    let heaps: Vec<u64> = local.iter().map(|&i| mem.memory_heaps[i].size).collect();
    let budget = has_budget.then(|| local.iter().map(|&i| budget.heap_budget[i]).sum());

    let mut f16 = vk::PhysicalDeviceShaderFloat16Int8Features::default();
    let mut storage = vk::PhysicalDevice16BitStorageFeatures::default();
    let mut features = vk::PhysicalDeviceFeatures2::default()
        .push_next(&mut f16)
        .push_next(&mut storage);
    unsafe { instance.get_physical_device_features2(pd, &mut features) };
    let f16 = f16.shader_float16 == vk::TRUE && storage.storage_buffer16_bit_access == vk::TRUE;

    VulkanAdapter {
        ordinal,
        name,
        kind,
        driver,
        total: heaps.iter().sum(),
        heaps,
        budget,
        f16,
        max_buffer: u64::from(base.limits.max_storage_buffer_range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_answers_without_panicking() {
        match probe() {
            VulkanProbe::Available { adapters, .. } => {
                for (i, a) in adapters.iter().enumerate() {
                    assert_eq!(a.ordinal, i as u32);
                    assert!(!a.name.is_empty());
                    assert!(a.total > 0, "{a:?}");
                }
            }
            VulkanProbe::Unavailable { reason } => assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn a_missing_adapter_is_a_reason() {
        let none = VulkanProbe::Available {
            version: "1.3.0".into(),
            adapters: Vec::new(),
        };
        assert_eq!(
            none.unusable(0).as_deref(),
            Some("there is no Vulkan adapter 0 (0 found)")
        );
    }
}
