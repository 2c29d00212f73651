//! The out-of-memory ladder, per batch: release cached memory and retry →
//! retry with a smaller batch (bisecting between the last size that worked
//! and the one that failed, never below `batch.min`, remembering what
//! works) → the stage's `on_oom` devices → give up, so that the item's
//! `fallback` (or failure) takes over. One OOM never ends a run.

use super::device::{Job, State};
use crate::device::DeviceId;
use crate::memory::calibration::{self, Calibration};
use crate::memory::human;
use crate::registry::{FailureKind, StageError, StageInput, StageOutput};
use crate::report::Event;
use crate::spec::{OomAction, OomStep};

/// After this many good batches at a shrunk size, try the planned size
/// again (memory pressure is often passing); doubled each time the planned
/// size fails again, so a lasting limit costs few failed batches.
const PROBE_AFTER: u32 = 4;

/// The batch-size memory of one stage on one device.
#[derive(Debug, Clone)]
pub struct Ladder {
    planned: u32,
    min: u32,
    good: Option<u32>,
    bad: Option<u32>,
    successes: u32,
    probe_after: u32,
    probing: bool,
    last: u32,
}

impl Ladder {
    /// A stage planned at `planned` items per batch, never below `min`.
    pub fn new(planned: u32, min: u32) -> Self {
        let planned = planned.max(1);
        Self {
            planned,
            min: min.clamp(1, planned),
            good: None,
            bad: None,
            successes: 0,
            probe_after: PROBE_AFTER,
            probing: false,
            last: planned,
        }
    }

    /// The plan's size for the coming `Run` node (it may differ per wave).
    pub fn set_planned(&mut self, planned: u32) {
        let planned = planned.max(1);
        if planned != self.planned {
            self.planned = planned;
            self.min = self.min.min(planned);
            self.bad = self.bad.filter(|&b| b <= planned);
            self.good = self.good.filter(|&g| g <= planned);
        }
    }

    /// The size to use next: the planned size, or while a failure is
    /// remembered, the midpoint between what worked and what failed.
    pub fn size(&self) -> u32 {
        let Some(bad) = self.bad else {
            return self.planned;
        };
        let good = self.good.unwrap_or(self.min.saturating_sub(1)).min(bad);
        if bad.saturating_sub(good) > 1 {
            ((good + bad) / 2).max(self.min)
        } else {
            good.max(self.min)
        }
    }

    /// A batch of `size` worked.
    pub fn success(&mut self, size: u32) {
        self.good = Some(self.good.map_or(size, |g| g.max(size)));
        self.probing = false;
        if let Some(bad) = self.bad {
            if size >= bad {
                self.bad = None;
            } else {
                self.successes += 1;
                if self.successes >= self.probe_after {
                    self.bad = None;
                    self.successes = 0;
                    self.probing = true;
                }
            }
        }
    }

    /// A batch of `size` ran out of memory.
    pub fn failure(&mut self, size: u32) {
        if self.probing {
            self.probe_after = (self.probe_after * 2).min(1024);
            self.probing = false;
        }
        self.bad = Some(self.bad.map_or(size, |b| b.min(size)));
        self.successes = 0;
        if self.good.is_some_and(|g| g >= size) {
            self.good = None;
        }
    }
}

/// Calibration progress of one stage: the working peaks at batch 1 and 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calibrating {
    started: u8,
    peak1: Option<u64>,
    recorded: bool,
}

impl State {
    /// The batch size for the next batch of `stage`, reporting changes.
    pub(super) fn batch_size(&mut self, stage: usize) -> u32 {
        if self.setup.calibrate && self.calibration[stage].started < 2 {
            self.calibration[stage].started += 1;
            return u32::from(self.calibration[stage].started);
        }
        let ladder = &mut self.ladder[stage];
        let size = ladder.size();
        if size != ladder.last {
            let from = ladder.last;
            ladder.last = size;
            let reason = if size > from {
                "memory allows a larger batch again"
            } else {
                "a larger batch ran out of memory"
            };
            self.emit(Event::BatchSize {
                stage: self.stage_id(stage),
                device: self.setup.device.to_string(),
                from,
                to: size,
                reason: reason.into(),
            });
        }
        size
    }

