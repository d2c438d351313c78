//! The device's recently finished tasks ([`DeviceStatus::recent`](crate::status::DeviceStatus)),
//! kept from the core's task events. Pure: the caller passes the clock.

use std::time::SystemTime;

use crate::status::{DeviceEvent, FinishedTask, TaskEnd};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
}
