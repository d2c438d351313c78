//! "What must be shown", end to end: the full core (`device::start`: session + TaskManager)
//! connected to the in-process devserver, running the real Claude Code CLI against a mock of the
//! Anthropic API. Everything is asserted on what the server recorded and stored.
//!
//! Only the Anthropic API is a fake (it cannot run here); the CLI, its processes and tools, the
//! Socket.IO connection, the devserver's settlement rules and the files written are real.
#![cfg(unix)]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_anthropic::{Gate, MockAnthropic, Script};
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use wegent_devserver::{
    DevServer, DevServerConfig, ModelSettings, RunningDevServer, ServerEvent, TaskStatus,
};
use wegent_executor::config::{Config, TaskConfig};
use wegent_executor::device::{self, DeviceHandle};
use wegent_executor::status::{Command, Connection, DeviceEvent, DeviceStatus, TaskEnd};
use wegent_executor::token::Token;

/// Upper bound of every awaited condition.
const WAIT: Duration = Duration::from_secs(30);
const USER: &str = "admin";
const DEVICE_ID: &str = "device-tasks-e2e";

// ---- the rig -------------------------------------------------------------------------------

/// Every server event, in the order the server emitted them, recorded from before the device
/// started (so assertions see the whole history, not a window).
#[derive(Clone)]
struct Recorder {
    events: Arc<Mutex<Vec<ServerEvent>>>,
    version: watch::Receiver<usize>,
}

impl Recorder {
    fn start(server: &RunningDevServer) -> Self {
        let mut stream = server.events();
        let events: Arc<Mutex<Vec<ServerEvent>>> = Arc::default();
        let (tx, version) = watch::channel(0);
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(e) = stream.next().await {
                sink.lock().unwrap().push(e);
                tx.send_modify(|v| *v += 1);
            }
        });
        Self { events, version }
    }

    fn snapshot(&self) -> Vec<ServerEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Wait (bounded) until `pick` finds something in the history.
    async fn wait_for<T>(
        &self,
        what: &str,
        mut pick: impl FnMut(&[ServerEvent]) -> Option<T>,
    ) -> T {
        let mut version = self.version.clone();
        let found = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(t) = pick(&self.events.lock().unwrap()) {
                    return t;
                }
                version.changed().await.expect("the recorder stopped");
            }
        })
        .await;
        match found {
            Ok(t) => t,
            Err(_) => panic!(
                "timed out after {WAIT:?} waiting for {what}; the server saw: {:#?}",
                summary(&self.snapshot())
            ),
        }
    }
}

/// One line per server event, for failure messages (payloads are large).
fn summary(events: &[ServerEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            ServerEvent::Responses {
                sid, name, payload, ..
            } => format!(
                "responses {name} task {} offset {} (sid {sid})",
                payload["task_id"], payload["data"]["offset"]
            ),
            ServerEvent::Heartbeat { payload, ack, .. } => {
                format!("heartbeat {} ack {ack}", payload["runtime_capacity"])
            }
            ServerEvent::TaskSettled {
                task_id,
                status,
                error,
                ..
            } => format!("settled task {task_id} {status:?} {error:?}"),
            ServerEvent::TaskDelta { .. } => "delta".to_owned(),
            other => format!("{other:?}").chars().take(160).collect(),
        })
        .collect()
}

struct Rig {
    server: RunningDevServer,
    mock: MockAnthropic,
    log: Recorder,
    device: Option<DeviceHandle>,
    /// What the core was started with ([`Rig::restart_device`] starts it again with it).
    config: Config,
    /// Device events (task finished, registered), subscribed before anything happened.
    device_events: broadcast::Receiver<DeviceEvent>,
    home: tempfile::TempDir,
}

impl Rig {
    /// A devserver with the real disconnect grace (2 s) and otherwise short timings, the mock
    /// API as its model, and the core connected and registered with the demo user's token.
    async fn start(script: Script, tasks: TaskConfig) -> Self {
        Self::start_with(script, tasks, |_| {}).await
    }

    /// A rig whose model writes 300 chunks 100 ms apart, and the task "write slowly" on it,
    /// streaming: `(rig, task_id)`.
    async fn with_slow_task() -> (Self, i64) {
        let rig = Self::start(
            Script::Slow {
                chunks: 300,
                interval: Duration::from_millis(100),
            },
            Self::tasks(),
        )
        .await;
        let (task_id, _) = rig.dispatch("write slowly").await;
        rig.deltas_received(task_id, 1).await;
        (rig, task_id)
    }

