//! A Codex task end to end as `--demo` runs one: the devserver with its demo configuration (a
//! Codex bot whose `model_config` points at the devserver's own Responses API), the device core,
//! and the real pinned Codex CLI. The user picks the Codex agent, the answer streams back as
//! deltas and is stored COMPLETED, and a reply resumes the Codex thread.
//!
//! Only the model is scripted: the demo model, whose answer names the prompt, the agent and the
//! directory it ran in. The CLI, its process, the device and the devserver are real.
#![cfg(unix)]

#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use wegent_devserver::{
    DevServer, DevServerConfig, RunningDevServer, ServerEvent, Storage, Timings,
};
use wegent_executor::config::TaskConfig;
use wegent_executor::status::Command;
use wegent_executor::task::agent::AgentKind;

const WAIT: Duration = Duration::from_secs(90);
const DEVICE_ID: &str = "devserver-codex-e2e";

/// The pinned Codex CLI: `WEGENT_TEST_CODEX` (which must exist), else the repository's
/// `.tools/codex` if `./scripts/install-deps.sh` installed it; `None` (the test says it skipped)
/// when neither is there.
fn codex_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WEGENT_TEST_CODEX") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "WEGENT_TEST_CODEX={} is not a file; install the pinned CLI with ./scripts/install-deps.sh",
            path.display()
        );
        return Some(path);
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/codex/node_modules/.bin/codex");
    installed.is_file().then_some(installed)
}

/// What one message to the device produced: the deltas as they streamed, and the stored task.
struct Answer {
    task_id: i64,
    deltas: Vec<String>,
    status: wegent_devserver::TaskStatus,
    text: String,
    error: Option<String>,
}

/// `POST /api/device-chat/tasks` with `body`, then the task's deltas until it settles.
async fn ask(server: &RunningDevServer, body: Value) -> Answer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Subscribe before sending: a fast turn may stream and settle before the dispatch answers.
    let mut events = server.events();
    let token = server.demo_token().unwrap();
    let sent = task_harness::send_chat(&reqwest::Client::new(), &server.url(), &token, body).await;
    let (task_id, subtask) = (
        sent["taskId"].as_i64().unwrap(),
        sent["assistantSubtaskId"].as_i64().unwrap(),
    );
    let mut deltas = Vec::new();
    loop {
        let event = events
            .wait_for("the task's deltas and settlement", WAIT, |e| match e {
                ServerEvent::TaskDelta {
                    subtask_id, delta, ..
                } if *subtask_id == subtask => Some(Some(delta.clone())),
                ServerEvent::TaskSettled { subtask_id, .. } if *subtask_id == subtask => Some(None),
                _ => None,
            })
            .await
            .unwrap();
        match event {
            Some(delta) => deltas.push(delta),
            None => break,
        }
    }
    let task = server.task(task_id).unwrap();
    Answer {
        task_id,
        deltas,
        status: task.status,
        text: task.result_text.unwrap_or_default(),
        error: task.error_message,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_task_on_the_demo_setup_streams_completes_and_resumes() {
    let Some(codex) = codex_path() else {
        eprintln!(
            "SKIPPED: no Codex CLI; set WEGENT_TEST_CODEX to the pinned one or run \
             ./scripts/install-deps.sh (it installs .tools/codex)"
        );
        return;
    };
    // The `--demo` configuration (both bots on the devserver's own demo model), with test timings.
    let mut cfg = DevServerConfig::demo(([127, 0, 0, 1], 0).into(), Storage::Memory);
    cfg.timings = Timings::fast();
    cfg.timings.online_ttl = Duration::from_secs(30);
    let server = DevServer::start(cfg).await.unwrap();
    // Outside /tmp: codex refuses to put its helper binaries under a temporary directory.
    let scratch = env!("CARGO_TARGET_TMPDIR");
    std::fs::create_dir_all(scratch).unwrap();
    let home = tempfile::tempdir_in(scratch).unwrap();
    let config = task_harness::device_config(
        server.url(),
        home.path(),
        DEVICE_ID,
        "Devserver Codex e2e",
        TaskConfig {
            codex_path: Some(codex),
            task_timeout: Duration::from_secs(120),
            ..TaskConfig::default()
        },
    );
    let device = task_harness::start_online(&server, config).await;

    // While it runs, the device's status names the agent (what the tray and the CLI show).
    let mut status = device.status.clone();
    let agent_seen = tokio::spawn(async move {
        let seen = status
            .wait_for(|s| !s.slots.running.is_empty())
            .await
            .map(|s| s.slots.running[0].agent);
        seen.ok()
    });
    let first = ask(
        &server,
        json!({"deviceId": DEVICE_ID, "message": "hello Codex", "agent": "Codex"}),
    )
    .await;
    assert_eq!(
        first.status,
        wegent_devserver::TaskStatus::Completed,
        "{:?}",
        first.error
    );
    let agent = tokio::time::timeout(WAIT, agent_seen).await;
    assert_eq!(
        agent.ok().and_then(Result::ok).flatten(),
        Some(AgentKind::Codex)
    );
    assert!(
        first.deltas.len() >= 3,
        "the answer streamed in deltas: {:?}",
        first.deltas
    );
    assert_eq!(first.deltas.concat(), first.text);
    for needle in ["You asked: \"hello Codex\"", "started Codex in `"] {
        assert!(
            first.text.contains(needle),
            "{needle} not in {}",
            first.text
        );
    }

    // A reply to the task stays on Codex and resumes its thread.
    let second = ask(
        &server,
        json!({"taskId": first.task_id, "message": "and once more"}),
    )
    .await;
    assert_eq!(
        second.status,
        wegent_devserver::TaskStatus::Completed,
        "{:?}",
        second.error
    );
    assert_eq!(second.task_id, first.task_id);
    for needle in [
        "You asked: \"and once more\"",
        "Codex resumed the task's session, which already holds 1 earlier answer",
    ] {
        assert!(
            second.text.contains(needle),
            "{needle} not in {}",
            second.text
        );
    }

    let _ = device.commands.send(Command::Shutdown).await;
    tokio::time::timeout(WAIT, device.stopped())
        .await
        .expect("the device stops");
    server.shutdown().await;
}
