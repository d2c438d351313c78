use super::*;
use crate::app_settings::AppSettings;
use crate::test_support::{at, status, task};
use wegent_executor::task::agent::AgentKind;

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

fn text_of(model: &MenuModel, wanted: &str) -> String {
    match model.find(wanted) {
        Some(
            Entry::Item { text, .. } | Entry::Check { text, .. } | Entry::Submenu { text, .. },
        ) => text.clone(),
        other => panic!("no item {wanted}: {other:?}"),
    }
}

#[test]
fn headers_in_words() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let now = at(2000);
    assert_eq!(
        header(&status(Connection::Online, 5, 2), &sh, now),
        "🟢 Online · 2/5 slots"
    );
    let mut busy = status(Connection::Online, 5, 5);
    busy.slots.queued = 1;
    assert_eq!(header(&busy, &sh, now), "🟡 Busy · 5/5 slots (1 queued)");
    let offline = status(
        Connection::Offline {
            reason: "server unreachable".into(),
            retry_at: Some(at(2008)),
        },
        5,
        0,
    );
    assert_eq!(header(&offline, &sh, now), "🔴 Offline — retrying in 8 s");
    let mut expired = status(
        Connection::TokenRejected {
            message: "Invalid or expired token".into(),
        },
        5,
        0,
    );
    expired.token_expires_at = Some(at(1500));
    assert_eq!(
        header(&expired, &sh, now),
        "Token expired — paste a new one"
    );
    expired.token_expires_at = Some(at(5000));
    assert_eq!(
        header(&expired, &sh, now),
        "Token rejected — paste a new one"
    );
    assert_eq!(
        header(
            &status(Connection::Connecting { attempt: 3 }, 5, 0),
            &sh,
            now
        ),
        "🟠 Connecting… (attempt 3)"
    );
}

#[test]
fn countdown_rounds_up_and_never_shows_zero() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let s = status(
        Connection::Offline {
            reason: "x".into(),
            retry_at: Some(at(2000) + Duration::from_millis(7200)),
        },
        5,
        0,
    );
    assert_eq!(header(&s, &sh, at(2000)), "🔴 Offline — retrying in 8 s");
    assert_eq!(header(&s, &sh, at(2008)), "🔴 Offline — retrying now");
}

#[test]
fn unconfigured_app_offers_demo_and_token() {
    let settings = AppSettings::default();
    let mut sh = shell(&settings);
    sh.server_configured = false;
    let model = build(&status(Connection::NoToken, 5, 0), &sh, at(0));
    assert_eq!(model.header, "Not set up — try the demo or paste a token");
    assert!(model.find(id::DEMO).is_some());
    assert!(model.find(id::PASTE_TOKEN).is_some());
    // A configured, connected device does not push the demo.
    let sh = shell(&settings);
    assert!(build(&status(Connection::Online, 5, 0), &sh, at(0))
        .find(id::DEMO)
        .is_none());
}

#[test]
fn keychain_problem_is_said_plainly() {
    let settings = AppSettings::default();
    let mut sh = shell(&settings);
    sh.keychain_problem = Some("No keychain service is running: install gnome-keyring");
    let model = build(&status(Connection::NoToken, 5, 0), &sh, at(0));
    assert!(model.header.contains("Keychain unavailable"));
    assert_eq!(
        text_of(&model, id::DETAIL),
        "No keychain service is running: install gnome-keyring"
    );
}

#[test]
fn default_device_item_explains_why_it_is_disabled() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut s = status(Connection::Online, 5, 0);
    s.is_default = Some(true);
    let m = build(&s, &sh, at(0));
    assert_eq!(
        m.find(id::DEFAULT_DEVICE),
        Some(&Entry::check(
            id::DEFAULT_DEVICE,
            "⭐ Default device",
            true,
            true
        ))
    );
    assert_eq!(text_of(&m, id::DEVICE), "Linux - build-box ⭐");
    s.token_kind = Some(TokenKind::ApiKey);
    let m = build(&s, &sh, at(0));
    assert!(text_of(&m, id::DEFAULT_DEVICE).contains("API keys can't"));
    assert!(matches!(
        m.find(id::DEFAULT_DEVICE),
        Some(Entry::Check { enabled: false, .. })
    ));
    let off = status(
        Connection::Offline {
            reason: "x".into(),
            retry_at: None,
        },
        5,
        0,
    );
    assert!(text_of(&build(&off, &sh, at(0)), id::DEFAULT_DEVICE).contains("server unreachable"));
}

#[test]
fn running_tasks_show_title_and_elapsed() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut s = status(Connection::Online, 5, 0);
    s.slots.running = vec![task(7, "Fix the\nlogin bug", at(1000))];
    let m = build(&s, &sh, at(1000 + 125));
    assert_eq!(text_of(&m, id::TASKS), "Running tasks (1)");
    assert_eq!(
        text_of(&m, "task.7.70"),
        "Claude Code · Fix the login bug — 2:05"
    );
    let later = build(&s, &sh, at(1000 + 3725));
    assert_eq!(
        text_of(&later, "task.7.70"),
        "Claude Code · Fix the login bug — 1:02:05"
    );
}

