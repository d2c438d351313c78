//! One turn of a task, from slot to terminal event: directories → hook → `claude` → events.
//!
//! Every path out of [`run`] ends in exactly one terminal event (the emitter enforces "at most
//! one"; the manager's supervisor adds one if this code panics).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;

use super::child_env;
use super::claude;
use super::emitter::Emitter;
use super::events::{self, ResponsesEvent};
use super::extras;
use super::hook::{self, HookIds};
use super::mapping::StreamMapper;
use super::payload::TaskRequest;
use super::process;
use super::record::TaskRecord;
use super::workdir::{self, WorkDir, WorkDirError};
use super::workspace::TaskDirs;
use crate::config::TaskConfig;
use crate::redact::redact;

/// How long the CLI gets after SIGINT before its group is killed. Short: a cancel is settled on
/// the server at once (see [`run_claude`]) and the group must be gone within a second.
const STOP_GRACE: Duration = Duration::from_millis(300);
/// Stderr lines kept for error messages.
const STDERR_TAIL_LINES: usize = 12;
const STDERR_LINE_MAX_CHARS: usize = 400;

/// What every turn needs from the manager.
pub struct RunContext {
    pub config: TaskConfig,
    pub home: PathBuf,
    /// This device's configured backend: downloads go there, not to the payload's
    /// `backend_url` (the server's internal address).
    pub backend_url: String,
    /// `W` (protocol.md §16.2), derived once from the configured projects dir.
    pub workspace_root: PathBuf,
    /// Expands `~` in project paths.
    pub user_home: Option<PathBuf>,
}

impl RunContext {
    pub fn new(config: TaskConfig, home: PathBuf, backend_url: String) -> Self {
        let workspace_root = crate::config::workspace_root(&config.projects_dir(&home));
        Self {
            config,
            home,
            backend_url,
            workspace_root,
            user_home: std::env::home_dir(),
        }
    }

    /// The task's working directory (pure; see [`workdir::resolve`]).
    pub fn workdir(&self, req: &TaskRequest) -> Result<WorkDir, WorkDirError> {
        workdir::resolve(
            &req.workspace,
            req.task_id,
            &self.workspace_root,
            self.user_home.as_deref(),
        )
    }
}

/// `Some(message)` asks the turn to stop; the message goes into `response.incomplete`.
pub type StopSignal = watch::Receiver<Option<String>>;

/// Run one turn in `workdir`, which the manager resolved when the turn took its slot.
pub async fn run(
    ctx: &RunContext,
    req: &TaskRequest,
    workdir: Result<WorkDir, WorkDirError>,
    emitter: &Emitter,
    mut stop: StopSignal,
) {
    emitter.emit(emitter.turn().created(req.bot_name.as_deref()));
    emitter.started();
    let terminal = execute(ctx, req, workdir, emitter, &mut stop).await;
    emitter.emit(terminal);
}

