//! Compute backends and weight readers for `flow`'s model stages.
//!
//! - [`Compute`]: where a stage computes — burn's NdArray backend on the
//!   CPU (and on simulated devices), burn's CUDA backend on `cuda:N`,
//!   burn's wgpu backend (Vulkan, SPIR-V) on `vulkan:N` — chosen at run
//!   time. The CUDA path checks for the driver and NVRTC
//!   *before* touching burn, which panics when they are missing.
//! - [`weights`]: reads CTranslate2 `model.bin`, safetensors and PyTorch
//!   checkpoints into f32 tensors, and turns them into burn tensors.
//!
//! Model stages are generic over `B: burn::tensor::backend::Backend`; the
//! [`with_backend!`] macro runs such code on the backend a [`Compute`]
//! names.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod compute;
pub mod kernels;
pub mod pools;
pub mod testing;
#[cfg(feature = "vulkan")]
mod vulkan;
pub mod weights;

#[cfg(feature = "cuda")]
pub use compute::Gpu;
#[cfg(feature = "vulkan")]
pub use compute::Vk;
pub use compute::{cuda_ready, vulkan_probe, vulkan_ready, BackendError, Compute, Cpu};
pub use pools::install_pools;
pub use weights::{RawTensor, WeightError, Weights};

/// burn, re-exported so model crates use the same version.
pub use burn;
