//! The agent seam: which coding agent runs a task, and what every agent shares.
//!
//! - [`Agent`]: chosen from the bot's shell type (pure).
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

impl Agent {
    /// The agent for `bot[0].shell_type`, compared trimmed and case-insensitively as Wegent's
    /// executor does (codex-cli.md §A.1). A missing or unknown shell type runs Claude Code: the
    /// device ran every task with it before it read this field.
    pub fn for_shell_type(shell_type: Option<&str>) -> Self {
        match shell_type.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("claudecode") | None => Agent::ClaudeCode,
            Some(_) => Agent::ClaudeCode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_is_the_default_and_matches_any_case() {
        for shell_type in [None, Some("ClaudeCode"), Some(" claudecode "), Some("Agno")] {
            assert_eq!(Agent::for_shell_type(shell_type), Agent::ClaudeCode);
        }
    }
}
