//! Device workers: one thread per accelerator device. A worker follows its
//! device's plan step by step — `Run` nodes in order, wave after wave — owns
//! the loaded models, keeps the memory ledger, forms batches across items,
//! and climbs the out-of-memory ladder when a batch does not fit.

use std::collections::{BTreeSet, VecDeque};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::faults::Faults;
use super::ladder::Ladder;
use super::meter::Meter;
use crate::device::DeviceId;
use crate::graph::Workflow;
use crate::plan::{Plan, PlanNode};
use crate::registry::{Stage, StageError, StageInput, StageOutput};
use crate::report::Event;

/// How long a worker waits for more items to fill a batch.
const LINGER: Duration = Duration::from_millis(5);

/// A job for a device worker: one item through one stage.
pub struct Job {
    /// The stage index.
    pub stage: usize,
    /// The item's input.
    pub input: StageInput,
    /// Where the result goes.
    pub reply: oneshot::Sender<Result<StageOutput, StageError>>,
}

/// A message to a device worker.
pub enum Message {
    /// Run an item.
    Job(Job),
    /// Every item of the wave has passed this stage.
    StageDone(usize),
    /// The run is over: unload every model, then answer.
    Finish(mpsc::Sender<()>),
}

/// A running device worker.
pub struct Worker {
    sender: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

/// What a worker needs from the run.
pub struct Setup {
    /// The device.
    pub device: DeviceId,
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// Every runnable stage.
    pub stages: Vec<Arc<dyn Stage>>,
    /// The plan.
    pub plan: Arc<Plan>,
    /// Injected faults.
    pub faults: Arc<Faults>,
    /// Measure batches of 1 and 2 first (`flow calibrate`).
    pub calibrate: bool,
    /// Where events go.
    pub emit: Arc<dyn Fn(Event) + Send + Sync>,
}

pub(super) struct State {
    pub(super) setup: Setup,
    /// The steps of the wave in progress, and the cursor in them.
    steps: Vec<PlanNode>,
    repeat: Vec<PlanNode>,
    /// Models swap: `Run` nodes must go in plan order. When every model
    /// stays resident, order does not matter for memory, and the worker
    /// serves whatever is pending (items flow through as a pipeline).
    strict: bool,
    cursor: usize,
    done: BTreeSet<usize>,
    pending_loads: Vec<usize>,
    pub(super) loaded: Vec<bool>,
    load_errors: Vec<Option<StageError>>,
    pub(super) meter: Meter,
    pub(super) ladder: Vec<Ladder>,
    pub(super) attempts: Vec<u64>,
    pub(super) calibration: Vec<super::ladder::Calibrating>,
}

impl Worker {
    /// Starts the worker thread of `setup.device`.
    pub fn start(setup: Setup) -> Self {
        let (sender, receiver) = mpsc::channel();
        let n = setup.stages.len();
        let device = setup.device;
        let plan = setup.plan.clone();
        let (first, repeat, total, all_resident) =
            plan.device(device)
                .map_or((Vec::new(), Vec::new(), 0, true), |d| {
                    let nodes = |steps: &[crate::plan::Step]| -> Vec<PlanNode> {
                        steps.iter().map(|s| s.node.clone()).collect()
                    };
                    (nodes(&d.first), nodes(&d.repeat), d.total, d.all_resident)
                });
        // Models that stay resident stay until the run ends: the trailing
        // unloads of the plan run at stop, and later waves repeat the runs.
        let mut first = first;
        let repeat = if all_resident {
            while matches!(
                first.last(),
                Some(PlanNode::Unload { .. } | PlanNode::ClearCache { .. })
            ) {
                first.pop();
            }
            first.clone()
        } else {
            repeat
        };
        let ladder = plan
            .placements
            .iter()
            .map(|p| Ladder::new(p.batch, p.min_batch))
            .collect();
        let state = State {
            strict: !all_resident,
            steps: first,
            repeat,
            cursor: 0,
            done: BTreeSet::new(),
            pending_loads: Vec::new(),
            loaded: vec![false; n],
            load_errors: vec![None; n],
            meter: Meter::new(device, total),
            ladder,
            attempts: vec![0; n],
            calibration: vec![Default::default(); n],
            setup,
        };
        let thread = std::thread::Builder::new()
            .name(format!("flow-device-{device}"))
            .spawn(move || state.run(receiver))
            .ok();
        Self { sender, thread }
    }

