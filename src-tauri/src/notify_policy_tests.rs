use super::*;
use crate::test_support::{at, status};

fn finished(id: i64, title: &str) -> DeviceEvent {
    DeviceEvent::TaskCompleted {
        task_id: id,
        title: title.into(),
    }
}

fn all_on() -> NotificationSwitches {
    NotificationSwitches::default()
}

#[test]
fn a_burst_of_finished_tasks_is_one_notice() {
    let mut p = NotifyPolicy::default();
    let online = status(Connection::Online, 5, 0);
    p.poll(&online, at(100), &all_on());
    p.on_event(&finished(1, "A"), at(100));
    p.on_event(&finished(2, "B"), at(101));
    assert!(
        p.poll(&online, at(102), &all_on()).is_empty(),
        "still inside the window"
    );
    p.on_event(&finished(3, "C"), at(102));
    let out = p.poll(&online, at(103), &all_on());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].summary, "3 tasks finished");
    assert_eq!(out[0].body, "• A\n• B\n• C");
    assert_eq!(out[0].link, None, "three tasks: no one page to open");
    assert!(p.poll(&online, at(200), &all_on()).is_empty(), "told once");
}

#[test]
fn a_single_failure_carries_its_reason() {
    let mut p = NotifyPolicy::default();
    let online = status(Connection::Online, 5, 0);
    p.on_event(
        &DeviceEvent::TaskFailed {
            task_id: 1,
            title: "Fix bug".into(),
            reason: "claude exited with 1".into(),
        },
        at(0),
    );
    let out = p.poll(&online, at(5), &all_on());
    assert_eq!(
        out,
        vec![Notice {
            kind: NotifyKind::TaskFailed,
            summary: "Task failed: Fix bug".into(),
            body: "claude exited with 1".into(),
            link: Some("http://127.0.0.1:8000/devices/chat?taskId=1".into()),
        }]
    );
}

#[test]
fn connection_loss_is_told_after_ten_seconds_and_then_restored() {
    let mut p = NotifyPolicy::default();
    let online = status(Connection::Online, 5, 0);
    let offline = status(
        Connection::Offline {
            reason: "server unreachable".into(),
            retry_at: None,
        },
        5,
        0,
    );
    assert!(p.poll(&online, at(0), &all_on()).is_empty());
    assert!(p.poll(&offline, at(1), &all_on()).is_empty());
    assert!(
        p.poll(&offline, at(10), &all_on()).is_empty(),
        "9 s is a blip"
    );
    let out = p.poll(&offline, at(11), &all_on());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].summary, "Connection lost");
    assert_eq!(out[0].body, "server unreachable. Reconnecting…");
    assert!(
        p.poll(&offline, at(30), &all_on()).is_empty(),
        "never once per retry"
    );
    let out = p.poll(&online, at(41), &all_on());
    assert_eq!(out[0].summary, "Connection restored");
    assert_eq!(out[0].body, "Back online after 40 s.");
}

#[test]
fn a_short_blip_says_nothing_at_all() {
    let mut p = NotifyPolicy::default();
    let online = status(Connection::Online, 5, 0);
    p.poll(&online, at(0), &all_on());
    p.poll(
        &status(Connection::Connecting { attempt: 1 }, 5, 0),
        at(1),
        &all_on(),
    );
    assert!(p.poll(&online, at(3), &all_on()).is_empty());
    assert!(p.poll(&online, at(30), &all_on()).is_empty());
}

#[test]
fn token_expiring_is_told_once_and_expired_once() {
    let mut p = NotifyPolicy::default();
    let mut s = status(Connection::Online, 5, 0);
    s.token_expires_at = Some(at(100_000));
    assert!(
        p.poll(&s, at(0), &all_on()).is_empty(),
        "more than a day left"
    );
    let out = p.poll(&s, at(100_000 - 5 * 3600), &all_on());
    assert_eq!(out[0].summary, "Token expires in 5 h");
    assert!(p.poll(&s, at(100_000 - 3600), &all_on()).is_empty(), "once");
    s.connection = Connection::TokenRejected {
        message: "Invalid or expired token".into(),
    };
    let out = p.poll(&s, at(100_001), &all_on());
    assert_eq!(out[0].summary, "Token expired — paste a new one");
    assert!(p.poll(&s, at(100_500), &all_on()).is_empty());
    // A new token starts over.
    s.token_expires_at = Some(at(100_010));
    s.connection = Connection::Online;
    assert_eq!(
        p.poll(&s, at(100_000), &all_on())[0].summary,
        "Token expires in 10 s"
    );
}

#[test]
fn rejected_token_quotes_the_server() {
    let mut p = NotifyPolicy::default();
    let mut s = status(
        Connection::TokenRejected {
            message: "Invalid or expired API key".into(),
        },
        5,
        0,
    );
    s.token_expires_at = None;
    let out = p.poll(&s, at(0), &all_on());
    assert_eq!(out[0].summary, "Token rejected — paste a new one");
    assert_eq!(out[0].body, "The server said: Invalid or expired API key");
}

#[test]
fn switched_off_kinds_are_dropped_without_replay() {
    let mut p = NotifyPolicy::default();
    let online = status(Connection::Online, 5, 0);
    let mut off = all_on();
    off.set(NotifyKind::TaskFinished, false);
    p.on_event(&finished(1, "A"), at(0));
    assert!(p.poll(&online, at(5), &off).is_empty());
    assert!(
        p.poll(&online, at(10), &all_on()).is_empty(),
        "not replayed when switched back on"
    );
}

#[test]
fn a_single_finished_task_opens_its_page_when_clicked() {
    let mut p = NotifyPolicy::default();
    let online = status(Connection::Online, 5, 0);
    p.on_event(&finished(42, "A"), at(0));
    let out = p.poll(&online, at(5), &all_on());
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].link.as_deref(),
        Some("http://127.0.0.1:8000/devices/chat?taskId=42")
    );
}

#[test]
fn the_link_goes_to_the_web_app_where_it_is_not_at_the_backend() {
    let mut p = NotifyPolicy::default();
    let mut online = status(Connection::Online, 5, 0);
    // Wegent's default deployment: devices reach the backend at :8000, the web app is at :3000.
    online.server_url = "http://localhost:8000".into();
    online.web_url = "http://localhost:3000".into();
    p.on_event(&finished(42, "A"), at(0));
    let out = p.poll(&online, at(5), &all_on());
    assert_eq!(
        out[0].link.as_deref(),
        Some("http://localhost:3000/devices/chat?taskId=42")
    );
}