    /// [`Rig::start`], with a last word on the server's config.
    async fn start_with(
        script: Script,
        tasks: TaskConfig,
        edit: impl FnOnce(&mut DevServerConfig),
    ) -> Self {
        let claude = task_harness::claude_path();
        let mock = MockAnthropic::start(script).await;
        let mut cfg = DevServerConfig::for_tests();
        // Wegent model configs carry `/v1`; the core strips it for the CLI.
        cfg.model.base_url = format!("{}/v1", mock.url);
        cfg.model.api_key = "sk-fake".into();
        cfg.timings.disconnect_grace = Duration::from_secs(2);
        // A loaded 2-core machine runs five CLIs at once here: keep healthy sockets up.
        cfg.timings.ping_interval = Duration::from_secs(5);
        cfg.timings.ping_timeout = Duration::from_secs(10);
        cfg.timings.online_ttl = Duration::from_secs(10);
        cfg.timings.cancel_wait = Duration::from_secs(20);
        edit(&mut cfg);
        let server = DevServer::start(cfg).await.expect("the devserver starts");
        let log = Recorder::start(&server);

        let home = tempfile::tempdir().unwrap();
        let mut config = task_harness::device_config(
            server.url(),
            home.path(),
            DEVICE_ID,
            "Device tasks e2e",
            TaskConfig {
                claude_path: Some(claude),
                ..tasks
            },
        );
        config.session.backoff.initial = Duration::from_millis(100);
        config.session.backoff.max = Duration::from_millis(250);
        let token = Token::new(
            &server
                .demo_token()
                .expect("the test server has a demo user"),
        );
        let device = device::start(config.clone(), Some(token));
        let device_events = device.events();
        let rig = Self {
            server,
            mock,
            log,
            device: Some(device),
            config,
            device_events,
            home,
        };
        rig.log
            .wait_for("the device's first accepted heartbeat", |events| {
                events.iter().find_map(|e| match e {
                    ServerEvent::Heartbeat {
                        device_id: Some(d),
                        ack,
                        ..
                    } if d == DEVICE_ID && *ack == json!({"success": true}) => Some(()),
                    _ => None,
                })
            })
            .await;
        rig
    }

    fn tasks() -> TaskConfig {
        TaskConfig {
            task_timeout: Duration::from_secs(120),
            ..TaskConfig::default()
        }
    }

    /// `POST /api/device-chat/tasks` to this device: `(task_id, assistant subtask_id)`.
    async fn dispatch(&self, prompt: &str) -> (i64, i64) {
        let d = self
            .server
            .dispatch_task(USER, Some(DEVICE_ID), prompt)
            .await
            .expect("dispatch");
        (d.task_id, d.assistant_subtask_id)
    }

    /// Wait until the server settles `task_id`; the log then holds everything up to it.
    async fn terminal(&self, task_id: i64) -> wegent_devserver::TaskOutcome {
        let outcome = match self.server.wait_task_terminal(task_id, WAIT).await {
            Ok(t) => t,
            Err(e) => panic!(
                "task {task_id} did not finish: {e}; the server saw: {:#?}",
                summary(&self.log.snapshot())
            ),
        };
        self.log
            .wait_for(&format!("task {task_id} settled in the log"), |events| {
                events
                    .iter()
                    .any(|e| matches!(e, ServerEvent::TaskSettled { task_id: t, .. } if *t == task_id))
                    .then_some(())
            })
            .await;
        outcome
    }

    /// The Responses events of `task_id` the server received: `(socket id, name, payload)`.
    fn responses(&self, task_id: i64) -> Vec<(String, String, Value)> {
        self.log
            .snapshot()
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::Responses {
                    sid, name, payload, ..
                } if payload["task_id"] == task_id => Some((sid, name, payload)),
                _ => None,
            })
            .collect()
    }

    /// Wait until the server has received `n` text deltas of `task_id`.
    async fn deltas_received(&self, task_id: i64, n: usize) {
        self.log
            .wait_for(&format!("{n} deltas of task {task_id}"), |events| {
                let count = events
                    .iter()
                    .filter(|e| {
                        matches!(e, ServerEvent::Responses { name, payload, .. }
                        if name == "response.output_text.delta" && payload["task_id"] == task_id)
                    })
                    .count();
                (count >= n).then_some(())
            })
            .await;
    }

    /// The next device event matching `pick`.
    async fn device_event(&mut self, what: &str, pick: impl Fn(&DeviceEvent) -> bool) {
        let events = &mut self.device_events;
        tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Ok(e) if pick(&e) => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("the core stopped"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the device never reported {what}"));
    }

    fn workspace(&self, task_id: i64) -> PathBuf {
        self.home.path().join("workspace").join(task_id.to_string())
    }

    /// The processes running in the task's workspace, with their process groups; asserts the
    /// CLI runs there.
    fn task_processes(&self, task_id: i64) -> TaskProcesses {
        let pids = procs::processes_with_cwd(&self.workspace(task_id));
        let groups: Vec<i32> = pids
            .iter()
            .filter_map(|p| procs::process_group(*p))
            .collect();
        assert!(
            !pids.is_empty() && !groups.is_empty(),
            "the CLI runs in the task workspace"
        );
        TaskProcesses { pids, groups }
    }

    /// Heartbeats of the device: `(payload, ack)`.
    fn heartbeats(&self) -> Vec<(Value, Value)> {
        self.log
            .snapshot()
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::Heartbeat {
                    device_id: Some(d),
                    payload,
                    ack,
                    ..
                } if d == DEVICE_ID => Some((payload, ack)),
                _ => None,
            })
            .collect()
    }

    /// Wait until the device holds the ack of everything the server has processed so far. The
    /// server acks in the order it processes a socket's events, and the device sends a heartbeat
    /// only once the previous one is acknowledged: a second heartbeat after this point proves the
    /// first one's ack, and every ack before it, reached the device.
    async fn acks_settled(&self) {
        let start = self.log.snapshot().len();
        self.log
            .wait_for("two more heartbeats", |events| {
                let beats = events[start..]
                    .iter()
                    .filter(|e| matches!(e, ServerEvent::Heartbeat { .. }))
                    .count();
                (beats >= 2).then_some(())
            })
            .await;
    }

    /// A network loss: the device's TCP connection is cut (the server runs its disconnect path:
    /// 2 s grace, then the device's RUNNING tasks fail), and new connects are refused until
    /// [`Rig::outage_ends`].
    fn outage_begins(&self) {
        self.server.refuse_connects(Some("Server is shutting down"));
        assert_eq!(self.server.drop_device(DEVICE_ID), 1, "one socket to cut");
    }

    fn outage_ends(&self) {
        self.server.refuse_connects(None);
    }

    /// The running core.
    fn device(&self) -> &DeviceHandle {
        self.device.as_ref().expect("the core runs")
    }

    /// Stop the core politely and start a new one with the same config and home (a restart of
    /// the app); returns once the new core is online.
    async fn restart_device(&mut self) {
        let device = self.device.take().expect("the core runs");
        let _ = device.commands.send(Command::Shutdown).await;
        tokio::time::timeout(WAIT, device.stopped())
            .await
            .expect("the core stops");
        let token = Token::new(&self.server.demo_token().unwrap());
        let device = device::start(self.config.clone(), Some(token));
        self.device_events = device.events();
        self.device = Some(device);
        self.device_status("online again", |s| s.connection == Connection::Online)
            .await;
    }

    /// Wait until the core's status satisfies `pred`.
    async fn device_status(&self, what: &str, pred: impl FnMut(&DeviceStatus) -> bool) {
        let mut status = self.device().status.clone();
        if tokio::time::timeout(WAIT, status.wait_for(pred))
            .await
            .is_err()
        {
            panic!("the device never was {what}: {:?}", *status.borrow());
        }
    }

    /// Stop the core politely (cancels what still runs) and the server.
    async fn shutdown(mut self) {
        if let Some(device) = self.device.take() {
            let _ = device.commands.send(Command::Shutdown).await;
            tokio::time::timeout(WAIT, device.stopped())
                .await
                .expect("the core stops");
        }
        self.server.shutdown().await;
    }
}

