//! Removing what a task leaves on disk: its private state `<home>/tasks/<task_id>/`, and its
//! working directory only when the device made it as a scratch dir (`W/<task_id>`, including a
//! clone in `W/<task_id>/<repo>`). A project folder (`project_workspace_path`) is never touched.
//!
//! Triggers: `task:close-session` (once the task's turns have stopped) and a retention sweep
//! (tasks last used longer ago than `task_retention`), at start and periodically. The decisions
//! are pure ([`scratch_dir_to_remove`], [`expired`]); [`remove_task`] and [`sweep`] do the I/O.
//! Removal never follows a symbolic link: a link inside a scratch dir (even to the user's home)
//! is removed as a link.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::record::TaskRecord;
use super::workspace::{private_dir, TASKS_DIR};

/// The scratch dir to remove with the task, if the record says the device created the cwd and
/// the cwd is `W/<task_id>` or directly inside it. Anything else (a project folder, a record
/// pointing elsewhere) is left alone.
pub fn scratch_dir_to_remove(
    record: &TaskRecord,
    workspace_root: &Path,
    task_id: i64,
) -> Option<PathBuf> {
    if !record.created_by_device {
        return None;
    }
    let scratch = workspace_root.join(task_id.to_string());
    let cwd = record.cwd.as_path();
    (cwd == scratch || cwd.parent() == Some(scratch.as_path())).then_some(scratch)
}

/// Whether a task last used at `last_used` (Unix seconds) is past `retention` at `now`.
pub fn expired(last_used: u64, now: SystemTime, retention: Duration) -> bool {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.saturating_sub(last_used) > retention.as_secs()
}

/// What [`remove_task`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub private: bool,
    pub scratch: Option<PathBuf>,
}

/// Remove a task's private state, and its scratch cwd when the device created it.
pub fn remove_task(home: &Path, workspace_root: &Path, task_id: i64) -> std::io::Result<Removed> {
    let private = private_dir(home, task_id);
    let record = match TaskRecord::load(&private) {
        Ok(record) => record,
        // Unreadable: still remove the private state, never a folder we cannot vouch for.
        Err(e) => {
            tracing::warn!(task_id, error = %e, "unreadable task record: keeping the task's working folder");
            None
        }
    };
    let mut removed = Removed::default();
    if let Some(scratch) = record
        .as_ref()
        .and_then(|r| scratch_dir_to_remove(r, workspace_root, task_id))
    {
        if remove_path(&scratch)? {
            removed.scratch = Some(scratch);
        }
    }
    removed.private = remove_path(&private)?;
    Ok(removed)
}

/// Remove `path` without following links: a link is unlinked, a folder removed with its
/// contents (links inside are unlinked, not followed). `false` when nothing was there.
fn remove_path(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).map(|()| true),
        Ok(_) => std::fs::remove_file(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Remove every task under `<home>/tasks/` last used longer than `retention` ago, except the
/// `active` ones. A task without a record counts from its private dir's modification time.
/// Returns the task ids removed. Cheap: one small file read per task.
pub fn sweep(
    home: &Path,
    workspace_root: &Path,
    retention: Duration,
    now: SystemTime,
    active: &HashSet<i64>,
) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(home.join(TASKS_DIR)) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(task_id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        if active.contains(&task_id) {
            continue;
        }
        let last_used = match TaskRecord::load(&entry.path()) {
            Ok(Some(record)) => record.last_used,
            _ => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(u64::MAX, |d| d.as_secs()),
        };
        if !expired(last_used, now, retention) {
            continue;
        }
        match remove_task(home, workspace_root, task_id) {
            Ok(_) => removed.push(task_id),
            Err(e) => {
                tracing::warn!(task_id, error = %e, "could not remove an expired task's folders")
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cwd: &str, created_by_device: bool) -> TaskRecord {
        TaskRecord {
            cwd: cwd.into(),
            created_by_device,
            last_used: 0,
        }
    }

    #[test]
    fn only_the_devices_own_scratch_dir_is_removed() {
        let w = Path::new("/w");
        let scratch = Some(PathBuf::from("/w/7"));
        assert_eq!(scratch_dir_to_remove(&record("/w/7", true), w, 7), scratch);
        assert_eq!(
            scratch_dir_to_remove(&record("/w/7/repo", true), w, 7),
            scratch
        );
        // A project folder, even one that looks like a scratch dir.
        assert_eq!(scratch_dir_to_remove(&record("/w/7", false), w, 7), None);
        assert_eq!(
            scratch_dir_to_remove(&record("/home/u/code", false), w, 7),
            None
        );
        // A record that claims a folder elsewhere, or another task's.
        assert_eq!(scratch_dir_to_remove(&record("/home/u", true), w, 7), None);
        assert_eq!(scratch_dir_to_remove(&record("/w/8", true), w, 7), None);
        assert_eq!(scratch_dir_to_remove(&record("/w/7/a/b", true), w, 7), None);
        assert_eq!(scratch_dir_to_remove(&record("/w", true), w, 7), None);
    }

    #[test]
    fn expiry_counts_whole_seconds_past_the_retention() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let day = Duration::from_secs(1_000);
        assert!(!expired(9_000, now, day));
        assert!(expired(8_999, now, day));
        assert!(
            !expired(20_000, now, day),
            "a clock set back keeps the task"
        );
    }
}
