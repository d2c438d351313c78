//! Codex bots end to end: the full core (`device::start`) connected to the in-process devserver,
//! which dispatches to a Codex bot; the real pinned Codex CLI (`WEGENT_TEST_CODEX`, codex-cli
//! 0.171.0) runs against the devserver's mock of the OpenAI Responses API. Asserted on what the
//! server recorded and stored, and on what the mock model was sent.
//!
//! Only the model API is a fake (it cannot run here); the CLI, its processes and the commands it
//! runs, the Socket.IO connection and the devserver's settlement rules are real.
#![cfg(unix)]

#[path = "support/mock_anthropic.rs"]
mod mock_model;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/task_harness.rs"]
mod task_harness;
#[path = "support/traced_device.rs"]
mod traced_device;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_model::{MockModel, ModelApi, Script, TOOL_RESULT};
use serde_json::Value;
use traced_device::{assert_no_file_holds, TracedDevice};
use wegent_devserver::bots::Agent;
use wegent_devserver::{
    DevServer, DevServerConfig, DispatchRequest, RunningDevServer, ServerEvent, TaskOutcome,
    TaskStatus,
};
use wegent_executor::config::TaskConfig;
use wegent_executor::device::{self, DeviceHandle};
use wegent_executor::status::{Command, Connection};
use wegent_executor::token::Token;

/// Upper bound of every awaited condition (a busy 2-core machine runs several CLIs at once).
const WAIT: Duration = Duration::from_secs(60);
const USER: &str = "admin";
const DEVICE_ID: &str = "device-codex-e2e";

struct Rig {
    server: RunningDevServer,
    mock: MockModel,
    device: Option<DeviceHandle>,
    home: tempfile::TempDir,
}

impl Rig {
    async fn start(script: Script) -> Self {
        Self::start_with(script, "sk-codex-test", task_harness::codex_path()).await
    }

    /// A devserver whose Codex bots use the mock (with `api_key`), and the core connected to it
    /// with `codex` as its Codex CLI.
    async fn start_with(script: Script, api_key: &str, codex: PathBuf) -> Self {
        let mock = MockModel::start(script).await;
        let mut cfg = DevServerConfig::for_tests();
        cfg.codex_model.base_url = mock.responses_base_url();
        cfg.codex_model.api_key = api_key.into();
        cfg.timings.ping_interval = Duration::from_secs(5);
        cfg.timings.ping_timeout = Duration::from_secs(10);
        cfg.timings.online_ttl = Duration::from_secs(10);
        cfg.timings.cancel_wait = Duration::from_secs(20);
        let server = DevServer::start(cfg).await.expect("the devserver starts");
        let home = tempfile::tempdir().unwrap();
        let mut config = task_harness::device_config(
            server.url(),
            home.path(),
            DEVICE_ID,
            "Codex e2e",
            TaskConfig {
                codex_path: Some(codex),
                claude_path: Some("/nonexistent/claude".into()),
                task_timeout: Duration::from_secs(120),
                ..TaskConfig::default()
            },
        );
        config.session.backoff.initial = Duration::from_millis(100);
        config.session.backoff.max = Duration::from_millis(250);
        let token = Token::new(&server.demo_token().expect("a demo user"));
        let device = device::start(config, Some(token));
        let mut status = device.status.clone();
        tokio::time::timeout(
            WAIT,
            status.wait_for(|s| s.connection == Connection::Online),
        )
        .await
        .expect("the device comes online")
        .unwrap();
        Self {
            server,
            mock,
            device: Some(device),
            home,
        }
    }

    /// A new Codex task (or a follow-up of `task_id`): `(task_id, assistant subtask_id)`.
    async fn dispatch(&self, prompt: &str, task_id: Option<i64>) -> (i64, i64) {
        let d = self
            .server
            .dispatch(
                USER,
                DispatchRequest {
                    device_id: Some(DEVICE_ID.into()),
                    message: prompt.into(),
                    task_id,
                    agent: Some(Agent::Codex),
                    ..Default::default()
                },
            )
            .await
            .expect("dispatch");
        (d.task_id, d.assistant_subtask_id)
    }