/// A task's processes and their process groups.
struct TaskProcesses {
    pids: Vec<u32>,
    groups: Vec<i32>,
}

impl TaskProcesses {
    /// Waits until each of them and every member of their groups is gone.
    async fn await_gone(self) {
        procs::await_gone(&self.pids).await;
        for pgid in self.groups {
            procs::await_group_gone(pgid).await;
        }
    }
}

/// What the mock streams for [`Script::Slow`] with `chunks` chunks.
fn slow_text(chunks: usize) -> String {
    (0..chunks).map(|i| format!("chunk {i}. ")).collect()
}

/// Checks the text deltas the server received for one task: every offset is exactly the number of
/// characters before it (no gap, no duplicate, in order). Returns their concatenation.
fn contiguous_deltas(responses: &[(String, String, Value)]) -> String {
    let mut text = String::new();
    let mut chars = 0;
    for (i, (_, _, payload)) in responses
        .iter()
        .filter(|(_, name, _)| name == "response.output_text.delta")
        .enumerate()
    {
        let data = &payload["data"];
        let delta = data["delta"].as_str().expect("a delta has text");
        assert_eq!(
            data["offset"].as_u64(),
            Some(chars as u64),
            "delta #{i} {delta:?}: a gap or a duplicate before it (text so far {text:?})"
        );
        chars += delta.chars().count();
        text.push_str(delta);
    }
    text
}

fn count(responses: &[(String, String, Value)], name: &str) -> usize {
    responses.iter().filter(|(_, n, _)| n == name).count()
}

fn terminal_names(responses: &[(String, String, Value)]) -> Vec<&str> {
    responses
        .iter()
        .map(|(_, n, _)| n.as_str())
        .filter(|n| matches!(*n, "response.completed" | "error" | "response.incomplete"))
        .collect()
}

