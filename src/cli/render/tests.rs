use super::*;
use crate::status::{RunningTask, Slots};
use base64::Engine as _;

fn status(connection: Connection, running: usize, queued: usize) -> DeviceStatus {
    let task = RunningTask {
        task_id: 1,
        subtask_id: 2,
        title: "t".into(),
        agent: crate::task::agent::AgentKind::Claude,
        started_at: UNIX_EPOCH,
        project: None,
        folder: None,
    };
    DeviceStatus {
        connection,
        device_id: "device-1".into(),
        device_name: "Linux - box".into(),
        server_url: "http://127.0.0.1:8000".into(),
        web_url: "http://127.0.0.1:8000".into(),
        slots: Slots {
            max: 5,
            running: vec![task; running],
            queued,
            waiting: Vec::new(),
            max_queued: 100,
        },
        token_kind: None,
        token_expires_at: None,
        is_default: None,
        last_error: None,
        insecure_transport: false,
        paused: false,
        draining: false,
        recent: Vec::new(),
    }
}

#[test]
fn server_text_loses_terminal_escapes_but_keeps_newlines_and_tabs() {
    let hostile = "fix \x1b[2J\x1b[1;31mbuild\x1b[0m\x1b]52;c;ZXZpbA==\x07 now\x1b]0;pwned\x1b\\\r\u{9b}31m\x08!\tok\nnext";
    let event = DeviceEvent::TaskStarted {
        task_id: 1,
        title: hostile.into(),
        agent: crate::task::agent::AgentKind::Codex,
    };
    assert_eq!(
        event_line(&event),
        "Task 1 started (Codex): fix build now!\tok\nnext"
    );
    assert!(matches!(terminal_safe("plain ünïcode"), Cow::Borrowed(_)));
    let offline = Connection::Offline {
        reason: "refused\x1b[8m".into(),
        retry_at: None,
    };
    assert_eq!(
        status_line(&status(offline, 0, 0), UNIX_EPOCH),
        "Offline: refused"
    );
}

#[test]
fn a_paused_device_says_so_and_how_to_resume() {
    let mut s = status(Connection::Online, 1, 0);
    s.paused = true;
    assert_eq!(
        status_line(&s, UNIX_EPOCH),
        "Paused · 1/5 slots — new tasks are refused until `wegent-executor resume`"
    );
}

#[test]
fn a_draining_device_says_it_is_stopping() {
    let mut s = status(Connection::Online, 2, 0);
    s.paused = true;
    s.draining = true;
    assert_eq!(
        status_line(&s, UNIX_EPOCH),
        "Stopping · 2/5 slots — no new tasks; the running ones may finish"
    );
    assert_eq!(
        drain_line(2, Duration::from_secs(60)),
        "Stopping: no new tasks; 2 running tasks may finish within 1 min 0 s, then they are cancelled. Press Ctrl-C (or send SIGTERM) again to cancel now."
    );
    assert_eq!(
        drain_line(0, Duration::from_secs(60)),
        "Stopping (no task runs)…"
    );
}

#[test]
fn pause_and_resume_say_what_changed() {
    assert!(pause_changed(false, true).ends_with("A running device follows within a second."));
    assert!(pause_changed(true, true).ends_with("(it was already paused)"));
    assert!(pause_changed(false, false).starts_with("Resumed"));
    assert!(pause_state(&Ok(true)).contains("`wegent-executor resume`"));
}

#[test]
fn a_full_queue_is_said_so() {
    let mut s = status(Connection::Online, 5, 100);
    assert_eq!(
        status_line(&s, UNIX_EPOCH),
        "Busy · 5/5 slots (100 queued — queue full, new tasks fail)"
    );
    s.slots.queued = 99;
    assert_eq!(status_line(&s, UNIX_EPOCH), "Busy · 5/5 slots (99 queued)");
}

#[test]
fn status_lines_read_like_the_tray() {
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    assert_eq!(
        status_line(&status(Connection::Online, 0, 0), now),
        "Online · 0/5 slots"
    );
    assert_eq!(
        status_line(&status(Connection::Online, 5, 1), now),
        "Busy · 5/5 slots (1 queued)"
    );
    let mut two = status(Connection::Online, 3, 0);
    two.slots.running[0].project = Some("myproj".into());
    two.slots.running[2].project = Some("demo".into());
    assert_eq!(
        status_line(&two, now),
        "Online · 3/5 slots — in myproj, demo"
    );
    let offline = Connection::Offline {
        reason: "connection refused".into(),
        retry_at: Some(now + Duration::from_millis(7_200)),
    };
    assert_eq!(
        status_line(&status(offline, 0, 0), now),
        "Offline — retrying in 8 s: connection refused"
    );
    let rejected = Connection::TokenRejected {
        message: "Invalid or expired token".into(),
    };
    assert!(status_line(&status(rejected, 0, 0), now)
        .starts_with("Token rejected by the server: Invalid or expired token"));
    assert_eq!(
        status_line(&status(Connection::Connecting { attempt: 3 }, 0, 0), now),
        "Connecting to http://127.0.0.1:8000… (attempt 3)"
    );
}

