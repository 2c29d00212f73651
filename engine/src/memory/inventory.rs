//! The device inventory: every device a plan may use, its capacity, what is
//! free, and the budget flow plans against.
//!
//! - `cpu`: host RAM (`MemAvailable`).
//! - `cuda:N`: probed through the driver; a `capacity` in `devices:` (or
//!   `--device cuda:0=16GiB`) caps it, and declares it for planning on a
//!   machine without the card.
//! - `vulkan:N`: every adapter the Vulkan loader lists, with the size of its
//!   device-local heaps (the driver's budget where it reports one, as what
//!   is free); `capacity` caps it like a CUDA card. A CPU-type adapter
//!   (lavapipe) is listed but `auto` never picks it.
//! - `sim:N`: a simulated GPU of the declared capacity.
//!
//! Budget: `budget` when given; otherwise what is free minus `reserve`
//! (default: 10 % of the total or 1 GiB, whichever is larger).

use std::collections::BTreeMap;

use serde::Serialize;

use super::cuda::{self, CudaProbe};
use super::host::{host_memory, HostMemory};
use super::vulkan::{self, AdapterType, VulkanProbe};
use crate::device::DeviceId;
use crate::spec::DeviceSpec;

const GIB: u64 = 1 << 30;

/// How a device became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Found on this machine.
    Probed,
    /// Declared (`capacity`) with no such device here: for planning only.
    Declared,
    /// A simulated device.
    Simulated,
}

/// One device of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// The device.
    pub id: DeviceId,
    /// A name for people (`NVIDIA H100 80GB HBM3`, `simulated`, `host RAM`).
    pub name: String,
    /// Total memory, bytes.
    pub total: u64,
    /// Free memory now, bytes.
    pub free: u64,
    /// What flow plans to use at most, bytes.
    pub budget: u64,
    /// How it became known.
    pub origin: Origin,
    /// Whether `device: auto` may place stages here (not on a CPU-type
    /// Vulkan adapter such as lavapipe, which is slower than flow's CPU
    /// kernels: name it to use it).
    pub auto: bool,
}

/// Every device a plan may use.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// The devices: `cpu` first, then GPUs, then simulated devices.
    pub devices: Vec<DeviceInfo>,
    /// Host RAM.
    pub host: HostMemory,
    /// What the CUDA probe said.
    pub cuda: CudaProbe,
    /// What the Vulkan probe said.
    pub vulkan: VulkanProbe,
}

/// The default reserve: 10 % of `total` or 1 GiB, whichever is larger.
pub fn default_reserve(total: u64) -> u64 {
    (total / 10).max(GIB)
}

fn budget(total: u64, free: u64, spec: Option<&DeviceSpec>) -> u64 {
    if let Some(b) = spec.and_then(|s| s.budget) {
        return b.bytes().min(total);
    }
    let reserve = spec
        .and_then(|s| s.reserve)
        .map_or_else(|| default_reserve(total), |r| r.bytes());
    free.saturating_sub(reserve)
}

impl Inventory {
    /// Probes this machine and adds the devices declared in `devices:`.
    pub fn detect(declared: &BTreeMap<DeviceId, DeviceSpec>) -> Self {
        Self::build(declared, host_memory(), cuda::probe(), vulkan::probe())
    }

    /// The inventory from given host, CUDA and Vulkan readings (for tests
    /// and `flow plan` on other machines).
    pub fn build(
        declared: &BTreeMap<DeviceId, DeviceSpec>,
        host: HostMemory,
        cuda: CudaProbe,
        vulkan: VulkanProbe,
    ) -> Self {
        let mut devices = vec![DeviceInfo {
            id: DeviceId::Cpu,
            name: "host RAM".into(),
            total: host.total,
            free: host.available,
            budget: budget(host.total, host.available, declared.get(&DeviceId::Cpu)),
            origin: Origin::Probed,
            auto: true,
        }];
        let mut gpus: BTreeMap<DeviceId, DeviceInfo> = BTreeMap::new();
        for gpu in cuda.devices() {
            let id = DeviceId::Cuda(gpu.ordinal);
            let spec = declared.get(&id);
            let cap = spec.and_then(|s| s.capacity).map(|c| c.bytes());
            let total = cap.map_or(gpu.total, |c| c.min(gpu.total));
            let free = gpu.free.min(total);
            gpus.insert(
                id,
                DeviceInfo {
                    id,
                    name: gpu.name.clone(),
                    total,
                    free,
                    budget: budget(total, free, spec),
                    origin: Origin::Probed,
                    auto: true,
                },
            );
        }
        for adapter in vulkan.adapters() {
            let id = DeviceId::Vulkan(adapter.ordinal);
            let spec = declared.get(&id);
            let cap = spec.and_then(|s| s.capacity).map(|c| c.bytes());
            let total = cap.map_or(adapter.total, |c| c.min(adapter.total));
            let free = adapter.budget.unwrap_or(adapter.total).min(total);
            gpus.insert(
                id,
                DeviceInfo {
                    id,
                    name: adapter.name.clone(),
                    total,
                    free,
                    budget: budget(total, free, spec),
                    origin: Origin::Probed,
                    auto: adapter.kind != AdapterType::Cpu,
                },
            );
        }
        for (&id, spec) in declared {
            let Some(capacity) = spec.capacity.map(|c| c.bytes()) else {
                continue;
            };
            let (name, origin) = match id {
                DeviceId::Sim(_) => ("simulated GPU", Origin::Simulated),
                DeviceId::Cuda(_) | DeviceId::Vulkan(_) if !gpus.contains_key(&id) => {
                    ("declared GPU (not on this machine)", Origin::Declared)
                }
                _ => continue,
            };
            gpus.insert(
                id,
                DeviceInfo {
                    id,
                    name: name.into(),
                    total: capacity,
                    free: capacity,
                    budget: budget(capacity, capacity, Some(spec)),
                    origin,
                    auto: true,
                },
            );
        }
        devices.extend(gpus.into_values());
        Self {
            devices,
            host,
            cuda,
            vulkan,
        }
    }

