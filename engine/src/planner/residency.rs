//! Residency on one device: which models are loaded when, batch sizes, and
//! the predicted memory of every step.
//!
//! Memory is modelled as an allocator does it: resident weights, plus a
//! cache that keeps the largest batch buffer so far until `ClearCache`.

use super::{batch_bounds, need_text, PlanError};
use crate::graph::Workflow;
use crate::memory::{human, DeviceInfo};
use crate::plan::{DevicePlan, Placement, PlanNode, Step};

/// Smallest wave, in items.
const MIN_WAVE: usize = 32;
/// A wave holds this many of the device's largest batches.
const WAVE_BATCHES: usize = 8;

/// One device's running prediction.
struct Ledger<'a> {
    info: &'a DeviceInfo,
    placements: &'a [Placement],
    names: Vec<String>,
    resident: Vec<usize>,
    cache: u64,
    steps: Vec<Step>,
    loads: u32,
    peak: u64,
}

impl Ledger<'_> {
    fn weights(&self) -> u64 {
        self.resident
            .iter()
            .map(|&s| self.placements[s].footprint.weights)
            .sum()
    }

    fn reserved(&self) -> u64 {
        self.weights() + self.cache
    }

    fn push(&mut self, node: PlanNode, before: u64, peak: u64, after: u64) {
        self.peak = self.peak.max(peak);
        self.steps.push(Step {
            node,
            before,
            peak,
            after,
        });
    }

    fn clear_cache(&mut self) {
        let before = self.reserved();
        self.cache = 0;
        let after = self.reserved();
        self.push(
            PlanNode::ClearCache {
                device: self.info.id,
            },
            before,
            before,
            after,
        );
    }

    fn unload(&mut self, stage: usize) {
        let before = self.reserved();
        self.resident.retain(|&s| s != stage);
        let after = self.reserved();
        let node = PlanNode::Unload {
            model: self.names[stage].clone(),
            stage,
            device: self.info.id,
        };
        self.push(node, before, before, after);
    }

    fn load(&mut self, stage: usize) {
        let before = self.reserved();
        self.resident.push(stage);
        self.loads += 1;
        let after = self.reserved();
        let node = PlanNode::Load {
            model: self.names[stage].clone(),
            stage,
            device: self.info.id,
        };
        self.push(node, before, after, after);
    }

    fn run(&mut self, stage: usize, batch: u32) {
        let before = self.reserved();
        let work = self.placements[stage].footprint.work(batch);
        let peak = self.weights() + self.cache.max(work);
        self.cache = self.cache.max(work);
        let after = self.reserved();
        let node = PlanNode::Run {
            stage,
            device: self.info.id,
            batch,
        };
        self.push(node, before, peak, after);
    }

    /// Makes room for `seq[at]`: its weights (when it has a model that is
    /// not resident) plus its smallest batch, by evicting the resident model
    /// used farthest in the future (Belady); clears the cache when the
    /// cached buffers stand in the way; then loads the model.
    fn make_room(&mut self, seq: &[usize], at: usize, load: bool, min_work: u64) {
        let stage = seq[at];
        let weights = if load {
            self.placements[stage].footprint.weights
        } else {
            0
        };
        let mut evicted = false;
        while self.weights() + weights + min_work > self.info.budget {
            let distance = |s: usize| {
                let pos = seq.iter().position(|&x| x == s).unwrap_or(at);
                if pos > at {
                    pos - at
                } else {
                    pos + seq.len() - at
                }
            };
            let Some(&victim) = self
                .resident
                .iter()
                .filter(|&&s| s != stage)
                .max_by_key(|&&s| distance(s))
            else {
                break;
            };
            self.unload(victim);
            evicted = true;
        }
        if self.cache > 0
            && (evicted
                || self.reserved() + weights + min_work.saturating_sub(self.cache)
                    > self.info.budget)
        {
            self.clear_cache();
        }
        if load {
            self.load(stage);
        }
    }

    /// Runs `stage` with `batch`, clearing the cache first when a larger
    /// cached buffer would not fit beside the resident models.
    fn run_checked(&mut self, stage: usize, batch: u32) {
        let work = self.placements[stage].footprint.work(batch);
        if self.cache > work && self.weights() + self.cache > self.info.budget {
            self.clear_cache();
        }
        self.run(stage, batch);
    }
}

