//! External programs (`ffmpeg`, `ffprobe`, `yt-dlp`): finding them and
//! running them with a time limit while streaming their output.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most bytes of a program's stderr quoted in a failure reason.
const STDERR_TAIL: usize = 2000;

/// The path of `program` on `PATH`, if it is there.
pub(crate) fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// How a program run ended, when it did not end well.
#[derive(Debug)]
pub(crate) enum RunError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It ran past the time limit and was killed.
    Timeout(Duration),
    /// It exited unsuccessfully; the tail of its stderr.
    Exit { code: String, stderr: String },
    /// Reading its output, or the consumer of that output, failed.
    Io(std::io::Error),
}

impl RunError {
    /// A one-line description, naming `program`.
    pub(crate) fn describe(&self, program: &str) -> String {
        match self {
            Self::Spawn(e) => format!("cannot start `{program}`: {e}"),
            Self::Timeout(limit) => format!(
                "`{program}` timed out after {}",
                flow_engine::duration::Span(*limit)
            ),
            Self::Exit { code, stderr } if stderr.is_empty() => {
                format!("`{program}` exited with {code}")
            }
            Self::Exit { code, stderr } => format!("`{program}` exited with {code}: {stderr}"),
            Self::Io(e) => format!("reading the output of `{program}` failed: {e}"),
        }
    }
}

/// Runs `command` (stdin closed), handing its stdout to `consume` as it
/// arrives, and kills it if it runs longer than `timeout`.
///
/// `consume` gets chunks of at most 64 KiB; an error from it kills the
/// program and is returned as [`RunError::Io`].
pub(crate) fn run_streaming(
    mut command: Command,
    timeout: Option<Duration>,
    mut consume: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), RunError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Spawn)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_end(&mut text);
        }
        text
    });
    let child = Arc::new(Mutex::new(child));
    let timed_out = Arc::new(AtomicBool::new(false));
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = timeout.map(|limit| {
        let child = Arc::clone(&child);
        let timed_out = Arc::clone(&timed_out);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                timed_out.store(true, Ordering::SeqCst);
                if let Ok(mut child) = child.lock() {
                    let _ = child.kill();
                }
            }
        })
    });
    let read_result = pump(stdout, &mut consume);
    if read_result.is_err() {
        if let Ok(mut child) = child.lock() {
            let _ = child.kill();
        }
    }
    let status = wait(&child);
    let _ = done.send(());
    if let Some(watchdog) = watchdog {
        let _ = watchdog.join();
    }
    let stderr = stderr_thread.join().unwrap_or_default();
    if timed_out.load(Ordering::SeqCst) {
        return Err(RunError::Timeout(timeout.unwrap_or_default()));
    }
    read_result.map_err(RunError::Io)?;
    let status = status.map_err(RunError::Io)?;
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
    Err(RunError::Exit {
        code,
        stderr: tail(&stderr),
    })
}

fn pump(
    stdout: Option<std::process::ChildStdout>,
    consume: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let Some(mut stdout) = stdout else {
        return Ok(());
    };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        consume(&buffer[..n])?;
    }
}

/// Waits for the child without holding its lock while it runs, so the
/// watchdog can still kill a program that closed its stdout but hangs.
fn wait(child: &Mutex<Child>) -> std::io::Result<std::process::ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        let status = child
            .lock()
            .map_err(|_| std::io::Error::other("the child process lock was poisoned"))?
            .try_wait()?;
        if let Some(status) = status {
            return Ok(status);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The last [`STDERR_TAIL`] bytes of `bytes`, trimmed, on one line.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&bytes[start..])
        .trim()
        .lines()
        .collect::<Vec<_>>()
        .join("; ")
}
