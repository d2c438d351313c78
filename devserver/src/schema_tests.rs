use super::*;
use serde_json::json;

#[test]
fn rust_executor_register_payload_is_valid() {
    let p = json!({"device_id":"device-3f9c","runtime_instance_id":"runtime-0a1b","name":"Linux-Device-1",
        "device_type":"local","bind_shell":"claudecode","executor_version":"1.4.2","client_ip":"192.168.1.20",
        "runtime_transfer_host":"192.168.1.20","app_device_id":"","max_slots":5,
        "runtime_features":{"schemaVersion":1,"worktrees":{"version":1,"managed":true}}});
    let r = validate_register(&p).unwrap();
    assert_eq!(r.device_id, "device-3f9c");
    assert_eq!(r.runtime_instance_id.as_deref(), Some("runtime-0a1b"));
    assert!(r.runtime_features.is_some());
}

#[test]
fn empty_device_id_gives_two_errors_like_the_server() {
    let e = validate_register(&json!({"device_id": ""})).unwrap_err();
    assert!(
        e.starts_with("2 validation errors for DeviceRegisterPayload\ndevice_id\n"),
        "{e}"
    );
    assert!(e.contains("name\n  Field required"), "{e}");
}

#[test]
fn register_rejects_unknown_device_type_and_non_object() {
    let e =
        validate_register(&json!({"device_id":"d","name":"n","device_type":"phone"})).unwrap_err();
    assert!(
        e.contains("Input should be 'local', 'app', 'cloud' or 'remote'"),
        "{e}"
    );
    assert!(validate_register(&json!("x"))
        .unwrap_err()
        .contains("valid dictionary"));
    assert!(validate_register(&json!({"device_id": "d", "name": "x".repeat(101)})).is_err());
}

#[test]
fn malformed_runtime_features_count_as_absent() {
    let r =
        validate_register(&json!({"device_id":"d","name":"n","runtime_features":"junk"})).unwrap();
    assert_eq!(r.runtime_features, None);
}

#[test]
fn empty_heartbeat_says_field_required() {
    let e = validate_heartbeat(&json!({})).unwrap_err();
    assert!(
        e.starts_with("1 validation error for DeviceHeartbeatPayload\ndevice_id\n  Field required"),
        "{e}"
    );
}

#[test]
fn numeric_string_task_ids_are_coerced_others_fail() {
    let ok = validate_heartbeat(&json!({"device_id":"d","running_task_ids":["282", 305]})).unwrap();
    assert_eq!(ok.running_task_ids, vec![282, 305]);
    let e = validate_heartbeat(&json!({"device_id":"d","running_task_ids":["abc"]})).unwrap_err();
    assert!(e.contains("running_task_ids.0"), "{e}");
}

#[test]
fn capacity_active_must_match_ids() {
    let e = validate_heartbeat(&json!({"device_id":"d","runtime_capacity":{"limit":3,"active":1,"active_task_ids":[],"queued":0}}))
        .unwrap_err();
    assert!(
        e.contains("active_task_ids must identify every active Runtime task"),
        "{e}"
    );
    let ok = validate_heartbeat(&json!({"device_id":"d","runtime_capacity":{"limit":5,"active":2,"active_task_ids":["1","2"],"queued":0}}))
        .unwrap();
    assert_eq!(ok.runtime_capacity.unwrap().limit, 5);
}

#[test]
fn capacity_limit_bounds_and_duplicates() {
    for cap in [
        json!({"limit":0,"active":0,"active_task_ids":[],"queued":0}),
        json!({"limit":21,"active":0,"active_task_ids":[],"queued":0}),
        json!({"limit":5,"active":2,"active_task_ids":["1","1"],"queued":0}),
        json!({"limit":5,"active":1,"active_task_ids":[""],"queued":0}),
        json!({"active":0}),
    ] {
        assert!(
            validate_heartbeat(&json!({"device_id":"d","runtime_capacity":cap})).is_err(),
            "{cap}"
        );
    }
}

#[test]
fn empty_runtime_instance_id_fails_but_null_is_fine() {
    assert!(validate_heartbeat(&json!({"device_id":"d","runtime_instance_id":""})).is_err());
    assert!(validate_heartbeat(&json!({"device_id":"d","runtime_instance_id":null})).is_ok());
}
