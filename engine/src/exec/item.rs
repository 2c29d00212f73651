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
}

/// Runs `item` through every stage; true when all of them succeeded.
pub(super) async fn process(ctx: &Arc<RunContext>, index: usize, item: Arc<Item>) -> bool {
    let workflow = ctx.workflow.clone();
    let mut slots: Vec<Slot> = Vec::with_capacity(workflow.stages.len());
    for (si, stage) in workflow.stages.iter().enumerate() {
        let counters = &ctx.counters[si];
        if !counters.started.swap(true, Ordering::Relaxed) {
            *counters.first.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            ctx.emit(&Event::StageStarted {
                stage: stage.id.to_string(),
            });
        }
        let blocked_by = stage.needs.iter().find_map(|&j| match &slots[j] {
            Slot::Failed(by) => Some(by.clone()),
            Slot::Done(_) => None,
        });
        let slot = if let Some(by) = blocked_by {
            ctx.store
                .set_item_stage(ctx.run, index, si, &ItemStage::Blocked { by: by.clone() });
            counters.blocked.fetch_add(1, Ordering::Relaxed);
            ctx.reporter.item_stage(si, false, false);
            Slot::Failed(by)
        } else {
            let upstream: Vec<&Done> = stage
                .needs
                .iter()
                .filter_map(|&j| match &slots[j] {
                    Slot::Done(done) => Some(done),
                    Slot::Failed(_) => None,
                })
                .collect();
            run_stage(ctx, index, si, &item, &upstream).await
        };
        slots.push(slot);
        finish_stage_for_item(ctx, si);
    }
    slots.iter().all(|s| matches!(s, Slot::Done(_)))
}

async fn run_stage(
    ctx: &Arc<RunContext>,
    index: usize,
    si: usize,
    item: &Arc<Item>,
    upstream: &[&Done],
) -> Slot {
    let workflow = &ctx.workflow;
    let stage = &workflow.stages[si];
    let upstream_keys: Vec<&str> = upstream.iter().map(|d| d.key.as_str()).collect();
    let components = cache_key::components(workflow, stage, item, &upstream_keys);
    let key = cache_key::key(&components);
    let counters = &ctx.counters[si];

    if stage.spec.checkpoint && !stage.kind.resources().always_run {
        if let Some(record) = ctx
            .store
            .result(&key)
            .filter(|r| r.run >= ctx.min_result_run)
        {
            let dir = ctx.artifacts.dir(&key);
            let outputs = resolve(&record.outputs, &dir);
            mark_done(ctx, index, si, &key, true);
            return Slot::Done(Done { key, outputs });
        }
    }

    let started = Instant::now();
    let result = match (&item.error, stage.needs.is_empty()) {
        (Some(reason), true) => Err(StageError::failed(reason.clone())),
        _ => compute(ctx, si, item, upstream).await,
    };
    let result = result.and_then(|(scratch, output)| {
        ctx.artifacts
            .commit(&scratch, &key)
            .map(|dir| (dir, output))
            .map_err(|e| StageError::failed(format!("cannot store the result: {e}")))
    });
    match result {
        Ok((dir, output)) => {
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
            mark_done(ctx, index, si, &key, false);
            Slot::Done(Done {
                key,
                outputs: resolve(&output.outputs, &dir),
            })
        }
        Err(error) => {
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
            counters.failed.fetch_add(1, Ordering::Relaxed);
            ctx.reporter.item_stage(si, false, false);
            Slot::Failed(stage.id.to_string())
        }
    }
}

/// Runs the stage where the plan placed it; returns the scratch folder with
/// the files it wrote and its output.
async fn compute(
    ctx: &Arc<RunContext>,
    si: usize,
    item: &Arc<Item>,
    upstream: &[&Done],
) -> Result<(std::path::PathBuf, StageOutput), StageError> {
    let stage = &ctx.workflow.stages[si];
    let scratch = ctx.artifacts.scratch();
    let placement = ctx.plan.placements[si];
    let input = StageInput {
        item: item.clone(),
        upstream: stage
            .needs
            .iter()
            .zip(upstream)
            .map(|(&j, done)| Upstream {
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
    } else if stage.kind.resources().inline {
        ctx.stages[si].run(&input)
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
    if let Some(worker) = ctx.workers.get(&ctx.plan.placements[si].device) {
        worker.send(Message::StageDone(si));
    }
}
