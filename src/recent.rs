//! The device's recently finished tasks ([`DeviceStatus::recent`](crate::status::DeviceStatus)),
//! kept from the core's task events ([`record`], pure: the caller passes the clock) and saved in
//! the home ([`load`], [`save`]), so the tray's *Recent* survives a restart of the connection,
//! the app or the machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::status::{DeviceEvent, FinishedTask, TaskEnd};

/// The saved list, in the device's home.
const RECENT_FILE: &str = "recent.json";

/// What [`save`] writes: task ids only mean something on the server they came from.
#[derive(Serialize, Deserialize)]
struct Saved {
    server: String,
    tasks: Vec<FinishedTask>,
}

/// How many finished tasks the status keeps.
pub const RECENT_TASKS: usize = 10;

/// Record `event` if a task finished with it: newest first, one entry per task (a follow-up's
/// end replaces the task's earlier one), at most [`RECENT_TASKS`]. Returns whether `recent`
/// changed.
pub fn record(recent: &mut Vec<FinishedTask>, event: &DeviceEvent, now: SystemTime) -> bool {
    let (task_id, title, end) = match event {
        DeviceEvent::TaskCompleted { task_id, title } => (*task_id, title, TaskEnd::Completed),
        DeviceEvent::TaskFailed { task_id, title, .. } => (*task_id, title, TaskEnd::Failed),
        DeviceEvent::TaskCancelled { task_id, title } => (*task_id, title, TaskEnd::Cancelled),
        DeviceEvent::TaskStarted { .. } | DeviceEvent::Registered => return false,
    };
    recent.retain(|t| t.task_id != task_id);
    recent.insert(
        0,
        FinishedTask {
            task_id,
            title: title.clone(),
            end,
            ended_at: now,
        },
    );
    recent.truncate(RECENT_TASKS);
    true
}

/// How long ago `task` ended, as the tray and the CLI say it: `just now`, `5 min ago`. Coarse
/// on purpose: the tray's menu is redrawn every second, and "just now" does not tick.
pub fn ended_ago(task: &FinishedTask, now: SystemTime) -> String {
    match now.duration_since(task.ended_at).unwrap_or_default() {
        d if d < Duration::from_secs(60) => "just now".to_owned(),
        d => format!("{} ago", crate::token_expiry::human_duration(d)),
    }
}

pub fn file(home: &Path) -> PathBuf {
    home.join(RECENT_FILE)
}

/// The list saved by an earlier run against `server`; empty when there is none, when it was
/// saved for another server (its task ids would open the wrong tasks), or when it cannot be read
/// (logged: a lost list must not stop the device).
pub fn load(home: &Path, server: &str) -> Vec<FinishedTask> {
    let path = file(home);
    let saved = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Saved>(&bytes).map_err(std::io::Error::from),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => Err(e),
    };
    match saved {
        Ok(saved) if saved.server == server => {
            let mut tasks = saved.tasks;
            tasks.truncate(RECENT_TASKS);
            tasks
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the recent tasks; starting with none");
            Vec::new()
        }
    }
}

/// Save `tasks` for `server`: through a temporary file and a rename, so a crash never leaves
/// half a list; readable by the user only (task titles can be private).
pub fn save(home: &Path, server: &str, tasks: &[FinishedTask]) -> std::io::Result<()> {
    let saved = Saved {
        server: server.to_owned(),
        tasks: tasks.to_vec(),
    };
    let path = file(home);
    let tmp = home.join(format!(".{RECENT_FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&tmp)?, &serde_json::to_vec(&saved)?)?;
        std::fs::rename(&tmp, &path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn completed(task_id: i64) -> DeviceEvent {
        DeviceEvent::TaskCompleted {
            task_id,
            title: format!("task {task_id}"),
        }
    }

    #[test]
    fn newest_first_each_end_state() {
        let mut recent = Vec::new();
        assert!(record(&mut recent, &completed(1), at(10)));
        let failed = DeviceEvent::TaskFailed {
            task_id: 2,
            title: "two".into(),
            reason: "boom".into(),
        };
        assert!(record(&mut recent, &failed, at(20)));
        let cancelled = DeviceEvent::TaskCancelled {
            task_id: 3,
            title: "three".into(),
        };
        assert!(record(&mut recent, &cancelled, at(30)));
        let ends: Vec<(i64, TaskEnd, SystemTime)> = recent
            .iter()
            .map(|t| (t.task_id, t.end, t.ended_at))
            .collect();
        assert_eq!(
            ends,
            [
                (3, TaskEnd::Cancelled, at(30)),
                (2, TaskEnd::Failed, at(20)),
                (1, TaskEnd::Completed, at(10)),
            ]
        );
        assert_eq!(recent[1].title, "two");
    }

    #[test]
    fn a_follow_up_replaces_its_tasks_entry() {
        let mut recent = Vec::new();
        record(&mut recent, &completed(1), at(10));
        record(&mut recent, &completed(2), at(20));
        record(&mut recent, &completed(1), at(30));
        let ids: Vec<i64> = recent.iter().map(|t| t.task_id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(recent[0].ended_at, at(30));
    }

    #[test]
    fn keeps_the_last_ten() {
        let mut recent = Vec::new();
        for id in 1..=15 {
            record(&mut recent, &completed(id), at(id as u64));
        }
        let ids: Vec<i64> = recent.iter().map(|t| t.task_id).collect();
        assert_eq!(ids, (6..=15).rev().collect::<Vec<_>>());
    }

    #[test]
    fn starts_and_registrations_are_not_endings() {
        let mut recent = Vec::new();
        let started = DeviceEvent::TaskStarted {
            task_id: 1,
            title: "t".into(),
            agent: crate::task::agent::AgentKind::Claude,
        };
        assert!(!record(&mut recent, &started, at(1)));
        assert!(!record(&mut recent, &DeviceEvent::Registered, at(1)));
        assert!(recent.is_empty());
    }

    #[test]
    fn the_saved_list_comes_back_for_its_server_only() {
        let home = tempfile::tempdir().unwrap();
        let server = "https://wegent.example.com";
        assert!(load(home.path(), server).is_empty(), "nothing saved yet");
        let mut recent = Vec::new();
        record(&mut recent, &completed(1), at(10));
        record(&mut recent, &completed(2), at(20));
        save(home.path(), server, &recent).unwrap();
        assert_eq!(load(home.path(), server), recent);
        assert!(
            load(home.path(), "https://other.example.com").is_empty(),
            "task ids of another server would open the wrong tasks"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file(home.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(home.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }

    #[test]
    fn an_unreadable_list_starts_empty() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(file(home.path()), "{not json").unwrap();
        assert!(load(home.path(), "https://wegent.example.com").is_empty());
    }
}
