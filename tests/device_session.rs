//! The device session end to end: the real core (`device::start_with_tasks`) against the real
//! devserver on loopback, with faults injected on the server side. Task execution is a stand-in
//! (`session_support::FakeTasks`) so each test controls the slots exactly.
//!
//! Every wait awaits an event (a server event or a device status change) with a generous bound;
//! the only plain sleeps prove that something does *not* happen, over many backoff periods.

mod session_support;

use std::time::{Duration, SystemTime};

use serde_json::json;
use session_support::{tiny_backoff, Options, Rig, LIMIT, USER, WAIT};
use wegent_devserver::{AckFault, MalformedFrame, ServerEvent, TaskStatus};
use wegent_executor::config::BackoffConfig;
use wegent_executor::session::backoff::Backoff;
use wegent_executor::status::{Command, Connection};

/// Long enough for a core with [`tiny_backoff`] to retry about ten times.
const NO_RETRY_WINDOW: Duration = Duration::from_millis(1000);

fn is_offline(c: &Connection) -> bool {
    matches!(c, Connection::Offline { .. })
}

/// Connects and refusals the server saw in `window` (an absence check: it has to wait).
async fn connects_within(events: &mut wegent_devserver::EventStream, window: Duration) -> usize {
    let mut count = 0;
    let _ = tokio::time::timeout(window, async {
        loop {
            match events.next().await {
                Ok(ServerEvent::Connected { .. } | ServerEvent::ConnectRefused { .. }) => {
                    count += 1
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    })
    .await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_then_heartbeats_with_a_capacity_the_server_accepts() {
    // Two tasks already hold slots, so `active`/`active_task_ids` are not trivially empty.
    let mut rig = Rig::start(Options {
        running: vec![282, 305],
        ..Options::default()
    })
    .await;

    let (register, ack) = rig.next_register().await;
    assert_eq!(ack, json!({"success": true, "device_id": rig.device_id}));
    assert_eq!(register["device_type"], "local");
    assert_eq!(register["name"], "Session test box");

    // Right after the register, before any interval: the server shows "0/∞" until it arrives.
    let (beat, ack) = rig.next_heartbeat().await;
    assert_eq!(
        ack,
        json!({"success": true}),
        "the server's schema accepted it"
    );
    assert_eq!(beat["device_id"], rig.device_id.as_str());
    assert_eq!(beat["runtime_instance_id"], register["runtime_instance_id"]);
    let capacity = &beat["runtime_capacity"];
    assert_eq!(
        capacity["active"].as_u64().unwrap() as usize,
        capacity["active_task_ids"].as_array().unwrap().len(),
        "active must equal len(active_task_ids): {capacity}"
    );
    assert_eq!(
        *capacity,
        json!({"limit": LIMIT, "active": 2, "active_task_ids": ["282", "305"], "queued": 0})
    );
    assert_eq!(beat["running_task_ids"], json!([282, 305]));

    rig.wait_online().await;
    let listed = rig.server.device(USER, &rig.device_id).unwrap();
    assert_eq!(listed["status"], "online");
    assert_eq!(
        (listed["slot_used"].clone(), listed["slot_max"].clone()),
        (json!(2), json!(5))
    );

    // And it keeps beating on its interval.
    rig.next_accepted_heartbeat().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_tried_once_and_reported_in_the_servers_words() {
    let mut rig = Rig::start(Options {
        token: Some("wg-this-key-was-never-issued".into()),
        ..Options::default()
    })
    .await;

    let refusal = rig
        .events
        .connect_refused(WAIT)
        .await
        .expect("the connect reaches the server");
    assert_eq!(refusal, "Invalid or expired API key");
    let status = rig
        .wait_status("TokenRejected", |s| {
            matches!(s.connection, Connection::TokenRejected { .. })
        })
        .await;
    assert_eq!(
        status.connection,
        Connection::TokenRejected {
            message: "Invalid or expired API key".into()
        }
    );

    // Retrying a refused token only burns the server's rate limit: with 20–100 ms backoff a retry
    // would show up here about ten times over.
    let retries = connects_within(&mut rig.events, NO_RETRY_WINDOW).await;
    assert_eq!(retries, 0, "the core retried a rejected token");
    assert_eq!(
        rig.connection(),
        Connection::TokenRejected {
            message: "Invalid or expired API key".into()
        }
    );
}

/// The control of the test above: the same backoff does retry a refusal that is not about the
/// token, so "no retry" there is the token rule and not a slow backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_not_about_the_token_is_retried_with_backoff() {
    let mut rig = Rig::start(Options::default()).await;
    rig.wait_online().await;
    rig.server
        .refuse_connects(Some("Authentication service unavailable"));
    rig.send(Command::Restart).await;
    for _ in 0..3 {
        let message = rig.events.connect_refused(WAIT).await.unwrap();
        assert_eq!(message, "Authentication service unavailable");
    }
    let status = rig
        .wait_status("Offline with the server's words", |s| {
            matches!(&s.connection, Connection::Offline { reason, .. }
                if reason.contains("Authentication service unavailable"))
        })
        .await;
    assert!(matches!(
        status.connection,
        Connection::Offline {
            retry_at: Some(_),
            ..
        }
    ));
    rig.server.refuse_connects(None);
    rig.next_register().await;
    rig.wait_online().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comes_back_online_after_the_server_restarts() {
    let mut rig = Rig::start(Options::default()).await;
    rig.next_register().await;
    rig.wait_online().await;

    // A restart in two steps, so the offline period lasts until the test has seen it (the core
    // keeps failing to connect meanwhile).
    rig.server.stop_accepting().await;
    let offline = rig
        .wait_status("Offline while the server is down", |s| {
            is_offline(&s.connection)
        })
        .await;
    assert!(
        matches!(
            offline.connection,
            Connection::Offline {
                retry_at: Some(_),
                ..
            }
        ),
        "{offline:?}"
    );
    rig.server.resume().await.unwrap();

    let (_, ack) = rig.next_register().await;
    assert_eq!(ack["success"], true);
    rig.wait_online().await;
    rig.next_accepted_heartbeat().await;
    assert_eq!(rig.server.register_count(&rig.device_id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_readiness_check_brings_the_device_back_before_its_backoff() {
    // A backoff of an hour (the first retry lands within `WAIT` with p ≈ 0.5 %): only the
    // readiness check (`GET /health` every ~100 ms) can bring the device back in time.
    let hour = Duration::from_secs(3600);
    let mut rig = Rig::start(Options {
        backoff: BackoffConfig {
            initial: hour,
            max: hour,
            probe_interval: Duration::from_millis(100),
            connect_spread: Duration::from_millis(50),
            ..tiny_backoff()
        },
        ..Options::default()
    })
    .await;
    rig.next_register().await;
    rig.wait_online().await;

    rig.server.stop_accepting().await;
    rig.wait_status("Offline while the server is down", |s| {
        is_offline(&s.connection)
    })
    .await;
    rig.server.resume().await.unwrap();

    let (_, ack) = rig.next_register().await;
    assert_eq!(ack["success"], true);
    rig.wait_online().await;
    assert_eq!(rig.server.register_count(&rig.device_id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_is_noticed_at_once_and_reconnected() {
    let mut rig = Rig::start(Options {
        // The server pings every 25 s and allows 20 s more: a core that relied on pings to
        // notice the loss could not reconnect within `WAIT`.
        real_pings: true,
        // No heartbeat is due for an hour either: only the socket itself can tell.
        heartbeat_interval: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    rig.next_register().await;
    rig.wait_online().await;

    for round in 1..=3 {
        assert_eq!(rig.server.drop_device(&rig.device_id), 1, "round {round}");
        let reason = rig
            .events
            .disconnect_of(&rig.device_id, WAIT)
            .await
            .unwrap();
        assert_eq!(reason, "TransportError", "a cut, not a goodbye");
        let (_, ack) = rig.next_register().await;
        assert_eq!(ack["success"], true, "round {round}");
        rig.wait_online().await;
    }
    assert_eq!(rig.server.register_count(&rig.device_id), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_delays_are_fully_jittered_within_the_cap() {
    let cap = Duration::from_millis(300);
    // initial == max: every delay is drawn from the same [0, cap] range.
    let backoff = BackoffConfig {
        initial: cap,
        max: cap,
        ..tiny_backoff()
    };
    let mut rig = Rig::start(Options {
        backoff: backoff.clone(),
        ..Options::default()
    })
    .await;
    rig.next_register().await;
    rig.wait_online().await;

    // Keep the device failing after the drop so there are retries to look at.
    rig.server
        .refuse_connects(Some("Authentication service unavailable"));
    assert_eq!(rig.server.drop_device(&rig.device_id), 1);
    let mut announced = Vec::new();
    let mut last = None;
    while announced.len() < 8 {
        let status = rig
            .wait_status("the next announced retry", |s| {
                matches!(s.connection, Connection::Offline { retry_at, .. } if retry_at != last)
            })
            .await;
        let seen_at = SystemTime::now();
        let Connection::Offline { retry_at, .. } = status.connection else {
            unreachable!()
        };
        last = retry_at;
        announced.push((seen_at, retry_at.expect("a retry time")));
    }
    // Each retry was announced at most `cap` ahead (slack: two clocks are read), and they are
    // not all at the cap (all 8 above 0.8·cap by chance: p = 0.2^8 ≈ 3·10⁻⁶).
    let ahead: Vec<Duration> = announced
        .iter()
        .map(|(seen_at, at)| at.duration_since(*seen_at).unwrap_or_default())
        .collect();
    assert!(
        ahead.iter().all(|a| *a <= cap + Duration::from_millis(20)),
        "{ahead:?} beyond {cap:?}"
    );
    assert!(
        ahead.iter().any(|a| *a < cap * 4 / 5),
        "no jitter: {ahead:?}"
    );
    rig.server.refuse_connects(None);
    rig.next_register().await;
    rig.wait_online().await;

    // The delays themselves, from the module the session draws them with: full jitter spreads
    // them over all of [0, ceiling] instead of clustering at the ceiling.
    let mut b = Backoff::new(backoff);
    let delays: Vec<Duration> = (0..1000)
        .map(|_| b.next_delay(rand::random(), false))
        .collect();
    assert!(delays.iter().all(|d| *d <= cap));
    assert!(
        delays.iter().any(|d| *d < cap / 10),
        "some retries come early"
    );
    assert!(delays.iter().any(|d| *d > cap * 9 / 10), "some come late");
    let distinct: std::collections::HashSet<_> = delays.iter().collect();
    assert!(
        distinct.len() > 900,
        "delays vary: {} distinct",
        distinct.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_error_ack_takes_the_device_offline_then_it_registers_again() {
    let mut rig = Rig::start(Options::default()).await;
    rig.next_register().await;
    rig.wait_online().await;

    // protocol.md §9: treat a heartbeat `{"error": ...}` as fatal.
    rig.server
        .set_heartbeat_ack(AckFault::Error("Stale device connection".into()));
    let status = rig
        .wait_status("Offline because of the heartbeat error", |s| {
            matches!(&s.connection, Connection::Offline { reason, .. }
                if reason.contains("Stale device connection"))
        })
        .await;
    assert!(matches!(
        status.connection,
        Connection::Offline {
            retry_at: Some(_),
            ..
        }
    ));
    // The core dropped that connection rather than heartbeating into the void.
    rig.events
        .disconnect_of(&rig.device_id, WAIT)
        .await
        .expect("the rejected connection is closed");

    rig.server.set_heartbeat_ack(AckFault::Normal);
    rig.wait_online().await;
    rig.next_accepted_heartbeat().await;
    assert!(rig.server.register_count(&rig.device_id) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_tasks_show_as_five_active_and_one_queued() {
    let mut rig = Rig::start(Options::default()).await;
    rig.next_register().await;
    rig.wait_online().await;

    let mut task_ids = Vec::new();
    for i in 0..6 {
        let d = rig
            .server
            .dispatch_task(USER, Some(&rig.device_id), &format!("task {i}"))
            .await
            .unwrap();
        task_ids.push(d.task_id);
    }

    // Slot changes trigger heartbeats; wait for the one that shows the full picture.
    let id = rig.device_id.clone();
    let beat = rig
        .events
        .wait_for("a heartbeat with 5 active + 1 queued", WAIT, |e| match e {
            ServerEvent::Heartbeat {
                device_id: Some(d),
                payload,
                ack,
                ..
            } if *d == id
                && payload["runtime_capacity"]["active"] == 5
                && payload["runtime_capacity"]["queued"] == 1 =>
            {
                Some((payload.clone(), ack.clone()))
            }
            _ => None,
        })
        .await
        .unwrap();
    let (payload, ack) = beat;
    assert_eq!(ack, json!({"success": true}));
    let first_five: Vec<String> = task_ids[..5].iter().map(i64::to_string).collect();
    assert_eq!(
        payload["runtime_capacity"],
        json!({"limit": 5, "active": 5, "active_task_ids": first_five, "queued": 1})
    );
    assert_eq!(payload["running_task_ids"], json!(task_ids[..5]));
    assert_eq!(rig.tasks.log().executed.len(), 6);

    let listed = rig.server.device(USER, &rig.device_id).unwrap();
    assert_eq!(
        (listed["slot_used"].clone(), listed["slot_max"].clone()),
        (json!(5), json!(5))
    );
    let status = rig
        .wait_status("5 running + 1 queued", |s| {
            s.slots.running.len() == 5 && s.slots.queued == 1
        })
        .await;
    assert_eq!(status.connection, Connection::Online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_answer_becomes_an_error_and_the_connection_stays_up() {
    let mut rig = Rig::start(Options::default()).await;
    rig.next_register().await;
    rig.wait_online().await;
    let task = rig
        .server
        .dispatch_task(USER, Some(&rig.device_id), "write a lot")
        .await
        .unwrap();

    // An answer over the server's 1,000,000-byte packet limit, queued as the executor would.
    rig.outbox.push(
        "response.completed",
        json!({
            "event_type": "response.completed",
            "task_id": task.task_id,
            "subtask_id": task.assistant_subtask_id,
            "message_id": task.message_id,
            "data": {"type": "response.completed", "response": {"status": "completed",
                "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "x".repeat(1_200_000)}]}]}},
        }),
    );

    // The task is not left hanging: it fails with a reason instead.
    let outcome = rig
        .server
        .wait_task_terminal(task.task_id, WAIT)
        .await
        .unwrap();
    assert_eq!(outcome.status, TaskStatus::Failed);
    let error = outcome.error_message.unwrap_or_default();
    assert!(error.contains("over the server's limit"), "{error}");

    // Same connection: still online, heartbeats still accepted, no new register.
    rig.next_accepted_heartbeat().await;
    rig.next_accepted_heartbeat().await;
    assert_eq!(rig.connection(), Connection::Online);
    assert_eq!(rig.server.register_count(&rig.device_id), 1);
    let left_online = rig
        .states()
        .iter()
        .skip_while(|c| **c != Connection::Online)
        .any(|c| *c != Connection::Online);
    assert!(!left_online, "{:#?}", rig.states());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_server_frames_are_skipped_and_the_connection_stays_up() {
    let mut rig = Rig::start(Options::default()).await;
    rig.next_register().await;
    rig.wait_online().await;

    for frame in [
        MalformedFrame::TaskExecuteNotAnObject,
        MalformedFrame::TaskExecuteMissingIds,
        MalformedFrame::TaskCancelBadIds,
        MalformedFrame::BinaryAttachment,
        MalformedFrame::UnknownEvent,
    ] {
        assert_eq!(
            rig.server.send_malformed(&rig.device_id, frame),
            1,
            "{frame:?}"
        );
    }

    // Events sent after the odd frames are still read and answered, in order.
    let ack = rig
        .server
        .call_device(
            &rig.device_id,
            "device:sync_capabilities",
            &json!({"mode": "replace", "skills": [], "plugins": [], "mcps": []}),
            WAIT,
        )
        .await
        .expect("the device still answers calls");
    assert_eq!(ack["success"], true);
    rig.next_accepted_heartbeat().await;

    // None of the junk took a slot, and the connection never dropped.
    assert!(rig.device.status.borrow().slots.running.is_empty());
    assert_eq!(rig.connection(), Connection::Online);
    assert_eq!(rig.server.register_count(&rig.device_id), 1);
    let left_online = rig
        .states()
        .iter()
        .skip_while(|c| **c != Connection::Online)
        .any(|c| *c != Connection::Online);
    assert!(!left_online, "{:#?}", rig.states());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_connect_backs_off_at_least_thirty_seconds() {
    let started = SystemTime::now();
    // The devserver's real limiter with no allowance: the very first connect is refused.
    let mut rig = Rig::start(Options {
        rate_limit_max: 0,
        ..Options::default()
    })
    .await;

    let refusal = rig.events.connect_refused(WAIT).await.unwrap();
    assert_eq!(refusal, "Too many device connection attempts");
    let status = rig
        .wait_status("Offline after the rate limit", |s| {
            is_offline(&s.connection)
        })
        .await;
    let Connection::Offline {
        retry_at: Some(retry_at),
        reason,
    } = status.connection
    else {
        panic!("{status:?}")
    };
    assert!(
        reason.contains("Too many device connection attempts"),
        "{reason}"
    );
    // The refusal came after `started`, so its retry is at least 30 s after it (a little slack
    // for reading two different clocks).
    let wait = retry_at.duration_since(started).unwrap();
    assert!(
        wait >= Duration::from_millis(29_950),
        "retry after only {wait:?}"
    );

    // The tiny backoff is not used here: no second attempt comes soon.
    let retries = connects_within(&mut rig.events, NO_RETRY_WINDOW).await;
    assert_eq!(retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_final_events_then_leaves_politely() {
    let mut rig = Rig::start(Options::default()).await;
    rig.next_register().await;
    rig.wait_online().await;
    let task = rig
        .server
        .dispatch_task(USER, Some(&rig.device_id), "long job")
        .await
        .unwrap();
    rig.wait_status("the task running", |s| s.slots.running.len() == 1)
        .await;

    rig.send(Command::Shutdown).await;

    // The running task's terminal event reaches the server before the goodbye.
    rig.events
        .responses_event(task.task_id, "response.incomplete", WAIT)
        .await
        .expect("the cancelled task is answered");
    let reason = rig
        .events
        .disconnect_of(&rig.device_id, WAIT)
        .await
        .unwrap();
    // socketioxide's name for a Socket.IO DISCONNECT sent by the client (not a dropped socket).
    assert_eq!(reason, "ClientNSDisconnect");
    rig.wait_status("Stopped", |s| s.connection == Connection::Stopped)
        .await;
    assert_eq!(rig.tasks.log().shutdowns, 1);
    let outcome = rig.server.task(task.task_id).unwrap();
    assert_eq!(outcome.status, TaskStatus::Cancelled);

    tokio::time::timeout(WAIT, rig.device.stopped())
        .await
        .expect("the core task ends");
}
