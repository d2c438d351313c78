//! Server → device events and what the device answers (protocol.md §5, §7, §9).

use serde_json::{json, Value};

use crate::session::TaskPort;
use crate::sio::Ack;

/// Handle one server event. Payloads carry secrets (model keys, git tokens): log names and ids only.
pub(crate) fn dispatch(
    tasks: &dyn TaskPort,
    device_id: &str,
    name: &str,
    args: Vec<Value>,
    ack: Option<Ack>,
) {
    let payload = args.into_iter().next().unwrap_or(Value::Null);
    match name {
        "task:execute" => {
            tracing::info!(task_id = %id_of(&payload, "task_id"), subtask_id = %id_of(&payload, "subtask_id"), "task received");
            tasks.execute(payload);
            answer(ack, json!({"success": true}));
        }
        "task:cancel" => {
            tracing::info!(task_id = %id_of(&payload, "task_id"), "cancel requested by the server");
            tasks.cancel(&payload);
            answer(ack, json!({"success": true}));
        }
        "task:close-session" => {
            tracing::info!(task_id = %id_of(&payload, "task_id"), "session closed by the server");
            tasks.close_session(&payload);
            answer(ack, json!({"success": true}));
        }
        "device:sync_capabilities" => answer(
            ack,
            json!({"success": true, "device_id": device_id, "skills": [], "plugins": [], "mcps": [], "errors": []}),
        ),
        "runtime:rpc" => answer(
            ack,
            json!({
                "success": false,
                "code": "runtime_unavailable",
                "error": "This device runs tasks with Claude Code only; the Wework runtime is not available here",
            }),
        ),
        "device:execute_command" => {
            let result = tasks.execute_command(payload);
            tokio::spawn(async move {
                let value = result.await;
                answer(ack, value);
            });
        }
        "task:error" => {
            tracing::warn!(task_id = %id_of(&payload, "task_id"), "the server reported an error for a task");
        }
        other => {
            // Unknown or optional events (upgrade, terminal, …): name only, never the payload.
            tracing::debug!(event = other, "ignoring unsupported server event");
        }
    }
}

fn answer(ack: Option<Ack>, value: Value) {
    if let Some(ack) = ack {
        ack.send(vec![value]);
    }
}

fn id_of(payload: &Value, key: &str) -> String {
    match payload.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.len() <= 32 => s.clone(),
        _ => "?".to_owned(),
    }
}
