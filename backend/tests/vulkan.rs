//! burn's wgpu backend on a real Vulkan adapter (lavapipe in CI): arithmetic,
//! the memory pool around an allocation, and an allocation failure that
//! comes back as out of memory and leaves the device usable.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use burn::tensor::{Tensor, TensorData};
use flow_backend::testing::vulkan_or_skip;
use flow_backend::{burn, install_pools, with_backend, Compute};
use flow_engine::device::DeviceId;
use flow_engine::memory::pool::{self, panic_text};

/// One device, one pool: the tests of this file take turns.
static DEVICE: Mutex<()> = Mutex::new(());

#[test]
fn vulkan_multiplies_matrices_like_the_cpu() {
    let _turn = DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(device) = vulkan_or_skip("vulkan_multiplies_matrices_like_the_cpu") else {
        return;
    };
    let compute = Compute::for_device(device).unwrap();
    assert_eq!(compute.describe(), "vulkan:0");
    let a: Vec<f32> = (0..64 * 48).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let b: Vec<f32> = (0..48 * 32).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
    let product = |compute: &Compute| -> Vec<f32> {
        with_backend!(compute, |B, dev| {
            let x = Tensor::<B, 2>::from_data(TensorData::new(a.clone(), [64, 48]), &dev);
            let y = Tensor::<B, 2>::from_data(TensorData::new(b.clone(), [48, 32]), &dev);
            x.matmul(y).into_data().to_vec::<f32>().unwrap()
        })
    };
    let cpu = product(&Compute::for_device(DeviceId::Cpu).unwrap());
    let gpu = product(&compute);
    assert_eq!(cpu, gpu, "small integers multiply exactly on both");
}

#[test]
fn the_pool_grows_with_a_tensor_and_falls_back_after_it_is_freed() {
    let _turn = DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(device) = vulkan_or_skip("the_pool_grows_with_a_tensor_and_falls_back") else {
        return;
    };
    let compute = Compute::for_device(device).unwrap();
    compute.clear_cache();
    let before = compute.memory_usage().expect("a pool reading");
    let bytes = 16 << 20;
    let held = with_backend!(&compute, |B, dev| {
        let t = Tensor::<B, 1>::ones([bytes / 4], &dev);
        let _ = t.clone().sum().into_scalar();
        let during = compute.memory_usage().unwrap();
        drop(t);
        during
    });
    compute.clear_cache();
    let after = compute.memory_usage().unwrap();
    eprintln!("pool: before {before:?}, holding 16 MiB {held:?}, after {after:?}");
    assert!(
        held.in_use >= before.in_use + bytes as u64,
        "a 16 MiB tensor shows in the pool: {before:?} -> {held:?}"
    );
    assert!(
        after.in_use <= before.in_use + (1 << 20),
        "freed and cleared, the pool falls back: {before:?} -> {after:?}"
    );
}

#[test]
fn an_allocation_larger_than_the_device_allows_is_out_of_memory_and_the_device_lives_on() {
    let _turn = DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(device) = vulkan_or_skip("an_allocation_larger_than_the_device_allows") else {
        return;
    };
    install_pools();
    let compute = Compute::for_device(device).unwrap();
    // 4 GiB in one tensor: over any adapter's largest buffer here
    // (lavapipe's is 2 GiB, its storage binding range 128 MiB).
    let failed = catch_unwind(AssertUnwindSafe(|| {
        with_backend!(&compute, |B, dev| {
            let t = Tensor::<B, 1>::ones([1usize << 30], &dev);
            t.sum().into_scalar()
        })
    }));
    let panic = failed.expect_err("a 4 GiB tensor cannot be allocated");
    let text = panic_text(panic.as_ref());
    eprintln!(
        "allocation failure: {}",
        text.lines().next().unwrap_or_default()
    );
    assert!(
        pool::is_out_of_memory(panic.as_ref()),
        "an allocation failure, as the engine's device worker sees it: {text}"
    );
    // cubecl's device thread died of it; the device is opened again.
    assert!(!compute.is_current());
    let compute = Compute::for_device(device).unwrap();
    assert!(compute.is_current());
    let sum: f32 = with_backend!(&compute, |B, dev| {
        Tensor::<B, 1>::ones([1024], &dev).sum().into_scalar()
    });
    assert_eq!(sum, 1024.0, "the device still computes after the failure");
}
