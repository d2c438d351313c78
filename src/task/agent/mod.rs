//! The agent seam: which coding agent runs a task, and what every agent shares.
//!
//! - [`AgentKind`]: chosen from the bot's shell type (pure).
//! - [`turn`]: one child-process turn, the same for every agent (process group, stdin: one
//!   message or a conversation, stderr tail, stdout line loop with stop and deadline).
//! - `locate`: finding an agent's CLI; [`spawn_failure`]: a CLI that did not start.
//! - [`claude`]: Claude Code: its launch (argv, environment, stdin) and its `stream-json`
//!   mapping to Responses events.
//! - [`codex`]: Codex: its launch (`codex app-server`: argv, config, environment) and its
//!   JSON-RPC conversation mapped to Responses events.

pub mod claude;
pub mod codex;
mod locate;
pub(crate) mod turn;

use std::path::Path;

use serde::Serialize;

use crate::task::failure::TaskFailure;

/// The coding agent a task runs with (shown by the tray and the CLI next to each task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    Claude,
    Codex,
}

impl AgentKind {
    /// The agent for `bot[0].shell_type`, compared trimmed and case-insensitively as Wegent's
    /// executor does (codex-cli.md §A.1: `Codex`, `CodeX`). A missing or other shell type runs
    /// Claude Code: the device ran every task with it before it read this field.
    pub fn for_shell_type(shell_type: Option<&str>) -> Self {
        match shell_type.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("codex") => AgentKind::Codex,
            _ => AgentKind::Claude,
        }
    }

    /// `shell_type` in the turn's `response.created`, as Wegent's executor sends it.
    pub fn wire_shell_type(self) -> &'static str {
        match self {
            AgentKind::Claude => "ClaudeCode",
            AgentKind::Codex => "codex",
        }
    }

    /// The agent's product name, as users know it.
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Claude => "Claude Code",
            AgentKind::Codex => "Codex",
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an agent's CLI did not start: not found (with how to install it), or another error.
pub(crate) fn spawn_failure(
    agent: AgentKind,
    program: &Path,
    error: std::io::Error,
    install_hint: &str,
) -> TaskFailure {
    if error.kind() == std::io::ErrorKind::NotFound {
        let message = format!(
            "{agent} CLI not found at {}. {install_hint}",
            program.display()
        );
        TaskFailure::AgentNotFound { agent, message }
    } else {
        TaskFailure::SpawnFailed {
            agent,
            program: program.to_owned(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_is_the_default_and_matches_any_case() {
        for shell_type in [None, Some("ClaudeCode"), Some(" claudecode "), Some("Agno")] {
            assert_eq!(AgentKind::for_shell_type(shell_type), AgentKind::Claude);
        }
    }

    #[test]
    fn codex_in_any_spelling() {
        for shell_type in ["Codex", "CodeX", " codex "] {
            assert_eq!(
                AgentKind::for_shell_type(Some(shell_type)),
                AgentKind::Codex
            );
        }
        assert_eq!(
            serde_json::to_value(AgentKind::Codex).unwrap(),
            serde_json::json!("codex")
        );
    }
}
