//! The rig of `device_session.rs`: a real in-process devserver, the real core
//! (`device::start_with_tasks`) with a stand-in task executor, and ways to await what happened
//! on both sides (server events, device status) instead of sleeping.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use wegent_devserver::{DevServer, DevServerConfig, EventStream, RunningDevServer};
use wegent_executor::config::{BackoffConfig, Config, SessionConfig, TaskConfig};
use wegent_executor::device::{start_with_tasks, DeviceHandle};
use wegent_executor::outbox::Outbox;
use wegent_executor::session::TaskPort;
use wegent_executor::status::{Command, Connection, DeviceStatus, RunningTask, Slots};
use wegent_executor::token::Token;

/// Generous bound for every awaited condition: a loaded 2-core CI machine is slow, never this slow.
pub const WAIT: Duration = Duration::from_secs(20);
/// The demo account of `DevServerConfig::for_tests()`.
pub const USER: &str = "admin";
/// The slot limit the stand-in executor reports, as the real one does by default.
pub const LIMIT: u8 = 5;

/// Backoff so short that a retry, if the core made one, would happen many times within a second.
pub fn tiny_backoff() -> BackoffConfig {
    BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        // Never "stable" during a test: every reconnect keeps growing towards `max`.
        stable_after: Duration::from_secs(3600),
        // The real floor: rate-limit tests check it is kept even with tiny delays elsewhere.
        rate_limited_floor: Duration::from_secs(30),
        ..BackoffConfig::default()
    }
}

/// How a test wants the rig.
pub struct Options {
    /// The device token; `None` uses the demo user's login JWT.
    pub token: Option<String>,
    pub backoff: BackoffConfig,
    pub heartbeat_interval: Duration,
    /// Connects per 30 s the devserver allows from 127.0.0.1 (real: 30; reconnect tests need more).
    pub rate_limit_max: u32,
    /// Tasks already holding slots when the core starts (task ids).
    pub running: Vec<i64>,
    /// Engine.IO pings as the real server sends them (25 s + 20 s) instead of the fast 1 s + 3 s,
    /// so a lost socket cannot be noticed through a missing ping within a test's wait.
    pub real_pings: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: None,
            backoff: tiny_backoff(),
            heartbeat_interval: Duration::from_millis(250),
            rate_limit_max: 10_000,
            running: Vec::new(),
            real_pings: false,
        }
    }
}

/// A devserver, the core connected to it, and the stand-in executor the test drives.
pub struct Rig {
    pub server: RunningDevServer,
    pub device: DeviceHandle,
    pub tasks: Arc<FakeTasks>,
    /// The outbox the core drains (tests push task events into it, as the executor would).
    pub outbox: Outbox,
    pub device_id: String,
    /// Server events since just before the core started.
    pub events: EventStream,
    status: watch::Receiver<DeviceStatus>,
    history: Arc<Mutex<Vec<(SystemTime, Connection)>>>,
    _home: tempfile::TempDir,
}

impl Rig {
    pub async fn start(options: Options) -> Rig {
        let mut cfg = DevServerConfig::for_tests();
        cfg.timings.rate_limit_max = options.rate_limit_max;
        if options.real_pings {
            let real = wegent_devserver::Timings::wegent();
            cfg.timings.ping_interval = real.ping_interval;
            cfg.timings.ping_timeout = real.ping_timeout;
        }
        let server = DevServer::start(cfg).await.expect("devserver starts");
        let token = options
            .token
            .unwrap_or_else(|| server.demo_token().expect("demo user"));
        let home = tempfile::tempdir().unwrap();
        let suffix: u64 = rand::random();
        let device_id = format!("device-session-{suffix:016x}");
        let config = Config {
            backend_url: server.url(),
            socket_url: None,
            web_url: None,
            home: home.path().to_owned(),
            device_id: device_id.clone(),
            device_name: "Session test box".into(),
            session: SessionConfig {
                heartbeat_interval: options.heartbeat_interval,
                register_timeout: Duration::from_secs(10),
                heartbeat_ack_timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(10),
                backoff: options.backoff,
            },
            tasks: TaskConfig::default(),
        };
        let outbox = Outbox::new(1000);
        let tasks = Arc::new(FakeTasks::new(outbox.clone()));
        for task_id in options.running {
            tasks.execute(json!({"task_id": task_id, "subtask_id": task_id + 1000}));
        }
        let events = server.events();
        let (device_events, _) = broadcast::channel(64);
        let device = start_with_tasks(
            config,
            Some(Token::new(&token)),
            tasks.clone(),
            outbox.clone(),
            device_events,
        );
        let status = device.status.clone();
        let history = record_history(status.clone());
        Rig {
            server,
            device,
            tasks,
            outbox,
            device_id,
            events,
            status,
            history,
            _home: home,
        }
    }

    /// The current connection state.
    pub fn connection(&self) -> Connection {
        self.status.borrow().connection.clone()
    }

    /// Waits until the device status satisfies `pred`; fails with the history on timeout.
    pub async fn wait_status(
        &self,
        what: &str,
        pred: impl FnMut(&DeviceStatus) -> bool,
    ) -> DeviceStatus {
        let mut rx = self.status.clone();
        let result = match tokio::time::timeout(WAIT, rx.wait_for(pred)).await {
            Ok(Ok(s)) => s.clone(),
            Ok(Err(_)) => panic!("the core dropped its status while waiting for {what}"),
            Err(_) => panic!(
                "no {what} within {WAIT:?}; status history: {:#?}",
                self.history()
            ),
        };
        result
    }

    pub async fn wait_online(&self) {
        self.wait_status("Online", |s| s.connection == Connection::Online)
            .await;
    }

