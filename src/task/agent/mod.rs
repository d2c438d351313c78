//! The agent seam: which coding agent runs a task, and what every agent shares.
//!
//! - [`Agent`]: chosen from the bot's shell type (pure); [`UnsupportedAgent`]: a shell type this
//!   device knows but cannot run yet.
//! - [`turn`]: one child-process turn, the same for every agent (process group, stdin line,
//!   stderr tail, stdout line loop with stop and deadline).
//! - [`claude`]: Claude Code: its launch (argv, environment, stdin) and its `stream-json`
//!   mapping to Responses events.

pub mod claude;
pub(crate) mod turn;

/// The coding agent a task runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    ClaudeCode,
}

/// A bot's agent that this device cannot run: the task fails at once rather than running Claude
/// Code with a configuration made for another agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedAgent {
    #[error("Codex bots are not supported on this device yet; this task's bot has the shell type Codex (`bot[0].shell_type`). Send the message with a Claude Code bot, or run this bot on an executor that supports Codex")]
    Codex,
}

impl UnsupportedAgent {
    /// The `error` event's `code`.
    pub fn code(&self) -> &'static str {
        "agent_not_supported"
    }
}

impl Agent {
    /// The agent for `bot[0].shell_type`, compared trimmed and case-insensitively as Wegent's
    /// executor does (codex-cli.md §A.1: `Codex`, `CodeX`). A missing or other shell type runs
    /// Claude Code: the device ran every task with it before it read this field.
    pub fn for_shell_type(shell_type: Option<&str>) -> Result<Self, UnsupportedAgent> {
        match shell_type.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("codex") => Err(UnsupportedAgent::Codex),
            _ => Ok(Agent::ClaudeCode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_is_the_default_and_matches_any_case() {
        for shell_type in [None, Some("ClaudeCode"), Some(" claudecode "), Some("Agno")] {
            assert_eq!(Agent::for_shell_type(shell_type), Ok(Agent::ClaudeCode));
        }
    }

    #[test]
    fn codex_in_any_spelling_is_not_supported_yet() {
        for shell_type in ["Codex", "CodeX", " codex "] {
            assert_eq!(
                Agent::for_shell_type(Some(shell_type)),
                Err(UnsupportedAgent::Codex)
            );
        }
        assert!(UnsupportedAgent::Codex
            .to_string()
            .starts_with("Codex bots are not supported on this device yet;"));
    }
}
