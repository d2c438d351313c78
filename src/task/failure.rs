//! Every way a task can fail on this device, as the server receives it: the `error` event's
//! `code` ([`TaskFailure::code`], unchanged wire strings) and the message the user reads in the
//! chat (`Display`). A new failure is a new variant here, so this list is all a server can get.

use std::path::PathBuf;
use std::time::Duration;

use super::agent::AgentKind;
use super::events::{self, ResponsesEvent};
use super::extras::ExtrasError;
use super::payload::PayloadRefusal;
use super::workdir::WorkDirError;

#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    /// A task that arrived while the device drains or shuts down.
    #[error("This device is shutting down; it takes no new tasks.")]
    ShuttingDown,
    /// A task that arrived while the user paused new tasks ([`crate::pause`]).
    #[error("This device is paused by its user; resume it to take new tasks.")]
    Paused,
    #[error("this device's queue is full ({waiting} {}); wait for some to finish or cancel them, then send the message again (or raise `max_queued_tasks` in config.toml)", if *.waiting == 1 { "task waiting" } else { "tasks waiting" })]
    QueueFull { waiting: usize },
    #[error(transparent)]
    InvalidTask(PayloadRefusal),
    /// The working directory could not be chosen, created or checked out.
    #[error(transparent)]
    WorkDir(WorkDirError),
    /// Attachments, skills or MCP servers could not be put in place.
    #[error(transparent)]
    Extras(ExtrasError),
    #[error("Could not write the system prompt to {}: {error}", path.display())]
    SystemPromptFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The pre-execute hook refused or failed (its message names the hook and why).
    #[error("{0}")]
    HookFailed(String),
    /// The agent's CLI is not installed where the device looks (the message says where and how
    /// to install it).
    #[error("{message}")]
    AgentNotFound { agent: AgentKind, message: String },
    #[error("Could not start {agent} ({}): {error}", program.display())]
    SpawnFailed {
        agent: AgentKind,
        program: PathBuf,
        error: std::io::Error,
    },
    /// The CLI ended without its final result (`exit`: its code, `None` if killed by a signal).
    #[error("{agent} {} before finishing the task{}", exit_text(*exit), detail_text(detail))]
    ProcessExited {
        agent: AgentKind,
        exit: Option<i32>,
        /// The CLI's last stderr lines.
        detail: String,
    },
    /// The model API refused or failed (the CLI's words).
    #[error("{0}")]
    Api(String),
    /// The agent reported a failed run (its words).
    #[error("{0}")]
    Runtime(String),
    #[error("The task ran longer than this device's task timeout ({} s) and was stopped", limit.as_secs())]
    Timeout { limit: Duration },
    /// The task's runner panicked or was aborted.
    #[error("The device hit an internal error while running this task; please report it with the device log")]
    Internal,
    /// A `response.completed` too big for one Socket.IO packet.
    #[error("The answer is {size} bytes, over the server's limit of {limit} bytes per message; it was streamed but could not be stored whole.")]
    ResultTooLarge { size: usize, limit: usize },
}

impl TaskFailure {
    /// The `error` event's `code`: the strings the server has always received.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ShuttingDown => "device_unavailable",
            Self::Paused => "device_paused",
            Self::QueueFull { .. } => "queue_full",
            Self::InvalidTask(_) => "invalid_task",
            // Git failures as Wegent's executor reports them.
            Self::WorkDir(WorkDirError::Git(_)) => "runtime_error",
            Self::WorkDir(_) | Self::SystemPromptFile { .. } => "workspace_error",
            Self::Extras(ExtrasError::Attachment(_)) => "attachment_download_failed",
            Self::Extras(ExtrasError::Skill(_)) => "skill_install_failed",
            Self::Extras(ExtrasError::Mcp(_)) => "mcp_config_invalid",
            Self::Extras(ExtrasError::McpConfig { .. }) => "workspace_error",
            Self::Extras(ExtrasError::Stopped(_)) => "cancelled",
            Self::HookFailed(_) => "hook_failed",
            Self::AgentNotFound {
                agent: AgentKind::Claude,
                ..
            } => "claude_not_found",
            Self::AgentNotFound {
                agent: AgentKind::Codex,
                ..
            } => "codex_not_found",
            Self::SpawnFailed { .. } => "spawn_failed",
            Self::ProcessExited { .. } => "process_exited",
            Self::Api(_) => "api_error",
            Self::Runtime(_) => "runtime_error",
            Self::Timeout { .. } => "timeout",
            Self::Internal => "internal_error",
            Self::ResultTooLarge { .. } => "result_too_large",
        }
    }

    /// The turn's terminal `error` event.
    pub fn event(&self) -> ResponsesEvent {
        events::error(self.code(), &self.to_string())
    }
}

impl From<WorkDirError> for TaskFailure {
    fn from(e: WorkDirError) -> Self {
        Self::WorkDir(e)
    }
}

impl From<ExtrasError> for TaskFailure {
    fn from(e: ExtrasError) -> Self {
        Self::Extras(e)
    }
}

fn exit_text(exit: Option<i32>) -> String {
    match exit {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_owned(),
    }
}

fn detail_text(detail: &str) -> String {
    let detail = detail.trim();
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_strings_the_server_always_received() {
        let cases = [
            (TaskFailure::ShuttingDown, "device_unavailable"),
            (TaskFailure::Paused, "device_paused"),
            (TaskFailure::QueueFull { waiting: 2 }, "queue_full"),
            (TaskFailure::HookFailed("no".into()), "hook_failed"),
            (
                TaskFailure::AgentNotFound {
                    agent: AgentKind::Claude,
                    message: "m".into(),
                },
                "claude_not_found",
            ),
            (
                TaskFailure::AgentNotFound {
                    agent: AgentKind::Codex,
                    message: "m".into(),
                },
                "codex_not_found",
            ),
            (TaskFailure::Api("boom".into()), "api_error"),
            (TaskFailure::Runtime("boom".into()), "runtime_error"),
            (
                TaskFailure::Timeout {
                    limit: Duration::from_secs(5),
                },
                "timeout",
            ),
            (TaskFailure::Internal, "internal_error"),
            (
                TaskFailure::ResultTooLarge { size: 2, limit: 1 },
                "result_too_large",
            ),
        ];
        for (failure, code) in cases {
            assert_eq!(failure.code(), code, "{failure:?}");
            let event = failure.event();
            assert_eq!(event.data["code"], code);
            assert_eq!(event.data["message"], failure.to_string());
        }
    }

    #[test]
    fn messages_say_what_happened_and_what_to_do() {
        let exited = TaskFailure::ProcessExited {
            agent: AgentKind::Claude,
            exit: Some(3),
            detail: " boom \n".into(),
        };
        assert_eq!(
            exited.to_string(),
            "Claude Code exited with status 3 before finishing the task: boom"
        );
        let killed = TaskFailure::ProcessExited {
            agent: AgentKind::Codex,
            exit: None,
            detail: String::new(),
        };
        assert_eq!(
            killed.to_string(),
            "Codex was killed by a signal before finishing the task"
        );
        assert!(TaskFailure::QueueFull { waiting: 1 }
            .to_string()
            .starts_with("this device's queue is full (1 task waiting);"));
        assert!(TaskFailure::Timeout {
            limit: Duration::from_secs(90)
        }
        .to_string()
        .contains("(90 s)"));
    }
}
