//! (f) every ack fits the server's packet limit; (g) the session stays responsive (heartbeats
//! keep their rhythm, no reconnect) while hostile payloads are processed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wegent_devserver::ServerEvent;

use crate::rig::{accepted_register, is_terminal_name, CoreRig, DEVICE_ID};

/// python-engineio's `max_http_buffer_size` (protocol.md §1).
pub const PACKET_LIMIT: usize = 1_000_000;
/// Bytes a Socket.IO ack frame adds around its JSON (`43/local-executor,<id>[…]`).
const ACK_FRAME_OVERHEAD: usize = 40;

/// `device:execute_command` answers of growing size (stdout and stderr), as the backend calls
/// it with `max_output_bytes` up to 5 MiB.
pub async fn acks(rig: &CoreRig) -> Value {
    let mut rows = Vec::new();
    let mut largest = 0usize;
    let mut missing = 0;
    let mark = rig.log.len();
    for (bytes, stream) in [
        (10_000, "stdout"),
        (990_000, "stdout"),
        (2_000_000, "stdout"),
        (6_000_000, "stdout"),
        (3_000_000, "stderr"),
    ] {
        let redirect = if stream == "stderr" { " 1>&2" } else { "" };
        let script = format!("head -c {bytes} /dev/zero | tr '\\0' a{redirect}");
        let payload = json!({
            "command": format!("sh -c \"{script}\""),
            "argv": ["sh", "-c", script],
            "args": [],
            "env": {},
            "timeout_seconds": 30,
            "max_output_bytes": 5 * 1024 * 1024,
        });
        let answer = rig
            .server
            .call_device(
                DEVICE_ID,
                "device:execute_command",
                &payload,
                // The command takes well under a second; a missing ack is what this looks for.
                Duration::from_secs(10),
            )
            .await;
        let row = match answer {
            Ok(ack) => {
                let size = serde_json::to_vec(&ack).map_or(0, |v| v.len()) + ACK_FRAME_OVERHEAD;
                largest = largest.max(size);
                json!({"output_bytes": bytes, "stream": stream, "ack_bytes": size,
                       "stdout_truncated": ack["stdout_truncated"], "stderr_truncated": ack["stderr_truncated"]})
            }
            Err(e) => {
                missing += 1;
                json!({"output_bytes": bytes, "stream": stream, "ack": format!("none: {e}")})
            }
        };
        println!("ack: {row}");
        let failed = row.get("ack").is_some();
        rows.push(row);
        if failed {
            // An oversize frame closes the connection at the server: let the device come back.
            let mut from = mark;
            let _ = rig
                .log
                .next_from(
                    "a register",
                    &mut from,
                    Duration::from_secs(15),
                    accepted_register,
                )
                .await;
        }
    }
    json!({"calls": rows, "largest_ack_bytes": largest, "acks_missing": missing, "limit": PACKET_LIMIT})
}

