//! `task.json` in a task's private dir: where the task ran, whether that folder is the device's
//! to remove, and when the task was last used. Cleanup (close-session, retention) reads it;
//! the runner writes it at the start of every turn.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const RECORD_FILE: &str = "task.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's working directory.
    pub cwd: PathBuf,
    /// `true` only for the device's scratch dir `W/<task_id>` (and a clone inside it): the
    /// cwd may be removed with the task. A project folder is never removed.
    pub created_by_device: bool,
    /// Unix seconds of the last turn's start.
    pub last_used: u64,
}

impl TaskRecord {
    pub fn new(cwd: PathBuf, created_by_device: bool) -> Self {
        Self {
            cwd,
            created_by_device,
            last_used: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    pub fn file(private_dir: &Path) -> PathBuf {
        private_dir.join(RECORD_FILE)
    }

    /// `Ok(None)` when the task has no record (never ran here, or ran before records existed).
    pub fn load(private_dir: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(Self::file(private_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write through a temp file and rename, so a crash never leaves half a record.
    pub fn save(&self, private_dir: &Path) -> std::io::Result<()> {
        let file = Self::file(private_dir);
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TaskRecord::load(dir.path()).unwrap(), None);
        let record = TaskRecord::new("/home/u/code/x".into(), false);
        assert!(record.last_used > 1_700_000_000);
        record.save(dir.path()).unwrap();
        assert_eq!(TaskRecord::load(dir.path()).unwrap(), Some(record));
        std::fs::write(TaskRecord::file(dir.path()), "{").unwrap();
        assert!(TaskRecord::load(dir.path()).is_err());
    }
}