    async fn terminal(&self, task_id: i64) -> TaskOutcome {
        self.server
            .wait_task_terminal(task_id, WAIT)
            .await
            .unwrap_or_else(|e| panic!("task {task_id} did not finish: {e}"))
    }

    /// Everything the device sent for `subtask_id`: `(event name, payload)`.
    fn responses(&self, events: &[ServerEvent], subtask_id: i64) -> Vec<(String, Value)> {
        events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Responses { name, payload, .. }
                    if payload["subtask_id"] == subtask_id =>
                {
                    Some((name.clone(), payload.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The task's working directory (the device's scratch dir of a task without a project).
    fn workspace(&self, task_id: i64) -> PathBuf {
        self.home.path().join("workspace").join(task_id.to_string())
    }

    async fn shutdown(mut self) {
        if let Some(device) = self.device.take() {
            let _ = device.commands.send(Command::Shutdown).await;
            let _ = tokio::time::timeout(WAIT, device.stopped()).await;
        }
        self.server.shutdown().await;
    }
}

/// Record every server event from now until `until` resolves.
async fn recorded<T>(
    server: &RunningDevServer,
    until: impl std::future::Future<Output = T>,
) -> (T, Vec<ServerEvent>) {
    let mut stream = server.events();
    let seen: Arc<Mutex<Vec<ServerEvent>>> = Arc::default();
    let sink = seen.clone();
    let collector = tokio::spawn(async move {
        while let Ok(e) = stream.next().await {
            let settled = matches!(e, ServerEvent::TaskSettled { .. });
            sink.lock().unwrap().push(e);
            if settled {
                return;
            }
        }
    });
    let out = until.await;
    // The server settles a task after recording its terminal event: the collector ends there.
    let _ = tokio::time::timeout(WAIT, collector).await;
    let seen = seen.lock().unwrap().clone();
    (out, seen)
}

/// The text deltas, checked contiguous (each offset = the characters before it).
fn deltas(responses: &[(String, Value)]) -> Vec<String> {
    let mut chars = 0;
    responses
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, p)| {
            let delta = p["data"]["delta"].as_str().unwrap().to_owned();
            assert_eq!(
                p["data"]["offset"].as_u64(),
                Some(chars as u64),
                "{delta:?}"
            );
            chars += delta.chars().count();
            delta
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_answer_streams_as_deltas_and_is_stored_completed() {
    let answer = "Codex streams this answer in several small pieces";
    let rig = Rig::start(Script::Text(answer.into())).await;
    let ((task_id, subtask_id, outcome), events) = recorded(&rig.server, async {
        let (task_id, subtask_id) = rig.dispatch("say something", None).await;
        (task_id, subtask_id, rig.terminal(task_id).await)
    })
    .await;
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.result_text.as_deref(), Some(answer));
    let responses = rig.responses(&events, subtask_id);
    assert_eq!(responses[0].0, "response.created");
    assert_eq!(responses[0].1["data"]["shell_type"], "codex");
    let deltas = deltas(&responses);
    assert!(
        deltas.len() > 1,
        "streamed in pieces, not whole: {deltas:?}"
    );
    assert_eq!(deltas.concat(), answer);
    assert_eq!(responses.last().unwrap().0, "response.completed");
    // Codex reached the model through the task's provider, with the key, in the task's folder.
    let requests = rig.mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].api, ModelApi::Responses);
    assert_eq!(requests[0].api_key.as_deref(), Some("sk-codex-test"));
    assert_eq!(
        Path::new(&requests[0].cwd),
        rig.workspace(task_id).canonicalize().unwrap()
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_tool_turn_runs_the_command_in_the_task_folder_and_quotes_it() {
    let rig = Rig::start(Script::RunCommand {
        // Computed by the shell, so only a command that really ran can print it.
        command: "echo tool-said-$((6*7)) && pwd".into(),
        then: format!("The command printed: {TOOL_RESULT}"),
    })
    .await;
    let ((task_id, subtask_id, outcome), events) = recorded(&rig.server, async {
        let (task_id, subtask_id) = rig.dispatch("run the command", None).await;
        (task_id, subtask_id, rig.terminal(task_id).await)
    })
    .await;
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    let text = outcome.result_text.unwrap();
    let workspace = rig.workspace(task_id).canonicalize().unwrap();
    assert!(text.contains("tool-said-42"), "{text}");
    assert!(text.contains(&workspace.display().to_string()), "{text}");
    // The command showed in the chat as a tool block, with its output.
    let responses = rig.responses(&events, subtask_id);
    let done = responses
        .iter()
        .find(|(name, _)| name == "response.output_item.done")
        .expect("a tool block");
    assert!(done.1["data"]["item"]["output"]
        .as_str()
        .unwrap()
        .contains("tool-said-42"));
    assert_eq!(rig.mock.requests().len(), 2, "the call, then its result");
    assert!(rig.mock.requests()[1].has_tool_result);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_resumes_the_codex_thread() {
    let rig = Rig::start(Script::Text("noted".into())).await;
    let (task_id, _) = rig.dispatch("remember the word kiwi", None).await;
    assert_eq!(rig.terminal(task_id).await.status, TaskStatus::Completed);
    let (again, _) = rig.dispatch("which word?", Some(task_id)).await;
    assert_eq!(again, task_id);
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    let requests = rig.mock.requests();
    assert_eq!(requests.len(), 2);
    // The second request carries the first turn: its prompt and its answer.
    assert_eq!(
        requests[1].prompts,
        ["remember the word kiwi", "which word?"],
        "{:?}",
        requests[1].prompts
    );
    assert_eq!(requests[1].earlier_answers, 1);
    // One thread for the task: Codex names it in every request.
    let thread = |i: usize| {
        requests[i]
            .headers
            .iter()
            .find(|(k, _)| k == "thread-id")
            .map(|(_, v)| v.clone())
    };
    assert!(thread(0).is_some());
    assert_eq!(thread(0), thread(1));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_codex_task_ends_it_cancelled_with_no_process_left() {
    let rig = Rig::start(Script::Slow {
        chunks: 200,
        interval: Duration::from_millis(100),
    })
    .await;
    let mut events = rig.server.events();
    let (task_id, _) = rig.dispatch("write slowly", None).await;
    events
        .wait_for("a first delta", WAIT, |e| match e {
            ServerEvent::Responses { name, payload, .. }
                if name == "response.output_text.delta" && payload["task_id"] == task_id =>
            {
                Some(())
            }
            _ => None,
        })
        .await
        .unwrap();
    let workspace = rig.workspace(task_id);
    let pids = procs::processes_with_cwd(&workspace);
    assert!(!pids.is_empty(), "codex runs in the task folder");
    // The native binary itself, not npm's Node wrapper as its parent (one process, not two).
    let programs: Vec<String> = pids
        .iter()
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .map(|exe| exe.display().to_string())
        .collect();
    assert!(
        programs.iter().any(|p| p.ends_with("/bin/codex"))
            && !programs.iter().any(|p| p.ends_with("/node")),
        "{programs:?}"
    );
    rig.server.cancel_task(USER, task_id).await.expect("cancel");
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Cancelled, "{outcome:?}");
    // Wait (bounded) until the slot is free: the turn returns only once its group is gone.
    let device = rig.device.as_ref().unwrap();
    let mut status = device.status.clone();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.slots.running.is_empty()))
        .await
        .expect("the slot frees")
        .unwrap();
    procs::await_gone(&pids).await;
    assert!(procs::processes_with_cwd(&workspace)
        .into_iter()
        .all(procs::is_zombie));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_error_fails_the_codex_task_with_its_message() {
    let rig = Rig::start(Script::ApiError {
        status: 400,
        message: "mock model refused: quota exceeded".into(),
    })
    .await;
    let (task_id, _) = rig.dispatch("hi", None).await;
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Failed, "{outcome:?}");
    let message = outcome.error_message.unwrap_or_default();
    assert!(
        message.contains("mock model refused: quota exceeded"),
        "{message}"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_tells_the_truth_about_the_users_codex_login_file() {
    let rig = Rig::start(Script::Text("unused".into())).await;
    let mut events = rig.server.events();
    let payload = events
        .heartbeat_of(DEVICE_ID, WAIT)
        .await
        .expect("a heartbeat")
        .0;
    let home = std::env::home_dir().expect("a home directory");
    let file = home.join(".codex/auth.json");
    assert_eq!(
        payload["runtime_auth_files"],
        serde_json::json!({"codex": {"target_path": file.to_string_lossy(), "exists": file.is_file()}}),
        "the file the backend's copy writes, and whether it is there"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_codex_cli_fails_the_task_with_how_to_install_it() {
    let rig = Rig::start_with(
        Script::Text("unused".into()),
        "sk-x",
        "/nonexistent/bin/codex".into(),
    )
    .await;
    let (task_id, _) = rig.dispatch("hi", None).await;
    let outcome = rig.terminal(task_id).await;
    assert_eq!(outcome.status, TaskStatus::Failed);
    let message = outcome.error_message.unwrap_or_default();
    assert!(message.contains("/nonexistent/bin/codex"), "{message}");
    assert!(
        message.contains("npm install -g @openai/codex@0.171.0"),
        "{message}"
    );
    assert!(rig.mock.requests().is_empty());
    rig.shutdown().await;
}

const CANARY_KEY: &str = "sk-CODEX-CANARY-5e2b9d7a1c";

/// The real `wegent-executor run` binary at `RUST_LOG=trace` runs a Codex task whose model key
/// (in `model_config` and the bot's env) is a canary; the model asks Codex to print the
/// environment of the commands it runs. Neither that environment, nor the answer, nor the
/// device's logs, nor anything the server received, nor Codex's own files hold the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_secret_reaches_neither_the_models_commands_nor_any_log() {
    let mock = MockModel::start(Script::RunCommand {
        command: "env".into(),
        then: format!("Environment: {TOOL_RESULT}"),
    })
    .await;
    let mut cfg = DevServerConfig::for_tests();
    cfg.codex_model.base_url = mock.responses_base_url();
    cfg.codex_model.api_key = CANARY_KEY.into();
    // The binary heartbeats every 30 s: the server must not think it gone in between.
    cfg.timings.ping_interval = Duration::from_secs(5);
    cfg.timings.ping_timeout = Duration::from_secs(10);
    cfg.timings.online_ttl = Duration::from_secs(90);
    let server = DevServer::start(cfg).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let device = TracedDevice::start(
        &server,
        home.path(),
        "Codex canary box",
        "--codex-path",
        &task_harness::codex_path(),
    )
    .await;
    let (outcome, events) = recorded(&server, async {
        let d = server
            .dispatch(
                USER,
                DispatchRequest {
                    device_id: Some(device.device_id.clone()),
                    message: "show me the environment".into(),
                    agent: Some(Agent::Codex),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        server.wait_task_terminal(d.task_id, WAIT).await.unwrap()
    })
    .await;
    let stderr_text = device.stop().await;

    // The command really ran and printed its environment (Codex's own variables are in it).
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    let answer = outcome.result_text.unwrap_or_default();
    assert!(answer.contains("CODEX_THREAD_ID="), "{answer}");
    assert!(answer.contains("WEGENT_TASK_ID="), "{answer}");
    assert!(
        !answer.contains(CANARY_KEY),
        "the key reached the model's command"
    );
    // The key did reach the model API (as its bearer), and nothing else the model was sent.
    let requests = mock.requests();
    assert_eq!(requests[0].api_key.as_deref(), Some(CANARY_KEY));
    for request in &requests {
        assert!(!request.body.to_string().contains(CANARY_KEY));
    }
    for event in &events {
        if let ServerEvent::Responses { payload, .. } = event {
            assert!(
                !payload.to_string().contains(CANARY_KEY),
                "sent to the server"
            );
        }
    }
    assert!(
        stderr_text.contains("DEBUG wegent_executor"),
        "logged verbosely"
    );
    assert!(!stderr_text.contains(CANARY_KEY), "the key is on stderr");
    // Every file the device wrote: its logs, the task's private state and Codex's home.
    let written = assert_no_file_holds(home.path(), CANARY_KEY);
    assert!(
        written.files > 3,
        "the device wrote its logs and the task's files"
    );
    server.shutdown().await;
}