/// Hostile `task:execute` payloads pushed by the server while the device heartbeats every
/// `rig.heartbeat`: the longest pause between two heartbeats beyond the interval, and whether
/// the device had to reconnect.
pub async fn hostile(rig: &CoreRig, base_url: &str) -> Value {
    let registers_before = rig.server.register_count(DEVICE_ID);
    let mark = rig.log.len();
    let start = Instant::now();
    let sample: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/task-execute.sample.json"
    ))
    .unwrap();
    let with_ids = |task_id: i64| {
        let mut p = sample.clone();
        p["task_id"] = json!(task_id);
        p["subtask_id"] = json!(task_id + 1);
        p["model_config"]["base_url"] = json!(base_url);
        p
    };
    // 100k env entries named like secrets.
    let mut env_flood = with_ids(990_001);
    env_flood["model_config"]["env"] = Value::Object(
        (0..100_000)
            .map(|i| (format!("HOSTILE_{i}_API_KEY"), json!(format!("value-{i}"))))
            .collect(),
    );
    // JSON nested 5,000 deep (a recursive parser without a limit would overflow its stack;
    // deeper values cannot be built and serialized here without the same risk), plus the
    // nesting as 200 KB of text in the prompt.
    let mut deep = with_ids(990_003);
    let mut nested = json!([]);
    for _ in 0..5_000 {
        nested = Value::Array(vec![nested]);
    }
    deep["model_config"]["deep"] = nested;
    deep["prompt"] = json!("[".repeat(100_000) + &"]".repeat(100_000));
    // Huge strings: a 4 MB prompt, a 1 MB title, a 1 MB header value.
    let mut huge = with_ids(990_005);
    huge["prompt"] = json!("p".repeat(4_000_000));
    huge["task_title"] = json!("t".repeat(1_000_000));
    huge["model_config"]["default_headers"]["X-Huge"] = json!("h".repeat(1_000_000));

    let sent = [
        rig.server
            .emit_to_device(DEVICE_ID, "task:execute", &env_flood),
        rig.server.emit_to_device(DEVICE_ID, "task:execute", &deep),
        rig.server.emit_to_device(DEVICE_ID, "task:execute", &huge),
    ];
    let emitted_in = start.elapsed();
    // Watch the heartbeats for 8 s after the pushes (a fixed window: the figure is the rhythm
    // over it).
    tokio::time::sleep(Duration::from_secs(8)).await;
    // A device that stopped heartbeating: how long until it beats again (bounded).
    let mut from = rig.log.len();
    let resumed = rig
        .log
        .next_from(
            "a heartbeat after the window",
            &mut from,
            Duration::from_secs(60),
            crate::rig::accepted_heartbeat,
        )
        .await
        .is_ok();
    let events = rig.log.snapshot();
    // Heartbeats the server did not accept, in the window (e.g. a capacity it finds invalid).
    let refused_beats: Vec<String> = events[mark..]
        .iter()
        .filter_map(|(_, e)| match e {
            ServerEvent::Heartbeat {
                device_id: Some(d),
                ack,
                ..
            } if d == DEVICE_ID && ack["success"] != true => Some(ack.to_string()),
            _ => None,
        })
        .collect();
    let mut beats: Vec<Instant> = events[..]
        .iter()
        .filter(|(_, e)| {
            matches!(e, ServerEvent::Heartbeat { device_id: Some(d), ack, .. }
                if d == DEVICE_ID && ack["success"] == true)
        })
        .map(|(t, _)| *t)
        .collect();
    // From the last heartbeat before the pushes.
    let first = beats.iter().rposition(|t| *t < start).unwrap_or(0);
    beats.drain(..first);
    // Without a heartbeat since, the last gap runs to now (60 s after the window at most).
    if !resumed {
        beats.push(Instant::now());
    }
    let max_gap = beats
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    let lateness = max_gap.saturating_sub(rig.heartbeat);
    let ended: Vec<Value> = [990_001, 990_003, 990_005]
        .iter()
        .map(|t| {
            let names: Vec<String> = events[mark..]
                .iter()
                .filter_map(|(_, e)| match e {
                    ServerEvent::Responses { name, payload, .. } if payload["task_id"] == *t => {
                        Some(name.clone())
                    }
                    _ => None,
                })
                .collect();
            json!({"task_id": t, "events": names.len(), "last": names.last()})
        })
        .collect();
    // Let the hostile tasks that did start end before the next section (bounded).
    for task in [990_001i64, 990_005] {
        let mut from = mark;
        let _ = rig
            .log
            .next_from(
                "a hostile task's end",
                &mut from,
                Duration::from_secs(30),
                |e| match e {
                    ServerEvent::Responses { name, payload, .. }
                        if payload["task_id"] == task && is_terminal_name(name) =>
                    {
                        Some(())
                    }
                    _ => None,
                },
            )
            .await;
    }
    // Does task handling still work? A normal task after the hostile ones.
    let after = Instant::now();
    let mut from = rig.log.len();
    let next_task_started = match rig.dispatch("a normal task after the hostile ones").await {
        Ok(task) => rig
            .log
            .next_from(
                "the next task to start",
                &mut from,
                Duration::from_secs(30),
                |e| match e {
                    ServerEvent::Responses { payload, .. } if payload["task_id"] == task => {
                        Some(())
                    }
                    _ => None,
                },
            )
            .await
            .ok()
            .map(|()| after.elapsed().as_secs_f64() * 1e3),
        Err(_) => None,
    };
    json!({
        "next_normal_task_started_after_ms": next_task_started,
        "payloads": ["100k env entries named *_API_KEY", "a value nested 5,000 deep and a 200 KB bracket prompt", "4 MB prompt + 1 MB title + 1 MB header"],
        "sockets_reached": sent,
        "emitted_in_ms": emitted_in.as_secs_f64() * 1e3,
        "heartbeat_interval_ms": rig.heartbeat.as_secs_f64() * 1e3,
        "heartbeats_after_the_pushes": beats.iter().filter(|t| **t >= start).count(),
        "heartbeats_refused": refused_beats.len(),
        "first_refusal": refused_beats.first(),
        "max_heartbeat_gap_ms": max_gap.as_secs_f64() * 1e3,
        "heartbeat_lateness_ms": lateness.as_secs_f64() * 1e3,
        "reconnects": rig.server.register_count(DEVICE_ID) - registers_before,
        "hostile_tasks": ended,
    })
}
