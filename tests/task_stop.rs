//! Stopping a turn, with the real Claude Code CLI running a real tool: the cancel is settled
//! first, the slot is freed only once the whole process group is gone.
#![cfg(target_os = "linux")]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/task_harness.rs"]
mod task_harness;

use mock_anthropic::{MockAnthropic, Script};
use serde_json::json;
use std::time::Duration;
use task_harness::{config, payload, Rig, WAIT};

/// Order, not speed (the latency is benchmarked): `response.incomplete` is queued, and when the
/// slot frees, nothing of the turn's process tree is alive any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_settles_first_and_frees_the_slot_only_once_the_group_is_gone() {
    let mock = MockAnthropic::start(Script::RunCommand {
        // The tool ignores the polite signals: only the group's SIGKILL ends it.
        command: "trap '' INT TERM; sleep 300".into(),
        then: "never reached".into(),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager
        .execute(payload(60, 61, "run a long tool", &mock.url));
    loop {
        let e = rig.next().await;
        if e.name == "response.output_item.added" {
            break;
        }
    }
    // The tool runs once its `sleep` is in the workspace.
    let workspace = rig.workspace(60);
    let pids = tokio::time::timeout(WAIT, async {
        loop {
            let pids = procs::processes_with_cwd(&workspace);
            if pids.iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            }) {
                return pids;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the tool's sleep never started");
    let mut slots = rig.manager.slots();

    rig.manager
        .cancel(&json!({"task_id": 60, "subtask_id": 61}));
    let events = rig.until_terminal(61).await;
    assert_eq!(events.last().unwrap().name, "response.incomplete");
    tokio::time::timeout(WAIT, slots.wait_for(|s| s.running.is_empty()))
        .await
        .expect("the slot is freed")
        .unwrap();
    let left: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| !procs::is_zombie(*p))
        .collect();
    let described: Vec<String> = left
        .iter()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
        .collect();
    assert!(
        left.is_empty(),
        "alive when the slot was freed: {described:#?}"
    );
}

/// A tool the agent left running in a session of its own (a daemon, `setsid … &`) does not
/// outlive the turn, even though it left the CLI's process group and the CLI ended normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_the_agent_started_does_not_outlive_the_turn() {
    let mock = MockAnthropic::start(Script::RunCommand {
        command: "setsid sleep 3019 >/dev/null 2>&1 < /dev/null & echo started".into(),
        then: "Started it.".into(),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager
        .execute(payload(70, 71, "start a daemon", &mock.url));
    let events = rig.until_terminal(71).await;
    assert_eq!(events.last().unwrap().name, "response.completed");
    let daemon = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x003019\x00")
            })
            .filter(|p| !procs::is_zombie(*p))
            .collect()
    };
    let mut slots = rig.manager.slots();
    tokio::time::timeout(WAIT, slots.wait_for(|s| s.running.is_empty()))
        .await
        .expect("the slot is freed")
        .unwrap();
    // SIGKILL delivery is asynchronous: a daemon killed as the turn ended may show for a moment.
    let outlived = tokio::time::timeout(Duration::from_secs(5), async {
        while !daemon().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_err();
    let left = daemon();
    // Kill it here whatever happens, so a failure leaves nothing behind.
    for pid in &left {
        // SAFETY: kill only sends a signal, to the test's own daemon.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    assert!(!outlived, "the daemon outlived the turn: {left:?}");
}
