//! Device workers: one thread per accelerator device. It owns the loaded
//! models, runs the plan's `Load` / `Unload` / `ClearCache` nodes, and forms
//! batches across items.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::device::DeviceId;
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
    /// Every item has passed this stage: run the memory nodes after it.
    StageDone(usize),
}

/// A running device worker.
pub struct Worker {
    sender: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    device: DeviceId,
    stages: Vec<Arc<dyn Stage>>,
    plan: Arc<Plan>,
    loaded: Vec<bool>,
    load_errors: Vec<Option<StageError>>,
    emit: Arc<dyn Fn(Event) + Send + Sync>,
}

impl Worker {
    /// Starts the worker thread of `device`.
    pub fn start(
        device: DeviceId,
        stages: Vec<Arc<dyn Stage>>,
        plan: Arc<Plan>,
        emit: Arc<dyn Fn(Event) + Send + Sync>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel();
        let n = stages.len();
        let state = State {
            device,
            stages,
            plan,
            loaded: vec![false; n],
            load_errors: vec![None; n],
            emit,
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

    /// Stops the worker once its queue is empty.
    pub fn stop(mut self) {
        drop(self.sender);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl State {
    fn run(mut self, receiver: Receiver<Message>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        loop {
            if pending.is_empty() {
                match receiver.recv() {
                    Ok(message) => self.accept(message, &mut pending),
                    Err(_) => break,
                }
                continue;
            }
            let stage = pending[0].stage;
            let size = self
                .plan
                .placements
                .get(stage)
                .map_or(1, |p| p.batch.max(1)) as usize;
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
            Message::StageDone(stage) => self.after_stage(stage),
        }
    }

    fn run_batch(&mut self, stage: usize, batch: Vec<Job>) {
        if !self.loaded[stage] {
            self.load(stage);
        }
        if let Some(error) = &self.load_errors[stage] {
            for job in batch {
                let _ = job.reply.send(Err(error.clone()));
            }
            return;
        }
        let inputs: Vec<StageInput> = batch.iter().map(|j| j.input.clone()).collect();
        let mut results = self.stages[stage].run_batch(&inputs).into_iter();
        for job in batch {
            let result = results.next().unwrap_or_else(|| {
                Err(StageError::failed(
                    "the stage returned fewer results than its batch",
                ))
            });
            let _ = job.reply.send(result);
        }
    }

    fn load(&mut self, stage: usize) {
        self.loaded[stage] = true;
        for node in self.plan.before(stage) {
            if let PlanNode::Load {
                model,
                stage: owner,
                ..
            } = node
            {
                (self.emit)(Event::PlanNode {
                    node: format!("load {model}"),
                    device: self.device.to_string(),
                });
                if let Err(e) = self.stages[*owner].load(self.device) {
                    self.load_errors[stage] = Some(StageError::failed(format!(
                        "cannot load model `{model}`: {e}"
                    )));
                }
            }
        }
    }

    fn after_stage(&mut self, stage: usize) {
        for node in self.plan.after(stage) {
            match node {
                PlanNode::Unload {
                    model,
                    stage: owner,
                    ..
                } => {
                    self.stages[*owner].unload();
                    self.loaded[*owner] = false;
                    (self.emit)(Event::PlanNode {
                        node: format!("unload {model}"),
                        device: self.device.to_string(),
                    });
                }
                PlanNode::ClearCache { device } => {
                    (self.emit)(Event::PlanNode {
                        node: "clear_cache".into(),
                        device: device.to_string(),
                    });
                }
                _ => {}
            }
        }
    }
}
