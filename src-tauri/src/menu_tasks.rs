//! The task parts of the tray menu: each running or waiting task as a submenu of what can be
//! done with it (Stop, Open in Wegent, Open folder), and Recent, the tasks that finished lately.
//! Pure, like the rest of the menu model.

use std::time::{Duration, SystemTime};

use wegent_executor::status::{DeviceStatus, FinishedTask, QueuedTask, RunningTask};

use crate::menu_action::{MenuAction, TurnRef};
use crate::menu_ids as id;
use crate::menu_model::{truncate, Entry};

/// "Running tasks (N)": a submenu per running task, then one per waiting task.
pub fn tasks_submenu(status: &DeviceStatus, now: SystemTime) -> Entry {
    let slots = &status.slots;
    let mut children: Vec<Entry> = slots.running.iter().map(|t| running(t, now)).collect();
    children.extend(slots.waiting.iter().map(waiting));
    if children.is_empty() {
        children.push(Entry::item(id::NO_TASKS, "No running tasks", false));
    }
    let text = match slots.waiting.len() {
        0 => format!("Running tasks ({})", slots.running.len()),
        n => format!("Running tasks ({}) · {n} waiting", slots.running.len()),
    };
    Entry::Submenu {
        id: id::TASKS.to_owned(),
        text,
        enabled: true,
        children,
    }
}

fn running(task: &RunningTask, now: SystemTime) -> Entry {
    let turn = TurnRef {
        task_id: task.task_id,
        subtask_id: task.subtask_id,
    };
    let mut children = common_actions(turn);
    // Without a folder (it could not be made) there is nothing to open.
    children.push(Entry::item(
        &MenuAction::OpenTaskFolder(turn).id(),
        "Open folder",
        task.folder.is_some(),
    ));
    Entry::Submenu {
        id: format!("{}{}.{}", id::TASK_PREFIX, task.task_id, task.subtask_id),
        text: task_line(task, now),
        enabled: true,
        children,
    }
}

fn waiting(task: &QueuedTask) -> Entry {
    let turn = TurnRef {
        task_id: task.task_id,
        subtask_id: task.subtask_id,
    };
    Entry::Submenu {
        id: format!("{}{}.{}", id::QUEUED_PREFIX, task.task_id, task.subtask_id),
        text: format!(
            "Waiting · {} · {}",
            task.agent.name(),
            title(&task.title, task.task_id)
        ),
        enabled: true,
        // A waiting task has no folder yet: it is chosen when the task starts.
        children: common_actions(turn),
    }
}

/// What every task in the menu offers, running or waiting.
fn common_actions(turn: TurnRef) -> Vec<Entry> {
    vec![
        Entry::item(&MenuAction::StopTask(turn).id(), "Stop", true),
        Entry::item(&MenuAction::OpenTaskPage(turn).id(), "Open in Wegent", true),
    ]
}

/// A running task's line: agent, title, project folder and time so far.
pub fn task_line(task: &RunningTask, now: SystemTime) -> String {
    let elapsed = now.duration_since(task.started_at).unwrap_or_default();
    let title = title(&task.title, task.task_id);
    // The agent first: with Claude Code and Codex tasks side by side, it tells them apart.
    let agent = task.agent.name();
    match &task.project {
        Some(project) => format!(
            "{agent} · {title} · {} — {}",
            truncate(project, 24),
            clock(elapsed)
        ),
        None => format!("{agent} · {title} — {}", clock(elapsed)),
    }
}

fn title(title: &str, task_id: i64) -> String {
    if title.trim().is_empty() {
        format!("Task {task_id}")
    } else {
        truncate(title, 48)
    }
}

/// `m:ss` under an hour, `h:mm:ss` beyond.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// "Recent": the tasks that finished lately, newest first; a click opens one in Wegent.
pub fn recent_submenu(status: &DeviceStatus, now: SystemTime) -> Entry {
    let mut children: Vec<Entry> = status
        .recent
        .iter()
        .map(|t| {
            Entry::item(
                &MenuAction::OpenRecentTask { task_id: t.task_id }.id(),
                recent_line(t, now),
                true,
            )
        })
        .collect();
    if children.is_empty() {
        children.push(Entry::item(id::NO_RECENT, "No finished tasks yet", false));
    }
    Entry::Submenu {
        id: id::RECENT.to_owned(),
        text: "Recent".to_owned(),
        enabled: true,
        children,
    }
}

/// E.g. `Cancelled · Fix the build · 5 min ago`: the end in words (not by an icon alone).
pub fn recent_line(task: &FinishedTask, now: SystemTime) -> String {
    format!(
        "{} · {} · {}",
        task.end.label(),
        title(&task.title, task.task_id),
        wegent_executor::recent::ended_ago(task, now)
    )
}

#[cfg(test)]
#[path = "menu_tasks_tests.rs"]
mod tests;
