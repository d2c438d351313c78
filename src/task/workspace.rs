//! Where a task lives on disk: `<home>/workspace/<task_id>/`.
//!
//! The task directory is Claude's working directory. The device's own per-task state (Claude's
//! config dir with the session transcripts, the temp dir, the saved session id, the system
//! prompt) sits in a hidden `.wegent-device/` inside it, so everything a task leaves behind,
//! including anything derived from its secrets, stays in one directory.

use std::path::{Path, PathBuf};

const PRIVATE_DIR: &str = ".wegent-device";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDirs {
    pub workspace: PathBuf,
    pub claude_config: PathBuf,
    pub tmp: PathBuf,
    private: PathBuf,
}

impl TaskDirs {
    pub fn new(home: &Path, task_id: i64) -> Self {
        let workspace = home.join("workspace").join(task_id.to_string());
        let private = workspace.join(PRIVATE_DIR);
        Self {
            claude_config: private.join("claude"),
            tmp: private.join("tmp"),
            workspace,
            private,
        }
    }

    pub fn create(&self) -> std::io::Result<()> {
        for dir in [&self.workspace, &self.claude_config, &self.tmp] {
            std::fs::create_dir_all(dir)?;
        }
        restrict(&self.private);
        Ok(())
    }

    pub fn system_prompt_file(&self) -> PathBuf {
        self.private.join("system-prompt.md")
    }

    /// The Claude session of the task's previous turn, for `--resume`.
    pub fn load_session_id(&self) -> Option<String> {
        let id = std::fs::read_to_string(self.private.join("session-id")).ok()?;
        let id = id.trim();
        (!id.is_empty() && id.len() <= 128 && !id.starts_with('-')).then(|| id.to_owned())
    }

    pub fn save_session_id(&self, id: &str) -> std::io::Result<()> {
        std::fs::write(self.private.join("session-id"), id)
    }

    pub fn forget_session(&self) {
        let _ = std::fs::remove_file(self.private.join("session-id"));
    }

    /// Empty the temp dir after a run: the CLI leaves sockets and probe dirs behind when stopped.
    pub fn clean_tmp(&self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// The private dir holds transcripts: readable by the user only.
fn restrict(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_round_trips_and_rejects_flag_like_values() {
        let home = tempfile::tempdir().unwrap();
        let dirs = TaskDirs::new(home.path(), 42);
        dirs.create().unwrap();
        assert!(dirs.workspace.ends_with("workspace/42"));
        assert_eq!(dirs.load_session_id(), None);
        dirs.save_session_id("abc-123").unwrap();
        assert_eq!(dirs.load_session_id().as_deref(), Some("abc-123"));
        dirs.save_session_id("--dangerous").unwrap();
        assert_eq!(dirs.load_session_id(), None);
    }
}
