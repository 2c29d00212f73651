//! One item's way through the stages.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::device::{Job, Message};
use super::RunContext;
use crate::cache_key;
use crate::items::Item;
use crate::registry::{ResolvedOutput, StageError, StageInput, StageOutput, Upstream};
use crate::report::Event;
use crate::spec::Fallback;
use crate::state::{now_ms, ItemStage, ResultRecord};

/// A stage's finished result for this item, as downstream stages see it.
struct Done {
    key: String,
    outputs: Vec<ResolvedOutput>,
}

/// Where an item stands in one stage.
enum Slot {
    Done(Done),
    /// Failed here, or blocked: the id of the stage that failed.
    Failed(String),
    /// Given up with `fallback: skip`: downstream stages run without it.
    Skipped,
    /// A fallback target that was not needed.
    Standby,
}

/// Runs `item` through every stage; true when none failed (degraded items
/// count as finished).
pub(super) async fn process(ctx: &Arc<RunContext>, index: usize, item: Arc<Item>) -> bool {
    let workflow = ctx.workflow.clone();
    let mut slots: Vec<Slot> = Vec::with_capacity(workflow.stages.len());
    let mut degraded = false;
    for (si, stage) in workflow.stages.iter().enumerate() {
        if ctx.plan.placements[si].standby {
            ctx.store
                .set_item_stage(ctx.run, index, si, &ItemStage::Standby);
            slots.push(Slot::Standby);
            finish_stage_for_item(ctx, si);
            continue;
        }
        let counters = &ctx.counters[si];
        if !counters.started.swap(true, Ordering::Relaxed) {
            *counters.first.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            ctx.emit(&Event::StageStarted {
                stage: stage.id.to_string(),
            });
        }
        let blocked_by = stage.needs.iter().find_map(|&j| match &slots[j] {
            Slot::Failed(by) => Some(by.clone()),
            _ => None,
        });
        let slot = if let Some(by) = blocked_by {
            ctx.store
                .set_item_stage(ctx.run, index, si, &ItemStage::Blocked { by: by.clone() });
            counters.blocked.fetch_add(1, Ordering::Relaxed);
            ctx.reporter.item_stage(si, false, false);
            Slot::Failed(by)
        } else {
            let upstream: Vec<(usize, Option<&Done>)> = stage
                .needs
                .iter()
                .map(|&j| match &slots[j] {
                    Slot::Done(done) => (j, Some(done)),
                    _ => (j, None),
                })
                .collect();
            let (slot, fell_back) = run_stage(ctx, index, si, &item, &upstream).await;
            degraded |= fell_back;
            slot
        };
        slots.push(slot);
        finish_stage_for_item(ctx, si);
    }
    if degraded {
        ctx.degraded.fetch_add(1, Ordering::Relaxed);
    }
    !slots.iter().any(|s| matches!(s, Slot::Failed(_)))
}

/// Runs stage `si` for the item (or reuses its result); on failure applies
/// the stage's `fallback`. The flag says whether the item is now degraded.
async fn run_stage(
    ctx: &Arc<RunContext>,
    index: usize,
    si: usize,
    item: &Arc<Item>,
    upstream: &[(usize, Option<&Done>)],
) -> (Slot, bool) {
    let error = match attempt_stage(ctx, index, si, si, item, upstream).await {
        Ok(done) => return (Slot::Done(done), false),
        Err(error) => error,
    };
    let stage = &ctx.workflow.stages[si];
    let fallback = stage.spec.fallback.clone();
    let via = match &fallback {
        Some(Fallback::Skip) => "skip".to_string(),
        Some(Fallback::Stage(other)) => other.to_string(),
        None => String::new(),
    };
    let outcome = match &fallback {
        None => None,
        Some(Fallback::Skip) => Some(Slot::Skipped),
        Some(Fallback::Stage(other)) => {
            let Some(target) = ctx.workflow.stage_index(other.as_str()) else {
                return (fail(ctx, index, si, item, error), false);
            };
            match attempt_stage(ctx, index, target, si, item, upstream).await {
                Ok(done) => Some(Slot::Done(done)),
                Err(e) => {
                    let error = StageError {
                        kind: error.kind,
                        message: format!(
                            "{}; fallback `{other}` failed too: {}",
                            error.message, e.message
                        ),
                    };
                    return (fail(ctx, index, si, item, error), false);
                }
            }
        }
    };
    let Some(slot) = outcome else {
        return (fail(ctx, index, si, item, error), false);
    };
    let event = Event::Degraded {
        item: item.id.clone(),
        stage: stage.id.to_string(),
        reason: error.message.clone(),
        via: via.clone(),
    };
    ctx.emit(&event);
    ctx.store.set_item_stage(
        ctx.run,
        index,
        si,
        &ItemStage::Degraded {
            reason: error.message,
            via,
        },
    );
    ctx.counters[si].done.fetch_add(1, Ordering::Relaxed);
    ctx.reporter.item_stage(si, true, false);
    (slot, true)
}