    /// Runs a batch, climbing the ladder for the items that ran out of
    /// memory; every job gets its answer.
    pub(super) fn run_with_ladder(&mut self, stage: usize, jobs: Vec<Job>) {
        let size = jobs.len() as u32;
        let device = self.setup.device;
        let results = self.attempt(stage, &jobs, device);
        let mut left = self.answer(jobs, results);
        if left.is_empty() {
            self.ladder[stage].success(size);
            return;
        }
        self.ladder[stage].failure(left.len() as u32);
        let spec = &self.setup.workflow.stages[stage].spec;
        let steps: Vec<OomStep> = if spec.on_oom.is_empty() {
            vec![
                OomStep::Action(OomAction::ClearCache),
                OomStep::Action(OomAction::ShrinkBatch),
            ]
        } else {
            spec.on_oom.clone()
        };
        let mut tried = Vec::new();
        for step in steps {
            if left.is_empty() {
                break;
            }
            match step {
                OomStep::Action(OomAction::ClearCache) => {
                    self.oom_event(
                        stage,
                        "clear_cache",
                        &left,
                        "released cached memory; retrying the batch",
                    );
                    self.clear_cache();
                    let n = left.len() as u32;
                    let results = self.attempt(stage, &left, device);
                    left = self.answer(left, results);
                    if left.is_empty() {
                        self.ladder[stage].success(n);
                    } else {
                        self.ladder[stage].failure(n);
                    }
                    tried.push("clear_cache".to_string());
                }
                OomStep::Action(OomAction::ShrinkBatch) => {
                    left = self.shrink(stage, left);
                    tried.push("shrink_batch".to_string());
                }
                OomStep::Device(other) => {
                    self.oom_event(stage, "device", &left, &format!("moving to {other}"));
                    let results = self.attempt(stage, &left, other);
                    left = self.answer(left, results);
                    tried.push(other.to_string());
                }
            }
        }
        if left.is_empty() {
            return;
        }
        let detail = if tried.is_empty() {
            format!("out of memory on {device}")
        } else {
            format!("out of memory on {device} after {}", tried.join(", "))
        };
        self.oom_event(stage, "gave_up", &left, &detail);
        for job in left {
            let _ = job
                .reply
                .send(Err(StageError::out_of_memory(detail.clone())));
        }
    }

    /// Retries `left` in smaller batches, bisecting; returns the jobs that
    /// still fail at `batch.min`.
    fn shrink(&mut self, stage: usize, mut left: Vec<Job>) -> Vec<Job> {
        let device = self.setup.device;
        let min = self.setup.plan.placements[stage].min_batch.max(1);
        let mut failed = left.len() as u32;
        while !left.is_empty() && failed > min {
            let size = self.ladder[stage].size().clamp(min, failed - 1);
            self.oom_event(
                stage,
                "shrink_batch",
                &left,
                &format!("retrying in batches of {size} (failed at {failed})"),
            );
            let mut still = Vec::new();
            let mut any_failed = false;
            while !left.is_empty() {
                let chunk: Vec<Job> = left.drain(..(size as usize).min(left.len())).collect();
                let n = chunk.len() as u32;
                let results = self.attempt(stage, &chunk, device);
                let rest = self.answer(chunk, results);
                if rest.is_empty() {
                    self.ladder[stage].success(n);
                } else {
                    self.ladder[stage].failure(n);
                    any_failed = true;
                    still.extend(rest);
                }
            }
            left = still;
            if !any_failed {
                break;
            }
            failed = size;
        }
        left
    }

    /// Sends every result but out-of-memory ones; returns the jobs that ran
    /// out of memory.
    fn answer(&self, jobs: Vec<Job>, results: Vec<Result<StageOutput, StageError>>) -> Vec<Job> {
        let mut left = Vec::new();
        for (job, result) in jobs.into_iter().zip(results) {
            match result {
                Err(e) if e.kind == FailureKind::OutOfMemory => left.push(job),
                other => {
                    let _ = job.reply.send(other);
                }
            }
        }
        left
    }

    fn oom_event(&self, stage: usize, step: &str, jobs: &[Job], detail: &str) {
        self.emit(Event::Oom {
            stage: self.stage_id(stage),
            device: self.setup.device.to_string(),
            step: step.into(),
            batch: jobs.len() as u32,
            items: jobs.iter().map(|j| j.input.item.id.clone()).collect(),
            detail: detail.into(),
        });
    }

