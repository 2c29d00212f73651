//! `exec`: runs an external program once per item (argv list, no shell).

mod template;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_engine::registry::{
    port, BuildContext, ConfigProblem, Output, Ports, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use template::Piece;

/// Settings of an `exec` stage.
///
/// ```yaml
/// with:
///   command: ["ffmpeg", "-i", "{input}", "{out}/audio.wav"]
///   output: audio
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments. Placeholders: `{item}` (item id),
    /// `{input}` (the item's path or URL), `{input.PORT}` (files of an
    /// upstream stage, by stage id or port type; as a whole argument it
    /// expands to one argument per file), `{out}` (a fresh folder whose
    /// files become this stage's output). `{{`/`}}` write literal braces.
    pub command: Vec<String>,
    /// The port type of the files written to `{out}` (default `files`).
    #[serde(default = "files")]
    pub output: String,
    /// Extra environment variables for the program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn files() -> String {
    port::FILES.to_string()
}

/// Most bytes of stdout kept as the output's value.
const STDOUT_LIMIT: u64 = 64 * 1024;
/// Most bytes of stderr quoted in a failure reason.
const STDERR_TAIL: u64 = 2000;

/// The `exec` stage kind.
pub struct ExecKind;

impl Settings for ExecConfig {}

impl TypedKind for ExecKind {
    type Config = ExecConfig;

    fn name(&self) -> &'static str {
        "exec"
    }

    fn summary(&self) -> &'static str {
        "Run an external program per item (argv, no shell); files it writes to {out} are its output"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, config: &ExecConfig) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if config.command.is_empty() {
            problems.push(
                ConfigProblem::new(&["command"], "`command` is empty")
                    .help("give the program and its arguments: `[\"wc\", \"-c\", \"{input}\"]`"),
            );
        }
        for (i, arg) in config.command.iter().enumerate() {
            if let Err(message) = template::parse(arg) {
                problems.push(ConfigProblem::new(&["command", &i.to_string()], message));
            }
        }
        problems
    }

    fn unconfigured_ports(&self) -> Ports {
        Ports {
            inputs: Vec::new(),
            outputs: vec![files()],
        }
    }

    fn ports(&self, config: &ExecConfig) -> Ports {
        let mut inputs: Vec<String> = Vec::new();
        for arg in &config.command {
            for piece in template::parse(arg).unwrap_or_default() {
                if let Piece::Upstream(name) = piece {
                    if !inputs.contains(&name) {
                        inputs.push(name);
                    }
                }
            }
        }
        Ports {
            inputs,
            outputs: vec![config.output.clone()],
        }
    }

    fn build(&self, ctx: &BuildContext<'_>, config: ExecConfig) -> Result<Arc<dyn Stage>, String> {
        let command = config
            .command
            .iter()
            .map(|a| template::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some([Piece::Text(program)]) = command.first().map(Vec::as_slice) {
            if !program.contains('/') && find_on_path(program).is_none() {
                return Err(format!("program `{program}` is not on PATH"));
            }
        }
        Ok(Arc::new(Exec {
            command,
            output: config.output,
            env: config.env,
            cwd: ctx.workflow_dir.to_path_buf(),
        }))
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// A built `exec` stage.
struct Exec {
    command: Vec<Vec<Piece>>,
    output: String,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
}

impl Stage for Exec {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let out_dir = input
            .create_out_dir()
            .map_err(|e| StageError::failed(format!("cannot create the output folder: {e}")))?;
        let out = out_dir.to_string_lossy();
        let upstream = |name: &str| {
            input
                .find(name)
                .flat_map(|o| o.files.iter().cloned())
                .collect::<Vec<_>>()
        };
        let values = template::Values {
            item: &input.item.id,
            input: &input.item.source,
            out: &out,
            upstream: &upstream,
        };
        let mut argv = Vec::new();
        for pieces in &self.command {
            argv.extend(template::expand(pieces, &values).map_err(StageError::failed)?);
        }
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| StageError::failed("empty command"))?;
        let logs = input.out_dir.with_extension("log");
        let stdout_path = logs.with_extension("stdout");
        let stderr_path = logs.with_extension("stderr");
        let result = run_program(program, args, self, input, &stdout_path, &stderr_path);
        let _ = std::fs::remove_file(&stdout_path);
        let _ = std::fs::remove_file(&stderr_path);
        let stdout = result?;
        let mut files = Vec::new();
        list_files(&input.out_dir, &input.out_dir, &mut files)
            .map_err(|e| StageError::failed(format!("cannot list the files in {{out}}: {e}")))?;
        files.sort();
        let value = (!stdout.is_empty()).then(|| serde_json::json!({ "stdout": stdout }));
        Ok(StageOutput {
            outputs: vec![Output {
                port: self.output.clone(),
                files,
                value,
            }],
        })
    }
}

fn run_program(
    program: &str,
    args: &[String],
    exec: &Exec,
    input: &StageInput,
    stdout: &Path,
    stderr: &Path,
) -> Result<String, StageError> {
    let io = |e: std::io::Error| {
        StageError::failed(format!("cannot capture the output of `{program}`: {e}"))
    };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(&exec.cwd)
        .envs(&exec.env)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).map_err(io)?)
        .stderr(File::create(stderr).map_err(io)?)
        .spawn()
        .map_err(|e| StageError::failed(format!("cannot start `{program}`: {e}")))?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(StageError::failed(format!(
                    "cannot wait for `{program}`: {e}"
                )))
            }
        }
        if let Some(limit) = input.timeout {
            if started.elapsed() >= limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StageError::timeout(format!(
                    "`{program}` timed out after {}",
                    flow_engine::duration::Span(limit)
                )));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    if !status.success() {
        let tail = read_tail(stderr, STDERR_TAIL);
        let code = status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
        let tail = tail.trim();
        return Err(StageError::failed(if tail.is_empty() {
            format!("`{program}` exited with {code}")
        } else {
            format!("`{program}` exited with {code}: {tail}")
        }));
    }
    Ok(read_head(stdout, STDOUT_LIMIT))
}

fn read_head(path: &Path, limit: u64) -> String {
    let mut text = String::new();
    if let Ok(file) = File::open(path) {
        let _ = file.take(limit).read_to_string(&mut text);
    }
    text
}

fn read_tail(path: &Path, limit: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(limit)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