#[test]
fn token_summary_never_shows_the_secret() {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJlLXNlY3JldA",
        e.encode(r#"{"alg":"HS256"}"#),
        e.encode(r#"{"sub":"admin","exp":1000000}"#)
    );
    let token = Token::new(&jwt);
    let now = UNIX_EPOCH + Duration::from_secs(1_000_000 - 90_000);
    let text = token_summary(&token, now);
    assert_eq!(
        text,
        "login token for admin, expires in 25 h (1970-01-12 13:46 UTC)"
    );
    assert!(!token_expired(&token, now));
    assert_eq!(expiry_warning(&token, now), None);
    let soon = UNIX_EPOCH + Duration::from_secs(1_000_000 - 3_600);
    assert!(expiry_warning(&token, soon)
        .unwrap()
        .contains("the login token expires in 1 h;"));
    let later = UNIX_EPOCH + Duration::from_secs(1_000_060);
    assert!(token_summary(&token, later).contains("expired 1 min ago"));
    assert!(token_expired(&token, later));
    let key = Token::new("wg-SecretApiKeyValue");
    let text = token_summary(&key, now);
    assert!(
        text.starts_with("API key wg-Sec…") && !text.contains("SecretApi"),
        "{text}"
    );
}

#[test]
fn settings_report_names_values_and_sources() {
    use crate::identity::IdSource;
    use crate::settings::{resolve, Overrides};
    let env: std::collections::HashMap<&str, &str> = [("WEGENT_BACKEND_URL", "http://w.example")]
        .into_iter()
        .collect();
    let home = Sourced {
        value: "/h".into(),
        source: Source::Default,
    };
    let settings = resolve(
        &Overrides::default(),
        &env,
        None,
        home,
        "/h/config.toml".into(),
    )
    .unwrap();
    let id = DeviceId {
        id: "device-9".into(),
        source: IdSource::File,
    };
    let lines = settings_report(&settings, &id, "Linux - box");
    assert!(
        lines.contains(&"  Server:          http://w.example (env WEGENT_BACKEND_URL)".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"  Device id:       device-9 (saved)".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"  Config file:     /h/config.toml (not found)".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"  Slots:           5 (default)".to_owned()),
        "{lines:#?}"
    );
}

#[test]
fn dates_and_durations() {
    assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
    assert_eq!(
        utc(UNIX_EPOCH + Duration::from_secs(1_900_000_000)),
        "2030-03-17 17:46 UTC"
    );
    assert_eq!(
        utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29 00:00 UTC"
    );
    assert_eq!(duration(Duration::from_secs(3 * 3600 + 300)), "3 h 5 min");
    assert_eq!(duration(Duration::from_secs(8)), "8 s");
}

#[test]
fn device_rows_mark_default_state_and_this_device() {
    let d = DeviceInfo {
        device_id: "device-1".into(),
        name: "Linux - box".into(),
        status: "online".into(),
        is_default: true,
        device_type: Some("local".into()),
        slot_used: 2,
        slot_max: 5,
        last_heartbeat: None,
        executor_version: None,
        client_ip: None,
    };
    let row = device_row(&d, Some("device-1"));
    assert!(row.starts_with("⭐ 🟢 online"), "{row}");
    assert!(
        row.contains("2/5 slots") && row.ends_with("← this device"),
        "{row}"
    );
    let off = DeviceInfo {
        status: "offline".into(),
        is_default: false,
        ..d
    };
    assert!(device_row(&off, None).contains("🔴 offline"));
}

#[test]
fn recent_tasks_name_the_end_the_title_the_time_and_the_page() {
    use crate::status::{FinishedTask, TaskEnd};
    let now = UNIX_EPOCH + Duration::from_secs(10_000);
    let task = |task_id, title: &str, end, secs_ago| FinishedTask {
        task_id,
        title: title.to_owned(),
        end,
        ended_at: now - Duration::from_secs(secs_ago),
    };
    let lines = recent_tasks(
        &[
            task(7, "Fix the build", TaskEnd::Cancelled, 300),
            task(6, "\u{1b}]52;c;aGk=\u{7}Tidy", TaskEnd::Completed, 5),
        ],
        "https://wegent.example.com",
        now,
    );
    assert_eq!(
        lines,
        [
            "  Recent tasks:".to_owned(),
            "    Cancelled · Fix the build · 5 min ago — https://wegent.example.com/devices/chat?taskId=7".to_owned(),
            "    Completed · Tidy · just now — https://wegent.example.com/devices/chat?taskId=6".to_owned(),
        ]
    );
    assert_eq!(
        recent_tasks(&[], "https://wegent.example.com", now),
        ["  Recent tasks:    none yet"]
    );
}