    /// The device `id`, if known.
    pub fn get(&self, id: DeviceId) -> Option<&DeviceInfo> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The accelerators: CUDA, then Vulkan, then simulated, by index.
    pub fn accelerators(&self) -> impl Iterator<Item = &DeviceInfo> {
        self.devices.iter().filter(|d| d.id.is_accelerator())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::ByteSize;

    fn sim(capacity: u64) -> BTreeMap<DeviceId, DeviceSpec> {
        [(
            DeviceId::Sim(0),
            DeviceSpec {
                capacity: Some(ByteSize::gib(capacity)),
                ..Default::default()
            },
        )]
        .into()
    }

    fn no_cuda() -> CudaProbe {
        CudaProbe::Unavailable {
            reason: "test".into(),
        }
    }

    fn no_vulkan() -> VulkanProbe {
        VulkanProbe::Unavailable {
            reason: "test".into(),
        }
    }

    #[test]
    fn vulkan_adapters_are_devices_and_cpu_ones_are_not_for_auto() {
        let adapter = |ordinal, kind| vulkan::VulkanAdapter {
            ordinal,
            name: format!("adapter {ordinal}"),
            kind,
            driver: "test".into(),
            heaps: vec![8 * GIB],
            total: 8 * GIB,
            budget: Some(6 * GIB),
            f16: true,
            max_buffer: GIB,
        };
        let probe = VulkanProbe::Available {
            version: "1.3.0".into(),
            adapters: vec![
                adapter(0, AdapterType::Discrete),
                adapter(1, AdapterType::Cpu),
            ],
        };
        let inv = Inventory::build(&BTreeMap::new(), HostMemory::default(), no_cuda(), probe);
        let gpu = inv.get(DeviceId::Vulkan(0)).unwrap();
        assert_eq!((gpu.total, gpu.free, gpu.auto), (8 * GIB, 6 * GIB, true));
        assert_eq!(gpu.budget, 6 * GIB - GIB);
        assert!(!inv.get(DeviceId::Vulkan(1)).unwrap().auto);
    }

    #[test]
    fn the_default_reserve_is_ten_percent_or_one_gib() {
        let host = HostMemory {
            total: 64 * GIB,
            available: 60 * GIB,
        };
        let inv = Inventory::build(&sim(16), host, no_cuda(), no_vulkan());
        let sim = inv.get(DeviceId::Sim(0)).unwrap();
        assert_eq!(sim.budget, 16 * GIB - 16 * GIB / 10);
        let small = Inventory::build(&sim_small(), host, no_cuda(), no_vulkan());
        assert_eq!(small.get(DeviceId::Sim(0)).unwrap().budget, 3 * GIB);
        assert_eq!(
            inv.get(DeviceId::Cpu).unwrap().budget,
            60 * GIB - 64 * GIB / 10
        );
    }

    fn sim_small() -> BTreeMap<DeviceId, DeviceSpec> {
        sim(4)
    }

    #[test]
    fn budget_and_reserve_are_honoured() {
        let mut devices = sim(16);
        devices.get_mut(&DeviceId::Sim(0)).unwrap().reserve = Some(ByteSize::gib(4));
        let inv = Inventory::build(&devices, HostMemory::default(), no_cuda(), no_vulkan());
        assert_eq!(inv.get(DeviceId::Sim(0)).unwrap().budget, 12 * GIB);
        devices.get_mut(&DeviceId::Sim(0)).unwrap().budget = Some(ByteSize::gib(10));
        let inv = Inventory::build(&devices, HostMemory::default(), no_cuda(), no_vulkan());
        assert_eq!(inv.get(DeviceId::Sim(0)).unwrap().budget, 10 * GIB);
    }

    #[test]
    fn a_declared_cuda_device_caps_a_probed_one() {
        let probe = CudaProbe::Available {
            driver: "12.4".into(),
            nvrtc: true,
            devices: vec![cuda::CudaDevice {
                ordinal: 0,
                name: "H100".into(),
                total: 80 * GIB,
                free: 79 * GIB,
            }],
        };
        let declared: BTreeMap<DeviceId, DeviceSpec> = [(
            DeviceId::Cuda(0),
            DeviceSpec {
                capacity: Some(ByteSize::gib(16)),
                ..Default::default()
            },
        )]
        .into();
        let inv = Inventory::build(&declared, HostMemory::default(), probe, no_vulkan());
        let gpu = inv.get(DeviceId::Cuda(0)).unwrap();
        assert_eq!((gpu.total, gpu.origin), (16 * GIB, Origin::Probed));
        let inv = Inventory::build(&declared, HostMemory::default(), no_cuda(), no_vulkan());
        assert_eq!(inv.get(DeviceId::Cuda(0)).unwrap().origin, Origin::Declared);
    }
}
