//! Shared helpers for the devserver's integration tests: a started server and a wire-level device.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use wegent_devserver::wire_client::WireClient;
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer};

pub const T: Duration = Duration::from_secs(5);

pub async fn server() -> RunningDevServer {
    server_with(|_| {}).await
}

pub async fn server_with(edit: impl FnOnce(&mut DevServerConfig)) -> RunningDevServer {
    let mut cfg = DevServerConfig::for_tests();
    edit(&mut cfg);
    DevServer::start(cfg).await.expect("devserver starts")
}

pub fn register_payload(device_id: &str) -> Value {
    json!({"device_id": device_id, "runtime_instance_id": format!("rt-{device_id}"), "name": format!("Device {device_id}"),
        "device_type": "local", "bind_shell": "claudecode", "executor_version": "1.0.0", "client_ip": "127.0.0.1",
        "runtime_transfer_host": "127.0.0.1", "app_device_id": "", "runtime_features": {"schemaVersion": 1}})
}

pub fn heartbeat_payload(device_id: &str, limit: i64, active: &[&str]) -> Value {
    json!({"device_id": device_id, "runtime_instance_id": format!("rt-{device_id}"),
        "runtime_capacity": {"limit": limit, "active": active.len(), "active_task_ids": active, "queued": 0},
        "running_task_ids": active, "executor_version": "1.0.0"})
}

/// Connects with the demo token and registers `device_id`; asserts the success ack.
pub async fn registered_device(server: &RunningDevServer, device_id: &str) -> WireClient {
    let mut c = WireClient::connect_with_token(&server.url(), &server.demo_token().unwrap())
        .await
        .expect("connect");
    let ack = c
        .call("device:register", &register_payload(device_id), T)
        .await
        .expect("register ack");
    assert_eq!(ack, json!({"success": true, "device_id": device_id}));
    c
}

/// Answers the `device:sync_capabilities` call that follows a register.
pub async fn answer_capability_sync(c: &mut WireClient) {
    let (_, ack_id) = c
        .wait_event("device:sync_capabilities", T)
        .await
        .expect("sync_capabilities call");
    c.ack(
        ack_id.expect("it is a call"),
        &json!({"success": true, "skills": [], "plugins": [], "mcps": [], "errors": []}),
    );
}

/// The Rust executor's `response.completed` envelope.
pub fn completed(task_id: i64, subtask_id: i64, text: &str) -> Value {
    json!({"event_type": "response.completed", "task_id": task_id, "subtask_id": subtask_id, "message_id": 2,
        "data": {"type": "response.completed", "response": {"status": "completed", "output": [{"type": "message",
        "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}]}}})
}

pub fn delta(task_id: i64, subtask_id: i64, text: &str, offset: usize) -> Value {
    json!({"event_type": "response.output_text.delta", "task_id": task_id, "subtask_id": subtask_id, "message_id": 2,
        "data": {"type": "response.output_text.delta", "delta": text, "offset": offset}})
}

pub fn envelope(name: &str, task_id: i64, subtask_id: i64, data: Value) -> Value {
    json!({"event_type": name, "task_id": task_id, "subtask_id": subtask_id, "message_id": 2, "data": data})
}

/// An HTTP client for the REST tests. In the workspace the core builds reqwest with
/// `rustls-no-provider`, so a crypto provider must be installed first (a second install is a no-op).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
