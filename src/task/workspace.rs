//! A task's two places on disk: its working directory (the cwd, chosen by [`super::workdir`],
//! often the user's own project folder) and the device's private state for it,
//! `<executor home>/tasks/<task_id>/` (mode 0700):
//!
//! ```text
//! tasks/<task_id>/
//!   claude/            CLAUDE_CONFIG_DIR: transcripts (needed by --resume), claude/skills/
//!   codex/             CODEX_HOME of a Codex bot's runs: its threads (needed to resume)
//!   tmp/               TMPDIR of the CLI and its tools, emptied after every run
//!   session-<bot id>   the Claude session to resume (`session-id` without a bot id)
//!   session-codex.<bot id>  the Codex thread to resume (`session-codex` without a bot id)
//!   system-prompt.md
//!   mcp.json           (0600)
//!   attachments/<subtask_id>/<file>
//!   task.json          see [`super::record::TaskRecord`]
//! ```
//!
//! Nothing of this goes into the cwd: a project folder stays exactly the user's.

use std::path::{Path, PathBuf};

use super::agent::AgentKind;

/// `<home>/tasks`: one private dir per task.
pub const TASKS_DIR: &str = "tasks";
const SESSION_FILE_PREFIX: &str = "session-";
/// The session file when the payload names no bot.
const DEFAULT_SESSION_FILE: &str = "session-id";
/// Codex threads: `.` cannot occur in a bot id, so no Claude session file has this name.
const CODEX_THREAD_FILE: &str = "session-codex";

