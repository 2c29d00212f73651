//! The device worker's boundary: a panic inside a stage (cubecl panics on
//! some allocation failures and driver errors) becomes an error value for
//! the items it hit, never the end of the worker or of the run.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::device::DeviceId;
use crate::memory::pool;
use crate::registry::StageError;

/// Runs `f` (a stage's `load`, `run` or `run_batch`); a panic becomes a
/// [`StageError`]: out of memory where the installed runtime says the panic
/// was an allocation failure (so the out-of-memory ladder takes over),
/// a failure naming `what` otherwise.
pub(super) fn guarded<T>(
    device: DeviceId,
    what: &str,
    f: impl FnOnce() -> T,
) -> Result<T, StageError> {
    let result = catch_unwind(AssertUnwindSafe(f));
    // The runtime's own threads failed under a call that returned: its
    // results are not to be trusted.
    if result.is_ok() {
        if let Some((text, oom)) = pool::take_runtime_failure() {
            let text = text.lines().next().unwrap_or_default().trim().to_string();
            return Err(if oom {
                StageError::out_of_memory(format!("out of memory on {device}: {text}"))
            } else {
                StageError::failed(format!(
                    "the GPU runtime failed on {device} during {what}: {text}"
                ))
            });
        }
    }
    result.map_err(|panic| {
        let text = pool::panic_text(panic.as_ref());
        let text = text.lines().next().unwrap_or_default().trim().to_string();
        if pool::is_out_of_memory(panic.as_ref()) {
            StageError::out_of_memory(format!("out of memory on {device}: {text}"))
        } else {
            StageError::failed(format!("{what} panicked on {device}: {text}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::FailureKind;

    #[test]
    fn a_panic_is_an_error_value() {
        let err = guarded(DeviceId::Sim(0), "the batch", || -> u32 {
            panic!("boom {}", 1)
        })
        .unwrap_err();
        assert_eq!(err.kind, FailureKind::Failed);
        assert_eq!(err.message, "the batch panicked on sim:0: boom 1");
        assert_eq!(guarded(DeviceId::Cpu, "x", || 7).ok(), Some(7));
    }
}
