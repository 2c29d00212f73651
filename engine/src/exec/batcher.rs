//! Batches for model stages on the CPU: items of a stage whose plan batch
//! is above 1 are gathered (waiting up to 5 ms for more, like a device
//! worker) and handed to the stage's `run_batch` together, one batch at a
//! time per stage. Other CPU stages run item by item.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::registry::{Stage, StageError, StageInput, StageOutput};

/// How long a batch waits for more items.
const LINGER: Duration = Duration::from_millis(5);

type Reply = oneshot::Sender<Result<StageOutput, StageError>>;

/// The queue of one CPU stage.
pub(super) struct CpuBatcher {
    sender: mpsc::UnboundedSender<(StageInput, Reply)>,
}

impl CpuBatcher {
    /// Starts the batching task of `stage` on the current runtime.
    pub(super) fn start(stage: Arc<dyn Stage>, size: usize) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(batches(stage, size.max(1), receiver));
        Self { sender }
    }

    /// Runs `input` in the next batch.
    pub(super) async fn run(&self, input: StageInput) -> Result<StageOutput, StageError> {
        let (reply, answer) = oneshot::channel();
        if self.sender.send((input, reply)).is_err() {
            return Err(StageError::failed("the CPU batcher stopped"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StageError::failed("the CPU batcher dropped the item")))
    }
}

async fn batches(
    stage: Arc<dyn Stage>,
    size: usize,
    mut receiver: mpsc::UnboundedReceiver<(StageInput, Reply)>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < size {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(job)) => batch.push(job),
                _ => break,
            }
        }
        let (inputs, replies): (Vec<StageInput>, Vec<Reply>) = batch.into_iter().unzip();
        let runnable = stage.clone();
        let count = inputs.len();
        let results = tokio::task::spawn_blocking(move || runnable.run_batch(&inputs))
            .await
            .unwrap_or_else(|e| {
                (0..count)
                    .map(|_| Err(StageError::failed(format!("the stage panicked: {e}"))))
                    .collect()
            });
        let mut results = results.into_iter();
        for reply in replies {
            let result = results
                .next()
                .unwrap_or_else(|| Err(StageError::failed("the stage returned too few results")));
            let _ = reply.send(result);
        }
    }
}
