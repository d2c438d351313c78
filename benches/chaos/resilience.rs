//! (a) connection drops and (b) devserver restarts while tasks stream: every task ends exactly
//! once, nothing is lost, no text delta arrives twice or out of order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wegent_devserver::{ServerEvent, TaskStatus};

use crate::rig::{
    accepted_register, is_terminal_name, slow_text, CoreRig, CHUNKS, DEVICE_ID, WAIT,
};

/// Tasks streaming at any time.
const IN_FLIGHT: usize = 3;

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Cut the device's TCP connection (`drop_device`).
    Drop,
    /// Stop the server (all sockets dropped, port closed) and listen again.
    Restart,
}

/// Injects `faults` faults, each while a task streams (a delta arrived since the device was
/// last (re)registered), keeping `IN_FLIGHT` tasks running; then waits for every task to end.
pub async fn run(rig: &CoreRig, fault: Fault, faults: usize) -> Result<Value, String> {
    let started = Instant::now();
    let mut tasks: Vec<i64> = Vec::new();
    let mut from = rig.log.len();
    let mut injected = 0;
    let mut reconnect = Vec::new();
    while injected < faults {
        let running = tasks
            .iter()
            .filter(|t| rig.status(**t).is_none_or(|s| !s.is_terminal()))
            .count();
        let mark = rig.log.len();
        let mut new = Vec::new();
        for _ in running..IN_FLIGHT {
            new.push(rig.dispatch("stream through chaos").await?);
        }
        // A fault before the device has taken a new task would lose the `task:execute` on the
        // wire (the server does not resend it; the real one neither): wait until each started.
        for task in &new {
            let mut cursor = mark;
            rig.log
                .next_from("the task to start", &mut cursor, WAIT, |e| match e {
                    ServerEvent::Responses { payload, .. } if payload["task_id"] == *task => {
                        Some(())
                    }
                    _ => None,
                })
                .await?;
        }
        tasks.extend(new);
        // A delta of a task of ours, after the last fault: the fault falls mid-stream.
        rig.log
            .next_from("a text delta", &mut from, WAIT, |e| match e {
                ServerEvent::Responses { name, payload, .. }
                    if name == "response.output_text.delta"
                        && payload["task_id"]
                            .as_i64()
                            .is_some_and(|t| tasks.contains(&t)) =>
                {
                    Some(())
                }
                _ => None,
            })
            .await?;
        let at = Instant::now();
        match fault {
            Fault::Drop => {
                if rig.server.drop_device(DEVICE_ID) != 1 {
                    // Not connected at this instant (cannot happen right after a delta; count
                    // nothing and try again).
                    continue;
                }
            }
            Fault::Restart => rig
                .server
                .restart()
                .await
                .map_err(|e| format!("restart: {e}"))?,
        }
        injected += 1;
        rig.log
            .next_from(
                "the device registered again",
                &mut from,
                WAIT,
                accepted_register,
            )
            .await?;
        reconnect.push(at.elapsed());
    }

    // Every task ends (the mock's streams are finite).
    let mut outcomes = BTreeMap::new();
    for task in &tasks {
        let outcome = rig.server.wait_task_terminal(*task, WAIT * 2).await;
        outcomes.insert(*task, outcome.ok().map(|o| o.status));
    }
    // The events a device sends after a settle still arrive: give the log a moment to catch up
    // with the device's final events (awaited: a terminal event per task, or the deadline).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && tasks.iter().any(|t| {
            !rig.log
                .responses(*t)
                .iter()
                .any(|(n, _)| is_terminal_name(n))
        })
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let expected = slow_text(CHUNKS);
    let mut lost = Vec::new();
    let mut redelivered = 0;
    let mut redelivered_terminals = 0;
    let mut conflicting = 0;
    let mut gaps = 0;
    let mut not_exactly_one_terminal = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for task in &tasks {
        let responses = rig.log.responses(*task);
        let check = delta_check(&responses);
        redelivered += check.redelivered;
        conflicting += check.conflicting;
        gaps += check.gaps;
        // At-least-once delivery may bring the terminal event twice (its ack lost with the
        // connection): the same event again is a redelivery; two different ones, or none, break
        // the invariant.
        let mut distinct: Vec<&(String, Value)> = Vec::new();
        for event in responses.iter().filter(|(n, _)| is_terminal_name(n)) {
            if distinct.contains(&event) {
                redelivered_terminals += 1;
            } else {
                distinct.push(event);
            }
        }
        let terminals: Vec<&str> = distinct.iter().map(|(n, _)| n.as_str()).collect();
        if terminals.len() != 1 {
            not_exactly_one_terminal.push(json!({"task": task, "terminal_events": terminals}));
        }
        let status = outcomes[task];
        *statuses.entry(format!("{status:?}")).or_default() += 1;
        // Lost: never ended, or ended "completed" without the whole answer.
        let completed_whole = terminals == ["response.completed"] && check.text == expected;
        let ended = status.is_some_and(TaskStatus::is_terminal) && !terminals.is_empty();
        if !ended || (terminals == ["response.completed"] && !completed_whole) {
            lost.push(*task);
        }
    }
    let mut reconnect_ms: Vec<f64> = reconnect.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    reconnect_ms.sort_by(f64::total_cmp);
    Ok(json!({
        "faults": injected,
        "tasks": tasks.len(),
        "server_statuses": statuses,
        "lost_tasks": lost,
        "redelivered_deltas": redelivered,
        "redelivered_terminal_events": redelivered_terminals,
        "conflicting_duplicate_deltas": conflicting,
        "delta_gaps": gaps,
        "tasks_without_exactly_one_terminal_event": not_exactly_one_terminal,
        "fault_to_registered_again_ms": crate::support::summary_ms(&reconnect_ms),
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

struct DeltaCheck {
    /// The answer rebuilt from the deltas in offset order.
    text: String,
    /// A delta the server already had, sent again with the same offset and text: the outbox
    /// delivers at least once, and an event whose ack was in flight when the connection was cut
    /// is written again on the next connection (src/outbox.rs). The offset lets a reader skip it.
    redelivered: usize,
    /// A delta at an offset already covered, with other text: a real duplicate.
    conflicting: usize,
    /// A delta beyond the text so far: something before it was lost.
    gaps: usize,
}

/// Walks the text deltas in arrival order against the text rebuilt so far.
fn delta_check(responses: &[(String, Value)]) -> DeltaCheck {
    let mut check = DeltaCheck {
        text: String::new(),
        redelivered: 0,
        conflicting: 0,
        gaps: 0,
    };
    let mut chars = 0u64;
    for (_, payload) in responses
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
    {
        let data = &payload["data"];
        let delta = data["delta"].as_str().unwrap_or_default();
        match data["offset"].as_u64() {
            Some(o) if o == chars => {
                chars += delta.chars().count() as u64;
                check.text.push_str(delta);
            }
            Some(o) if o < chars => {
                let seen: String = check
                    .text
                    .chars()
                    .skip(o as usize)
                    .take(delta.chars().count())
                    .collect();
                if seen == delta {
                    check.redelivered += 1;
                } else {
                    check.conflicting += 1;
                }
            }
            _ => check.gaps += 1,
        }
    }
    check
}
