//! End to end on the wire: connect, register, heartbeat, list, dispatch, stream, complete.
mod support;

use serde_json::json;
use support::*;
use wegent_devserver::TaskStatus;

#[tokio::test]
async fn register_heartbeat_dispatch_complete() {
    let server = server().await;
    let mut events = server.events();
    let mut dev = registered_device(&server, "dev-smoke").await;
    answer_capability_sync(&mut dev).await;
    let ack = dev
        .call(
            "device:heartbeat",
            &heartbeat_payload("dev-smoke", 5, &[]),
            T,
        )
        .await
        .unwrap();
    assert_eq!(ack, json!({"success": true}));
    let (_, hb_ack) = events.heartbeat_of("dev-smoke", T).await.unwrap();
    assert_eq!(hb_ack, json!({"success": true}));
    let info = server.device("admin", "dev-smoke").expect("listed");
    assert_eq!(
        (
            info["status"].as_str(),
            info["slot_max"].as_i64(),
            info["is_default"].as_bool()
        ),
        (Some("online"), Some(5), Some(true))
    );
    assert_eq!(server.register_count("dev-smoke"), 1);

    let d = server
        .dispatch_task("admin", Some("dev-smoke"), "say hello")
        .await
        .unwrap();
    let (exec, ack_id) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(ack_id, None, "task:execute is a plain emit");
    assert_eq!(exec["task_id"].as_i64(), Some(d.task_id));
    assert_eq!(exec["subtask_id"].as_i64(), Some(d.assistant_subtask_id));
    assert_eq!(exec["prompt"], "say hello");
    dev.emit(
        "response.output_text.delta",
        &delta(d.task_id, d.assistant_subtask_id, "hel", 0),
    );
    dev.emit(
        "response.output_text.delta",
        &delta(d.task_id, d.assistant_subtask_id, "lo", 3),
    );
    dev.emit(
        "response.completed",
        &completed(d.task_id, d.assistant_subtask_id, "hello"),
    );
    let outcome = server.wait_task_terminal(d.task_id, T).await.unwrap();
    assert_eq!(outcome.status, TaskStatus::Completed);
    assert_eq!(outcome.result_text.as_deref(), Some("hello"));
    server.shutdown().await;
}
