//! `flow doctor`: what this machine offers flow.

use std::collections::BTreeMap;

use flow_engine::memory::cuda::CudaProbe;
use flow_engine::memory::vulkan::{AdapterType, VulkanProbe};
use flow_engine::memory::{human, Inventory, Origin};

use super::load;
use crate::cli::{DoctorArgs, Format};
use crate::errors::CliError;

/// Prints the devices, their memory and budgets, the CUDA libraries and the
/// Vulkan adapters.
pub fn doctor(args: DoctorArgs) -> Result<i32, CliError> {
    let declared = match &args.workflow {
        Some(path) => load(path, &args.tuning)?.spec.devices,
        None if !args.tuning.devices.is_empty() => {
            return Err(CliError::Message(
                "`--device` needs a workflow: `flow doctor FILE --device sim:0=16GiB`".into(),
            ))
        }
        None => BTreeMap::new(),
    };
    let inventory = Inventory::detect(&declared);
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&inventory).unwrap_or_default()
        );
        return Ok(0);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "host: {cores} cores, {} RAM, {} available",
        human(inventory.host.total),
        human(inventory.host.available)
    );
    match &inventory.cuda {
        CudaProbe::Available {
            driver,
            nvrtc,
            devices,
        } => {
            println!(
                "CUDA: driver {driver}, {} device(s); libnvrtc {}",
                devices.len(),
                if *nvrtc {
                    "found"
                } else {
                    "NOT found (burn's CUDA backend needs it: install the CUDA runtime)"
                }
            );
        }
        CudaProbe::Unavailable { reason } => {
            println!(
                "CUDA: not available ({reason}); GPU stages with `device: auto` run on the CPU"
            )
        }
    }
    print_vulkan(&inventory.vulkan);
    let cuda = match flow_backend::cuda_ready(0) {
        Ok(()) => "ready on cuda:0".to_string(),
        Err(reason) => format!("not usable ({reason})"),
    };
    let vulkan = match flow_backend::vulkan_ready(0) {
        Ok(()) => "ready on vulkan:0".to_string(),
        Err(reason) => format!("not usable ({reason})"),
    };
    println!("burn backends: ndarray (cpu) ready; cuda {cuda}; wgpu (vulkan) {vulkan}");
    println!("\ndevices:");
    for d in &inventory.devices {
        let origin = match d.origin {
            Origin::Probed => "",
            Origin::Declared => "  (declared, not on this machine: plans only)",
            Origin::Simulated => "  (simulated)",
        };
        let auto = if d.auto {
            ""
        } else {
            "  (not for `auto`: name it)"
        };
        println!(
            "  {:<8} {:<34} total {:>9}  free {:>9}  budget {:>9}{origin}{auto}",
            d.id.to_string(),
            d.name,
            human(d.total),
            human(d.free),
            human(d.budget)
        );
    }
    Ok(0)
}

/// The Vulkan loader's answer and each adapter: name, type, driver, heaps,
/// budget and f16.
fn print_vulkan(probe: &VulkanProbe) {
    match probe {
        VulkanProbe::Available { version, adapters } => {
            println!("Vulkan: loader {version}, {} adapter(s)", adapters.len());
            for a in adapters {
                let heaps: Vec<String> = a.heaps.iter().map(|&h| human(h)).collect();
                let budget = a.budget.map_or_else(
                    || "no budget reported".to_string(),
                    |b| format!("budget {}", human(b)),
                );
                let cpu = if a.kind == AdapterType::Cpu {
                    " — runs on the CPU; `auto` skips it"
                } else {
                    ""
                };
                println!(
                    "  vulkan:{} {} ({}; {}): heaps [{}], {budget}, largest buffer {}, f16 {}{cpu}",
                    a.ordinal,
                    a.name,
                    a.kind.describe(),
                    a.driver,
                    heaps.join(", "),
                    human(a.max_buffer),
                    if a.f16 { "yes" } else { "no" },
                );
            }
        }
        VulkanProbe::Unavailable { reason } => println!("Vulkan: not available ({reason})"),
    }
}
