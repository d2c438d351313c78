//! Payloads the device sends (`device:register`, `device:heartbeat`) and how it reads the acks.
//! Shapes follow protocol.md §2–§3, checked against the server's schemas.

use serde_json::{json, Value};

use crate::config::{EXECUTOR_VERSION, MAX_SLOTS};
use crate::status::Slots;
use crate::task::agent::codex::auth::AuthFileState;

/// Who this device is, as told to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub device_id: String,
    pub device_name: String,
    /// Fresh per process; the server requires heartbeats to repeat the registered value.
    pub runtime_instance_id: String,
}

pub fn register_payload(id: &Identity) -> Value {
    json!({
        "device_id": id.device_id,
        "name": id.device_name,
        "device_type": "local",
        "bind_shell": "claudecode",
        "executor_version": EXECUTOR_VERSION,
        "runtime_instance_id": id.runtime_instance_id,
        "runtime_features": {"schemaVersion": 1},
    })
}

/// The heartbeat: `running_task_ids` as ints and a `runtime_capacity` the server accepts
/// (`active` equals the number of unique, non-empty `active_task_ids`, at most 20; `limit` 1..=20).
/// `codex_auth`: the user's Codex login file as it is now (`runtime_auth_files.codex`; the
/// backend copies the user's file to the device when it says `exists: false`).
pub fn heartbeat_payload(
    id: &Identity,
    slots: &Slots,
    codex_auth: Option<&AuthFileState>,
) -> Value {
    let mut task_ids: Vec<i64> = slots.running.iter().map(|t| t.task_id).collect();
    // Two turns of one task count once: the server wants unique ids, and `active` must match.
    let mut seen = std::collections::HashSet::new();
    task_ids.retain(|id| seen.insert(*id));
    task_ids.truncate(usize::from(MAX_SLOTS));
    let active_ids: Vec<String> = task_ids.iter().map(i64::to_string).collect();
    let mut payload = json!({
        "device_id": id.device_id,
        "runtime_instance_id": id.runtime_instance_id,
        "running_task_ids": task_ids,
        "runtime_capacity": {
            "limit": slots.max.clamp(1, MAX_SLOTS),
            "active": active_ids.len(),
            "active_task_ids": active_ids,
            "queued": slots.queued,
        },
        "executor_version": EXECUTOR_VERSION,
        "runtime_features": {"schemaVersion": 1},
    });
    if let Some(auth) = codex_auth {
        payload["runtime_auth_files"] = json!({"codex": {
            "target_path": auth.target_path.to_string_lossy(),
            "exists": auth.exists,
        }});
    }
    payload
}

/// What an ack of `device:register` / `device:heartbeat` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckVerdict {
    Success,
    Error(String),
}

/// Read an ack. python-socketio delivers ack values as an array (`[{"success":true}]`); the
/// value may also come bare. Anything without `success: true` is an error, in the server's words.
pub fn read_ack(args: &[Value]) -> AckVerdict {
    let first = match args {
        [Value::Array(inner), ..] => inner.first(),
        [first, ..] => Some(first),
        [] => None,
    };
    match first {
        Some(v) if v.get("success").and_then(Value::as_bool) == Some(true) => AckVerdict::Success,
        Some(v) => AckVerdict::Error(
            v.get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("unexpected acknowledgement {}", short(v))),
        ),
        None => AckVerdict::Error("empty acknowledgement".to_owned()),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RunningTask;
    use std::time::SystemTime;

    fn identity() -> Identity {
        Identity {
            device_id: "device-abc".into(),
            device_name: "Linux - box".into(),
            runtime_instance_id: "runtime-1".into(),
        }
    }

    fn running(task_id: i64, subtask_id: i64) -> RunningTask {
        RunningTask {
            task_id,
            subtask_id,
            title: "t".into(),
            agent: crate::task::agent::AgentKind::Claude,
            started_at: SystemTime::UNIX_EPOCH,
            project: None,
            folder: None,
        }
    }

    #[test]
    fn register_has_the_fields_the_server_needs() {
        let p = register_payload(&identity());
        assert_eq!(p["device_id"], "device-abc");
        assert_eq!(p["name"], "Linux - box");
        assert_eq!(p["device_type"], "local");
        assert_eq!(p["runtime_instance_id"], "runtime-1");
        assert_eq!(p["executor_version"], EXECUTOR_VERSION);
    }

    #[test]
    fn heartbeat_capacity_counts_unique_tasks_and_queue() {
        let slots = Slots {
            max: 5,
            running: vec![running(282, 1), running(305, 2), running(282, 3)],
            queued: 1,
            waiting: Vec::new(),
            max_queued: 100,
        };
        let p = heartbeat_payload(&identity(), &slots, None);
        assert_eq!(p["running_task_ids"], json!([282, 305]));
        assert_eq!(
            p["runtime_capacity"],
            json!({"limit": 5, "active": 2, "active_task_ids": ["282", "305"], "queued": 1})
        );
        assert_eq!(p["runtime_instance_id"], "runtime-1");
    }

    #[test]
    fn heartbeat_reports_the_codex_login_file_as_it_is() {
        let slots = Slots {
            max: 1,
            running: vec![],
            queued: 0,
            waiting: Vec::new(),
            max_queued: 100,
        };
        let auth = AuthFileState {
            target_path: "/home/u/.codex/auth.json".into(),
            exists: true,
        };
        assert_eq!(
            heartbeat_payload(&identity(), &slots, Some(&auth))["runtime_auth_files"],
            json!({"codex": {"target_path": "/home/u/.codex/auth.json", "exists": true}})
        );
        // No home directory: nothing said, so the backend pushes nothing.
        assert!(heartbeat_payload(&identity(), &slots, None)
            .get("runtime_auth_files")
            .is_none());
    }

    #[test]
    fn heartbeat_limit_is_clamped_to_the_servers_range() {
        let slots = Slots {
            max: 0,
            running: vec![],
            queued: 0,
            waiting: Vec::new(),
            max_queued: 100,
        };
        assert_eq!(
            heartbeat_payload(&identity(), &slots, None)["runtime_capacity"]["limit"],
            1
        );
    }

    #[test]
    fn reads_wrapped_bare_and_error_acks() {
        assert_eq!(read_ack(&[json!([{"success": true}])]), AckVerdict::Success);
        assert_eq!(
            read_ack(&[json!({"success": true, "device_id": "x"})]),
            AckVerdict::Success
        );
        assert_eq!(
            read_ack(&[json!({"error": "Device ID mismatch"})]),
            AckVerdict::Error("Device ID mismatch".into())
        );
        assert_eq!(
            read_ack(&[json!([{"error": "Not authenticated"}])]),
            AckVerdict::Error("Not authenticated".into())
        );
        assert!(matches!(read_ack(&[]), AckVerdict::Error(_)));
        assert!(matches!(
            read_ack(&[json!({"success": false})]),
            AckVerdict::Error(_)
        ));
    }
}
