use super::*;
use std::path::PathBuf;

use wegent_executor::status::Connection;
use wegent_executor::status::TaskEnd;
use wegent_executor::task::agent::AgentKind;

use crate::app_settings::AppSettings;
use crate::menu_model::{build, MenuModel, ShellState};
use crate::test_support::{at, status, task};

fn shell(settings: &AppSettings) -> ShellState<'_> {
    ShellState {
        settings,
        keychain_problem: None,
        server_configured: true,
        demo_running: false,
        quit_pending: false,
        version: "0.1.0",
    }
}

/// `(text, enabled, action)` of the children of submenu `wanted`.
fn children(model: &MenuModel, wanted: &str) -> Vec<(String, bool, Option<MenuAction>)> {
    match model.find(wanted) {
        Some(Entry::Submenu { children, .. }) => children
            .iter()
            .map(|c| match c {
                Entry::Item { id, text, enabled }
                | Entry::Check {
                    id, text, enabled, ..
                } => (text.clone(), *enabled, MenuAction::parse(id)),
                Entry::Submenu { id, text, .. } => (text.clone(), true, MenuAction::parse(id)),
                Entry::Separator => ("-".into(), false, None),
            })
            .collect(),
        other => panic!("no submenu {wanted}: {other:?}"),
    }
}

fn waiting_task(task_id: i64, title: &str) -> QueuedTask {
    QueuedTask {
        task_id,
        subtask_id: task_id * 10,
        title: title.into(),
        agent: AgentKind::Codex,
    }
}

#[test]
fn a_running_task_offers_stop_open_in_wegent_and_its_folder() {
    let settings = AppSettings::default();
    let mut s = status(Connection::Online, 5, 0);
    let mut t = task(7, "Fix the login bug", at(1000));
    t.folder = Some(PathBuf::from("/home/u/code/app"));
    s.slots.running = vec![t, task(8, "No folder", at(1000))];
    let m = build(&s, &shell(&settings), at(1060));
    let turn = TurnRef {
        task_id: 7,
        subtask_id: 70,
    };
    assert_eq!(
        children(&m, "task.7.70"),
        [
            ("Stop".to_owned(), true, Some(MenuAction::StopTask(turn))),
            (
                "Open in Wegent".to_owned(),
                true,
                Some(MenuAction::OpenTaskPage(turn))
            ),
            (
                "Open folder".to_owned(),
                true,
                Some(MenuAction::OpenTaskFolder(turn))
            ),
        ]
    );
    let no_folder = children(&m, "task.8.80");
    assert_eq!(no_folder[2].0, "Open folder");
    assert!(!no_folder[2].1, "nothing to open without a folder");
}

#[test]
fn waiting_tasks_follow_the_running_ones_with_stop_and_open() {
    let settings = AppSettings::default();
    let mut s = status(Connection::Online, 1, 1);
    s.slots.waiting = vec![waiting_task(4, "Later"), waiting_task(5, "")];
    s.slots.queued = 2;
    let m = build(&s, &shell(&settings), at(1060));
    let lines: Vec<String> = children(&m, id::TASKS).into_iter().map(|c| c.0).collect();
    assert_eq!(
        lines,
        [
            "Claude Code · Task 1 — 1:00",
            "Waiting · Codex · Later",
            "Waiting · Codex · Task 5"
        ]
    );
    match m.find(id::TASKS) {
        Some(Entry::Submenu { text, .. }) => assert_eq!(text, "Running tasks (1) · 2 waiting"),
        other => panic!("{other:?}"),
    }
    let turn = TurnRef {
        task_id: 4,
        subtask_id: 40,
    };
    assert_eq!(
        children(&m, "queued.4.40"),
        [
            ("Stop".to_owned(), true, Some(MenuAction::StopTask(turn))),
            (
                "Open in Wegent".to_owned(),
                true,
                Some(MenuAction::OpenTaskPage(turn))
            ),
        ]
    );
}

#[test]
fn recent_lists_the_end_and_when_and_opens_the_task() {
    let settings = AppSettings::default();
    let mut s = status(Connection::Online, 5, 0);
    let m = build(&s, &shell(&settings), at(2000));
    assert_eq!(
        children(&m, id::RECENT),
        [("No finished tasks yet".to_owned(), false, None)]
    );
    s.recent = vec![
        FinishedTask {
            task_id: 9,
            title: "Stopped one".into(),
            end: TaskEnd::Cancelled,
            ended_at: at(9990),
        },
        FinishedTask {
            task_id: 8,
            title: "Broke".into(),
            end: TaskEnd::Failed,
            ended_at: at(9700),
        },
        FinishedTask {
            task_id: 7,
            title: "Done".into(),
            end: TaskEnd::Completed,
            ended_at: at(10_000 - 2 * 3600),
        },
    ];
    let m = build(&s, &shell(&settings), at(10_000));
    assert_eq!(
        children(&m, id::RECENT),
        [
            (
                "Cancelled · Stopped one · just now".to_owned(),
                true,
                Some(MenuAction::OpenRecentTask { task_id: 9 })
            ),
            (
                "Failed · Broke · 5 min ago".to_owned(),
                true,
                Some(MenuAction::OpenRecentTask { task_id: 8 })
            ),
            (
                "Completed · Done · 2 h ago".to_owned(),
                true,
                Some(MenuAction::OpenRecentTask { task_id: 7 })
            ),
        ]
    );
}

#[test]
fn time_passing_keeps_the_shape_a_new_finished_task_does_not() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut s = status(Connection::Online, 5, 0);
    s.recent = vec![FinishedTask {
        task_id: 1,
        title: "a".into(),
        end: TaskEnd::Completed,
        ended_at: at(1000),
    }];
    let a = build(&s, &sh, at(1010));
    let b = build(&s, &sh, at(1600));
    assert_ne!(a, b, "'just now' became '10 min ago'");
    assert_eq!(a.shape(), b.shape(), "a text changes in place");
    s.recent.insert(
        0,
        FinishedTask {
            task_id: 2,
            title: "b".into(),
            end: TaskEnd::Failed,
            ended_at: at(1600),
        },
    );
    assert_ne!(build(&s, &sh, at(1600)).shape(), b.shape());
}

#[test]
fn paused_says_so_in_the_header_and_checks_the_switch() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut s = status(Connection::Online, 5, 1);
    let pause = MenuAction::TogglePause.id();
    let checked = |m: &MenuModel| match m.find(&pause) {
        Some(Entry::Check {
            checked, enabled, ..
        }) => (*checked, *enabled),
        other => panic!("{other:?}"),
    };
    let m = build(&s, &sh, at(2000));
    assert_eq!(checked(&m), (false, true));
    s.paused = true;
    let m = build(&s, &sh, at(2000));
    assert_eq!(m.header, "⏸️ Paused · 1/5 slots");
    assert_eq!(checked(&m), (true, true));
    // Busy or not, paused is what the header says first.
    let mut full = status(Connection::Online, 1, 1);
    full.paused = true;
    assert_eq!(build(&full, &sh, at(2000)).header, "⏸️ Paused · 1/1 slots");
    // Nothing to ask before a server is configured.
    let unconfigured = ShellState {
        server_configured: false,
        ..shell(&settings)
    };
    assert!(!checked(&build(&s, &unconfigured, at(2000))).1);
}
