//! The executor: runs a [`Plan`] over items on tokio.
//!
//! Items flow through the DAG independently. CPU stages run on the blocking
//! pool with bounded concurrency per stage; stages on an accelerator go to
//! that device's worker thread, which batches across items. Every finished
//! result is checkpointed before anything downstream can depend on it being
//! durable (see [`crate::state`]).

mod batcher;
mod device;
pub mod faults;
mod guard;
mod item;
mod ladder;
mod meter;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::device::DeviceId;
use crate::graph::Workflow;
use crate::items;
use crate::plan::Plan;
use crate::registry::{BuildContext, Stage};
use crate::report::{Event, EventLog, Reporter};
use crate::state::{now_ms, Artifacts, RunArgs, RunRecord, RunStatus, StateError, Store};

/// What to run.
pub struct RunRequest {
    /// The validated workflow.
    pub workflow: Arc<Workflow>,
    /// Its plan.
    pub plan: Plan,
    /// The state directory (`.flow/` beside the workflow by default).
    pub state_dir: PathBuf,
    /// How the run was started (stored for `flow resume`).
    pub args: RunArgs,
    /// Continue this unfinished run instead of starting a new one.
    pub resume: Option<u64>,
    /// Where progress goes.
    pub reporter: Arc<dyn Reporter>,
    /// Measure each device stage's memory with batches of 1 and 2 and store
    /// the figures for later plans (`flow calibrate`).
    pub calibrate: bool,
    /// Run only the first this many items.
    pub max_items: Option<usize>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The run number.
    pub run: u64,
    /// Items in the run.
    pub items: usize,
    /// Items that finished every stage.
    pub succeeded: usize,
    /// Items with a failure.
    pub failed: usize,
    /// Items that finished with a stage skipped or replaced by its fallback.
    pub degraded: usize,
    /// Item-stage results computed.
    pub computed: usize,
    /// Item-stage results reused from the cache.
    pub cached: usize,
    /// Wall time in milliseconds.
    pub millis: u64,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The state directory is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The inputs could not be listed.
    #[error(transparent)]
    Items(#[from] items::ItemsError),
    /// A stage could not be built.
    #[error("stage `{stage}` cannot start: {reason}")]
    Build {
        /// The stage id.
        stage: String,
        /// Why.
        reason: String,
    },
    /// `flow resume` found nothing to resume.
    #[error("{0}")]
    NothingToResume(String),
    /// `FLOW_FAULTS` cannot be read.
    #[error("{0}")]
    Faults(String),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Per-stage counters for the `stage_finished` event.
#[derive(Default)]
struct StageCounters {
    started: AtomicBool,
    remaining: AtomicUsize,
    done: AtomicUsize,
    cached: AtomicUsize,
    failed: AtomicUsize,
    blocked: AtomicUsize,
    first: Mutex<Option<Instant>>,
}

/// Everything the item tasks share.
struct RunContext {
    workflow: Arc<Workflow>,
    plan: Arc<Plan>,
    stages: Vec<Arc<dyn Stage>>,
    store: Store,
    artifacts: Artifacts,
    reporter: Arc<dyn Reporter>,
    log: EventLog,
    run: u64,
    /// Results from runs before this one are ignored (`--fresh`).
    min_result_run: u64,
    limits: Vec<Arc<Semaphore>>,
    /// Batch queues of model stages on the CPU with a plan batch above 1,
    /// started on first use.
    cpu_batchers: Vec<std::sync::OnceLock<batcher::CpuBatcher>>,
    workers: BTreeMap<DeviceId, device::Worker>,
    counters: Vec<StageCounters>,
    computed: AtomicUsize,
    cached: AtomicUsize,
    degraded: AtomicUsize,
    /// Whether the wave in progress is the last one.
    last_wave: AtomicBool,
    /// Models of CPU stages, loaded on first use: `None` until then.
    cpu_models: Vec<Mutex<Option<Result<(), crate::registry::StageError>>>>,
}

impl RunContext {
    fn emit(&self, event: &Event) {
        self.log.write(event);
        self.reporter.event(event);
        match event {
            Event::Oom { .. }
            | Event::Degraded { .. }
            | Event::MemoryWarning { .. }
            | Event::MemoryLeak { .. }
            | Event::BatchSize { .. } => self.store.add_event(self.run, event),
            Event::Calibrated {
                key,
                weights,
                per_item,
                fixed,
                ..
            } => {
                let record = crate::memory::calibration::Calibration {
                    weights: *weights,
                    per_item: *per_item,
                    fixed: *fixed,
                    peak1: fixed + per_item,
                    peak2: fixed + 2 * per_item,
                    measured_at: now_ms(),
                };
                self.store.put_calibration(key, &record);
            }
            _ => {}
        }
    }
}

/// Runs a plan to the end (or resumes one).
///
/// # Errors
/// [`ExecError`] when the run cannot start. Item failures are not errors:
/// they are counted in the summary and recorded for `flow status`.
pub fn execute(request: RunRequest) -> Result<RunSummary, ExecError> {
    let started = Instant::now();
    let faults = Arc::new(faults::Faults::from_env().map_err(ExecError::Faults)?);
    let store = Store::open(&request.state_dir)?;
    let artifacts = Artifacts::open(&request.state_dir).map_err(StateError::Io)?;
    let workflow = request.workflow;
    let stage_ids: Vec<String> = workflow.stages.iter().map(|s| s.id.to_string()).collect();

    // Items stream from the inputs into the store, and from the store into
    // the run a page at a time: no list of every item is held in memory.
    let record = match request.resume {
        Some(id) => store
            .run(id)
            .ok_or_else(|| ExecError::NothingToResume(format!("there is no run {id}")))?,
        None => {
            let id = store.next_run_id();
            let max = request.max_items.unwrap_or(usize::MAX);
            let mut writer = store.item_writer(id).map_err(StateError::Io)?;
            if max > 0 {
                items::visit(&workflow.spec.inputs, &workflow.dir, &mut |item| {
                    writer.push(item);
                    writer.count() < max && writer.is_ok()
                })?;
            }
            let record = RunRecord {
                id,
                workflow: workflow.path.display().to_string(),
                args: request.args.clone(),
                stages: stage_ids.clone(),
                items: writer.finish().map_err(StateError::Io)?,
                status: RunStatus::Running,
                started_at: now_ms(),
                finished_at: None,
                resumed_from: None,
            };
            store.put_run(&record);
            record
        }
    };
    let items = record.items;
    let run = record.id;
    let min_result_run = if record.args.fresh || request.calibrate {
        run
    } else {
        0
    };

    let mut stages = Vec::new();
    for stage in &workflow.stages {
        let ctx = BuildContext {
            stage_id: stage.id.as_str(),
            spec: &stage.spec,
            workflow_dir: &workflow.dir,
            state_dir: &request.state_dir,
            model_dir: workflow.model_dir(&stage.spec),
        };
        let built = stage
            .kind
            .build(&ctx, &stage.spec.config)
            .map_err(|reason| ExecError::Build {
                stage: stage.id.to_string(),
                reason,
            })?;
        stages.push(built);
    }

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let limits = workflow
        .stages
        .iter()
        .map(|s| {
            Arc::new(Semaphore::new(
                s.spec.concurrency.map_or(cores, |c| c.max(1) as usize),
            ))
        })
        .collect();
    let counters = (0..stages.len())
        .map(|_| StageCounters {
            remaining: AtomicUsize::new(items),
            ..Default::default()
        })
        .collect();
    let log = EventLog::create(
        &request
            .state_dir
            .join("runs")
            .join(run.to_string())
            .join("events.jsonl"),
    )
    .map_err(StateError::Io)?;
    let plan = Arc::new(request.plan);
    let reporter = request.reporter;

    let context = Arc::new_cyclic(|weak: &std::sync::Weak<RunContext>| {
        let mut workers = BTreeMap::new();
        for placement in &plan.placements {
            if placement.device.is_accelerator() && !workers.contains_key(&placement.device) {
                let weak = weak.clone();
                let emit: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |event| {
                    if let Some(ctx) = weak.upgrade() {
                        ctx.emit(&event);
                    }
                });
                workers.insert(
                    placement.device,
                    device::Worker::start(device::Setup {
                        device: placement.device,
                        workflow: workflow.clone(),
                        stages: stages.clone(),
                        plan: plan.clone(),
                        faults: faults.clone(),
                        calibrate: request.calibrate,
                        emit,
                    }),
                );
            }
        }
        let cpu_models = (0..stages.len()).map(|_| Mutex::new(None)).collect();
        let cpu_batchers = (0..stages.len())
            .map(|_| std::sync::OnceLock::new())
            .collect();
        RunContext {
            cpu_models,
            cpu_batchers,
            degraded: AtomicUsize::new(0),
            last_wave: AtomicBool::new(false),
            workflow: workflow.clone(),
            plan: plan.clone(),
            stages,
            store,
            artifacts,
            reporter: reporter.clone(),
            log,
            run,
            min_result_run,
            limits,
            workers,
            counters,
            computed: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
        }
    });

    context.emit(&Event::RunStarted {
        run,
        workflow: workflow.spec.name.clone(),
        items,
        stages: stage_ids.clone(),
    });
    reporter.start(&stage_ids, items);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_time()
        .build()
        .map_err(ExecError::Runtime)?;
    let failed_items = runtime.block_on(run_items(context.clone(), items, cores));
    drop(runtime);

    let computed = context.computed.load(Ordering::Relaxed);
    let cached = context.cached.load(Ordering::Relaxed);
    let degraded = context.degraded.load(Ordering::Relaxed);
    item::unload_cpu_models(&context);
    for (stage, id) in context.stages.iter().zip(&stage_ids) {
        if let Err(message) = stage.finish() {
            eprintln!("warning: stage `{id}` could not finish: {message}");
        }
    }
    for worker in context.workers.values() {
        worker.finish();
    }
    let Some(context) = Arc::into_inner(context) else {
        return Err(ExecError::Runtime(std::io::Error::other(
            "item tasks outlived the run",
        )));
    };
    for (_, worker) in context.workers {
        worker.stop();
    }
    let summary = RunSummary {
        run,
        items,
        succeeded: items - failed_items,
        failed: failed_items,
        degraded,
        computed,
        cached,
        millis: started.elapsed().as_millis() as u64,
    };
    let finished = Event::RunFinished {
        run,
        succeeded: summary.succeeded,
        failed: summary.failed,
        computed: summary.computed,
        cached: summary.cached,
        degraded: summary.degraded,
        millis: summary.millis,
    };
    context.log.write(&finished);
    reporter.event(&finished);
    reporter.finish();
    let store = context.store;
    store.put_run(&RunRecord {
        status: RunStatus::Finished,
        finished_at: Some(now_ms()),
        ..record
    });
    store.flush();
    Ok(summary)
}

/// Runs every item, wave by wave (one wave unless the plan swaps models),
/// at most a bounded number at once; returns how many failed.
async fn run_items(context: Arc<RunContext>, total: usize, cores: usize) -> usize {
    // Items are read from the store this many at a time.
    const PAGE: usize = 1_024;
    let wave = context.plan.wave_size.unwrap_or(usize::MAX).max(1);
    // A wave's items must all be in flight: a device that swaps models runs
    // its stages in plan order, each over the whole wave.
    let limit = match context.plan.wave_size {
        Some(w) => w.max(cores * 16),
        None => (cores * 16).max(32),
    };
    let in_flight = Arc::new(Semaphore::new(limit));
    let mut failed = 0;
    let mut start = 0;
    loop {
        let len = wave.min(total - start);
        let last = start + len >= total;
        context.last_wave.store(last, Ordering::Relaxed);
        for counters in &context.counters {
            counters.remaining.store(len, Ordering::Relaxed);
        }
        let mut tasks = tokio::task::JoinSet::new();
        let pages = (start..start + len).step_by(PAGE).map(|from| {
            let n = PAGE.min(start + len - from);
            let page = context.store.items_range(context.run, from, n);
            (from, page)
        });
        let wave_items = pages.flat_map(|(from, page)| (from..).zip(page));
        for (index, item) in wave_items {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let context = context.clone();
            tasks.spawn(async move {
                let ok = item::process(&context, index, Arc::new(item)).await;
                drop(permit);
                ok
            });
            // Finished tasks are reaped as the wave goes: a JoinSet keeps
            // every finished task until it is joined, memory that grew
            // with the number of items.
            while let Some(result) = tasks.try_join_next() {
                failed += usize::from(!matches!(result, Ok(true)));
            }
        }
        while let Some(result) = tasks.join_next().await {
            failed += usize::from(!matches!(result, Ok(true)));
        }
        start += len;
        if last {
            break;
        }
    }
    failed
}
