//! Device names: where a stage runs.

use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A concrete device: the host CPU, a CUDA GPU, a Vulkan adapter, or a
/// simulated GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceId {
    /// The host CPU.
    Cpu,
    /// CUDA device `N`.
    Cuda(u32),
    /// Vulkan adapter `N`, in the order the Vulkan loader lists adapters
    /// (`flow doctor` shows it); burn's wgpu backend computes on it.
    Vulkan(u32),
    /// Simulated device `N`: runs on the CPU, accounts memory like a GPU.
    Sim(u32),
}

/// Where a stage asks to run, as written in `device:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRequest {
    /// A specific device.
    Exact(DeviceId),
    /// `cuda`: the first CUDA device.
    AnyCuda,
    /// `auto`: wherever the planner finds room, GPU first.
    Auto,
}

/// Why a device name was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a device: use `cpu`, `cuda`, `cuda:N`, `vulkan:N`, `sim:N` or `auto`")]
pub struct DeviceError(pub String);

impl DeviceId {
    /// Whether stages on this device run on a device worker that batches
    /// across items (every device but the CPU).
    pub fn is_accelerator(self) -> bool {
        !matches!(self, DeviceId::Cpu)
    }
}

impl FromStr for DeviceId {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || DeviceError(text.to_string());
        match text.split_once(':') {
            None if text == "cpu" => Ok(DeviceId::Cpu),
            Some(("cuda", n)) => n.parse().map(DeviceId::Cuda).map_err(|_| err()),
            Some(("vulkan", n)) => n.parse().map(DeviceId::Vulkan).map_err(|_| err()),
            Some(("sim", n)) => n.parse().map(DeviceId::Sim).map_err(|_| err()),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceId::Cpu => f.write_str("cpu"),
            DeviceId::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceId::Vulkan(n) => write!(f, "vulkan:{n}"),
            DeviceId::Sim(n) => write!(f, "sim:{n}"),
        }
    }
}

impl FromStr for DeviceRequest {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(DeviceRequest::Auto),
            "cuda" => Ok(DeviceRequest::AnyCuda),
            _ => text.parse().map(DeviceRequest::Exact),
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRequest::Exact(id) => id.fmt(f),
            DeviceRequest::AnyCuda => f.write_str("cuda"),
            DeviceRequest::Auto => f.write_str("auto"),
        }
    }
}

macro_rules! string_serde {
    ($ty:ty, $name:literal, $pattern:literal, $doc:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                schemars::json_schema!({ "type": "string", "pattern": $pattern, "description": $doc })
            }
        }
    };
}

string_serde!(
    DeviceId,
    "DeviceId",
    "^(cpu|cuda:[0-9]+|vulkan:[0-9]+|sim:[0-9]+)$",
    "A device: `cpu`, `cuda:N`, `vulkan:N` (a Vulkan adapter, as `flow doctor` lists them) or `sim:N` (a simulated GPU with a declared capacity)."
);
string_serde!(
    DeviceRequest,
    "DeviceRequest",
    "^(cpu|cuda|auto|cuda:[0-9]+|vulkan:[0-9]+|sim:[0-9]+)$",
    "Where a stage runs: `cpu`, `cuda` (first CUDA GPU), `cuda:N`, `vulkan:N`, `sim:N` or `auto` (where the planner finds room: CUDA GPUs, then Vulkan GPUs, never a CPU-type Vulkan adapter)."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("cpu".parse(), Ok(DeviceRequest::Exact(DeviceId::Cpu)));
        assert_eq!("cuda".parse(), Ok(DeviceRequest::AnyCuda));
        assert_eq!(
            "cuda:1".parse(),
            Ok(DeviceRequest::Exact(DeviceId::Cuda(1)))
        );
        assert_eq!("sim:0".parse(), Ok(DeviceRequest::Exact(DeviceId::Sim(0))));
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert_eq!(
            "vulkan:0".parse(),
            Ok(DeviceRequest::Exact(DeviceId::Vulkan(0)))
        );
        assert_eq!(DeviceId::Vulkan(2).to_string(), "vulkan:2");
        assert!("gpu".parse::<DeviceRequest>().is_err());
        assert!("cuda:x".parse::<DeviceRequest>().is_err());
    }
}