async fn execute(
    ctx: &RunContext,
    req: &TaskRequest,
    workdir: Result<WorkDir, WorkDirError>,
    emitter: &Emitter,
    stop: &mut StopSignal,
) -> ResponsesEvent {
    let turn = emitter.turn();
    let deadline = Instant::now() + ctx.config.task_timeout;
    let prepared = match workdir {
        Ok(workdir) => prepare_dirs(ctx, req, workdir, deadline, stop).await,
        Err(e) => Err(PrepareError::WorkDir(e)),
    };
    let dirs = match prepared {
        Ok(dirs) => dirs,
        Err(PrepareError::Stopped(message)) => return turn.incomplete("", &message),
        Err(PrepareError::WorkDir(e)) => return events::error(e.code(), &e.to_string()),
    };
    // After the checkout (§16.7: files first would make a fresh clone dir "not empty").
    let device = extras::Downloads {
        backend_url: &ctx.backend_url,
        home: &ctx.home,
        max_attachment_bytes: ctx.config.max_attachment_bytes,
    };
    let prepared =
        match extras::prepare(&device, req.task_id, &req.prompt, &req.extras, &dirs, stop).await {
            Ok(prepared) => prepared,
            Err(extras::ExtrasError::Stopped(message)) => return turn.incomplete("", &message),
            Err(e) => return events::error(e.code(), &redact(&e.to_string())),
        };
    if let Some(hook_path) = &ctx.config.pre_execute_hook {
        let ids = HookIds {
            task_id: req.task_id,
            subtask_id: req.subtask_id,
            cwd: &dirs.cwd,
        };
        tokio::select! {
            result = hook::run(hook_path, ids, deadline.saturating_duration_since(Instant::now())) => {
                if let Err(message) = result {
                    return events::error("hook_failed", &message);
                }
            }
            message = stopped(stop) => return turn.incomplete("", &message),
        }
    }
    let program = match claude::resolve(ctx.config.claude_path.as_deref()) {
        Ok(p) => p,
        Err(message) => return events::error("claude_not_found", &message),
    };
    let system_prompt_file = match &req.system_prompt {
        Some(text) => {
            let file = dirs.system_prompt_file();
            if let Err(e) = std::fs::write(&file, text) {
                return events::error(
                    "workspace_error",
                    &format!(
                        "Could not write the system prompt to {}: {e}",
                        file.display()
                    ),
                );
            }
            Some(file)
        }
        None => None,
    };
    let bot_id = req.bot_id.as_deref();
    let mut resume = if req.new_session {
        dirs.forget_sessions();
        None
    } else {
        dirs.load_session_id(bot_id)
    };
    loop {
        let launch = Launch {
            program: &program,
            req,
            prompt: prepared.prompt.as_ref().unwrap_or(&req.prompt),
            mcp_config: prepared.mcp_config.as_deref(),
            mcp_env: &prepared.mcp_env,
            dirs: &dirs,
            system_prompt_file: system_prompt_file.as_deref(),
            resume: resume.as_deref(),
            deadline,
            task_timeout: ctx.config.task_timeout,
        };
        let outcome = run_claude(&launch, emitter, stop).await;
        dirs.clean_tmp();
        if outcome.session_lost && resume.is_some() {
            // The saved session is gone (config dir wiped, other CLI version): start afresh
            // rather than failing every later message of this task.
            tracing::warn!(
                task_id = req.task_id,
                "saved Claude session not found; starting a new one"
            );
            dirs.forget_sessions();
            resume = None;
            continue;
        }
        if req.workspace.standalone_chat_workspace {
            // The backend pins this folder for the chat's later turns (§16.5).
            return events::with_standalone_workspace(outcome.terminal, &dirs.cwd);
        }
        return outcome.terminal;
    }
}

enum PrepareError {
    Stopped(String),
    WorkDir(WorkDirError),
}

/// The task's directories: create the private state, make the cwd exist (git clone or
/// `mkdir -p`), and record it for cleanup.
async fn prepare_dirs(
    ctx: &RunContext,
    req: &TaskRequest,
    workdir: WorkDir,
    deadline: Instant,
    stop: &mut StopSignal,
) -> Result<TaskDirs, PrepareError> {
    let dirs = TaskDirs::new(&ctx.home, req.task_id, workdir.path.clone());
    dirs.create_private().map_err(|e| {
        PrepareError::WorkDir(WorkDirError::Create {
            path: dirs.private().to_owned(),
            source: e,
        })
    })?;
    let timeout = ctx
        .config
        .git_clone_timeout
        .min(deadline.saturating_duration_since(Instant::now()));
    // The git step watches `stop` itself (it must end its child); a stop wins over the error
    // the interrupted step reports.
    let prepared = workdir::prepare(&workdir, req.git_identity.as_ref(), timeout, stop).await;
    if let Some(message) = stop.borrow().clone() {
        return Err(PrepareError::Stopped(message));
    }
    prepared.map_err(PrepareError::WorkDir)?;
    let record = TaskRecord::new(workdir.path.clone(), workdir.created_by_device());
    if let Err(e) = record.save(dirs.private()) {
        tracing::warn!(task_id = req.task_id, error = %e, "could not write the task record; cleanup may keep this task's folders");
    }
    tracing::info!(task_id = req.task_id, cwd = %workdir.path.display(), kind = ?workdir.kind, "task directory ready");
    Ok(dirs)
}

