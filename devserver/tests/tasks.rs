//! Task settlement table (protocol.md §5.2/§14.4), cancel, close-session, command RPC, restart, odd frames.
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use wegent_devserver::wire_client::{Incoming, WireClient};
use wegent_devserver::{MalformedFrame, TaskStatus};

async fn dispatched(
    server: &wegent_devserver::RunningDevServer,
    dev: &mut WireClient,
    device: &str,
) -> (i64, i64) {
    let d = server
        .dispatch_task("admin", Some(device), "go")
        .await
        .unwrap();
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(exec["subtask_id"].as_i64(), Some(d.assistant_subtask_id));
    (d.task_id, d.assistant_subtask_id)
}

#[tokio::test]
async fn settlement_table() {
    let server = server_with(|c| c.timings.online_ttl = Duration::from_secs(30)).await;
    let mut dev = registered_device(&server, "settle").await;

    // response.completed alone is enough.
    let (t, s) = dispatched(&server, &mut dev, "settle").await;
    dev.emit("response.completed", &completed(t, s, "only completed"));
    let o = server.wait_task_terminal(t, T).await.unwrap();
    assert_eq!(
        (o.status, o.result_text.as_deref()),
        (TaskStatus::Completed, Some("only completed"))
    );

    // Blank completed text falls back to the concatenated deltas.
    let (t, s) = dispatched(&server, &mut dev, "settle").await;
    dev.emit(
        "response.created",
        &envelope(
            "response.created",
            t,
            s,
            json!({"type": "response.created"}),
        ),
    );
    dev.emit("response.output_text.delta", &delta(t, s, "a", 0));
    dev.emit("response.output_text.delta", &delta(t, s, "b", 1));
    dev.emit("response.completed", &completed(t, s, " "));
    let o = server.wait_task_terminal(t, T).await.unwrap();
    assert_eq!(
        (o.status, o.result_text.as_deref()),
        (TaskStatus::Completed, Some("ab"))
    );

    // error → FAILED with its message.
    let (t, s) = dispatched(&server, &mut dev, "settle").await;
    dev.emit(
        "error",
        &envelope(
            "error",
            t,
            s,
            json!({"type": "error", "code": "runtime_error", "message": "boom"}),
        ),
    );
    let o = server.wait_task_terminal(t, T).await.unwrap();
    assert_eq!(
        (o.status, o.error_message.as_deref()),
        (TaskStatus::Failed, Some("boom"))
    );

    // response.failed is ignored; response.incomplete → CANCELLED.
    let (t, s) = dispatched(&server, &mut dev, "settle").await;
    let mut events = server.events();
    dev.emit(
        "response.failed",
        &envelope(
            "response.failed",
            t,
            s,
            json!({"response": {"status": "failed"}}),
        ),
    );
    events
        .responses_event(t, "response.failed", T)
        .await
        .unwrap();
    assert_eq!(server.task(t).unwrap().status, TaskStatus::Running);
    dev.emit(
        "response.incomplete",
        &envelope(
            "response.incomplete",
            t,
            s,
            json!({"response": {"status": "cancelled"}}),
        ),
    );
    assert_eq!(
        server.wait_task_terminal(t, T).await.unwrap().status,
        TaskStatus::Cancelled
    );

    // Acks when asked, with the server's error texts.
    assert_eq!(
        dev.call("response.output_text.delta", &json!({"task_id": t}), T)
            .await
            .unwrap()["error"],
        "Missing event data"
    );
    assert_eq!(
        dev.call("response.completed", &json!({"data": 5, "task_id": 1}), T)
            .await
            .unwrap()["error"],
        "Invalid event data format"
    );
    assert_eq!(
        dev.call("response.completed", &json!({"data": {}}), T)
            .await
            .unwrap()["error"],
        "Missing task_id or subtask_id"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn cancel_waits_for_response_incomplete_and_delete_closes_the_session() {
    let server = server_with(|c| c.timings.online_ttl = Duration::from_secs(30)).await;
    let mut dev = registered_device(&server, "cx").await;
    let (t, s) = dispatched(&server, &mut dev, "cx").await;
    let cancel = server.cancel_task("admin", t);
    let device_side = async {
        let (p, ack_id) = dev.wait_event("task:cancel", T).await.unwrap();
        assert_eq!(
            (p["task_id"].as_i64(), p["subtask_id"].as_i64(), ack_id),
            (Some(t), Some(s), None)
        );
        dev.emit(
            "response.incomplete",
            &envelope(
                "response.incomplete",
                t,
                s,
                json!({"response": {"status": "cancelled"}}),
            ),
        );
    };
    let (answer, ()) = tokio::join!(cancel, device_side);
    assert_eq!(answer.unwrap()["status"], "CANCELLED");
    let (t2, _) = dispatched(&server, &mut dev, "cx").await;
    server.delete_task("admin", t2).await.unwrap();
    let (p, _) = dev.wait_event("task:close-session", T).await.unwrap();
    assert_eq!(p, json!({"task_id": t2}));
    assert!(server.task(t2).is_none(), "deleted tasks are hidden");
    server.shutdown().await;
}

#[tokio::test]
async fn follow_up_messages_reuse_the_task() {
    let server = server_with(|c| c.timings.online_ttl = Duration::from_secs(30)).await;
    let mut dev = registered_device(&server, "fu").await;
    let (t, s) = dispatched(&server, &mut dev, "fu").await;
    dev.emit("response.completed", &completed(t, s, "one"));
    server.wait_task_terminal(t, T).await.unwrap();
    let req = wegent_devserver::DispatchRequest {
        device_id: Some("fu".into()),
        message: "two".into(),
        task_id: Some(t),
        ..Default::default()
    };
    let d2 = server.dispatch("admin", req).await.unwrap();
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(
        (exec["task_id"].as_i64(), exec["new_session"].as_bool()),
        (Some(t), Some(false))
    );
    assert!(d2.assistant_subtask_id > s);
    server.shutdown().await;
}

#[tokio::test]
async fn command_rpc_answers_and_times_out() {
    let server = server_with(|c| c.timings.online_ttl = Duration::from_secs(30)).await;
    let mut dev = registered_device(&server, "cmd").await;
    let http = support::http();
    let url = format!("{}/api/devices/cmd/commands", server.url());
    let jwt = server.demo_token().unwrap();
    let request = http
        .post(&url)
        .bearer_auth(&jwt)
        .json(&json!({"command_key": "pwd", "path": "/tmp", "timeout_seconds": 1}))
        .send();
    let device_side = async {
        let (p, ack_id) = dev.wait_event("device:execute_command", T).await.unwrap();
        assert_eq!(
            (p["argv"].clone(), p["cwd"].clone()),
            (json!(["pwd"]), json!("/tmp"))
        );
        dev.ack(ack_id.unwrap(), &json!({"success": true, "exit_code": 0, "stdout": "/tmp\n", "stderr": "", "duration": 0.01, "timed_out": false}));
    };
    let (resp, ()) = tokio::join!(request, device_side);
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["stdout"],
        "/tmp\n"
    );
    // The device never answers: 400 with the timeout text.
    let silent = http
        .post(&url)
        .bearer_auth(&jwt)
        .json(&json!({"command_key": "pwd", "timeout_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status(), 400);
    let detail = silent.json::<serde_json::Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("Command RPC timed out after 1"),
        "{detail}"
    );
    let unknown = http
        .post(&url)
        .bearer_auth(&jwt)
        .json(&json!({"command_key": "rm_rf"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let other = http
        .post(format!("{}/api/devices/nope/commands", server.url()))
        .bearer_auth(&jwt)
        .json(&json!({"command_key": "pwd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    server.shutdown().await;
}

#[tokio::test]
async fn restart_drops_sockets_and_listens_on_the_same_port() {
    let server = server().await;
    let mut dev = registered_device(&server, "rs").await;
    let port = server.addr().port();
    server.stop_accepting().await;
    dev.wait_closed(T).await.expect("the socket is dropped");
    assert!(
        WireClient::connect_with_token(&server.url(), &server.demo_token().unwrap())
            .await
            .is_err(),
        "down"
    );
    server.resume().await.unwrap();
    assert_eq!(server.addr().port(), port);
    let _again = registered_device(&server, "rs").await;
    server.restart().await.unwrap();
    let _third = registered_device(&server, "rs").await;
    assert_eq!(server.register_count("rs"), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_reach_the_device() {
    let server = server().await;
    let mut dev = registered_device(&server, "mf").await;
    assert_eq!(
        server.send_malformed("mf", MalformedFrame::TaskExecuteNotAnObject),
        1
    );
    let (p, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(p, json!("garbage"));
    server.send_malformed("mf", MalformedFrame::BinaryAttachment);
    loop {
        match dev.next(T).await.unwrap() {
            Incoming::Event { name, .. } if name == "task:execute" => break,
            Incoming::Closed => panic!("closed"),
            _ => continue,
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_over_the_payload_limit_closes_the_connection() {
    let server = server().await;
    let mut dev = registered_device(&server, "big").await;
    let under = "x".repeat(900_000);
    dev.emit(
        "response.output_text.delta",
        &json!({"task_id": 1, "subtask_id": 1, "data": {"delta": under}}),
    );
    assert_eq!(
        dev.call("device:heartbeat", &heartbeat_payload("big", 5, &[]), T)
            .await
            .unwrap()["success"],
        true
    );
    let over = "x".repeat(1_000_001);
    dev.emit(
        "response.output_text.delta",
        &json!({"task_id": 1, "subtask_id": 1, "data": {"delta": over}}),
    );
    dev.wait_closed(T)
        .await
        .expect("the server closes an oversized message's connection");
    server.shutdown().await;
}

#[tokio::test]
async fn a_codex_task_sends_a_codex_bot_and_its_follow_ups_stay_codex() {
    let server = server_with(|c| {
        c.timings.online_ttl = Duration::from_secs(30);
        c.codex_model.base_url = "http://127.0.0.1:7/v1".into();
    })
    .await;
    let mut dev = registered_device(&server, "cx").await;
    let http = support::http();
    let jwt = server.demo_token().unwrap();
    let send = |body: serde_json::Value| {
        http.post(format!("{}/api/device-chat/tasks", server.url()))
            .bearer_auth(&jwt)
            .json(&body)
            .send()
    };

    let d: serde_json::Value = send(json!({"deviceId": "cx", "message": "one", "agent": "Codex"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task_id = d["taskId"].as_i64().unwrap();
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(exec["bot"][0]["shell_type"], "Codex");
    assert_eq!(exec["model_config"]["base_url"], "http://127.0.0.1:7/v1");
    assert_eq!(exec["model_config"]["api_format"], "responses");
    let s = exec["subtask_id"].as_i64().unwrap();
    dev.emit("response.completed", &completed(task_id, s, "first"));
    server.wait_task_terminal(task_id, T).await.unwrap();
    assert_eq!(server.task(task_id).unwrap().json["agent"], "Codex");

    // A follow-up names no agent: it goes to the task's own bot.
    send(json!({"message": "two", "taskId": task_id}))
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(
        (
            exec["bot"][0]["shell_type"].as_str(),
            exec["new_session"].as_bool()
        ),
        (Some("Codex"), Some(false))
    );

    // Without an agent a new task is Claude Code's, on the Claude model.
    send(json!({"deviceId": "cx", "message": "three"}))
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(exec["bot"][0]["shell_type"], "ClaudeCode");
    assert_eq!(
        exec["model_config"]["base_url"],
        server.config().model.base_url.as_str()
    );

    let refused = send(json!({"deviceId": "cx", "message": "x", "agent": "Dify"}))
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        422,
        "an unknown agent is refused"
    );
    let text = refused.text().await.unwrap();
    assert!(text.contains("Dify") && text.contains("Codex"), "{text}");
    server.shutdown().await;
}