/// Records the item as failed in stage `si`.
fn fail(
    ctx: &Arc<RunContext>,
    index: usize,
    si: usize,
    item: &Arc<Item>,
    error: StageError,
) -> Slot {
    let stage = &ctx.workflow.stages[si];
    let event = Event::ItemFailed {
        item: item.id.clone(),
        stage: stage.id.to_string(),
        kind: error.kind,
        reason: error.message.clone(),
    };
    ctx.store.set_item_stage(
        ctx.run,
        index,
        si,
        &ItemStage::Failed {
            kind: error.kind,
            reason: error.message,
        },
    );
    ctx.store.add_event(ctx.run, &event);
    ctx.emit(&event);
    ctx.counters[si].failed.fetch_add(1, Ordering::Relaxed);
    ctx.reporter.item_stage(si, false, false);
    Slot::Failed(stage.id.to_string())
}

/// Runs stage `run` (the stage itself, or its fallback target) for the
/// item, reusing a stored result when its key matches; the outcome is
/// recorded in stage `slot`'s place.
async fn attempt_stage(
    ctx: &Arc<RunContext>,
    index: usize,
    si: usize,
    slot: usize,
    item: &Arc<Item>,
    upstream: &[(usize, Option<&Done>)],
) -> Result<Done, StageError> {
    let workflow = &ctx.workflow;
    let stage = &workflow.stages[si];
    let upstream: Vec<(usize, Option<&Done>)> = upstream
        .iter()
        .filter(|(j, _)| stage.needs.contains(j))
        .copied()
        .collect();
    let skipped: Vec<String> = upstream
        .iter()
        .map(|(j, d)| match d {
            Some(done) => done.key.clone(),
            None => format!("skipped:{}", workflow.stages[*j].id),
        })
        .collect();
    let upstream_keys: Vec<&str> = skipped.iter().map(String::as_str).collect();
    let upstream: Vec<(usize, &Done)> = upstream
        .iter()
        .filter_map(|(j, d)| d.map(|d| (*j, d)))
        .collect();
    let components = cache_key::components(workflow, stage, item, &upstream_keys);
    let key = cache_key::key(&components);
    // A fallback target's result stands in for the stage that gave up: it
    // is stored under its own key but counted in that stage's place.
    let primary = slot == si;

    if stage.spec.checkpoint && !stage.kind.resources().always_run {
        if let Some(record) = ctx
            .store
            .result(stage.id.as_str(), &item.id, &key)
            .filter(|r| r.run >= ctx.min_result_run)
        {
            let dir = ctx.artifacts.dir(&key);
            let outputs = resolve(&record.outputs, &dir);
            if primary {
                mark_done(ctx, index, si, &key, true);
            }
            return Ok(Done { key, outputs });
        }
    }

    let started = Instant::now();
    let result = match (&item.error, stage.needs.is_empty()) {
        (Some(reason), true) => Err(StageError::failed(reason.clone())),
        _ => compute(ctx, si, item, &upstream).await,
    };
    let (dir, output) = result.and_then(|(scratch, output)| {
        ctx.artifacts
            .commit(&scratch, &key)
            .map(|dir| (dir, output))
            .map_err(|e| StageError::failed(format!("cannot store the result: {e}")))
    })?;
    if stage.spec.checkpoint {
        ctx.store.put_result(&ResultRecord {
            key: key.clone(),
            stage: stage.id.to_string(),
            item: item.id.clone(),
            run: ctx.run,
            components,
            outputs: output.outputs.clone(),
            millis: started.elapsed().as_millis() as u64,
            finished_at: now_ms(),
        });
    }
    if primary {
        mark_done(ctx, index, si, &key, false);
    } else {
        ctx.computed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Done {
        key,
        outputs: resolve(&output.outputs, &dir),
    })
}