struct Launch<'a> {
    program: &'a Path,
    req: &'a TaskRequest,
    /// The user's message as the CLI gets it (attachment paths rewritten).
    prompt: &'a Value,
    mcp_config: Option<&'a Path>,
    /// Secret values the MCP config refers to (`${WEGENT_MCP_SECRET_<n>}`).
    mcp_env: &'a [(String, String)],
    dirs: &'a TaskDirs,
    system_prompt_file: Option<&'a Path>,
    resume: Option<&'a str>,
    deadline: Instant,
    task_timeout: Duration,
}

struct ClaudeOutcome {
    terminal: ResponsesEvent,
    /// `--resume` named a session the CLI does not know, and nothing was streamed yet.
    session_lost: bool,
}

enum Interrupted {
    Cancelled(String),
    TimedOut,
}

async fn run_claude(
    launch: &Launch<'_>,
    emitter: &Emitter,
    stop: &mut StopSignal,
) -> ClaudeOutcome {
    let done = |terminal| ClaudeOutcome {
        terminal,
        session_lost: false,
    };
    let (req, dirs) = (launch.req, launch.dirs);
    let turn = super::orphans::turn_id(&dirs.claude_config, req.subtask_id);
    let mut cmd = Command::new(launch.program);
    child_env::prepare(&mut cmd)
        .args(claude::args(
            req,
            launch.resume,
            launch.system_prompt_file,
            launch.mcp_config,
        ))
        .envs(claude::env(req, dirs, process::is_root()))
        // Ties the CLI's tools to this turn, also those that leave its process tree.
        .env(super::orphans::TURN_MARKER, &turn);
    if let Some(path) = launch.mcp_config {
        cmd.env(extras::MCP_CONFIG_ENV, path)
            .envs(launch.mcp_env.iter().map(|(k, v)| (k, v)));
    }
    cmd.current_dir(&dirs.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    process::isolate(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return done(events::error(
                "claude_not_found",
                &format!(
                    "Claude Code CLI not found at {}. {}",
                    launch.program.display(),
                    claude::INSTALL_HINT
                ),
            ))
        }
        Err(e) => {
            return done(events::error(
                "spawn_failed",
                &format!(
                    "Could not start Claude Code ({}): {e}",
                    launch.program.display()
                ),
            ))
        }
    };
    // Whatever way this turn ends (even dropped), the CLI's tools do not outlive it.
    let mut group = process::GroupGuard::new(&child);
    // `child.id()` is gone once the child is reaped; the group's id is needed after that.
    #[cfg(unix)]
    let pgid = child.id();
    tracing::info!(task_id = req.task_id, subtask_id = req.subtask_id, pid = ?child.id(), resume = launch.resume.is_some(), "claude started");
    // The prompt goes in as one line and stdin is closed, so the CLI runs exactly one turn.
    if let Some(mut stdin) = child.stdin.take() {
        let line = claude::stdin_line(launch.prompt);
        tokio::spawn(async move {
            let _ = stdin.write_all(line.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_reader = child.stderr.take().map(|stderr| {
        let tail = tail.clone();
        let task_id = req.task_id;
        tokio::spawn(async move { collect_stderr(stderr, tail, task_id).await })
    });
    let mut mapper = StreamMapper::new(emitter.turn().clone());
    let deadline = tokio::time::sleep_until(launch.deadline);
    tokio::pin!(deadline);
    let mut interrupted = None;
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::with_capacity(64 * 1024, stdout);
        let mut line = Vec::new();
        interrupted = loop {
            line.clear();
            tokio::select! {
                read = reader.read_until(b'\n', &mut line) => match read {
                    // Bytes, not `lines()`: one invalid UTF-8 byte must not end the relay.
                    Ok(n) if n > 0 => mapper
                        .feed(&String::from_utf8_lossy(&line))
                        .into_iter()
                        .for_each(|e| emitter.emit(e)),
                    _ => break None,
                },
                message = stopped(stop) => break Some(Interrupted::Cancelled(message)),
                _ = &mut deadline => break Some(Interrupted::TimedOut),
            }
        };
    }
    let exit = if interrupted.is_none() {
        tokio::select! {
            status = child.wait() => Some(status.ok().and_then(|s| s.code())),
            message = stopped(stop) => { interrupted = Some(Interrupted::Cancelled(message)); None }
            _ = &mut deadline => { interrupted = Some(Interrupted::TimedOut); None }
        }
    } else {
        None
    };
    let exit = match exit {
        Some(code) => {
            // Tools the agent left running in the background do not outlive the turn.
            #[cfg(unix)]
            if let Some(pgid) = pgid {
                process::signal_group(pgid, process::Signal::Kill);
            }
            code
        }
        None => {
            if let Some(Interrupted::Cancelled(message)) = &interrupted {
                // The text so far is known: settle the cancel on the server now rather than after
                // the stop. The slot stays held until the group is gone (the turn returns only
                // then); the same event built again below is dropped by the emitter.
                emitter.emit(emitter.turn().incomplete(mapper.text(), message));
            }
            process::stop(&mut child, STOP_GRACE).await
        }
    };
    // Reaped and its group ended: the id may now be reused by an unrelated group.
    group.disarm();
    let leftovers = super::orphans::kill_turn_leftovers(&turn);
    if leftovers > 0 {
        tracing::info!(
            task_id = req.task_id,
            leftovers,
            "ended processes the agent left running"
        );
    }
    if let Some(reader) = stderr_reader {
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    }
    if let Some(id) = mapper.session_id() {
        if let Err(e) = dirs.save_session_id(req.bot_id.as_deref(), id) {
            tracing::warn!(task_id = req.task_id, error = %e, "could not save the Claude session id; the next message starts a new session");
        }
    }
    let stderr_tail = stderr_text(&tail);
    tracing::info!(task_id = req.task_id, subtask_id = req.subtask_id, exit_code = ?exit, "claude exited");
    let terminal = match interrupted {
        Some(Interrupted::Cancelled(message)) => emitter.turn().incomplete(mapper.text(), &message),
        Some(Interrupted::TimedOut) => events::error(
            "timeout",
            &format!(
                "The task ran longer than this device's task timeout ({} s) and was stopped",
                launch.task_timeout.as_secs()
            ),
        ),
        None => mapper.finish(exit, &stderr_tail),
    };
    let session_lost = launch.resume.is_some()
        && mapper.text().is_empty()
        && terminal.name == events::ERROR
        && terminal.data["message"]
            .as_str()
            .is_some_and(|m| m.contains("No conversation found"));
    ClaudeOutcome {
        terminal,
        session_lost,
    }
}

/// Resolves once a stop is requested; never if the manager dropped the sender.
pub(super) async fn stopped(stop: &mut StopSignal) -> String {
    loop {
        if let Some(message) = stop.borrow_and_update().clone() {
            return message;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn collect_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    task_id: i64,
) {
    // Read to the end whatever the bytes are: a reader that stopped early would let the pipe
    // fill up and block the CLI.
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if !matches!(reader.read_until(b'\n', &mut raw).await, Ok(n) if n > 0) {
            break;
        }
        let line = String::from_utf8_lossy(&raw);
        let line = redact(line.trim_end()).into_owned();
        tracing::debug!(task_id, line = %line, "claude stderr");
        if line.trim().is_empty() {
            continue;
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(super::payload::truncate_chars(&line, STDERR_LINE_MAX_CHARS));
    }
}

fn stderr_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    tail.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}