#[test]
fn a_running_task_line_names_its_agent_and_project_folder() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut s = status(Connection::Online, 5, 0);
    let mut in_project = task(7, "Fix the login bug", at(1000));
    in_project.project = Some("myproj".into());
    in_project.agent = AgentKind::Codex;
    let mut long_name = task(8, "Add tests", at(1000));
    long_name.project = Some("a-very-long-project-folder-name-indeed".into());
    s.slots.running = vec![in_project, long_name, task(9, "Chat", at(1000))];
    let m = build(&s, &sh, at(1000 + 125));
    assert_eq!(
        text_of(&m, "task.7.70"),
        "Codex · Fix the login bug · myproj — 2:05"
    );
    assert_eq!(
        text_of(&m, "task.8.80"),
        "Claude Code · Add tests · a-very-long-project-fol… — 2:05"
    );
    assert_eq!(
        text_of(&m, "task.9.90"),
        "Claude Code · Chat — 2:05",
        "scratch dir: no folder"
    );
}

#[test]
fn slot_and_elapsed_changes_keep_the_shape_task_changes_do_not() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let a = build(&status(Connection::Online, 5, 1), &sh, at(2000));
    let b = build(&status(Connection::Online, 5, 1), &sh, at(2100));
    assert_ne!(a, b, "elapsed time changes a text");
    assert_eq!(a.shape(), b.shape());
    let mut busy = status(Connection::Online, 1, 1);
    busy.slots.queued = 3;
    assert_eq!(
        build(&busy, &sh, at(2000)).shape(),
        a.shape(),
        "header text only"
    );
    let c = build(&status(Connection::Online, 5, 2), &sh, at(2000));
    assert_ne!(a.shape(), c.shape(), "a new task adds an item");
}

#[test]
fn notification_switches_and_autostart_reflect_settings() {
    let mut settings = AppSettings {
        start_at_login: true,
        ..Default::default()
    };
    settings.notifications.set(NotifyKind::Connection, false);
    let sh = shell(&settings);
    let m = build(&status(Connection::Online, 5, 0), &sh, at(0));
    assert!(matches!(
        m.find(id::START_AT_LOGIN),
        Some(Entry::Check { checked: true, .. })
    ));
    assert!(matches!(
        m.find("notify.connection"),
        Some(Entry::Check { checked: false, .. })
    ));
    assert!(matches!(
        m.find("notify.task_failed"),
        Some(Entry::Check { checked: true, .. })
    ));
}

#[test]
fn quit_asks_for_confirmation_only_with_running_tasks() {
    let window = Duration::from_secs(10);
    assert_eq!(on_quit_click(0, None, at(5), window), QuitDecision::QuitNow);
    assert_eq!(
        on_quit_click(2, None, at(5), window),
        QuitDecision::AskToConfirm
    );
    assert_eq!(
        on_quit_click(2, Some(at(0)), at(5), window),
        QuitDecision::QuitNow
    );
    assert_eq!(
        on_quit_click(2, Some(at(0)), at(60), window),
        QuitDecision::AskToConfirm
    );
    let settings = AppSettings::default();
    let mut sh = shell(&settings);
    sh.quit_pending = true;
    let m = build(&status(Connection::Online, 5, 2), &sh, at(0));
    assert_eq!(
        text_of(&m, id::QUIT),
        "Quit and cancel 2 running tasks? Click again to confirm"
    );
}

#[test]
fn a_full_queue_is_said_in_the_header_and_a_line() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut full = status(Connection::Online, 5, 5);
    full.slots.queued = 100;
    full.slots.max_queued = 100;
    let model = build(&full, &sh, at(2000));
    assert_eq!(model.header, "🟡 Busy · 5/5 slots (100 queued, full)");
    assert_eq!(
        text_of(&model, id::QUEUE_FULL),
        "Queue full (100 waiting): new tasks fail until some finish"
    );
    full.slots.queued = 99;
    let model = build(&full, &sh, at(2000));
    assert_eq!(model.header, "🟡 Busy · 5/5 slots (99 queued)");
    assert!(model.find(id::QUEUE_FULL).is_none());
}

#[test]
fn an_unencrypted_connection_is_shown_as_a_warning_line() {
    let settings = AppSettings::default();
    let sh = shell(&settings);
    let mut s = status(Connection::Online, 5, 0);
    assert!(build(&s, &sh, at(2000)).find(id::INSECURE).is_none());
    s.insecure_transport = true;
    let model = build(&s, &sh, at(2000));
    assert!(
        text_of(&model, id::INSECURE).contains("Unencrypted connection"),
        "{model:?}"
    );
    // Also while offline: the token is sent on every reconnect attempt.
    s.connection = Connection::Offline {
        reason: "refused".into(),
        retry_at: None,
    };
    assert!(build(&s, &sh, at(2000)).find(id::INSECURE).is_some());
}

/// Every item a user can click maps to a [`MenuAction`], whatever the state (items that map to
/// none only inform, and are disabled).
#[test]
fn every_clickable_item_is_an_action() {
    fn leaves(entries: &[Entry], out: &mut Vec<(String, bool)>) {
        for e in entries {
            match e {
                Entry::Item { id, enabled, .. } | Entry::Check { id, enabled, .. } => {
                    out.push((id.clone(), *enabled))
                }
                Entry::Submenu { children, .. } => leaves(children, out),
                Entry::Separator => {}
            }
        }
    }
    let settings = AppSettings::default();
    let mut states = vec![
        status(Connection::Online, 5, 2),
        status(Connection::NoToken, 5, 0),
        status(Connection::Stopped, 5, 0),
    ];
    states[1].token_kind = None;
    for demo_running in [false, true] {
        for s in &states {
            let sh = ShellState {
                demo_running,
                server_configured: !demo_running,
                ..shell(&settings)
            };
            let mut items = Vec::new();
            leaves(&build(s, &sh, at(2000)).entries, &mut items);
            for (item, enabled) in items {
                if enabled {
                    assert!(MenuAction::parse(&item).is_some(), "{item} does nothing");
                }
            }
        }
    }
}