    /// One try of a batch on `device`: injected faults first, then (on a
    /// simulated device) the ledger's check, then the stage itself.
    fn attempt(
        &mut self,
        stage: usize,
        jobs: &[Job],
        device: DeviceId,
    ) -> Vec<Result<StageOutput, StageError>> {
        let n = jobs.len();
        let here = device == self.setup.device;
        let runnable = self.setup.stages[stage].clone();
        let inputs: Vec<StageInput> = jobs
            .iter()
            .map(|j| StageInput {
                device,
                ..j.input.clone()
            })
            .collect();
        if here {
            self.attempts[stage] += 1;
            let attempt = self.attempts[stage];
            let id = self.stage_id(stage);
            if self.setup.faults.oom(&id, attempt) {
                let e = StageError::out_of_memory(format!(
                    "out of memory on {device} (injected: FLOW_FAULTS=oom:{id}@{attempt})"
                ));
                return vec![Err(e); n];
            }
        }
        let footprint = self.setup.plan.placements[stage].footprint;
        let work = footprint.fixed
            + inputs
                .iter()
                .map(|i| runnable.item_memory(i).unwrap_or(footprint.per_item))
                .sum::<u64>();
        if here && self.meter.simulated() {
            let room = self.meter.room(&self.setup.stages);
            if work > room {
                let e = StageError::out_of_memory(format!(
                    "{device} out of memory: a batch of {n} needs {}, {} free of {}",
                    human(work),
                    human(room),
                    human(self.meter.total())
                ));
                return vec![Err(e); n];
            }
        }
        // A panic (cubecl panics on some allocation failures) fails the
        // batch, as out of memory where the runtime says so, and the worker
        // goes on.
        let mut results = if here {
            super::guard::guarded(device, "the batch", || runnable.run_batch(&inputs))
                .unwrap_or_else(|e| vec![Err(e); n])
        } else {
            inputs
                .iter()
                .map(|i| {
                    super::guard::guarded(device, "the item", || runnable.run(i)).and_then(|r| r)
                })
                .collect()
        };
        results.resize_with(n, || {
            Err(StageError::failed(
                "the stage returned fewer results than its batch",
            ))
        });
        if here {
            let in_use = self.meter.read(&self.setup.stages).in_use;
            self.meter.batch_done(work);
            if let Some(warning) = self.meter.warning(in_use + work) {
                self.emit(warning);
            }
            if self.setup.calibrate {
                self.calibrate(stage, n, work);
            }
        }
        results
    }

    fn calibrate(&mut self, stage: usize, n: usize, work: u64) {
        let measured = self.setup.stages[stage]
            .memory_usage()
            .map_or(work, |u| u.reserved.saturating_sub(u.in_use).max(work));
        let cal = &mut self.calibration[stage];
        match (n, cal.peak1, cal.recorded) {
            (1, None, _) => cal.peak1 = Some(measured),
            (2, Some(peak1), false) => {
                cal.recorded = true;
                let node = &self.setup.workflow.stages[stage];
                let weights = self.setup.plan.placements[stage].footprint.weights;
                let c = Calibration::from_peaks(weights, peak1, measured, 0);
                let kind = calibration::device_kind(self.setup.device);
                self.emit(Event::Calibrated {
                    stage: node.id.to_string(),
                    key: calibration::key(&self.setup.workflow, node, kind),
                    weights: c.weights,
                    per_item: c.per_item,
                    fixed: c.fixed,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisects_down_and_recovers() {
        let mut l = Ladder::new(8, 1);
        assert_eq!(l.size(), 8);
        l.failure(8);
        assert_eq!(l.size(), 4);
        l.success(4);
        assert_eq!(l.size(), 6);
        l.success(6);
        assert_eq!(l.size(), 7);
        l.success(7);
        assert_eq!(l.size(), 7);
        l.success(7);
        assert_eq!(l.size(), 8, "probes the planned size again");
        l.failure(8);
        for _ in 0..PROBE_AFTER {
            l.success(7);
        }
        assert_eq!(l.size(), 7, "a failed probe waits twice as long");
        for _ in 0..PROBE_AFTER {
            l.success(7);
        }
        assert_eq!(l.size(), 8);
        l.success(8);
        assert_eq!(l.size(), 8);
    }

    #[test]
    fn never_below_min() {
        let mut l = Ladder::new(8, 3);
        l.failure(8);
        l.failure(5);
        l.failure(3);
        assert_eq!(l.size(), 3);
    }

    #[test]
    fn a_size_that_keeps_failing_stays_remembered() {
        let mut l = Ladder::new(8, 1);
        l.failure(8);
        l.success(4);
        l.failure(6);
        assert_eq!(l.size(), 5);
        l.failure(5);
        assert_eq!(l.size(), 4);
    }
}