    /// Sends a message; a stopped worker fails the job's item.
    pub fn send(&self, message: Message) {
        if let Err(mpsc::SendError(Message::Job(job))) = self.sender.send(message) {
            let _ = job
                .reply
                .send(Err(StageError::failed("the device worker has stopped")));
        }
    }

    /// Unloads every model (the run is over) and waits until it is done.
    pub fn finish(&self) {
        let (done, wait) = mpsc::channel();
        if self.sender.send(Message::Finish(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Stops the worker once its queue is empty.
    pub fn stop(mut self) {
        drop(self.sender);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl State {
    pub(super) fn emit(&self, event: Event) {
        (self.setup.emit)(event);
    }

    pub(super) fn stage_id(&self, stage: usize) -> String {
        self.setup.workflow.stages[stage].id.to_string()
    }

    /// The stage of the `Run` node at the cursor.
    fn current(&self) -> Option<usize> {
        match self.steps.get(self.cursor) {
            Some(PlanNode::Run { stage, .. }) => Some(*stage),
            _ => None,
        }
    }

    fn scheduled(&self, stage: usize) -> bool {
        self.steps
            .iter()
            .chain(&self.repeat)
            .any(|n| matches!(n, PlanNode::Run { stage: s, .. } if *s == stage))
    }

    fn run(mut self, receiver: Receiver<Message>) {
        self.advance();
        let mut pending: VecDeque<Job> = VecDeque::new();
        loop {
            let current = self.current();
            let next = pending
                .iter()
                .find(|j| !self.strict || !self.scheduled(j.stage))
                .or_else(|| pending.iter().find(|j| Some(j.stage) == current))
                .map(|j| j.stage);
            let Some(stage) = next else {
                match receiver.recv() {
                    Ok(message) => self.accept(message, &mut pending),
                    Err(_) => break,
                }
                continue;
            };
            let size = self.batch_size(stage) as usize;
            let deadline = Instant::now() + LINGER;
            while pending.iter().filter(|j| j.stage == stage).count() < size {
                let wait = deadline.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(wait) {
                    Ok(message) => self.accept(message, &mut pending),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            let mut batch = Vec::new();
            let mut rest = VecDeque::new();
            for job in pending.drain(..) {
                if job.stage == stage && batch.len() < size {
                    batch.push(job);
                } else {
                    rest.push_back(job);
                }
            }
            pending = rest;
            self.run_batch(stage, batch);
        }
    }

    fn accept(&mut self, message: Message, pending: &mut VecDeque<Job>) {
        match message {
            Message::Job(job) => pending.push_back(job),
            Message::StageDone(stage) => {
                if self.scheduled(stage) {
                    self.done.insert(stage);
                    self.advance();
                }
            }
            Message::Finish(done) => {
                for job in pending.drain(..) {
                    let _ = job.reply.send(Err(StageError::failed(
                        "the run ended before this item ran",
                    )));
                }
                self.shutdown();
                let _ = done.send(());
            }
        }
    }

    /// Moves the cursor past finished `Run` nodes, running the memory nodes
    /// between them; `Load` nodes wait for the stage's first job.
    fn advance(&mut self) {
        loop {
            if self.cursor >= self.steps.len() {
                if self.repeat.is_empty() || self.done.is_empty() {
                    return;
                }
                self.steps = self.repeat.clone();
                self.cursor = 0;
                self.done.clear();
                continue;
            }
            match self.steps[self.cursor].clone() {
                PlanNode::Run { stage, batch, .. } => {
                    self.ladder[stage].set_planned(batch);
                    if !self.done.contains(&stage) {
                        return;
                    }
                    self.pending_loads.clear();
                    let node = format!("run {}", self.stage_id(stage));
                    let snapshot = self.meter.snapshot(&node, &self.setup.stages);
                    self.emit(snapshot);
                }
                PlanNode::Load { stage, .. } => self.pending_loads.push(stage),
                PlanNode::Unload { stage, model, .. } => self.unload(stage, &model),
                PlanNode::ClearCache { .. } => self.clear_cache(),
            }
            self.cursor += 1;
        }
    }

    pub(super) fn clear_cache(&mut self) {
        self.meter.clear_cache();
        self.emit(Event::PlanNode {
            node: "clear_cache".into(),
            device: self.setup.device.to_string(),
        });
        let snapshot = self.meter.snapshot("clear_cache", &self.setup.stages);
        self.emit(snapshot);
    }

    fn unload(&mut self, stage: usize, model: &str) {
        if !self.loaded[stage] {
            return;
        }
        let before = self.meter.read(&self.setup.stages);
        let runnable = self.setup.stages[stage].clone();
        let device = self.setup.device;
        // A panic while freeing leaves the memory to the leak check below.
        let _ = super::guard::guarded(device, "unloading the model", || runnable.unload());
        self.loaded[stage] = false;
        self.load_errors[stage] = None;
        if self
            .setup
            .plan
            .model_name(&self.setup.workflow, stage)
            .is_none()
        {
            return;
        }
        self.emit(Event::PlanNode {
            node: format!("unload {model}"),
            device: self.setup.device.to_string(),
        });
        if let Some(leak) = self
            .meter
            .unloaded(stage, model, &self.setup.stages, before)
        {
            self.emit(leak);
        }
        let snapshot = self
            .meter
            .snapshot(&format!("unload {model}"), &self.setup.stages);
        self.emit(snapshot);
    }

    /// Loads `stage`'s model (a plan `Load` node, or on demand for a stage
    /// outside the schedule).
    fn load(&mut self, stage: usize) {
        if self.loaded[stage] {
            return;
        }
        self.loaded[stage] = true;
        let weights = self.setup.plan.placements[stage].footprint.weights;
        let Some(model) = self.setup.plan.model_name(&self.setup.workflow, stage) else {
            return;
        };
        let device = self.setup.device;
        self.emit(Event::PlanNode {
            node: format!("load {model}"),
            device: device.to_string(),
        });
        if self.meter.simulated() && weights > self.meter.room(&self.setup.stages) {
            self.clear_cache();
        }
        if self.meter.simulated() && weights > self.meter.room(&self.setup.stages) {
            self.load_errors[stage] = Some(StageError::out_of_memory(format!(
                "cannot load model `{model}` ({}) on {device}: only {} free",
                crate::memory::human(weights),
                crate::memory::human(self.meter.room(&self.setup.stages))
            )));
            return;
        }
        let before = self.meter.read(&self.setup.stages);
        let runnable = self.setup.stages[stage].clone();
        let loaded = super::guard::guarded(device, "loading the model", || runnable.load(device));
        match loaded.and_then(|r| r) {
            Ok(()) => self
                .meter
                .loaded(stage, weights, &self.setup.stages, before),
            Err(e) => {
                self.load_errors[stage] = Some(StageError {
                    kind: e.kind,
                    message: format!("cannot load model `{model}`: {}", e.message),
                });
            }
        }
        let snapshot = self
            .meter
            .snapshot(&format!("load {model}"), &self.setup.stages);
        self.emit(snapshot);
    }

    fn run_batch(&mut self, stage: usize, batch: Vec<Job>) {
        let loads: Vec<usize> = if self.strict && self.scheduled(stage) {
            std::mem::take(&mut self.pending_loads)
        } else {
            Vec::new()
        };
        for s in loads {
            self.load(s);
        }
        if !self.loaded[stage] {
            self.load(stage);
        }
        if let Some(error) = &self.load_errors[stage] {
            for job in batch {
                let _ = job.reply.send(Err(error.clone()));
            }
            return;
        }
        self.run_with_ladder(stage, batch);
    }

    /// Unloads everything still loaded (the run is over).
    fn shutdown(&mut self) {
        for stage in 0..self.loaded.len() {
            if self.loaded[stage] {
                let model = self
                    .setup
                    .plan
                    .model_name(&self.setup.workflow, stage)
                    .unwrap_or_default();
                self.unload(stage, &model);
            }
        }
        self.clear_cache();
    }
}
