use super::*;
use crate::bots::Agent;

fn upsert<'a>(user_id: i64, device_id: &'a str, name: &'a str) -> DeviceUpsert<'a> {
    DeviceUpsert {
        user_id,
        device_id,
        name,
        device_type: "local",
        bind_shell: "claudecode",
        client_ip: "127.0.0.1",
        runtime_transfer_host: None,
        runtime_instance_id: None,
        app_device_id: None,
    }
}

#[test]
fn first_local_device_is_default_and_set_default_is_exclusive() {
    let s = Store::open(&Storage::Memory).unwrap();
    let u = s.upsert_user("alice", "pw").unwrap();
    assert!(s.upsert_device(&upsert(u.id, "a", "A")).unwrap().is_default);
    assert!(!s.upsert_device(&upsert(u.id, "b", "B")).unwrap().is_default);
    assert!(s.set_default(u.id, "b").unwrap());
    let flags: Vec<bool> = s
        .active_devices(u.id)
        .unwrap()
        .iter()
        .map(|d| d.is_default)
        .collect();
    assert_eq!(flags, vec![false, true]);
    assert!(!s.set_default(u.id, "nope").unwrap());
}

#[test]
fn first_name_wins_and_delete_is_soft() {
    let s = Store::open(&Storage::Memory).unwrap();
    let u = s.upsert_user("alice", "pw").unwrap();
    s.upsert_device(&upsert(u.id, "a", "First")).unwrap();
    assert!(s.soft_delete_device(u.id, "a").unwrap());
    assert!(s.active_devices(u.id).unwrap().is_empty());
    let back = s.upsert_device(&upsert(u.id, "a", "Second")).unwrap();
    assert_eq!((back.name.as_str(), back.is_active), ("First", true));
}

#[test]
fn passwords_and_api_keys() {
    let s = Store::open(&Storage::Memory).unwrap();
    let u = s.upsert_user("bob", "secret").unwrap();
    assert_eq!(s.check_password("bob", "secret").unwrap(), Some(u.clone()));
    assert_eq!(s.check_password("bob", "wrong").unwrap(), None);
    s.insert_api_key(u.id, "k", None, "wg-abc").unwrap();
    assert_eq!(s.user_by_api_key("wg-abc").unwrap(), Some(u));
    assert_eq!(s.user_by_api_key("wg-nope").unwrap(), None);
}

#[test]
fn iso_dates() {
    assert_eq!(iso_from_unix(0, 0), "1970-01-01T00:00:00.000000");
    assert_eq!(
        iso_from_unix(1_795_402_501, 5),
        "2026-11-23T02:55:01.000005"
    );
}

/// A database written before projects existed gains `tasks.project_id` when opened.
#[test]
fn old_database_gains_the_project_and_agent_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE tasks (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, device_id TEXT NOT NULL,
             title TEXT NOT NULL, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
             created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
             INSERT INTO tasks VALUES (1, 1, 'd', 'old', 'COMPLETED', 0, 'x', 'x');",
        )
        .unwrap();
    let s = Store::open(&Storage::File(path.clone())).unwrap();
    let old = s.task(1).unwrap().unwrap();
    assert_eq!((old.project_id, old.agent), (0, Agent::ClaudeCode));
    let id = s.insert_task(1, "d", "new", 7, Agent::Codex).unwrap();
    let new = s.task(id).unwrap().unwrap();
    assert_eq!((new.project_id, new.agent), (7, Agent::Codex));
    drop(s);
    Store::open(&Storage::File(path)).expect("opening twice is fine");
}