/// `<home>/tasks/<task_id>/`.
pub fn private_dir(home: &Path, task_id: i64) -> PathBuf {
    home.join(TASKS_DIR).join(task_id.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDirs {
    /// The working directory of the CLI, its tools and the hook.
    pub cwd: PathBuf,
    pub claude_config: PathBuf,
    /// `CODEX_HOME` (made by the Codex launch only; Claude tasks never have one).
    pub codex_home: PathBuf,
    pub tmp: PathBuf,
    private: PathBuf,
}

impl TaskDirs {
    pub fn new(home: &Path, task_id: i64, cwd: PathBuf) -> Self {
        let private = private_dir(home, task_id);
        Self {
            cwd,
            claude_config: private.join("claude"),
            codex_home: private.join("codex"),
            tmp: private.join("tmp"),
            private,
        }
    }

    /// Create the private dir (0700) and its `claude/` and `tmp/`. The cwd is prepared
    /// separately ([`super::workdir::prepare`]).
    pub fn create_private(&self) -> std::io::Result<()> {
        for dir in [&self.private, &self.claude_config, &self.tmp] {
            create_private_dir(dir)?;
        }
        Ok(())
    }

    pub fn private(&self) -> &Path {
        &self.private
    }

    pub fn system_prompt_file(&self) -> PathBuf {
        self.private.join("system-prompt.md")
    }

    /// The CLI's `--mcp-config` file (it holds header secrets: write it 0600).
    pub fn mcp_config_file(&self) -> PathBuf {
        self.private.join("mcp.json")
    }

    /// Where the skills `agent` loads live: inside its config dir (Claude Code reads
    /// `$CLAUDE_CONFIG_DIR/skills/<name>/SKILL.md`, Codex `$CODEX_HOME/skills/<name>/SKILL.md`).
    pub fn skills_dir(&self, agent: AgentKind) -> PathBuf {
        match agent {
            AgentKind::Claude => self.claude_config.join("skills"),
            AgentKind::Codex => self.codex_home.join("skills"),
        }
    }

    /// Downloaded attachments of one (user) subtask.
    pub fn attachments_dir(&self, subtask_id: i64) -> PathBuf {
        self.private
            .join("attachments")
            .join(subtask_id.to_string())
    }

    /// The Claude session to `--resume`: the bot's own, else the task's bot-less one.
    pub fn load_session_id(&self, bot_id: Option<&str>) -> Option<String> {
        [
            session_file(&self.private, bot_id),
            session_file(&self.private, None),
        ]
        .iter()
        .find_map(|file| read_id(file))
    }

    pub fn save_session_id(&self, bot_id: Option<&str>, id: &str) -> std::io::Result<()> {
        std::fs::write(session_file(&self.private, bot_id), id)
    }

    /// The Codex thread to resume: the bot's own, else the task's bot-less one.
    pub fn load_thread_id(&self, bot_id: Option<&str>) -> Option<String> {
        [
            thread_file(&self.private, bot_id),
            thread_file(&self.private, None),
        ]
        .iter()
        .find_map(|file| read_id(file))
    }

    pub fn save_thread_id(&self, bot_id: Option<&str>, id: &str) -> std::io::Result<()> {
        std::fs::write(thread_file(&self.private, bot_id), id)
    }

    /// Forget every saved session of the task (`new_session`, a lost session, close).
    pub fn forget_sessions(&self) {
        forget_sessions(&self.private);
    }

    /// Empty the temp dir after a run: the CLI leaves sockets and probe dirs behind when stopped.
    pub fn clean_tmp(&self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// A saved id, if it is one a CLI may get as an argument.
fn read_id(file: &Path) -> Option<String> {
    let id = std::fs::read_to_string(file).ok()?;
    let id = id.trim();
    (!id.is_empty() && id.len() <= 128 && !id.starts_with('-')).then(|| id.to_owned())
}

fn thread_file(private: &Path, bot_id: Option<&str>) -> PathBuf {
    match bot_id {
        Some(bot) => private.join(format!("{CODEX_THREAD_FILE}.{bot}")),
        None => private.join(CODEX_THREAD_FILE),
    }
}

fn session_file(private: &Path, bot_id: Option<&str>) -> PathBuf {
    match bot_id {
        Some(bot) => private.join(format!("{SESSION_FILE_PREFIX}{bot}")),
        None => private.join(DEFAULT_SESSION_FILE),
    }
}

/// Remove every `session-*` file in a task's private dir.
pub fn forget_sessions(private: &Path) {
    let Ok(entries) = std::fs::read_dir(private) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(SESSION_FILE_PREFIX)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `mkdir -p` whose new folders are the user's only (0700) from the moment they exist, whatever
/// the umask (no window in which another user could open them); an existing one is tightened.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(path)?;
    restrict(path, 0o700);
    Ok(())
}

/// Private files hold transcripts and secrets: the user's only.
pub fn restrict(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_state_sits_under_the_home_not_the_cwd() {
        let home = tempfile::tempdir().unwrap();
        let cwd = home.path().join("project");
        let dirs = TaskDirs::new(home.path(), 42, cwd.clone());
        dirs.create_private().unwrap();
        assert_eq!(dirs.cwd, cwd);
        assert!(!cwd.exists(), "the cwd is not created here");
        assert_eq!(dirs.private(), home.path().join("tasks/42"));
        for path in [
            dirs.claude_config.clone(),
            dirs.tmp.clone(),
            dirs.system_prompt_file(),
            dirs.mcp_config_file(),
            dirs.attachments_dir(11),
            dirs.skills_dir(AgentKind::Claude),
            dirs.skills_dir(AgentKind::Codex),
        ] {
            assert!(path.starts_with(dirs.private()), "{}", path.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dirs.private())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn sessions_are_per_bot_reject_flag_like_values_and_are_forgotten_together() {
        let home = tempfile::tempdir().unwrap();
        let dirs = TaskDirs::new(home.path(), 42, home.path().join("cwd"));
        dirs.create_private().unwrap();
        assert_eq!(dirs.load_session_id(None), None);
        dirs.save_session_id(None, "abc-123").unwrap();
        assert_eq!(dirs.load_session_id(None).as_deref(), Some("abc-123"));
        // A bot without its own session falls back to the task's bot-less one.
        assert_eq!(dirs.load_session_id(Some("34")).as_deref(), Some("abc-123"));
        dirs.save_session_id(Some("34"), "bot-34-session").unwrap();
        assert_eq!(
            dirs.load_session_id(Some("34")).as_deref(),
            Some("bot-34-session")
        );
        assert!(dirs.private().join("session-34").is_file());
        dirs.save_session_id(None, "--dangerous").unwrap();
        assert_eq!(dirs.load_session_id(None), None);
        dirs.forget_sessions();
        assert_eq!(dirs.load_session_id(Some("34")), None);
        assert_eq!(dirs.load_session_id(None), None);
    }

    #[test]
    fn codex_threads_are_apart_from_claude_sessions_and_forgotten_with_them() {
        let home = tempfile::tempdir().unwrap();
        let dirs = TaskDirs::new(home.path(), 42, home.path().join("cwd"));
        dirs.create_private().unwrap();
        assert!(dirs.codex_home.starts_with(dirs.private()));
        dirs.save_session_id(Some("7"), "claude-session").unwrap();
        dirs.save_thread_id(Some("7"), "codex-thread").unwrap();
        assert_eq!(
            dirs.load_thread_id(Some("7")).as_deref(),
            Some("codex-thread")
        );
        assert_eq!(
            dirs.load_session_id(Some("7")).as_deref(),
            Some("claude-session")
        );
        // A bot without its own thread falls back to the task's bot-less one.
        dirs.save_thread_id(None, "task-thread").unwrap();
        assert_eq!(
            dirs.load_thread_id(Some("8")).as_deref(),
            Some("task-thread")
        );
        dirs.forget_sessions();
        assert_eq!(dirs.load_thread_id(Some("7")), None);
        assert_eq!(dirs.load_thread_id(None), None);
    }
}
