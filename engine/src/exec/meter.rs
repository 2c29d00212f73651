//! Run-time device memory: the ledger of a device worker.
//!
//! On `sim:N` the ledger is the device: loads charge their weights, batches
//! charge their working memory (from each item's actual input where the
//! stage can tell), and anything over the capacity is an out-of-memory
//! error, exactly as on a GPU. On `cuda:N` the readings come from the driver
//! (free / total); on `vulkan:N` from the runtime's memory pool of the
//! device ([`crate::memory::pool`]: in use / reserved), which `ClearCache`
//! nodes empty; elsewhere from stages that can read their memory pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::device::DeviceId;
use crate::memory::cuda::CudaMeter;
use crate::memory::host::rss;
use crate::memory::pool;
use crate::registry::Stage;
use crate::report::Event;

/// Warning thresholds, in percent of the device's total.
const WARN_AT: [u8; 2] = [70, 85];
/// Memory that does not come back after an unload, beyond this share of
/// what the load took, is reported as a leak.
const LEAK_SHARE: f64 = 0.05;

/// A reading of one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Bytes in use (weights and live batches).
    pub in_use: u64,
    /// Bytes held (in use plus cached).
    pub reserved: u64,
}

/// The memory ledger of one device worker.
pub struct Meter {
    device: DeviceId,
    total: u64,
    resident: BTreeMap<usize, u64>,
    cache: u64,
    cuda: Option<CudaMeter>,
    warned: u8,
    /// In-use bytes just before each stage's load.
    before_load: BTreeMap<usize, u64>,
    /// Bytes each load took.
    loaded: BTreeMap<usize, u64>,
}

impl Meter {
    /// The ledger of `device` with `total` bytes.
    pub fn new(device: DeviceId, total: u64) -> Self {
        let cuda = match device {
            DeviceId::Cuda(n) => CudaMeter::new(n),
            _ => None,
        };
        Self {
            device,
            total,
            resident: BTreeMap::new(),
            cache: 0,
            cuda,
            warned: 0,
            before_load: BTreeMap::new(),
            loaded: BTreeMap::new(),
        }
    }

    /// The device's total bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether this ledger is the device itself (a simulated device).
    pub fn simulated(&self) -> bool {
        matches!(self.device, DeviceId::Sim(_))
    }

    /// Whether the readings come from the runtime's pool of the device.
    fn pooled(&self) -> bool {
        matches!(self.device, DeviceId::Vulkan(_))
    }

    /// Reads the device now.
    pub fn read(&self, stages: &[Arc<dyn Stage>]) -> Reading {
        if let Some((free, total)) = self.cuda.as_ref().and_then(CudaMeter::read) {
            let used = total.saturating_sub(free);
            return Reading {
                in_use: used,
                reserved: used,
            };
        }
        if let Some(usage) = self.pooled().then(|| pool::usage(self.device)).flatten() {
            return Reading {
                in_use: usage.in_use,
                reserved: usage.reserved.max(usage.in_use),
            };
        }
        let mut in_use = 0;
        let mut reserved = 0;
        for (&stage, &bytes) in &self.resident {
            match stages.get(stage).and_then(|s| s.memory_usage()) {
                Some(usage) => {
                    in_use += usage.in_use;
                    reserved += usage.reserved.max(usage.in_use);
                }
                None => {
                    in_use += bytes;
                    reserved += bytes;
                }
            }
        }
        Reading {
            in_use,
            reserved: reserved + self.cache,
        }
    }

    /// Free bytes for a new batch (simulated devices: capacity minus what
    /// is in use; the cache is reusable).
    pub fn room(&self, stages: &[Arc<dyn Stage>]) -> u64 {
        self.total.saturating_sub(self.read(stages).in_use)
    }

    /// A model was loaded: charge `bytes` (the stage's own reading or the
    /// device's pool wins); `before` is the reading just before the load.
    pub fn loaded(&mut self, stage: usize, bytes: u64, stages: &[Arc<dyn Stage>], before: Reading) {
        let before = before.in_use;
        self.before_load.insert(stage, before);
        self.resident.insert(stage, bytes);
        let after = self.read(stages).in_use;
        self.loaded.insert(stage, after.saturating_sub(before));
    }

