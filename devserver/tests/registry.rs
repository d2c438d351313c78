//! Register/heartbeat validation acks, TTL, monitor, disconnect grace, default device, delete + debounce.
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use wegent_devserver::wire_client::WireClient;
use wegent_devserver::{AckFault, OfflineReason, TaskStatus};

fn err(ack: &serde_json::Value) -> &str {
    ack["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error ack, got {ack}"))
}

#[tokio::test]
async fn validation_acks_match_the_server() {
    let server = server().await;
    let mut c = WireClient::connect_with_token(&server.url(), &server.demo_token().unwrap())
        .await
        .unwrap();
    let before = c
        .call("device:heartbeat", &json!({"device_id": "d1"}), T)
        .await
        .unwrap();
    assert_eq!(err(&before), "Device ID mismatch");
    let bad_reg = c
        .call("device:register", &json!({"device_id": ""}), T)
        .await
        .unwrap();
    assert!(
        err(&bad_reg).starts_with("Invalid payload: 2 validation errors for DeviceRegisterPayload"),
        "{bad_reg}"
    );
    let not_obj = c
        .call("device:register", &json!("nonsense"), T)
        .await
        .unwrap();
    assert!(err(&not_obj).starts_with("Invalid payload: "), "{not_obj}");
    assert_eq!(
        c.call("device:register", &register_payload("d1"), T)
            .await
            .unwrap()["success"],
        true
    );
    let empty = c.call("device:heartbeat", &json!({}), T).await.unwrap();
    assert!(err(&empty).starts_with("Invalid payload: 1 validation error for DeviceHeartbeatPayload\ndevice_id\n  Field required"));
    let mut cap = heartbeat_payload("d1", 3, &[]);
    cap["runtime_capacity"]["active"] = json!(1);
    assert!(err(&c.call("device:heartbeat", &cap, T).await.unwrap())
        .contains("active_task_ids must identify every active Runtime task"));
    let mut wrong_rt = heartbeat_payload("d1", 3, &[]);
    wrong_rt["runtime_instance_id"] = json!("rt-other");
    assert_eq!(
        err(&c.call("device:heartbeat", &wrong_rt, T).await.unwrap()),
        "Runtime instance ID mismatch"
    );
    let mut bad_ids = heartbeat_payload("d1", 3, &[]);
    bad_ids["running_task_ids"] = json!(["abc"]);
    assert!(
        err(&c.call("device:heartbeat", &bad_ids, T).await.unwrap()).contains("running_task_ids.0")
    );
    assert_eq!(
        err(&c
            .call("device:heartbeat", &json!({"device_id": "other"}), T)
            .await
            .unwrap()),
        "Device ID mismatch"
    );
    assert_eq!(
        c.call("device:heartbeat", &heartbeat_payload("d1", 3, &[]), T)
            .await
            .unwrap(),
        json!({"success": true})
    );
    // Odd frames never take the server down.
    c.send_raw("42/local-executor,[\"device:heartbeat\"");
    c.send_raw("42/local-executor,12[]");
    c.send_raw("4garbage");
    let mut c2 = WireClient::connect_with_token(&server.url(), &server.demo_token().unwrap())
        .await
        .unwrap();
    assert_eq!(
        err(&c2.call("device:heartbeat", &json!(null), T).await.unwrap()).get(..16),
        Some("Invalid payload:")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_second_socket_makes_the_first_stale() {
    let server = server().await;
    let mut first = registered_device(&server, "twin").await;
    let mut second = registered_device(&server, "twin").await;
    assert_eq!(
        err(&first
            .call("device:heartbeat", &heartbeat_payload("twin", 5, &[]), T)
            .await
            .unwrap()),
        "Stale device connection"
    );
    assert_eq!(
        second
            .call("device:heartbeat", &heartbeat_payload("twin", 5, &[]), T)
            .await
            .unwrap()["success"],
        true
    );
    server.shutdown().await;
}

#[tokio::test]
async fn capability_sync_is_called_right_after_register() {
    let server = server().await;
    let mut events = server.events();
    let mut c = registered_device(&server, "caps").await;
    let (payload, ack_id) = c.wait_event("device:sync_capabilities", T).await.unwrap();
    assert_eq!(payload["mode"], "replace");
    c.ack(
        ack_id.expect("a call with an ack id"),
        &json!({"success": true, "skills": []}),
    );
    let ack = events
        .wait_for("capability ack", T, |e| match e {
            wegent_devserver::ServerEvent::CapabilitySync { ack, .. } => Some(ack.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(ack.unwrap()["success"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn ttl_expiry_then_monitor_fails_the_orphaned_task() {
    let server = server().await;
    let mut events = server.events();
    let mut dev = registered_device(&server, "quiet").await;
    dev.call("device:heartbeat", &heartbeat_payload("quiet", 5, &[]), T)
        .await
        .unwrap();
    let d = server
        .dispatch_task("admin", Some("quiet"), "hang")
        .await
        .unwrap();
    dev.wait_event("task:execute", T).await.unwrap();
    // No more heartbeats: the online TTL runs out although the socket stays up.
    assert_eq!(
        events.offline_of("quiet", T).await.unwrap(),
        OfflineReason::TtlExpired
    );
    assert_eq!(
        server.device("admin", "quiet").unwrap()["status"],
        "offline"
    );
    let outcome = server.wait_task_terminal(d.task_id, T).await.unwrap();
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(
        outcome.error_message.as_deref(),
        Some("Device connection lost (heartbeat timeout)")
    );
    // A late heartbeat brings it back ("ghost-offline recovery").
    assert_eq!(
        dev.call("device:heartbeat", &heartbeat_payload("quiet", 5, &[]), T)
            .await
            .unwrap()["success"],
        true
    );
    assert_eq!(server.device("admin", "quiet").unwrap()["status"], "online");
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_fails_running_tasks_after_the_grace() {
    let server = server_with(|c| c.timings.online_ttl = Duration::from_secs(30)).await;
    let mut events = server.events();
    let mut dev = registered_device(&server, "gone").await;
    let d = server
        .dispatch_task("admin", Some("gone"), "work")
        .await
        .unwrap();
    dev.wait_event("task:execute", T).await.unwrap();
    let started = tokio::time::Instant::now();
    dev.close();
    assert_eq!(
        events.offline_of("gone", T).await.unwrap(),
        OfflineReason::Disconnected
    );
    assert!(
        started.elapsed() >= server.config().timings.disconnect_grace,
        "not before the grace"
    );
    let outcome = server.wait_task_terminal(d.task_id, T).await.unwrap();
    assert_eq!(
        (outcome.status, outcome.error_message.as_deref()),
        (TaskStatus::Failed, Some("Device disconnected unexpectedly"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reconnect_within_the_grace_keeps_tasks_running() {
    let server = server_with(|c| {
        c.timings.online_ttl = Duration::from_secs(30);
        c.timings.disconnect_grace = Duration::from_millis(800);
    })
    .await;
    let mut events = server.events();
    let mut dev = registered_device(&server, "flaky").await;
    let d = server
        .dispatch_task("admin", Some("flaky"), "work")
        .await
        .unwrap();
    dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(server.drop_device("flaky"), 1);
    events.disconnect_of("flaky", T).await.unwrap();
    let again = registered_device(&server, "flaky").await;
    assert_eq!(server.register_count("flaky"), 2);
    // Past the grace: the old socket's cleanup saw the new socket and did nothing.
    let waited = events
        .offline_of("flaky", Duration::from_millis(1500))
        .await;
    assert!(
        waited.is_err(),
        "no offline after a quick reconnect: {waited:?}"
    );
    assert_eq!(server.task(d.task_id).unwrap().status, TaskStatus::Running);
    again.emit(
        "response.completed",
        &completed(d.task_id, d.assistant_subtask_id, "done"),
    );
    assert_eq!(
        server
            .wait_task_terminal(d.task_id, T)
            .await
            .unwrap()
            .status,
        TaskStatus::Completed
    );
    server.shutdown().await;
}

#[tokio::test]
async fn default_device_is_exclusive_and_delete_hides_until_reregister() {
    let server = server_with(|c| c.timings.register_debounce = Duration::from_millis(400)).await;
    let http = support::http();
    let jwt = server.demo_token().unwrap();
    let url = server.url();
    let _a = registered_device(&server, "dev-a").await;
    let mut b = registered_device(&server, "dev-b").await;
    assert_eq!(
        server.device("admin", "dev-a").unwrap()["is_default"],
        true,
        "first local device"
    );
    assert_eq!(
        server.device("admin", "dev-b").unwrap()["is_default"],
        false
    );
    let r = http
        .put(format!("{url}/api/devices/dev-b/default"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["message"],
        "Device 'dev-b' set as default"
    );
    assert_eq!(
        server.device("admin", "dev-a").unwrap()["is_default"],
        false
    );
    assert_eq!(server.device("admin", "dev-b").unwrap()["is_default"], true);
    let missing = http
        .put(format!("{url}/api/devices/nope/default"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let r = http
        .delete(format!("{url}/api/devices/dev-b"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["message"],
        "Device 'dev-b' deleted"
    );
    assert!(server.device("admin", "dev-b").is_none());
    assert_eq!(
        b.call("device:heartbeat", &heartbeat_payload("dev-b", 5, &[]), T)
            .await
            .unwrap()["success"],
        true
    );
    assert!(
        server.device("admin", "dev-b").is_none(),
        "heartbeats do not bring it back"
    );
    // Within the debounce the upsert is skipped: acked, still hidden.
    assert_eq!(
        b.call("device:register", &register_payload("dev-b"), T)
            .await
            .unwrap()["success"],
        true
    );
    assert!(server.device("admin", "dev-b").is_none());
    tokio::time::sleep(Duration::from_millis(450)).await; // let the debounce window pass (a timing under test)
    assert_eq!(
        b.call("device:register", &register_payload("dev-b"), T)
            .await
            .unwrap()["success"],
        true
    );
    let back = server
        .device("admin", "dev-b")
        .expect("re-register restores it");
    assert_eq!(back["slot_max"], 0, "register resets the capacity");
    server.shutdown().await;
}

#[tokio::test]
async fn injected_heartbeat_error_and_withheld_register_ack() {
    let server = server().await;
    let mut dev = registered_device(&server, "faulty").await;
    server.set_heartbeat_ack(AckFault::Error("Stale device connection".into()));
    assert_eq!(
        err(&dev
            .call("device:heartbeat", &heartbeat_payload("faulty", 5, &[]), T)
            .await
            .unwrap()),
        "Stale device connection"
    );
    server.set_heartbeat_ack(AckFault::Normal);
    server.set_register_ack(AckFault::Withhold);
    let mut other = WireClient::connect_with_token(&server.url(), &server.demo_token().unwrap())
        .await
        .unwrap();
    assert!(other
        .call(
            "device:register",
            &register_payload("x2"),
            Duration::from_millis(500)
        )
        .await
        .is_err());
    server.set_register_ack(AckFault::Delay(Duration::from_millis(300)));
    let started = tokio::time::Instant::now();
    assert_eq!(
        other
            .call("device:register", &register_payload("x3"), T)
            .await
            .unwrap()["success"],
        true
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.shutdown().await;
}

#[tokio::test]
async fn a_register_sent_right_after_connect_is_never_lost() {
    // Regression: handlers installed after CONNECT was sent could miss an immediate register.
    let server = server_with(|c| c.timings.rate_limit_max = 1000).await;
    let mut clients = Vec::new();
    for i in 0..40 {
        clients.push(registered_device(&server, &format!("burst-{i}")).await);
    }
    assert_eq!(server.list_devices("admin")["total"], 40);
    server.shutdown().await;
}

#[tokio::test]
async fn drop_device_cuts_the_transport_and_disconnect_device_says_goodbye() {
    let server = server().await;
    let mut events = server.events();
    let mut cut = registered_device(&server, "cut").await;
    assert_eq!(server.drop_device("cut"), 1);
    cut.wait_closed(T)
        .await
        .expect("the client sees its connection close");
    events.disconnect_of("cut", T).await.unwrap();
    assert_eq!(server.drop_device("cut"), 0, "nothing left to cut");

    let mut polite = registered_device(&server, "polite").await;
    assert_eq!(server.disconnect_device("polite"), 1);
    polite
        .wait_closed(T)
        .await
        .expect("the namespace disconnect reaches the client");
    events.disconnect_of("polite", T).await.unwrap();
    server.shutdown().await;
}
