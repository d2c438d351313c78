//! Shared pieces of the `task_*` tests: the real Claude CLI, the sample payload, a TaskManager
//! with its outbox, and awaiting events (never sleeping).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use wegent_devserver::RunningDevServer;
use wegent_executor::config::{Config, SessionConfig, TaskConfig};
use wegent_executor::device::{self, DeviceHandle};
use wegent_executor::outbox::{OutboundEvent, Outbox};
use wegent_executor::status::DeviceEvent;
use wegent_executor::task::TaskManager;
use wegent_executor::token::Token;

/// Generous bound for awaited conditions: the CLI starts in ~1 s, slower on a busy 2-core box.
pub const WAIT: Duration = Duration::from_secs(90);

/// The pinned real CLI. Missing → the test fails with the command that installs it.
pub fn claude_path() -> PathBuf {
    let path = std::env::var_os("WEGENT_TEST_CLAUDE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/claude/node_modules/.bin/claude"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the Claude Code CLI is needed at {} (or set WEGENT_TEST_CLAUDE). Install it with:\n  \
         npm install --prefix {}/.tools/claude @anthropic-ai/claude-code@2.1.330",
        path.display(),
        env!("CARGO_MANIFEST_DIR")
    );
    path
}

/// The pinned real Codex CLI (`WEGENT_TEST_CODEX`). Missing → the test fails with the command
/// that installs it.
pub fn codex_path() -> PathBuf {
    let path = std::env::var_os("WEGENT_TEST_CODEX").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/codex/node_modules/.bin/codex"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the Codex CLI is needed at {} (or set WEGENT_TEST_CODEX). Install it with:\n  \
         npm install --prefix {}/.tools/codex @openai/codex@0.171.0",
        path.display(),
        env!("CARGO_MANIFEST_DIR")
    );
    path
}

/// The captured `task:execute` payload, pointed at `base_url` (with `/v1`, as Wegent sends it).
pub fn payload(task_id: i64, subtask_id: i64, prompt: &str, base_url: &str) -> Value {
    let raw = include_str!("../fixtures/task-execute.sample.json");
    let mut p: Value = serde_json::from_str(raw).unwrap();
    p["task_id"] = task_id.into();
    p["subtask_id"] = subtask_id.into();
    p["prompt"] = prompt.into();
    p["model_config"]["base_url"] = format!("{base_url}/v1").into();
    p["model_config"]["model_id"] = "claude-sonnet-4-5".into();
    p
}

pub fn config() -> TaskConfig {
    TaskConfig {
        claude_path: Some(claude_path()),
        task_timeout: Duration::from_secs(120),
        ..TaskConfig::default()
    }
}

/// The core's config for the test device `device_id` (called `name`, its home `home`) of the
/// server at `backend_url`, heartbeating every second, running tasks as `tasks` says.
pub fn device_config(
    backend_url: String,
    home: &Path,
    device_id: &str,
    name: &str,
    tasks: TaskConfig,
) -> Config {
    Config {
        backend_url,
        socket_url: None,
        web_url: None,
        home: home.to_owned(),
        device_id: device_id.into(),
        device_name: name.into(),
        session: SessionConfig {
            heartbeat_interval: Duration::from_secs(1),
            ..SessionConfig::default()
        },
        tasks,
    }
}

/// The core started with `config`, signed in as `server`'s demo user; returns once the server
/// has its first heartbeat.
pub async fn start_online(server: &RunningDevServer, config: Config) -> DeviceHandle {
    let mut events = server.events();
    let device_id = config.device_id.clone();
    let device = device::start(config, Some(Token::new(&server.demo_token().unwrap())));
    events
        .heartbeat_of(&device_id, WAIT)
        .await
        .expect("the device comes online");
    device
}

/// A message sent as the console sends it (`POST /api/device-chat/tasks` with `body`): the
/// server's answer (`taskId`, `assistantSubtaskId`).
pub async fn send_chat(http: &reqwest::Client, url: &str, token: &str, body: Value) -> Value {
    http.post(format!("{url}/api/device-chat/tasks"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub struct Rig {
    pub manager: TaskManager,
    pub outbox: Outbox,
    pub events: broadcast::Receiver<DeviceEvent>,
    pub home: tempfile::TempDir,
}

impl Rig {
    pub fn new(config: TaskConfig) -> Self {
        // Nothing listens on the discard port: a download the test did not set up fails fast.
        Self::with_backend(config, "http://127.0.0.1:9")
    }

    /// A manager whose device is configured with `backend_url` (attachments, skills).
    pub fn with_backend(config: TaskConfig, backend_url: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(100_000);
        let (tx, events) = broadcast::channel(256);
        let manager = TaskManager::new(
            config,
            home.path().to_owned(),
            backend_url.to_owned(),
            outbox.clone(),
            tx,
        );
        Self {
            manager,
            outbox,
            events,
            home,
        }
    }

    /// The next event from the outbox, as the session would send it.
    pub async fn next(&self) -> OutboundEvent {
        tokio::time::timeout(WAIT, async {
            self.outbox.ready().await;
            let event = self.outbox.front().unwrap();
            self.outbox.pop_sent();
            std::sync::Arc::unwrap_or_clone(event)
        })
        .await
        .expect("no event from the task in time")
    }

    /// Events of `subtask_id` up to and including its terminal event (others are kept aside).
    pub async fn until_terminal(&self, subtask_id: i64) -> Vec<OutboundEvent> {
        let mut out = Vec::new();
        loop {
            let event = self.next().await;
            let mine = event.payload["subtask_id"] == subtask_id;
            let terminal = event.is_terminal();
            if mine {
                out.push(event);
                if terminal {
                    return out;
                }
            }
        }
    }

    pub fn workspace(&self, task_id: i64) -> PathBuf {
        self.home.path().join("workspace").join(task_id.to_string())
    }
}

pub fn names(events: &[OutboundEvent]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

pub fn text_of_deltas(events: &[OutboundEvent]) -> String {
    events
        .iter()
        .filter(|e| e.name == "response.output_text.delta")
        .map(|e| e.payload["data"]["delta"].as_str().unwrap().to_owned())
        .collect()
}

pub fn final_text(event: &OutboundEvent) -> String {
    event.payload["data"]["response"]["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