    /// A model was unloaded; `before` is the reading just before the
    /// unload. Returns a leak event when less than 95 % of what its load
    /// took came back.
    pub fn unloaded(
        &mut self,
        stage: usize,
        model: &str,
        stages: &[Arc<dyn Stage>],
        before: Reading,
    ) -> Option<Event> {
        let before = before.in_use;
        let still = stages
            .get(stage)
            .and_then(|s| s.memory_usage())
            .map(|u| u.in_use);
        match still {
            Some(bytes) if bytes > 0 => {
                self.resident.insert(stage, 0);
                self.cache += bytes;
            }
            _ => {
                self.resident.remove(&stage);
            }
        }
        let after = self.read(stages).in_use;
        let took = self.loaded.remove(&stage)?;
        let released = before.saturating_sub(after);
        let leaked = took.saturating_sub(released);
        (took > 0 && leaked as f64 > took as f64 * LEAK_SHARE).then(|| Event::MemoryLeak {
            device: self.device.to_string(),
            model: model.to_string(),
            leaked,
            loaded: took,
        })
    }

    /// Releases cached memory (on a pooled device, the pool's own).
    pub fn clear_cache(&mut self) {
        if self.pooled() {
            pool::clear(self.device);
        }
        self.cache = 0;
        self.resident.retain(|_, b| *b > 0);
    }

    /// A batch with `work` bytes of working memory finished: the allocator
    /// keeps it cached.
    pub fn batch_done(&mut self, work: u64) {
        self.cache = self.cache.max(work);
    }

    /// A snapshot event after plan node `node`.
    pub fn snapshot(&self, node: &str, stages: &[Arc<dyn Stage>]) -> Event {
        let reading = self.read(stages);
        Event::Memory {
            device: self.device.to_string(),
            node: node.to_string(),
            in_use: reading.in_use,
            reserved: reading.reserved,
            total: self.total,
            host_rss: rss(),
        }
    }

    /// A warning when use crosses 70 % or 85 % of the device (once each,
    /// until it falls back below 70 %).
    pub fn warning(&mut self, peak: u64) -> Option<Event> {
        if self.total == 0 {
            return None;
        }
        let percent = (peak as f64 * 100.0 / self.total as f64) as u8;
        if percent < WARN_AT[0] {
            self.warned = 0;
            return None;
        }
        let level = WARN_AT.iter().rev().find(|&&l| percent >= l).copied()?;
        if level <= self.warned {
            return None;
        }
        self.warned = level;
        Some(Event::MemoryWarning {
            device: self.device.to_string(),
            percent: level,
            used: peak,
            total: self.total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_threshold() {
        let mut m = Meter::new(DeviceId::Sim(0), 100);
        assert!(m.warning(50).is_none());
        assert!(matches!(
            m.warning(72),
            Some(Event::MemoryWarning { percent: 70, .. })
        ));
        assert!(m.warning(75).is_none());
        assert!(matches!(
            m.warning(90),
            Some(Event::MemoryWarning { percent: 85, .. })
        ));
        assert!(m.warning(95).is_none());
        assert!(m.warning(10).is_none());
        assert!(m.warning(71).is_some());
    }

    /// A stage that keeps reporting device memory after its unload.
    struct Leaky;

    impl Stage for Leaky {
        fn run(
            &self,
            _: &crate::registry::StageInput,
        ) -> Result<crate::registry::StageOutput, crate::registry::StageError> {
            Ok(Default::default())
        }

        fn memory_usage(&self) -> Option<crate::registry::MemoryUsage> {
            Some(crate::registry::MemoryUsage {
                in_use: 40,
                reserved: 40,
            })
        }
    }

    #[test]
    fn memory_that_does_not_come_back_after_an_unload_is_a_leak() {
        let stages: Vec<Arc<dyn Stage>> = vec![Arc::new(Leaky)];
        let mut m = Meter::new(DeviceId::Sim(0), 100);
        let before = m.read(&stages);
        m.loaded(0, 40, &stages, before);
        let before = m.read(&stages);
        let leak = m.unloaded(0, "asr", &stages, before);
        assert!(
            matches!(&leak, Some(Event::MemoryLeak { model, leaked: 40, .. }) if model == "asr"),
            "{leak:?}"
        );
    }

    #[test]
    fn the_ledger_charges_and_frees() {
        let mut m = Meter::new(DeviceId::Sim(0), 100);
        let before = m.read(&[]);
        m.loaded(0, 30, &[], before);
        assert_eq!(m.read(&[]).in_use, 30);
        m.batch_done(20);
        assert_eq!(
            m.read(&[]),
            Reading {
                in_use: 30,
                reserved: 50
            }
        );
        let before = m.read(&[]);
        assert!(m.unloaded(0, "asr", &[], before).is_none());
        m.clear_cache();
        assert_eq!(m.read(&[]), Reading::default());
    }
}