/// Plans `stages` (in order) on the device `info`; returns its plan and, when
/// models must be swapped, the wave size it wants.
pub(super) fn schedule(
    workflow: &Workflow,
    info: &DeviceInfo,
    stages: &[usize],
    placements: &mut [Placement],
) -> Result<(DevicePlan, Option<usize>), Vec<PlanError>> {
    let has_model =
        |s: usize| workflow.stages[s].spec.model.is_some() || placements[s].footprint.weights > 0;
    let min_work = |s: usize, p: &[Placement]| p[s].footprint.work(batch_bounds(workflow, s).0);
    let mut errors = Vec::new();
    for &s in stages {
        let fp = &placements[s].footprint;
        let (min, _, _) = batch_bounds(workflow, s);
        if fp.weights + fp.work(min) > info.budget {
            errors.push(misfit(workflow, info, s, placements));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let all_weights: u64 = stages
        .iter()
        .map(|&s| placements[s].footprint.weights)
        .sum();
    let max_min_work = stages
        .iter()
        .map(|&s| min_work(s, placements))
        .max()
        .unwrap_or(0);
    let all_resident = all_weights + max_min_work <= info.budget;

    // Batch sizes: the largest that fits beside what is resident during the
    // stage (every model when all stay; otherwise the stage's own model and
    // whatever Belady keeps, found below).
    let names: Vec<String> = workflow
        .stages
        .iter()
        .map(|s| {
            s.spec
                .model
                .as_ref()
                .map_or_else(|| s.id.to_string(), ToString::to_string)
        })
        .collect();
    let mut ledger = Ledger {
        info,
        placements,
        names,
        resident: Vec::new(),
        cache: 0,
        steps: Vec::new(),
        loads: 0,
        peak: 0,
    };
    let mut batches: Vec<u32> = placements.iter().map(|p| p.batch).collect();
    let mut first = Vec::new();
    let mut repeat = Vec::new();
    let (mut loads_first, mut loads_repeat) = (0, 0);
    if all_resident {
        for &s in stages {
            if has_model(s) {
                ledger.load(s);
            }
            let batch = fit_batch(workflow, s, placements, info.budget, all_weights);
            batches[s] = batch;
            ledger.run_checked(s, batch);
        }
        let resident = ledger.resident.clone();
        for s in resident {
            ledger.unload(s);
        }
        if info.id.is_accelerator() && ledger.cache > 0 {
            ledger.clear_cache();
        }
        first = std::mem::take(&mut ledger.steps);
        loads_first = ledger.loads;
    } else {
        let mut start: Option<Vec<usize>> = None;
        for wave in 0..6 {
            ledger.steps.clear();
            ledger.loads = 0;
            let begin = ledger.resident.clone();
            for (at, &s) in stages.iter().enumerate() {
                let load = has_model(s) && !ledger.resident.contains(&s);
                ledger.make_room(stages, at, load, min_work(s, placements));
                let beside = ledger.weights();
                let batch = fit_batch(workflow, s, placements, info.budget, beside);
                batches[s] = batch;
                ledger.run_checked(s, batch);
            }
            if wave == 0 {
                first = ledger.steps.clone();
                loads_first = ledger.loads;
            } else {
                repeat = ledger.steps.clone();
                loads_repeat = ledger.loads;
            }
            if start.as_ref() == Some(&begin) {
                break;
            }
            if wave > 0 {
                start = Some(begin);
            }
        }
    }
    let peak = ledger.peak;
    let wave_size = (!all_resident).then(|| {
        let largest = stages
            .iter()
            .map(|&s| batches[s] as usize)
            .max()
            .unwrap_or(1);
        (largest * WAVE_BATCHES).max(MIN_WAVE)
    });
    for &s in stages {
        placements[s].batch = batches[s];
    }
    Ok((
        DevicePlan {
            device: info.id,
            name: info.name.clone(),
            origin: info.origin,
            total: info.total,
            budget: info.budget,
            all_resident,
            first,
            repeat,
            peak,
            loads_first,
            loads_repeat,
        },
        wave_size,
    ))
}

/// The largest batch of stage `s` within its bounds whose working memory
/// fits beside `resident` bytes of weights.
fn fit_batch(
    workflow: &Workflow,
    s: usize,
    placements: &[Placement],
    budget: u64,
    resident: u64,
) -> u32 {
    let (min, max, auto) = batch_bounds(workflow, s);
    if !auto {
        return min;
    }
    let fp = &placements[s].footprint;
    let room = budget.saturating_sub(resident + fp.fixed);
    let fits = room.checked_div(fp.per_item).map_or(u64::from(max), |n| n);
    fits.clamp(u64::from(min), u64::from(max)) as u32
}

fn misfit(workflow: &Workflow, info: &DeviceInfo, s: usize, placements: &[Placement]) -> PlanError {
    let stage = &workflow.stages[s];
    let fp = &placements[s].footprint;
    let (min, _, _) = batch_bounds(workflow, s);
    let need = fp.weights + fp.work(min);
    let mut help = Vec::new();
    if info.id.is_accelerator() {
        help.push("use `device: auto` (or `cpu`) to run it on the CPU".to_string());
    }
    help.push(format!(
        "raise the budget of `{}` (`devices: {{ {}: {{ budget: {} }} }}`)",
        info.id,
        info.id,
        human(need + (1 << 30)).replace(' ', "").replace(".0", "")
    ));
    if min > 1 && fp.per_item > 0 {
        help.push("lower `batch.min`".into());
    }
    if fp.work_from == crate::memory::footprint::Source::Workflow
        || fp.weights_from == crate::memory::footprint::Source::Workflow
    {
        help.push("check the figures under `memory:`".into());
    }
    PlanError {
        stage: stage.id.to_string(),
        device: info.id,
        message: format!(
            "stage `{}` needs {} = {} on `{}`, but its budget is {} ({} total)",
            stage.id,
            need_text(fp, min),
            human(need),
            info.id,
            human(info.budget),
            human(info.total)
        ),
        help: help.join("; or "),
        key: "device",
    }
}