/// Runs the stage where the plan placed it; returns the scratch folder with
/// the files it wrote and its output.
async fn compute(
    ctx: &Arc<RunContext>,
    si: usize,
    item: &Arc<Item>,
    upstream: &[(usize, &Done)],
) -> Result<(std::path::PathBuf, StageOutput), StageError> {
    let stage = &ctx.workflow.stages[si];
    let scratch = ctx.artifacts.scratch();
    let placement = &ctx.plan.placements[si];
    let input = StageInput {
        item: item.clone(),
        upstream: upstream
            .iter()
            .map(|&(j, done)| Upstream {
                stage: ctx.workflow.stages[j].id.to_string(),
                outputs: done.outputs.clone(),
            })
            .collect(),
        out_dir: scratch.clone(),
        device: placement.device,
        timeout: stage.spec.timeout.map(|t| t.0),
    };
    let result = if let Some(worker) = ctx.workers.get(&placement.device) {
        let (reply, answer) = oneshot::channel();
        worker.send(Message::Job(Job {
            stage: si,
            input,
            reply,
        }));
        answer
            .await
            .unwrap_or_else(|_| Err(StageError::failed("the device worker dropped the item")))
    } else if let Err(e) = load_cpu_model(ctx, si) {
        Err(e)
    } else if stage.kind.resources().inline {
        ctx.stages[si].run(&input)
    } else if stage.kind.resources().accelerator && placement.batch > 1 {
        let batcher = ctx.cpu_batchers[si].get_or_init(|| {
            super::batcher::CpuBatcher::start(ctx.stages[si].clone(), placement.batch as usize)
        });
        // No concurrency permit: it would cap the batch; the batcher runs
        // one batch at a time.
        batcher.run(input).await
    } else {
        let permit = ctx.limits[si].clone().acquire_owned().await;
        let runnable = ctx.stages[si].clone();
        let outcome = tokio::task::spawn_blocking(move || runnable.run(&input)).await;
        drop(permit);
        outcome.unwrap_or_else(|e| Err(StageError::failed(format!("the stage panicked: {e}"))))
    };
    match result {
        Ok(output) => Ok((scratch, output)),
        Err(error) => {
            ctx.artifacts.discard(&scratch);
            Err(error)
        }
    }
}

/// Loads a CPU stage's model before its first item (once per run).
fn load_cpu_model(ctx: &RunContext, si: usize) -> Result<(), StageError> {
    let Some(model) = ctx.plan.model_name(&ctx.workflow, si) else {
        return Ok(());
    };
    let mut state = ctx.cpu_models[si].lock().unwrap_or_else(|e| e.into_inner());
    if state.is_none() {
        ctx.emit(&Event::PlanNode {
            node: format!("load {model}"),
            device: "cpu".into(),
        });
        *state = Some(
            ctx.stages[si]
                .load(crate::device::DeviceId::Cpu)
                .map_err(|e| StageError {
                    kind: e.kind,
                    message: format!("cannot load model `{model}`: {}", e.message),
                }),
        );
    }
    state.clone().unwrap_or(Ok(()))
}

/// Unloads the models of CPU stages (the run is over).
pub(super) fn unload_cpu_models(ctx: &RunContext) {
    for (si, slot) in ctx.cpu_models.iter().enumerate() {
        let mut state = slot.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, Some(Ok(()))) {
            ctx.stages[si].unload();
            let model = ctx.plan.model_name(&ctx.workflow, si).unwrap_or_default();
            ctx.emit(&Event::PlanNode {
                node: format!("unload {model}"),
                device: "cpu".into(),
            });
        }
        *state = None;
    }
}

fn resolve(outputs: &[crate::registry::Output], dir: &std::path::Path) -> Vec<ResolvedOutput> {
    outputs
        .iter()
        .map(|o| ResolvedOutput {
            port: o.port.clone(),
            files: o.files.iter().map(|f| dir.join(f)).collect(),
            value: o.value.clone(),
        })
        .collect()
}

/// Records `item` as done in stage `si` (reused from the cache or computed),
/// counts it and reports it.
fn mark_done(ctx: &RunContext, index: usize, si: usize, key: &str, cached: bool) {
    let state = ItemStage::Done {
        key: key.to_string(),
        cached,
    };
    ctx.store.set_item_stage(ctx.run, index, si, &state);
    let counters = &ctx.counters[si];
    counters.done.fetch_add(1, Ordering::Relaxed);
    if cached {
        counters.cached.fetch_add(1, Ordering::Relaxed);
        ctx.cached.fetch_add(1, Ordering::Relaxed);
    } else {
        ctx.computed.fetch_add(1, Ordering::Relaxed);
    }
    ctx.reporter.item_stage(si, true, cached);
}

/// Counts the item out of stage `si`; the last one closes the stage.
fn finish_stage_for_item(ctx: &Arc<RunContext>, si: usize) {
    let counters = &ctx.counters[si];
    if counters.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    if let Some(worker) = ctx.workers.get(&ctx.plan.placements[si].device) {
        worker.send(Message::StageDone(si));
    }
    if !ctx.last_wave.load(Ordering::Relaxed) {
        return;
    }
    let millis = counters
        .first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map_or(0, |t| t.elapsed().as_millis() as u64);
    ctx.emit(&Event::StageFinished {
        stage: ctx.workflow.stages[si].id.to_string(),
        done: counters.done.load(Ordering::Relaxed),
        cached: counters.cached.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        blocked: counters.blocked.load(Ordering::Relaxed),
        millis,
    });
}
