//! Slot admission with real CLI runs: 5 run, the 6th waits its turn, all complete; a queued task
//! that is cancelled never starts.
#![cfg(unix)]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::time::Duration;

use mock_anthropic::{MockAnthropic, Script};
use serde_json::json;
use task_harness::{config, names, payload, Rig, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_tasks_five_run_one_waits_then_all_complete() {
    let mock = MockAnthropic::start(Script::Slow {
        chunks: 6,
        interval: Duration::from_millis(250),
    })
    .await;
    let rig = Rig::new(config());
    assert_eq!(rig.manager.slots().borrow().max, 5);
    let mut slots = rig.manager.slots();
    for i in 0..6 {
        rig.manager
            .execute(payload(100 + i, 200 + i, &format!("task {i}"), &mock.url));
    }
    // The peak: 5 running and 1 queued, the queued one being the last to arrive.
    let peak = tokio::time::timeout(
        WAIT,
        slots.wait_for(|s| s.running.len() == 5 && s.queued == 1),
    )
    .await
    .expect("slots never showed 5 running + 1 queued")
    .unwrap()
    .clone();
    let running: Vec<i64> = peak.running.iter().map(|t| t.task_id).collect();
    assert_eq!(running, [100, 101, 102, 103, 104]);

    let mut completed = Vec::new();
    let mut max_seen_running = 0;
    while completed.len() < 6 {
        let event = rig.next().await;
        max_seen_running = max_seen_running.max(rig.manager.slots().borrow().running.len());
        if event.is_terminal() {
            assert_eq!(event.name, "response.completed", "{event:?}");
            completed.push(event.payload["subtask_id"].as_i64().unwrap());
        }
    }
    completed.sort();
    assert_eq!(completed, [200, 201, 202, 203, 204, 205]);
    assert!(max_seen_running <= 5);
    let idle = tokio::time::timeout(
        WAIT,
        slots.wait_for(|s| s.running.is_empty() && s.queued == 0),
    )
    .await;
    assert!(idle.is_ok(), "slots not released");
    assert_eq!(mock.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_queued_task_never_starts_and_is_answered() {
    let mock = MockAnthropic::start(Script::Slow {
        chunks: 100,
        interval: Duration::from_millis(100),
    })
    .await;
    let rig = Rig::new(wegent_executor::config::TaskConfig {
        max_slots: 1,
        ..config()
    });
    let mut slots = rig.manager.slots();
    rig.manager.execute(payload(300, 301, "first", &mock.url));
    rig.manager.execute(payload(310, 311, "second", &mock.url));
    tokio::time::timeout(
        WAIT,
        slots.wait_for(|s| s.running.len() == 1 && s.queued == 1),
    )
    .await
    .unwrap()
    .unwrap();

    rig.manager
        .cancel(&json!({"task_id": 310, "subtask_id": 311}));
    let events = rig.until_terminal(311).await;
    assert_eq!(names(&events), ["response.incomplete"]);
    assert!(
        !rig.workspace(310).exists(),
        "a cancelled queued task must not start"
    );

    // Shutdown stops the running one; its terminal event is queued before shutdown returns.
    tokio::time::timeout(WAIT, rig.manager.shutdown())
        .await
        .expect("shutdown hung");
    let mut rest = Vec::new();
    while let Some(e) = rig.outbox.front() {
        rig.outbox.pop_sent();
        rest.push(e);
    }
    assert_eq!(
        rest.last().map(|e| e.name.as_str()),
        Some("response.incomplete"),
        "{rest:?}"
    );
    assert_eq!(rest.last().unwrap().payload["subtask_id"], 301);
    // Only one mock request was made: the cancelled task never reached the API.
    assert!(mock.requests().len() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_for_an_unknown_turn_is_still_answered_so_the_server_can_settle_it() {
    let rig = Rig::new(config());
    rig.manager
        .cancel(&json!({"task_id": 900, "subtask_id": 901}));
    let e = rig.next().await;
    assert_eq!(e.name, "response.incomplete");
    assert_eq!(
        (
            e.payload["task_id"].as_i64(),
            e.payload["subtask_id"].as_i64()
        ),
        (Some(900), Some(901))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_stops_every_turn_of_the_task() {
    let mock = MockAnthropic::start(Script::Slow {
        chunks: 100,
        interval: Duration::from_millis(100),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager
        .execute(payload(400, 401, "long job", &mock.url));
    loop {
        if rig.next().await.name == "response.output_text.delta" {
            break;
        }
    }
    rig.manager.close_session(&json!({"task_id": 400}));
    let events = rig.until_terminal(401).await;
    let last = events.last().unwrap();
    assert_eq!(last.name, "response.incomplete");
    assert_eq!(
        last.payload["data"]["response"]["error"]["message"],
        "Task session closed"
    );
    let mut slots = rig.manager.slots();
    tokio::time::timeout(WAIT, slots.wait_for(|s| s.running.is_empty()))
        .await
        .expect("slot not freed")
        .unwrap();
}
