//! One turn of a task, from slot to terminal event: directories → extras → hook → the agent
//! (`agent::Agent`) → events.
//!
//! Every path out of [`run`] ends in exactly one terminal event (the emitter enforces "at most
//! one"; the manager's supervisor adds one if this code panics).

use std::path::PathBuf;

use tokio::sync::watch;
use tokio::time::Instant;

use super::agent::{claude, codex, AgentKind};
use super::emitter::Emitter;
use super::events::{self, ResponsesEvent};
use super::extras;
use super::failure::TaskFailure;
use super::hook::{self, HookIds};
use super::payload::TaskRequest;
use super::record::TaskRecord;
use super::workdir::{self, WorkDir, WorkDirError};
use super::workspace::TaskDirs;
use crate::config::TaskConfig;

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
    let shell_type = req.agent().wire_shell_type();
    emitter.emit(emitter.turn().created(req.bot_name.as_deref(), shell_type));
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
    let agent = req.agent();
    let deadline = Instant::now() + ctx.config.task_timeout;
    let prepared = match workdir {
        Ok(workdir) => prepare_dirs(ctx, req, workdir, deadline, stop).await,
        Err(e) => Err(PrepareError::WorkDir(e)),
    };
    let dirs = match prepared {
        Ok(dirs) => dirs,
        Err(PrepareError::Stopped(message)) => return turn.incomplete("", &message),
        Err(PrepareError::WorkDir(e)) => return TaskFailure::from(e).event(),
    };
    // After the checkout (§16.7: files first would make a fresh clone dir "not empty").
    let device = extras::Downloads {
        backend_url: &ctx.backend_url,
        home: &ctx.home,
        max_attachment_bytes: ctx.config.max_attachment_bytes,
    };
    let extras = extras::prepare(
        &device,
        agent,
        req.task_id,
        &req.prompt,
        &req.extras,
        &dirs,
        stop,
    );
    let prepared = match extras.await {
        Ok(prepared) => prepared,
        Err(extras::ExtrasError::Stopped(message)) => return turn.incomplete("", &message),
        // The emitter redacts the message (a download URL may carry a credential).
        Err(e) => return TaskFailure::from(e).event(),
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
                    return TaskFailure::HookFailed(message).event();
                }
            }
            message = stopped(stop) => return turn.incomplete("", &message),
        }
    }
    let terminal = match agent {
        AgentKind::Claude => claude::run(ctx, req, &prepared, &dirs, deadline, emitter, stop).await,
        AgentKind::Codex => codex::run(ctx, req, &prepared, &dirs, deadline, emitter, stop).await,
    };
    if req.workspace.standalone_chat_workspace {
        // The backend pins this folder for the chat's later turns (§16.5).
        return events::with_standalone_workspace(terminal, &dirs.cwd);
    }
    terminal
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
