//! Claude Code as a task's agent: [`launch`] (argv, environment, stdin line) and [`stream`]
//! (its `stream-json` → Responses events); [`run`] drives one task turn with them, starting a
//! fresh session when the saved one is gone.

pub mod launch;
pub mod stream;

use std::path::Path;

use serde_json::Value;
use tokio::process::Command;
use tokio::time::Instant;

use self::stream::StreamMapper;
use super::turn::{self, ChildTurn, LineMapper, Stdin};
use super::AgentKind;
use crate::task::child_env;
use crate::task::emitter::Emitter;
use crate::task::events::{self, ResponsesEvent};
use crate::task::extras;
use crate::task::failure::TaskFailure;
use crate::task::orphans;
use crate::task::payload::TaskRequest;
use crate::task::process;
use crate::task::runner::{RunContext, StopSignal};
use crate::task::workspace::TaskDirs;

impl LineMapper for StreamMapper {
    fn feed(&mut self, line: &str) -> Vec<ResponsesEvent> {
        StreamMapper::feed(self, line)
    }

    fn text(&self) -> &str {
        StreamMapper::text(self)
    }
}

/// One turn of `req` with Claude Code in the prepared `dirs`; returns its terminal event.
pub(crate) async fn run(
    ctx: &RunContext,
    req: &TaskRequest,
    prepared: &extras::Prepared,
    dirs: &TaskDirs,
    deadline: Instant,
    emitter: &Emitter,
    stop: &mut StopSignal,
) -> ResponsesEvent {
    let program = match launch::resolve(ctx.config.claude_path.as_deref()) {
        Ok(p) => p,
        Err(message) => {
            return TaskFailure::AgentNotFound {
                agent: AgentKind::Claude,
                message,
            }
            .event()
        }
    };
    let system_prompt_file = match &req.system_prompt {
        Some(text) => {
            let file = dirs.system_prompt_file();
            if let Err(error) = std::fs::write(&file, text) {
                return TaskFailure::SystemPromptFile { path: file, error }.event();
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
            dirs,
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
        return outcome.terminal;
    }
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
    task_timeout: std::time::Duration,
}

struct ClaudeOutcome {
    terminal: ResponsesEvent,
    /// `--resume` named a session the CLI does not know, and nothing was streamed yet.
    session_lost: bool,
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
    let mut cmd = Command::new(launch.program);
    child_env::prepare(&mut cmd)
        .args(launch::args(
            req,
            launch.resume,
            launch.system_prompt_file,
            launch.mcp_config,
        ))
        .envs(launch::env(req, dirs, process::is_root()));
    if let Some(path) = launch.mcp_config {
        cmd.env(extras::MCP_CONFIG_ENV, path)
            .envs(launch.mcp_env.iter().map(|(k, v)| (k, v)));
    }
    let child_turn = ChildTurn {
        agent: "claude",
        task_id: req.task_id,
        subtask_id: req.subtask_id,
        cwd: &dirs.cwd,
        stdin: Stdin::Once(launch::stdin_line(launch.prompt)),
        resume: launch.resume.is_some(),
        turn_id: orphans::turn_id(&dirs.claude_config, req.subtask_id),
        deadline: launch.deadline,
    };
    let mut mapper = StreamMapper::new(emitter.turn().clone());
    let finished = match turn::run(cmd, child_turn, &mut mapper, emitter, stop).await {
        Ok(finished) => finished,
        Err(e) => {
            let failure =
                super::spawn_failure(AgentKind::Claude, launch.program, e, launch::INSTALL_HINT);
            return done(failure.event());
        }
    };
    if let Some(id) = mapper.session_id() {
        if let Err(e) = dirs.save_session_id(req.bot_id.as_deref(), id) {
            tracing::warn!(task_id = req.task_id, error = %e, "could not save the Claude session id; the next message starts a new session");
        }
    }
    let terminal = finished.terminal(emitter, mapper.text(), launch.task_timeout, |exit, tail| {
        mapper.finish(exit, tail)
    });
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