    /// Every connection state published since start, in order, with when the rig saw it.
    pub fn history(&self) -> Vec<(SystemTime, Connection)> {
        self.history.lock().unwrap().clone()
    }

    /// The connection states only.
    pub fn states(&self) -> Vec<Connection> {
        self.history().into_iter().map(|(_, c)| c).collect()
    }

    /// Waits for the next `device:register` of this device: `(payload, ack)`.
    pub async fn next_register(&mut self) -> (Value, Value) {
        self.events
            .register_of(&self.device_id, WAIT)
            .await
            .expect("a register")
    }

    /// Waits for the next heartbeat of this device: `(payload, ack)`.
    pub async fn next_heartbeat(&mut self) -> (Value, Value) {
        self.events
            .heartbeat_of(&self.device_id, WAIT)
            .await
            .expect("a heartbeat")
    }

    /// Waits for the next heartbeat the server accepted.
    pub async fn next_accepted_heartbeat(&mut self) -> Value {
        let id = self.device_id.clone();
        self.events
            .wait_for("an accepted heartbeat", WAIT, |e| match e {
                wegent_devserver::ServerEvent::Heartbeat {
                    device_id: Some(d),
                    payload,
                    ack,
                    ..
                } if *d == id && ack == &json!({"success": true}) => Some(payload.clone()),
                _ => None,
            })
            .await
            .expect("an accepted heartbeat")
    }

    pub async fn send(&self, command: Command) {
        self.device.commands.send(command).await.expect("core runs");
    }
}

/// Records every distinct connection state (a `watch` only keeps the latest).
fn record_history(
    mut status: watch::Receiver<DeviceStatus>,
) -> Arc<Mutex<Vec<(SystemTime, Connection)>>> {
    let first = status.borrow_and_update().connection.clone();
    let history = Arc::new(Mutex::new(vec![(SystemTime::now(), first)]));
    let sink = history.clone();
    tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let now = status.borrow_and_update().connection.clone();
            let mut h = sink.lock().unwrap();
            if h.last().map(|(_, c)| c) != Some(&now) {
                h.push((SystemTime::now(), now));
            }
        }
    });
    history
}

/// A stand-in for the task executor: `task:execute` takes a slot while fewer than [`LIMIT`] are
/// held, otherwise it queues, so the test sees exactly what the session reports and why.
pub struct FakeTasks {
    slots: watch::Sender<Slots>,
    outbox: Outbox,
    log: Mutex<FakeLog>,
}

/// What the session handed to the executor.
#[derive(Debug, Default, Clone)]
pub struct FakeLog {
    pub executed: Vec<Value>,
    pub cancelled: Vec<Value>,
    pub closed: Vec<Value>,
    /// Tasks stopped by the user on the device.
    pub stopped: Vec<i64>,
    pub commands: Vec<Value>,
    pub shutdowns: usize,
}

impl FakeTasks {
    fn new(outbox: Outbox) -> Self {
        let (slots, _) = watch::channel(Slots {
            max: LIMIT,
            running: Vec::new(),
            queued: 0,
            waiting: Vec::new(),
            max_queued: 100,
        });
        Self {
            slots,
            outbox,
            log: Mutex::new(FakeLog::default()),
        }
    }

    pub fn log(&self) -> FakeLog {
        self.log.lock().unwrap().clone()
    }
}

impl TaskPort for FakeTasks {
    /// Admission is the task manager's (tested with it); the session only passes the switch on.
    fn set_paused(&self, _paused: bool) {}

    /// As `set_paused`: the drain's admission is the task manager's.
    fn drain(&self) {}

    fn execute(&self, payload: Value) {
        let ids = (
            payload.get("task_id").and_then(Value::as_i64),
            payload.get("subtask_id").and_then(Value::as_i64),
        );
        self.log.lock().unwrap().executed.push(payload);
        let (Some(task_id), Some(subtask_id)) = ids else {
            return; // malformed: nothing to run
        };
        self.slots.send_modify(|s| {
            if s.running.len() < usize::from(s.max) {
                s.running.push(RunningTask {
                    task_id,
                    subtask_id,
                    title: format!("task {task_id}"),
                    agent: wegent_executor::task::agent::AgentKind::Claude,
                    started_at: SystemTime::now(),
                    project: None,
                    folder: None,
                });
            } else {
                s.queued += 1;
            }
        });
    }

    fn cancel(&self, payload: &Value) {
        self.log.lock().unwrap().cancelled.push(payload.clone());
    }

    fn stop_task(&self, task_id: i64) {
        self.log.lock().unwrap().stopped.push(task_id);
    }

    fn close_session(&self, payload: &Value) {
        self.log.lock().unwrap().closed.push(payload.clone());
    }

    fn execute_command(&self, payload: Value) -> Pin<Box<dyn Future<Output = Value> + Send>> {
        self.log.lock().unwrap().commands.push(payload);
        Box::pin(async { json!({"success": false, "error": "not in this test"}) })
    }

    fn slots(&self) -> watch::Receiver<Slots> {
        self.slots.subscribe()
    }

    /// Like the real executor: every running task gets its terminal event before this returns.
    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.log.lock().unwrap().shutdowns += 1;
        let running = self.slots.borrow().running.clone();
        for task in running {
            self.outbox.push(
                "response.incomplete",
                json!({
                    "event_type": "response.incomplete",
                    "task_id": task.task_id,
                    "subtask_id": task.subtask_id,
                    "message_id": null,
                    "data": {"type": "response.incomplete", "response": {"status": "cancelled",
                        "error": {"code": "cancelled", "message": "Device shutting down"}}},
                }),
            );
        }
        self.slots.send_modify(|s| {
            s.running.clear();
            s.queued = 0;
        });
        Box::pin(async {})
    }
}
