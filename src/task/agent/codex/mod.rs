//! Codex as a task's agent: [`launch`] (argv, config, environment, the JSON-RPC requests),
//! [`mcp`] (the task's MCP servers as Codex config) and [`stream`] (the app-server's
//! notifications → Responses events); [`run`] drives one task turn with them.
//!
//! Why `codex app-server` and not `codex exec --json`: `exec` prints each answer once, whole;
//! the app-server streams it as text deltas (codex-cli.md §2.5, §2.6), so a Codex task streams
//! like a Claude task. One app-server process per turn: it opens (or resumes) the task's thread,
//! runs one turn, and exits when its stdin closes.

pub mod auth;
pub mod launch;
pub mod mcp;
pub mod native;
pub mod stream;

use tokio::process::Command;
use tokio::time::Instant;

use self::launch::ThreadParams;
use self::stream::AppServerMapper;
use super::turn::{self, ChildTurn, LineMapper, Stdin};
use super::AgentKind;
use crate::task::child_env;
use crate::task::emitter::Emitter;
use crate::task::events::ResponsesEvent;
use crate::task::extras;
use crate::task::failure::TaskFailure;
use crate::task::orphans;
use crate::task::payload::TaskRequest;
use crate::task::runner::{RunContext, StopSignal};
use crate::task::workspace::{self, TaskDirs};

impl LineMapper for AppServerMapper {
    fn feed(&mut self, line: &str) -> Vec<ResponsesEvent> {
        AppServerMapper::feed(self, line)
    }

    fn text(&self) -> &str {
        AppServerMapper::text(self)
    }

    fn replies(&mut self) -> Vec<String> {
        self.take_replies()
    }

    fn turn_over(&self) -> bool {
        self.is_over()
    }
}

/// One turn of `req` with Codex in the prepared `dirs`; returns its terminal event.
pub(crate) async fn run(
    ctx: &RunContext,
    req: &TaskRequest,
    prepared: &extras::Prepared,
    dirs: &TaskDirs,
    deadline: Instant,
    emitter: &Emitter,
    stop: &mut StopSignal,
) -> ResponsesEvent {
    let agent = AgentKind::Codex;
    let program = match launch::resolve(ctx.config.codex_path.as_deref()) {
        Ok(p) => p,
        Err(message) => return TaskFailure::AgentNotFound { agent, message }.event(),
    };
    let native = native::behind_npm_wrapper(&program);
    let (program, native_env) = match native {
        Some(native) => (native.binary, native.env),
        None => (program, Vec::new()),
    };
    if let Some(message) = launch::unusable_model(&req.model) {
        return TaskFailure::Runtime(message).event();
    }
    if let Err(error) = workspace::create_private_dir(&dirs.codex_home) {
        let failure = crate::task::workdir::WorkDirError::Create {
            path: dirs.codex_home.clone(),
            source: error,
        };
        return TaskFailure::from(failure).event();
    }
    if launch::uses_user_login(&req.model) {
        if let Err(message) = link_user_login(ctx, dirs) {
            return TaskFailure::Runtime(message).event();
        }
    }
    // `extras::prepare` has already failed the task if the plan is an error.
    let mut servers = req.extras.mcp.as_ref().map(mcp::render).unwrap_or_default();
    let turn_id = orphans::turn_id(&dirs.codex_home, req.subtask_id);
    let run = orphans::current_run();
    servers.mark_stdio_servers(&[
        (orphans::MARKER, run.as_str()),
        (orphans::TURN_MARKER, turn_id.as_str()),
    ]);
    for warning in &servers.warnings {
        // Not silently: the user may wonder why a tool is missing or renamed.
        tracing::warn!(task_id = req.task_id, "{warning}");
    }
    let bot_id = req.bot_id.as_deref();
    let resume = if req.new_session {
        dirs.forget_sessions();
        None
    } else {
        dirs.load_thread_id(bot_id)
    };
    let params = ThreadParams {
        cwd: dirs.cwd.clone(),
        developer_instructions: req.system_prompt.clone(),
        config: servers.thread_config(),
    };
    let resuming = resume.is_some();
    let prompt = prepared.prompt.as_ref().unwrap_or(&req.prompt).clone();
    let mut mapper = AppServerMapper::new(emitter.turn().clone(), params, prompt, resume);
    let mut cmd = Command::new(&program);
    child_env::prepare(&mut cmd)
        .args(launch::args(req))
        .envs(launch::env(req, dirs))
        .envs(servers.env)
        .envs(native_env);
    let child_turn = ChildTurn {
        agent: "codex",
        task_id: req.task_id,
        subtask_id: req.subtask_id,
        cwd: &dirs.cwd,
        stdin: Stdin::Conversation(mapper.opening()),
        resume: resuming,
        turn_id,
        deadline,
    };
    let finished = turn::run(cmd, child_turn, &mut mapper, emitter, stop).await;
    dirs.clean_tmp();
    let finished = match finished {
        Ok(finished) => finished,
        Err(error) => {
            return super::spawn_failure(agent, &program, error, launch::INSTALL_HINT).event()
        }
    };
    if let Some(id) = mapper.thread_id() {
        if let Err(e) = dirs.save_thread_id(bot_id, id) {
            tracing::warn!(task_id = req.task_id, error = %e, "could not save the Codex thread id; the next message starts a new thread");
        }
    }
    if mapper.resume_lost() {
        tracing::info!(task_id = req.task_id, "this turn ran in a new Codex thread");
    }
    finished.terminal(
        emitter,
        mapper.text(),
        ctx.config.task_timeout,
        |exit, tail| mapper.finish(exit, tail),
    )
}

/// Link the user's own Codex login into the task's `CODEX_HOME`; `Err`: what to tell the user.
fn link_user_login(ctx: &RunContext, dirs: &TaskDirs) -> Result<(), String> {
    let state = auth::auth_file_state(ctx.user_home.as_deref())
        .ok_or_else(|| launch::missing_login_message(std::path::Path::new("~/.codex/auth.json")))?;
    if !state.exists {
        return Err(launch::missing_login_message(&state.target_path));
    }
    auth::link_into(&dirs.codex_home, &state.target_path).map_err(|e| {
        format!(
            "Could not link your Codex login {} into {}: {e}",
            state.target_path.display(),
            dirs.codex_home.display()
        )
    })
}