// ---- the tests -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_answer_streams_to_the_server_and_completes_with_the_full_text() {
    let text = slow_text(5);
    let rig = Rig::start(
        Script::Slow {
            chunks: 5,
            interval: Duration::from_millis(200),
        },
        Rig::tasks(),
    )
    .await;
    let (task_id, subtask_id) = rig.dispatch("say hello").await;

    let outcome = rig.terminal(task_id).await;
    assert_eq!(
        outcome.status,
        TaskStatus::Completed,
        "{:?}",
        outcome.error_message
    );
    assert_eq!(outcome.result_text.as_deref(), Some(text.as_str()));

    // The server took the deltas while the task was running: it records a delta only for a
    // subtask that has not settled yet, and it recorded several, all before the settlement.
    let events = rig.log.snapshot();
    let settled_at = events
        .iter()
        .position(|e| matches!(e, ServerEvent::TaskSettled { task_id: t, .. } if *t == task_id))
        .expect("settled");
    let live: Vec<&str> = events[..settled_at]
        .iter()
        .filter_map(|e| match e {
            ServerEvent::TaskDelta {
                subtask_id: s,
                delta,
                ..
            } if *s == subtask_id => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert!(live.len() >= 2, "streamed in pieces: {live:?}");
    assert_eq!(live.concat(), text);
    assert!(!events[settled_at..]
        .iter()
        .any(|e| matches!(e, ServerEvent::TaskDelta { subtask_id: s, .. } if *s == subtask_id)));

    let responses = rig.responses(task_id);
    assert_eq!(
        responses.first().map(|r| r.1.as_str()),
        Some("response.created")
    );
    assert_eq!(contiguous_deltas(&responses), text);
    assert_eq!(terminal_names(&responses), ["response.completed"]);
    let (_, _, done) = responses.last().unwrap();
    assert_eq!(done["subtask_id"], subtask_id);
    assert_eq!(
        done["data"]["response"]["output"][0]["content"][0]["text"],
        text.as_str()
    );
    // The API key of the server's model config reached the API; the prompt went through.
    let seen = rig.mock.requests();
    assert_eq!(seen[0].api_key.as_deref(), Some("sk-fake"));
    assert_eq!(seen[0].prompt, "say hello");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_turn_creates_a_file_in_the_task_workspace() {
    let rig = Rig::start(
        Script::RunCommand {
            command: "echo hello from the tool > hello.txt".into(),
            then: "Created hello.txt.".into(),
        },
        Rig::tasks(),
    )
    .await;
    let (task_id, _) = rig.dispatch("create hello.txt").await;

    let outcome = rig.terminal(task_id).await;
    assert_eq!(
        outcome.status,
        TaskStatus::Completed,
        "{:?}",
        outcome.error_message
    );
    assert_eq!(
        outcome.result_text.as_deref(),
        Some("Running the command.\n\nCreated hello.txt.")
    );
    let written = std::fs::read_to_string(rig.workspace(task_id).join("hello.txt"))
        .expect("the tool wrote hello.txt in <home>/workspace/<task_id>");
    assert_eq!(written.trim(), "hello from the tool");

    let responses = rig.responses(task_id);
    let tool_start = responses
        .iter()
        .find(|(_, n, _)| n == "response.output_item.added")
        .expect("the tool call reached the server");
    assert_eq!(tool_start.2["data"]["item"]["name"], "Bash");
    let tool_done = responses
        .iter()
        .find(|(_, n, _)| n == "response.output_item.done")
        .expect("the tool result reached the server");
    assert_eq!(tool_done.2["data"]["item"]["status"], "completed");
    assert_eq!(terminal_names(&responses), ["response.completed"]);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_error_fails_the_server_task_with_the_clis_message() {
    let rig = Rig::start(
        Script::ApiError {
            status: 500,
            message: "mock api_error".into(),
        },
        Rig::tasks(),
    )
    .await;
    let (task_id, _) = rig.dispatch("hi").await;

    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Failed);
    let message = outcome.error_message.expect("an error message is stored");
    assert!(
        message.contains("API Error: 500") && message.contains("mock api_error"),
        "{message}"
    );
    let responses = rig.responses(task_id);
    assert_eq!(terminal_names(&responses), ["error"]);
    let (_, _, error) = responses.last().unwrap();
    assert_eq!(error["data"]["code"], "api_error");
    assert_eq!(error["data"]["message"], message.as_str());
    // The CLI's synthetic "API Error" text is not presented as an answer.
    assert_eq!(count(&responses, "response.output_text.delta"), 0);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_the_server_stops_the_stream_and_the_process_group() {
    let (rig, task_id) = Rig::with_slow_task().await;
    let processes = rig.task_processes(task_id);

    let answer = rig.server.cancel_task(USER, task_id).await.expect("cancel");
    assert_eq!(answer["status"], "CANCELLED", "{answer}");
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Cancelled);

    let responses = rig.responses(task_id);
    assert_eq!(terminal_names(&responses), ["response.incomplete"]);
    let (_, _, incomplete) = responses.last().unwrap();
    assert_eq!(incomplete["data"]["response"]["status"], "cancelled");
    assert_eq!(incomplete["data"]["response"]["error"]["code"], "cancelled");
    let streamed = contiguous_deltas(&responses);
    assert!(
        slow_text(300).starts_with(&streamed) && streamed.len() < slow_text(300).len(),
        "{streamed:?}"
    );
    processes.await_gone().await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_hits_the_task_timeout_and_fails_the_server_task() {
    let rig = Rig::start(
        Script::Stall,
        TaskConfig {
            task_timeout: Duration::from_secs(6),
            ..Rig::tasks()
        },
    )
    .await;
    let (task_id, _) = rig.dispatch("hang").await;
    tokio::time::timeout(WAIT, rig.mock.wait_for_requests(1))
        .await
        .expect("the CLI reached the mock");
    let pids = procs::processes_with_cwd(&rig.workspace(task_id));
    assert!(!pids.is_empty(), "the CLI runs in the task workspace");

    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Failed);
    let message = outcome.error_message.unwrap_or_default();
    assert!(message.contains("task timeout (6 s)"), "{message}");
    let responses = rig.responses(task_id);
    assert_eq!(terminal_names(&responses), ["error"]);
    assert_eq!(responses.last().unwrap().2["data"]["code"], "timeout");
    procs::await_gone(&pids).await;
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_tasks_at_once_five_run_one_waits_and_every_heartbeat_is_valid() {
    let chunks = 6;
    let rig = Rig::start(
        Script::Slow {
            chunks,
            interval: Duration::from_millis(250),
        },
        Rig::tasks(),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(rig.dispatch(&format!("task {i}")).await.0);
    }
    let last = *tasks.last().unwrap();

    // The server's view at the peak: 5 active and 1 queued, the queued one the last to arrive.
    let peak = rig
        .log
        .wait_for("a heartbeat with 5 active + 1 queued", |events| {
            events.iter().find_map(|e| match e {
                ServerEvent::Heartbeat { payload, .. }
                    if payload["runtime_capacity"]["active"] == 5
                        && payload["runtime_capacity"]["queued"] == 1 =>
                {
                    Some(payload.clone())
                }
                _ => None,
            })
        })
        .await;
    let active: Vec<String> = tasks[..5].iter().map(i64::to_string).collect();
    assert_eq!(peak["runtime_capacity"]["active_task_ids"], json!(active));
    assert_eq!(peak["runtime_capacity"]["limit"], 5);
    assert_eq!(peak["running_task_ids"], json!(tasks[..5]));

    for &task_id in &tasks {
        let outcome = rig.terminal(task_id).await;
        assert_eq!(
            outcome.status,
            TaskStatus::Completed,
            "task {task_id}: {:?}",
            outcome.error_message
        );
        assert_eq!(
            outcome.result_text.as_deref(),
            Some(slow_text(chunks).as_str())
        );
    }
    // The last heartbeat shows the device idle again.
    rig.log
        .wait_for("an idle heartbeat", |events| {
            let last = events.iter().rev().find_map(|e| match e {
                ServerEvent::Heartbeat { payload, .. } => Some(&payload["runtime_capacity"]),
                _ => None,
            })?;
            (last["active"] == 0 && last["queued"] == 0).then_some(())
        })
        .await;

    let beats = rig.heartbeats();
    assert!(beats.len() >= 3, "{beats:?}");
    for (payload, ack) in &beats {
        assert_eq!(*ack, json!({"success": true}), "heartbeat {payload}");
        let capacity = &payload["runtime_capacity"];
        assert!(capacity["active"].as_u64().unwrap() <= 5, "{payload}");
        // The queued task never holds a slot while five others run.
        if capacity["active"] == 5 && capacity["queued"] == 1 {
            assert!(!payload["running_task_ids"]
                .as_array()
                .unwrap()
                .contains(&json!(last)));
        }
    }
    // The connection never dropped: one register, no disconnect.
    assert_eq!(rig.server.register_count(DEVICE_ID), 1);
    assert!(!rig
        .log
        .snapshot()
        .iter()
        .any(|e| matches!(e, ServerEvent::Disconnected { .. })));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_outage_mid_stream_loses_and_repeats_nothing() {
    let (before, after) = (5, 20);
    let text = slow_text(before + after);
    let gate = Gate::default();
    let rig = Rig::start(
        Script::Gated {
            before,
            after,
            interval: Duration::from_millis(100),
            gate: gate.clone(),
        },
        Rig::tasks(),
    )
    .await;
    let (task_id, _) = rig.dispatch("stream through an outage").await;
    rig.deltas_received(task_id, before).await;
    rig.acks_settled().await;

    // The connection is cut and cannot come back for about a second. The answer streams on at
    // once: its first deltas go into a socket the server no longer reads, until the device
    // notices the loss.
    rig.outage_begins();
    gate.open();
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.outage_ends();

    let outcome = rig.terminal(task_id).await;
    assert_eq!(
        outcome.status,
        TaskStatus::Completed,
        "back within the server's 2 s grace, the task must not fail: {:?}",
        outcome.error_message
    );
    assert_eq!(outcome.result_text.as_deref(), Some(text.as_str()));

    let responses = rig.responses(task_id);
    // The outage really fell mid-stream: deltas arrived on both sockets.
    let sids: Vec<&str> = responses
        .iter()
        .filter(|(_, n, _)| n == "response.output_text.delta")
        .map(|(s, _, _)| s.as_str())
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });
    assert_eq!(sids.len(), 2, "deltas before and after the reconnect");
    assert_eq!(rig.server.register_count(DEVICE_ID), 2);
    // Exactly the CLI's text, each character once, in order.
    assert_eq!(contiguous_deltas(&responses), text);
    assert_eq!(count(&responses, "response.created"), 1);
    assert_eq!(terminal_names(&responses), ["response.completed"]);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_grace_fails_the_task_and_the_late_result_arrives_once() {
    let (before, after) = (4, 10);
    let text = slow_text(before + after);
    let gate = Gate::default();
    let mut rig = Rig::start(
        Script::Gated {
            before,
            after,
            interval: Duration::from_millis(100),
            gate: gate.clone(),
        },
        Rig::tasks(),
    )
    .await;
    let (task_id, subtask_id) = rig.dispatch("stream through a long outage").await;
    rig.deltas_received(task_id, before).await;
    rig.acks_settled().await;

    rig.outage_begins();
    gate.open();
    // The server gives up on the device after its 2 s grace (protocol.md §4) ...
    let error = rig
        .log
        .wait_for("the server to fail the task", |events| {
            events.iter().find_map(|e| match e {
                ServerEvent::TaskSettled {
                    task_id: t,
                    status: TaskStatus::Failed,
                    error,
                    ..
                } if *t == task_id => Some(error.clone()),
                _ => None,
            })
        })
        .await;
    assert_eq!(error.as_deref(), Some("Device disconnected unexpectedly"));
    // ... while the CLI finishes the answer on the device, offline.
    rig.device_event(
        "the task completing",
        |e| matches!(e, DeviceEvent::TaskCompleted { task_id: t, .. } if *t == task_id),
    )
    .await;
    let before = rig.responses(task_id).len();
    rig.outage_ends();

    // When the connection returns, the device delivers what it has: the rest of the stream and
    // its one terminal event, in order, nothing twice.
    rig.log
        .wait_for("the late response.completed", |events| {
            events.iter().find_map(|e| match e {
                ServerEvent::Responses { name, payload, .. }
                    if name == "response.completed" && payload["task_id"] == task_id =>
                {
                    Some(())
                }
                _ => None,
            })
        })
        .await;
    let responses = rig.responses(task_id);
    assert!(
        responses.len() > before,
        "events were held back while offline"
    );
    assert_eq!(contiguous_deltas(&responses), text);
    assert_eq!(terminal_names(&responses), ["response.completed"]);
    let (_, _, done) = responses.last().unwrap();
    assert_eq!(done["subtask_id"], subtask_id);
    assert_eq!(
        done["data"]["response"]["output"][0]["content"][0]["text"],
        text.as_str()
    );
    // The server keeps its verdict: a settled task does not change (as the real backend).
    let outcome = rig.server.task(task_id).unwrap();
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(
        outcome.error_message.as_deref(),
        Some("Device disconnected unexpectedly")
    );
    // Nothing more comes for the task: wait for a heartbeat after the flush, then look again.
    let beats = rig.heartbeats().len();
    rig.log
        .wait_for("a heartbeat after the flush", |events| {
            let n = events
                .iter()
                .filter(|e| matches!(e, ServerEvent::Heartbeat { .. }))
                .count();
            (n > beats).then_some(())
        })
        .await;
    assert_eq!(rig.responses(task_id).len(), responses.len());
    rig.shutdown().await;
}

/// Demo mode (`wegent-device --demo`): the devserver answers with its own demo model, so a task
/// runs end to end through the real CLI with no model account, and says where it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devservers_demo_model_answers_a_task_through_the_real_cli() {
    let rig = Rig::start_with(Script::Text(String::new()), Rig::tasks(), |cfg| {
        cfg.model = ModelSettings::built_in();
    })
    .await;
    let (task_id, _) = rig.dispatch("What can you do on my machine?").await;
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    let answer = outcome.result_text.unwrap_or_default();
    assert!(
        answer.contains("What can you do on my machine?"),
        "{answer}"
    );
    let workspace = rig.workspace(task_id).canonicalize().unwrap();
    assert!(
        answer.contains(&workspace.display().to_string()),
        "the answer names the workspace {}: {answer}",
        workspace.display()
    );
    assert!(rig.mock.requests().is_empty(), "the test mock was not used");
    rig.shutdown().await;
}

/// The server's `error` event for `task_id`: its `data` (`{code, message}`) and where it is in
/// the log.
async fn error_event(rig: &Rig, task_id: i64) -> (usize, Value) {
    rig.log
        .wait_for(&format!("an error event of task {task_id}"), |events| {
            events.iter().enumerate().find_map(|(i, e)| match e {
                ServerEvent::Responses { name, payload, .. }
                    if name == "error" && payload["task_id"] == task_id =>
                {
                    Some((i, payload["data"].clone()))
                }
                _ => None,
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_with_100k_key_entries_fails_at_once_and_heartbeats_stay_acked() {
    let rig = Rig::start(Script::Text("ok".into()), Rig::tasks()).await;
    let env: serde_json::Map<String, Value> = (0..100_000)
        .map(|i| {
            (
                format!("X{i}_API_KEY"),
                json!(format!("hostile-key-{i:08}")),
            )
        })
        .collect();
    let task_id = 990_001;
    let payload = json!({
        "task_id": task_id, "subtask_id": 990_002, "message_id": 990_003,
        "prompt": "hi", "model_config": {"env": env},
    });
    assert_eq!(
        rig.server
            .emit_to_device(DEVICE_ID, "task:execute", &payload),
        1
    );
    drop(payload);

    let (at, error) = error_event(&rig, task_id).await;
    assert_eq!(error["code"], "invalid_task", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("100000 environment entries") && message.contains("at most 1000"),
        "{message}"
    );
    // Heartbeats after it are still accepted on the same connection.
    rig.log
        .wait_for(
            "two accepted heartbeats after the hostile payload",
            |events| {
                let accepted = events[at..]
                    .iter()
                    .filter(|e| {
                        matches!(e, ServerEvent::Heartbeat { device_id: Some(d), ack, .. }
                        if d == DEVICE_ID && *ack == json!({"success": true}))
                    })
                    .count();
                (accepted >= 2).then_some(())
            },
        )
        .await;
    assert_eq!(rig.server.register_count(DEVICE_ID), 1, "never reconnected");
    // And the device still runs tasks.
    let (next, _) = rig.dispatch("still there?").await;
    assert_eq!(rig.terminal(next).await.status, TaskStatus::Completed);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_queue_cap_a_task_fails_at_once_saying_the_queue_is_full() {
    let tasks = TaskConfig {
        max_slots: 1,
        max_queued: 1,
        ..Rig::tasks()
    };
    let mut rig = Rig::start(
        Script::Slow {
            chunks: 40,
            interval: Duration::from_millis(100),
        },
        tasks,
    )
    .await;
    let (running, _) = rig.dispatch("runs").await;
    rig.deltas_received(running, 1).await;
    let (waiting, _) = rig.dispatch("waits").await;
    rig.log
        .wait_for("a heartbeat with 1 queued", |events| {
            events.iter().find_map(|e| match e {
                ServerEvent::Heartbeat { payload, .. }
                    if payload["runtime_capacity"]["queued"] == 1 =>
                {
                    Some(())
                }
                _ => None,
            })
        })
        .await;
    let (refused, _) = rig.dispatch("one too many").await;

    let outcome = rig.terminal(refused).await;
    assert_eq!(outcome.status, TaskStatus::Failed);
    let message = outcome.error_message.unwrap_or_default();
    assert!(
        message.contains("this device's queue is full (1 task waiting)"),
        "{message}"
    );
    rig.device_event("the refused task's failure", |e| {
        matches!(e, DeviceEvent::TaskFailed { task_id, reason, .. }
            if *task_id == refused && reason.contains("queue is full"))
    })
    .await;
    // The others are untouched and finish.
    for task_id in [running, waiting] {
        assert_eq!(rig.terminal(task_id).await.status, TaskStatus::Completed);
    }
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_secrets_are_forgotten_some_time_after_it_ends() {
    const KEY: &str = "sk-forget-after-the-task-4b1e";
    let tasks = TaskConfig {
        secret_forget_delay: Duration::from_secs(3),
        ..Rig::tasks()
    };
    let rig = Rig::start_with(Script::Text("done".into()), tasks, |cfg| {
        cfg.model.api_key = KEY.into();
    })
    .await;
    let (task_id, _) = rig.dispatch("say hello").await;
    assert_eq!(rig.terminal(task_id).await.status, TaskStatus::Completed);
    assert!(
        wegent_executor::redact::is_registered(KEY),
        "still masked right after the task"
    );
    tokio::time::timeout(WAIT, async {
        while wegent_executor::redact::is_registered(KEY) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the key is forgotten after the delay");
    assert_eq!(
        wegent_executor::redact::redact(KEY),
        KEY,
        "no longer masked"
    );
    rig.shutdown().await;
}

/// *Pause new tasks* (the tray's item, `wegent-executor pause`): the device stays online and a
/// new task ends at once with the paused message; the switch survives a restart; after resume a
/// task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_device_stays_online_refuses_new_tasks_and_stays_paused_after_a_restart() {
    const PAUSED: &str = "This device is paused by its user; resume it to take new tasks.";
    let mut rig = Rig::start(Script::Text("resumed and done".into()), Rig::tasks()).await;
    rig.device()
        .commands
        .send(Command::SetPaused(true))
        .await
        .unwrap();
    rig.device_status("paused", |s| s.paused).await;
    assert!(
        rig.home.path().join("paused").is_file(),
        "the switch is saved in the home"
    );

    let (refused, _) = rig.dispatch("while paused").await;
    let outcome = rig.terminal(refused).await;
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(outcome.error_message.as_deref(), Some(PAUSED));
    let responses = rig.responses(refused);
    assert_eq!(terminal_names(&responses), ["error"]);
    assert_eq!(responses.last().unwrap().2["data"]["code"], "device_paused");
    // Online all along: heartbeats after the refusal are accepted on the first connection.
    rig.acks_settled().await;
    assert_eq!(rig.server.register_count(DEVICE_ID), 1);
    assert_eq!(rig.device().status.borrow().connection, Connection::Online);
    assert!(rig.mock.requests().is_empty(), "no Claude Code ran");

    rig.restart_device().await;
    assert!(
        rig.device().status.borrow().paused,
        "still paused after a restart"
    );
    let (refused_again, _) = rig.dispatch("still paused").await;
    let outcome = rig.terminal(refused_again).await;
    assert_eq!(outcome.error_message.as_deref(), Some(PAUSED));

    rig.device()
        .commands
        .send(Command::SetPaused(false))
        .await
        .unwrap();
    rig.device_status("resumed", |s| !s.paused).await;
    assert!(!rig.home.path().join("paused").exists());
    let (runs, _) = rig.dispatch("after resume").await;
    let outcome = rig.terminal(runs).await;
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.result_text.as_deref(), Some("resumed and done"));
    rig.shutdown().await;
}

/// `wegent-executor pause` in another process writes the saved switch; a running core follows
/// it without a restart (and `resume` likewise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_device_follows_the_saved_switch_changed_by_another_process() {
    let rig = Rig::start(Script::Text("ok".into()), Rig::tasks()).await;
    assert!(!rig.device().status.borrow().paused);
    wegent_executor::pause::set_paused(rig.home.path(), true).unwrap();
    rig.device_status("paused by the saved switch", |s| s.paused)
        .await;
    let (refused, _) = rig.dispatch("while paused").await;
    assert_eq!(rig.terminal(refused).await.status, TaskStatus::Failed);
    wegent_executor::pause::set_paused(rig.home.path(), false).unwrap();
    rig.device_status("resumed by the saved switch", |s| !s.paused)
        .await;
    let (runs, _) = rig.dispatch("after resume").await;
    assert_eq!(rig.terminal(runs).await.status, TaskStatus::Completed);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_on_the_device_cancels_it_with_the_devices_reason_and_ends_its_processes() {
    let (mut rig, task_id) = Rig::with_slow_task().await;
    // The status names the running task's folder (the tray's "Open folder").
    let folder = rig
        .device()
        .status
        .borrow()
        .slots
        .running
        .iter()
        .find(|t| t.task_id == task_id)
        .and_then(|t| t.folder.clone());
    assert_eq!(folder, Some(rig.workspace(task_id)));
    let processes = rig.task_processes(task_id);

    rig.device()
        .commands
        .send(Command::StopTask { task_id })
        .await
        .expect("the core takes commands");
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Cancelled);
    assert_eq!(
        outcome.error_message.as_deref(),
        Some("Stopped on this device by its user")
    );
    let responses = rig.responses(task_id);
    assert_eq!(terminal_names(&responses), ["response.incomplete"]);
    let (_, _, incomplete) = responses.last().unwrap();
    assert_eq!(incomplete["data"]["response"]["error"]["code"], "cancelled");
    assert_eq!(
        incomplete["data"]["response"]["error"]["message"],
        wegent_executor::task::STOPPED_BY_USER
    );
    processes.await_gone().await;
    // It is the newest of the device's recent tasks, as cancelled.
    let latest_is_the_stopped_task = |s: &DeviceStatus| {
        s.recent.first().is_some_and(|t| {
            t.task_id == task_id && t.end == TaskEnd::Cancelled && t.title == "write slowly"
        })
    };
    rig.device_status("showing the stopped task as the latest recent one", |s| {
        s.slots.running.is_empty() && latest_is_the_stopped_task(s)
    })
    .await;
    // The list is saved: a restart of the app (or of its connection) still shows it.
    rig.restart_device().await;
    assert!(
        latest_is_the_stopped_task(&rig.device().status.borrow()),
        "recent tasks after a restart: {:?}",
        rig.device().status.borrow().recent
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_stopped_on_the_device_never_starts_and_is_cancelled() {
    let rig = Rig::start(
        Script::Slow {
            chunks: 40,
            interval: Duration::from_millis(100),
        },
        TaskConfig {
            max_slots: 1,
            ..Rig::tasks()
        },
    )
    .await;
    let (first, _) = rig.dispatch("first").await;
    let (queued, _) = rig.dispatch("second").await;
    // The status lists the waiting task (the tray shows it with its own Stop).
    rig.device_status("listing the second task as waiting", |s| {
        s.slots.waiting.len() == 1 && s.slots.waiting[0].task_id == queued
    })
    .await;
    rig.device()
        .commands
        .send(Command::StopTask { task_id: queued })
        .await
        .expect("the core takes commands");
    let outcome = rig.terminal(queued).await;
    assert_eq!(outcome.status, TaskStatus::Cancelled);
    assert_eq!(
        outcome.error_message.as_deref(),
        Some(wegent_executor::task::STOPPED_BY_USER)
    );
    let first_outcome = rig.terminal(first).await;
    assert_eq!(first_outcome.status, TaskStatus::Completed);
    // Only the first task ever reached the model.
    assert_eq!(rig.mock.requests().len(), 1);
    assert!(
        !rig.workspace(queued).exists(),
        "the stopped task never ran"
    );
    rig.shutdown().await;
}

/// A switch that cannot be saved (here `<home>/paused` is a directory, which a resume cannot
/// remove) still applies, the status says why, and the unchanged file does not undo it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_cannot_be_saved_applies_says_why_and_is_not_undone() {
    let rig = Rig::start(Script::Text("ran".into()), Rig::tasks()).await;
    std::fs::create_dir(rig.home.path().join("paused")).unwrap();
    rig.device_status("paused by the marker", |s| s.paused)
        .await;
    rig.device()
        .commands
        .send(Command::SetPaused(false))
        .await
        .unwrap();
    rig.device_status("resumed, with the reason it is not saved", |s| {
        !s.paused
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("could not save the resume"))
    })
    .await;
    // Heartbeats come every second, as the marker is looked at: after two, it has been looked
    // at again.
    rig.acks_settled().await;
    assert!(!rig.device().status.borrow().paused);
    let (task_id, _) = rig.dispatch("resumed").await;
    assert_eq!(rig.terminal(task_id).await.status, TaskStatus::Completed);
    rig.shutdown().await;
}
