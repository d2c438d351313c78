//! `wegent-scripted-device`: a SCRIPTED STAND-IN for the Wegent executor, for demos and the
//! console's browser test. It registers, heartbeats with `limit: 5`, and answers every
//! `task:execute` with a canned answer streamed as `response.output_text.delta`s followed by
//! `response.completed`; `task:cancel` gets `response.incomplete`. It runs no AI and no commands.
//!
//! Usage: `wegent-scripted-device <backend-url> <device-id>` with the token in `WEGENT_AUTH_TOKEN`.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};
use wegent_devserver::wire_client::{Incoming, WireClient};

const T: Duration = Duration::from_secs(10);

/// The answer being streamed: ids and the words still to send.
struct Stream {
    task_id: i64,
    subtask_id: i64,
    message_id: Value,
    sent: String,
    words: VecDeque<String>,
}

fn envelope(name: &str, s: &Stream, data: Value) -> Value {
    json!({"event_type": name, "task_id": s.task_id, "subtask_id": s.subtask_id, "message_id": s.message_id, "data": data})
}

fn heartbeat(device_id: &str, stream: Option<&Stream>) -> Value {
    let active: Vec<String> = stream
        .map(|s| vec![s.task_id.to_string()])
        .unwrap_or_default();
    json!({"device_id": device_id, "runtime_instance_id": format!("rt-{device_id}"), "executor_version": "scripted-0.1",
        "running_task_ids": active, "runtime_capacity": {"limit": 5, "active": active.len(), "active_task_ids": active, "queued": 0}})
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(device_id)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: WEGENT_AUTH_TOKEN=<token> wegent-scripted-device <backend-url> <device-id>"
        );
        return std::process::ExitCode::from(2);
    };
    let Ok(token) = std::env::var("WEGENT_AUTH_TOKEN") else {
        eprintln!("error: set WEGENT_AUTH_TOKEN to a login token or wg- API key");
        return std::process::ExitCode::from(2);
    };
    match run(&url, &device_id, &token).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, device_id: &str, token: &str) -> Result<(), String> {
    let mut c = WireClient::connect_with_token(url, token)
        .await
        .map_err(|e| e.to_string())?;
    let register = json!({"device_id": device_id, "name": format!("Scripted device {device_id}"), "device_type": "local",
        "bind_shell": "claudecode", "executor_version": "scripted-0.1", "runtime_instance_id": format!("rt-{device_id}"),
        "runtime_features": {"schemaVersion": 1}});
    let ack = c
        .call("device:register", &register, T)
        .await
        .map_err(|e| e.to_string())?;
    if ack["success"] != true {
        return Err(format!("register refused: {ack}"));
    }
    println!("registered {device_id}");
    let mut stream: Option<Stream> = None;
    c.emit("device:heartbeat", &heartbeat(device_id, None));
    let mut beat = tokio::time::interval(Duration::from_secs(10));
    let mut tick = tokio::time::interval(Duration::from_millis(120));
    loop {
        tokio::select! {
            _ = beat.tick() => c.emit("device:heartbeat", &heartbeat(device_id, stream.as_ref())),
            _ = tick.tick(), if stream.is_some() => {
                let s = stream.as_mut().expect("guarded");
                if let Some(word) = s.words.pop_front() {
                    let offset = s.sent.chars().count();
                    s.sent.push_str(&word);
                    c.emit("response.output_text.delta", &envelope("response.output_text.delta", s,
                        json!({"type": "response.output_text.delta", "delta": word, "offset": offset})));
                } else {
                    c.emit("response.completed", &envelope("response.completed", s, json!({"type": "response.completed",
                        "response": {"status": "completed", "output": [{"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": s.sent, "annotations": []}]}]}})));
                    stream = None;
                    c.emit("device:heartbeat", &heartbeat(device_id, None));
                }
            }
            incoming = c.next(Duration::from_secs(3600)) => match incoming {
                Ok(Incoming::Event { name, args, ack_id }) => {
                    let payload = args.into_iter().next().unwrap_or(Value::Null);
                    handle(&c, &name, &payload, ack_id, &mut stream, device_id);
                }
                Ok(Incoming::Closed) => return Err("the server closed the connection".into()),
                Ok(Incoming::Unparsed(_)) => {}
                Err(e) => return Err(e.to_string()),
            },
        }
    }
}

fn handle(
    c: &WireClient,
    name: &str,
    payload: &Value,
    ack_id: Option<i64>,
    stream: &mut Option<Stream>,
    device_id: &str,
) {
    let id = |k: &str| wegent_devserver::settle::id_of(payload, k);
    match name {
        "device:sync_capabilities" => {
            if let Some(a) = ack_id {
                c.ack(a, &json!({"success": true, "skills": [], "plugins": [], "mcps": [], "errors": []}));
            }
        }
        "device:execute_command" => {
            if let Some(a) = ack_id {
                c.ack(a, &json!({"success": false, "exit_code": null, "stdout": "", "stderr": "", "duration": 0.0,
                    "timed_out": false, "error": "the scripted device runs no commands"}));
            }
        }
        "task:execute" => {
            let (Some(task_id), Some(subtask_id)) = (id("task_id"), id("subtask_id")) else {
                return;
            };
            let prompt = payload["prompt"].as_str().unwrap_or("(no text)");
            let answer = format!("Hello from the scripted device {device_id}. You said: {prompt}");
            let words = answer.split_inclusive(' ').map(str::to_string).collect();
            let message_id = payload.get("message_id").cloned().unwrap_or(Value::Null);
            let s = Stream {
                task_id,
                subtask_id,
                message_id,
                sent: String::new(),
                words,
            };
            c.emit(
                "response.created",
                &envelope("response.created", &s, json!({"type": "response.created"})),
            );
            *stream = Some(s);
            c.emit("device:heartbeat", &heartbeat(device_id, stream.as_ref()));
        }
        "task:cancel" | "task:close-session" => {
            if let Some(s) = stream.take().filter(|s| Some(s.task_id) == id("task_id")) {
                c.emit("response.incomplete", &envelope("response.incomplete", &s, json!({"type": "response.incomplete",
                    "response": {"status": "cancelled", "error": {"code": "cancelled", "message": "Task cancelled"}}})));
                c.emit("device:heartbeat", &heartbeat(device_id, None));
            }
            if let Some(a) = ack_id {
                c.ack(a, &json!({"success": true}));
            }
        }
        _ => {}
    }
}
