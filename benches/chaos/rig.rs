//! The chaos rig: an in-process devserver whose model is the mock Anthropic API, the full core
//! (`device::start`) connected to it and running the real Claude CLI, and a recorder of every
//! server event with the instant it was seen.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use wegent_devserver::model_mock::{MockAnthropic, Script};
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer, ServerEvent, TaskStatus};
use wegent_executor::config::{BackoffConfig, Config, SessionConfig, TaskConfig};
use wegent_executor::device::{self, DeviceHandle};
use wegent_executor::status::Command;
use wegent_executor::token::Token;

pub const USER: &str = "admin";
pub const DEVICE_ID: &str = "device-chaos";
pub const WAIT: Duration = Duration::from_secs(90);
/// Text deltas per task and the pause between them (5 s of streaming).
pub const CHUNKS: usize = 100;
pub const CHUNK_INTERVAL: Duration = Duration::from_millis(50);

/// What the mock streams for `chunks` chunks.
pub fn slow_text(chunks: usize) -> String {
    (0..chunks).map(|i| format!("chunk {i}. ")).collect()
}

pub fn claude_path() -> std::path::PathBuf {
    std::env::var_os("WEGENT_TEST_CLAUDE").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(".tools/claude/node_modules/.bin/claude")
        },
        Into::into,
    )
}

/// Every server event with when it was seen, from before the device started.
#[derive(Clone)]
pub struct Recorder {
    events: Arc<Mutex<Vec<(Instant, ServerEvent)>>>,
    version: watch::Receiver<usize>,
}

impl Recorder {
    pub fn start(server: &RunningDevServer) -> Self {
        let mut stream = server.events();
        let events: Arc<Mutex<Vec<(Instant, ServerEvent)>>> = Arc::default();
        let (tx, version) = watch::channel(0);
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(e) = stream.next().await {
                sink.lock().unwrap().push((Instant::now(), e));
                tx.send_modify(|v| *v += 1);
            }
        });
        Self { events, version }
    }

    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    pub fn snapshot(&self) -> Vec<(Instant, ServerEvent)> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `pick` matches an event recorded at index `from` or later; returns the match
    /// and moves `from` past it.
    pub async fn next_from<T>(
        &self,
        what: &str,
        from: &mut usize,
        timeout: Duration,
        mut pick: impl FnMut(&ServerEvent) -> Option<T>,
    ) -> Result<T, String> {
        let mut version = self.version.clone();
        let found = tokio::time::timeout(timeout, async {
            loop {
                {
                    let events = self.events.lock().unwrap();
                    while *from < events.len() {
                        let hit = pick(&events[*from].1);
                        *from += 1;
                        if let Some(t) = hit {
                            return Some(t);
                        }
                    }
                }
                if version.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match found {
            Ok(Some(t)) => Ok(t),
            _ => Err(format!("timed out after {timeout:?} waiting for {what}")),
        }
    }

    /// The Responses events of `task_id`: `(name, payload)`.
    pub fn responses(&self, task_id: i64) -> Vec<(String, Value)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                ServerEvent::Responses { name, payload, .. } if payload["task_id"] == task_id => {
                    Some((name.clone(), payload.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

pub fn is_terminal_name(name: &str) -> bool {
    matches!(name, "response.completed" | "error" | "response.incomplete")
}

/// The core connected to a devserver, tasks on the real CLI against the mock model.
pub struct CoreRig {
    pub server: RunningDevServer,
    pub log: Recorder,
    pub heartbeat: Duration,
    device: Option<DeviceHandle>,
    _mock: MockAnthropic,
    _home: tempfile::TempDir,
}

impl CoreRig {
    /// Short reconnect timings (this rig reconnects a hundred times on purpose; defaults would
    /// only make it slower) and the devserver's real 2 s disconnect grace.
    pub async fn start(heartbeat: Duration) -> Result<Self, String> {
        let mock = MockAnthropic::start(Script::Slow {
            chunks: CHUNKS,
            interval: CHUNK_INTERVAL,
        })
        .await;
        let mut cfg = DevServerConfig::for_tests();
        cfg.model.base_url = format!("{}/v1", mock.url);
        cfg.model.api_key = "sk-chaos".into();
        cfg.timings.disconnect_grace = Duration::from_secs(2);
        cfg.timings.ping_interval = Duration::from_secs(5);
        cfg.timings.ping_timeout = Duration::from_secs(10);
        cfg.timings.online_ttl = Duration::from_secs(30);
        cfg.timings.cancel_wait = Duration::from_secs(20);
        // One device from 127.0.0.1 reconnecting a hundred times: the per-address connect limit
        // (30 / 30 s) would refuse it; the fleet figure of that limit is benches/outage.rs.
        cfg.timings.rate_limit_max = 100_000;
        let server = DevServer::start(cfg)
            .await
            .map_err(|e| format!("devserver: {e}"))?;
        let log = Recorder::start(&server);
        let home = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = Config {
            backend_url: server.url(),
            socket_url: None,
            web_url: None,
            home: home.path().to_owned(),
            device_id: DEVICE_ID.into(),
            device_name: "Chaos".into(),
            session: SessionConfig {
                heartbeat_interval: heartbeat,
                backoff: BackoffConfig {
                    initial: Duration::from_millis(100),
                    max: Duration::from_millis(500),
                    probe_interval: Duration::from_millis(100),
                    connect_spread: Duration::from_millis(50),
                    ..BackoffConfig::default()
                },
                ..SessionConfig::default()
            },
            tasks: TaskConfig {
                claude_path: Some(claude_path()),
                task_timeout: Duration::from_secs(300),
                ..TaskConfig::default()
            },
        };
        let token = Token::new(&server.demo_token().ok_or("no demo user")?);
        let device = device::start(config, Some(token));
        let rig = Self {
            server,
            log,
            heartbeat,
            device: Some(device),
            _mock: mock,
            _home: home,
        };
        let mut from = 0;
        rig.log
            .next_from("the first accepted heartbeat", &mut from, WAIT, |e| {
                accepted_heartbeat(e)
            })
            .await?;
        Ok(rig)
    }

    pub async fn dispatch(&self, prompt: &str) -> Result<i64, String> {
        self.server
            .dispatch_task(USER, Some(DEVICE_ID), prompt)
            .await
            .map(|d| d.task_id)
            .map_err(|e| format!("dispatch: {e:?}"))
    }

    pub fn status(&self, task_id: i64) -> Option<TaskStatus> {
        self.server.task(task_id).map(|t| t.status)
    }

    pub async fn shutdown(mut self) {
        if let Some(device) = self.device.take() {
            let _ = device.commands.send(Command::Shutdown).await;
            let _ = tokio::time::timeout(WAIT, device.stopped()).await;
        }
        self.server.shutdown().await;
    }
}

pub fn accepted_heartbeat(e: &ServerEvent) -> Option<()> {
    match e {
        ServerEvent::Heartbeat {
            device_id: Some(d),
            ack,
            ..
        } if d == DEVICE_ID && ack["success"] == true => Some(()),
        _ => None,
    }
}

pub fn accepted_register(e: &ServerEvent) -> Option<()> {
    match e {
        ServerEvent::Register {
            device_id: Some(d),
            ack,
            ..
        } if d == DEVICE_ID && ack["success"] == true => Some(()),
        _ => None,
    }
}
