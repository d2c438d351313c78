//! `wegent-executor run` end to end: the real binary against the real devserver (a
//! Wegent-compatible Socket.IO + REST server, in-process on loopback).
#![cfg(unix)]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use mock_anthropic::{MockAnthropic, Script};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer, TaskStatus};

const BIN: &str = env!("CARGO_BIN_EXE_wegent-executor");
const WAIT: Duration = Duration::from_secs(20);

fn spawn(home: &std::path::Path, server: &RunningDevServer, token: &str, args: &[&str]) -> Child {
    let mut cmd = Command::new(BIN);
    for var in [
        "WEGENT_AUTH_TOKEN",
        "WEGENT_SOCKET_URL",
        "DEVICE_ID",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("WEGENT_EXECUTOR_HOME", home)
        .env("WEGENT_NO_KEYCHAIN", "1")
        .env("WEGENT_BACKEND_URL", server.url())
        .env("WEGENT_TOKEN", token)
        .env("DEVICE_NAME", "CLI e2e box")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().unwrap()
}

/// Read stdout lines until one contains `needle`; returns everything read.
async fn until_line(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no line with {needle:?}; got {seen:#?}"
    );
    seen
}

fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
}

async fn cli_output(
    home: &std::path::Path,
    server: &RunningDevServer,
    token: &str,
    args: &[&str],
) -> (Option<i32>, String) {
    let out = spawn(home, server, token, args)
        .wait_with_output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn run_comes_online_is_listed_and_stops_cleanly_on_sigterm() {
    let server = DevServer::start(DevServerConfig::for_tests())
        .await
        .unwrap();
    let token = server.demo_token().unwrap();
    let mut events = server.events();
    let home = tempfile::tempdir().unwrap();

    let mut child = spawn(
        home.path(),
        &server,
        &token,
        &[
            "--mode",
            "local",
            "--max-slots",
            "3",
            "--claude-path",
            "/nonexistent/claude",
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = until_line(&mut lines, "Online · 0/3 slots").await;
    assert!(
        seen[0].starts_with("Wegent device \"CLI e2e box\" (device-"),
        "{seen:#?}"
    );

    let device_id = std::fs::read_to_string(home.path().join("device_id"))
        .unwrap()
        .trim()
        .to_owned();
    let (register, _ack) = events.register_of(&device_id, WAIT).await.unwrap();
    assert_eq!(register["name"], "CLI e2e box");
    let (heartbeat, _) = events.heartbeat_of(&device_id, WAIT).await.unwrap();
    assert_eq!(heartbeat["runtime_capacity"]["limit"], 3);

    // Other commands see the running device through the REST API.
    let (code, text) = cli_output(home.path(), &server, &token, &["devices"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("⭐ 🟢 online")
            && text.contains("0/3 slots")
            && text.contains("← this device"),
        "{text}"
    );
    let (code, text) = cli_output(home.path(), &server, &token, &["status"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("On the server:   ⭐ 🟢 online"), "{text}");
    let (code, text) = cli_output(home.path(), &server, &token, &["set-default"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("⭐ {device_id} is now your default device")),
        "{text}"
    );
    let (code, text) = cli_output(
        home.path(),
        &server,
        &token,
        &["set-default", "no-such-device"],
    )
    .await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("not found") && text.contains("once it has connected"),
        "{text}"
    );

    // A task whose Claude CLI is missing fails, and the run output says so.
    let task = server
        .dispatch_task("admin", Some(&device_id), "say hello")
        .await
        .unwrap();
    let seen = until_line(&mut lines, &format!("Task {} failed", task.task_id)).await;
    assert!(
        seen.iter().any(|l| l.contains("/nonexistent/claude")),
        "{seen:#?}"
    );
    let started = format!("Task {} started (Claude Code): say hello", task.task_id);
    assert!(seen.contains(&started), "the agent is named: {seen:#?}");
    let outcome = server.wait_task_terminal(task.task_id, WAIT).await.unwrap();
    assert!(
        format!("{:?}", outcome.status).contains("Failed"),
        "{outcome:?}"
    );

    sigterm(&child);
    until_line(&mut lines, "Stopped.").await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean shutdown exits 0, got {status:?}");
    events.disconnect_of(&device_id, WAIT).await.unwrap();

    // The token never reaches the log files.
    let logs = home.path().join("logs");
    let mut files = 0;
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        files += 1;
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(
            !text.contains(&token),
            "token in {}",
            entry.path().display()
        );
    }
    assert_eq!(files, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_is_reported_in_the_servers_words_and_exits_3() {
    let server = DevServer::start(DevServerConfig::for_tests())
        .await
        .unwrap();
    // Well-formed and unexpired, but not signed by this server.
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged = format!(
        "{}.{}.Zm9yZ2VkLXNpZ25hdHVyZQ",
        e.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(r#"{"sub":"admin","user_id":1,"exp":4102444800}"#)
    );
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn(home.path(), &server, &forged, &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    until_line(
        &mut lines,
        "Token rejected by the server: Invalid or expired token",
    )
    .await;
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Get a new token"), "{stderr}");
    assert!(!stderr.contains(&forged));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_connects_but_cannot_manage_devices() {
    let server = DevServer::start(DevServerConfig::for_tests())
        .await
        .unwrap();
    let key = server.create_api_key("admin");
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn(home.path(), &server, &key, &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = until_line(&mut lines, "Online · 0/5 slots").await;
    assert!(seen[1].starts_with("Token: API key wg-"), "{seen:#?}");
    let (code, text) = cli_output(home.path(), &server, &key, &["devices"]).await;
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("API keys (wg-…) can connect the device but cannot manage devices"),
        "{text}"
    );
    sigterm(&child);
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

// ---- pause and stop signals ------------------------------------------------------------------

const PAUSED: &str = "This device is paused by its user; resume it to take new tasks.";
const SHUTTING_DOWN: &str = "This device is shutting down; it takes no new tasks.";
const ONLINE: &str = "Online · 0/5 slots";

/// A test devserver that keeps a device online as long as the real server does (90 s): the
/// CLI heartbeats every 30 s, slower than the test server's TTL.
fn server_config() -> DevServerConfig {
    let mut cfg = DevServerConfig::for_tests();
    cfg.timings.online_ttl = Duration::from_secs(90);
    cfg
}

/// A devserver whose model is the mock API playing `script` (the real Claude CLI talks to it).
async fn server_with_model(script: Script) -> (RunningDevServer, MockAnthropic) {
    let mock = MockAnthropic::start(script).await;
    let mut cfg = server_config();
    cfg.model.base_url = format!("{}/v1", mock.url);
    cfg.model.api_key = "sk-fake".into();
    (DevServer::start(cfg).await.unwrap(), mock)
}

/// `run` with the pinned real Claude CLI and every task folder under `home`
/// (`home/workspace/<task id>`), plus `extra` arguments; returns its stdout lines once it printed
/// `ready`.
async fn run_device(
    home: &Path,
    server: &RunningDevServer,
    token: &str,
    extra: &[&str],
    ready: &str,
) -> (Child, Lines<BufReader<ChildStdout>>, String) {
    let claude = task_harness::claude_path();
    let projects = home.join("workspace").join("projects");
    let mut args = vec![
        "run",
        "--claude-path",
        claude.to_str().unwrap(),
        "--projects-dir",
        projects.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut child = spawn(home, server, token, &args);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    until_line(&mut lines, ready).await;
    let device_id = std::fs::read_to_string(home.join("device_id"))
        .unwrap()
        .trim()
        .to_owned();
    (child, lines, device_id)
}

fn workspace(home: &Path, task_id: i64) -> PathBuf {
    home.join("workspace").join(task_id.to_string())
}

async fn exits_cleanly(mut child: Child, lines: &mut Lines<BufReader<ChildStdout>>) {
    until_line(lines, "Stopped.").await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the device exits")
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop exits 0");
}

/// A task streaming slowly on a running device: `run` (with `extra` arguments) online at a
/// devserver whose model sends `chunks` deltas `interval` apart, and the task `prompt` dispatched
/// to it, which reached the model.
struct SlowTask {
    server: RunningDevServer,
    _mock: MockAnthropic,
    home: tempfile::TempDir,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    device_id: String,
    task_id: i64,
}

impl SlowTask {
    async fn start(chunks: usize, interval: Duration, extra: &[&str], prompt: &str) -> Self {
        let (server, mock) = server_with_model(Script::Slow { chunks, interval }).await;
        let token = server.demo_token().unwrap();
        let home = tempfile::tempdir().unwrap();
        let (child, lines, device_id) =
            run_device(home.path(), &server, &token, extra, ONLINE).await;
        let task = server
            .dispatch_task("admin", Some(&device_id), prompt)
            .await
            .unwrap();
        tokio::time::timeout(WAIT, mock.wait_for_requests(1))
            .await
            .expect("Claude Code reached the model");
        Self {
            server,
            _mock: mock,
            home,
            child,
            lines,
            device_id,
            task_id: task.task_id,
        }
    }

    /// The processes of the task: those running in its folder.
    fn processes(&self) -> Vec<u32> {
        procs::processes_with_cwd(&workspace(self.home.path(), self.task_id))
    }

    /// The server records the task CANCELLED, the device exits 0, and none of `pids` is left.
    async fn ends_cancelled(mut self, pids: &[u32]) {
        let outcome = self
            .server
            .wait_task_terminal(self.task_id, WAIT)
            .await
            .unwrap();
        assert_eq!(outcome.status, TaskStatus::Cancelled, "{outcome:?}");
        exits_cleanly(self.child, &mut self.lines).await;
        procs::await_gone(pids).await;
    }
}

/// `run --paused`, `pause`, `resume` and `status` act on the saved switch; the running device
/// follows each change and refuses a task while paused, online all along; `status` lists it.
#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume_reach_the_running_device_and_status_shows_them() {
    let server = DevServer::start(server_config()).await.unwrap();
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (child, mut lines, device_id) = run_device(
        home.path(),
        &server,
        &token,
        &["--paused"],
        "Paused · 0/5 slots — new tasks are refused until `wegent-executor resume`",
    )
    .await;
    let (code, text) = cli_output(home.path(), &server, &token, &["status"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("New tasks:       paused"), "{text}");

    let task = server
        .dispatch_task("admin", Some(&device_id), "while paused")
        .await
        .unwrap();
    let outcome = server.wait_task_terminal(task.task_id, WAIT).await.unwrap();
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(outcome.error_message.as_deref(), Some(PAUSED));
    until_line(&mut lines, &format!("Task {} failed", task.task_id)).await;

    let (code, text) = cli_output(home.path(), &server, &token, &["resume"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("Resumed"), "{text}");
    until_line(&mut lines, "Online · 0/5 slots").await;
    let (code, text) = cli_output(home.path(), &server, &token, &["pause"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("A running device follows within a second"),
        "{text}"
    );
    until_line(&mut lines, "Paused · 0/5 slots").await;
    assert_eq!(server.register_count(&device_id), 1, "never went offline");

    sigterm(&child);
    exits_cleanly(child, &mut lines).await;
    assert!(
        home.path().join("paused").is_file(),
        "still paused for the next start"
    );
    // The refused task is the device's recent one, after its exit too, with its page.
    let (code, text) = cli_output(home.path(), &server, &token, &["status"]).await;
    assert_eq!(code, Some(0), "{text}");
    let page = format!("/devices/chat?taskId={}", task.task_id);
    assert!(
        text.contains("Recent tasks:\n    Failed · while paused · ") && text.contains(&page),
        "{text}"
    );
}

/// `stop <task>` reaches the running device (another process, no socket): the task ends
/// CANCELLED with the device's reason and its processes are gone, the device stays online; a
/// task that is not there, and a home no device runs with, are each said so, exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn stop_reaches_the_running_device_and_says_when_nothing_was_stopped() {
    let mut task =
        SlowTask::start(600, Duration::from_millis(100), &[], "write for a minute").await;
    let pids = task.processes();
    assert!(!pids.is_empty(), "the task runs in its folder");
    let token = task.server.demo_token().unwrap();
    let id = task.task_id.to_string();
    let (code, text) = cli_output(task.home.path(), &task.server, &token, &["stop", &id]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("Task {id} is being stopped")),
        "{text}"
    );
    let outcome = task
        .server
        .wait_task_terminal(task.task_id, WAIT)
        .await
        .unwrap();
    assert_eq!(outcome.status, TaskStatus::Cancelled, "{outcome:?}");
    assert_eq!(
        outcome.error_message.as_deref(),
        Some(wegent_executor::task::STOPPED_BY_USER)
    );
    procs::await_gone(&pids).await;

    let (code, text) =
        cli_output(task.home.path(), &task.server, &token, &["stop", "424242"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("Task 424242 does not run or wait on this device"),
        "{text}"
    );
    assert_eq!(
        task.server.register_count(&task.device_id),
        1,
        "online all along"
    );
    sigterm(&task.child);
    exits_cleanly(task.child, &mut task.lines).await;

    let (code, text) = cli_output(task.home.path(), &task.server, &token, &["stop", &id]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("No running device took the request"),
        "{text}"
    );
    assert!(
        !task.home.path().join("stop-requests").join(&id).exists(),
        "the request no device took is withdrawn"
    );
}

/// SIGTERM drains: a task sent meanwhile is refused saying the device is shutting down, the
/// running one streams to its end, then the device exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_task_finish_refuses_new_ones_and_exits_0() {
    let chunks = 30;
    let mut task = SlowTask::start(chunks, Duration::from_millis(150), &[], "write slowly").await;

    sigterm(&task.child);
    until_line(&mut task.lines, "Stopping · 1/5 slots — no new tasks").await;
    let refused = task
        .server
        .dispatch_task("admin", Some(&task.device_id), "too late")
        .await
        .unwrap();
    let outcome = task
        .server
        .wait_task_terminal(refused.task_id, WAIT)
        .await
        .unwrap();
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(outcome.error_message.as_deref(), Some(SHUTTING_DOWN));

    let outcome = task
        .server
        .wait_task_terminal(task.task_id, WAIT)
        .await
        .unwrap();
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    let text: String = (0..chunks).map(|i| format!("chunk {i}. ")).collect();
    assert_eq!(outcome.result_text.as_deref(), Some(text.as_str()));
    exits_cleanly(task.child, &mut task.lines).await;
}

/// A second SIGTERM cancels the running task at once: the server records it CANCELLED, the
/// device exits 0, and no process of the task is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_cancels_the_running_task_cleanly() {
    let mut task =
        SlowTask::start(600, Duration::from_millis(100), &[], "write for a minute").await;
    let pids = task.processes();
    assert!(!pids.is_empty(), "Claude Code runs in the task's folder");

    sigterm(&task.child);
    until_line(&mut task.lines, "Stopping · 1/5 slots").await;
    sigterm(&task.child);
    until_line(&mut task.lines, "Cancelling the running tasks").await;
    task.ends_cancelled(&pids).await;
}

/// Past the drain grace (`--drain-grace-secs`), the running task is cancelled and reported.
#[tokio::test(flavor = "multi_thread")]
async fn past_the_drain_grace_the_running_task_is_cancelled() {
    let mut task = SlowTask::start(
        600,
        Duration::from_millis(100),
        &["--drain-grace-secs", "1"],
        "write for a minute",
    )
    .await;
    let pids = task.processes();

    sigterm(&task.child);
    until_line(&mut task.lines, "may finish within 1 s").await;
    task.ends_cancelled(&pids).await;
}

// ---- demo ------------------------------------------------------------------------------------

/// `wegent-executor --demo` on a machine without a display: the demo server starts in the
/// process, the device comes online, and a task sent through the console's API runs with the
/// real Claude CLI against the demo model; a task for the demo's Codex bot runs the real Codex
/// CLI, and the run output names each task's agent.
#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_comes_online_and_runs_a_task_sent_through_the_console_api() {
    let home = tempfile::tempdir().unwrap();
    let claude = task_harness::claude_path();
    let codex = task_harness::codex_path();
    let projects = home.path().join("workspace").join("projects");
    let mut cmd = Command::new(BIN);
    for var in [
        "WEGENT_TOKEN",
        "WEGENT_AUTH_TOKEN",
        "WEGENT_BACKEND_URL",
        "WEGENT_SOCKET_URL",
        "DEVICE_ID",
        "RUST_LOG",
        "DISPLAY",
        "WAYLAND_DISPLAY",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .env("WEGENT_EXECUTOR_HOME", home.path())
        .env("WEGENT_NO_KEYCHAIN", "1")
        .args(["--demo", "--claude-path"])
        .arg(&claude)
        .arg("--codex-path")
        .arg(&codex)
        .arg("--projects-dir")
        .arg(&projects)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = until_line(&mut lines, "Wegent demo console: http://127.0.0.1:").await;
    // "Wegent demo console: <url>  (user <user>, password <password>)"
    let console = seen.last().unwrap().clone();
    let rest = console.strip_prefix("Wegent demo console: ").unwrap();
    let (url, who) = rest.split_once("  (user ").unwrap();
    let (user, password) = who.trim_end_matches(')').split_once(", password ").unwrap();
    let seen = until_line(&mut lines, ONLINE).await;
    assert!(
        seen.iter().any(|l| l.contains(&format!("→ {url}"))),
        "{seen:#?}"
    );

    let token = wegent_executor::rest::RestClient::new(url)
        .unwrap()
        .login(user, password)
        .await
        .expect("the printed credentials sign in");
    let http = reqwest::Client::new();
    // The console's live events (as the web page reads them), subscribed before the dispatch.
    let mut console_events = http
        .get(format!("{url}/api/console/events"))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let body = serde_json::json!({"message": "Hello from the headless demo"});
    let task_id = task_harness::send_chat(&http, url, token.expose(), body).await["taskId"]
        .as_i64()
        .expect("a task id");
    let settled = tokio::time::timeout(WAIT, async {
        let mut text = String::new();
        while let Some(chunk) = console_events.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            let found = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .find_map(|data| {
                    let event: serde_json::Value = serde_json::from_str(data.trim()).ok()?;
                    (event["type"] == "task_settled" && event["task_id"] == task_id)
                        .then_some(event)
                });
            if let Some(event) = found {
                return event;
            }
        }
        panic!("the console's event stream ended: {text}");
    })
    .await
    .expect("the server settles the task");
    assert_eq!(settled["status"], "COMPLETED", "{settled}");
    assert!(
        settled["result"]
            .as_str()
            .unwrap_or_default()
            .contains("Hello from the headless demo"),
        "the demo model's answer quotes the prompt: {settled}"
    );
    let seen = until_line(&mut lines, &format!("Task {task_id} completed")).await;
    let started = format!("Task {task_id} started (Claude Code): Hello from the headless demo");
    assert!(seen.contains(&started), "{seen:#?}");

    // The demo's Codex bot: picked per task, answered by the real Codex CLI.
    let body = serde_json::json!({"message": "Hello Codex", "agent": "Codex"});
    let codex_id = task_harness::send_chat(&http, url, token.expose(), body).await["taskId"]
        .as_i64()
        .expect("a task id");
    let seen = until_line(&mut lines, &format!("Task {codex_id} completed")).await;
    let started = format!("Task {codex_id} started (Codex): Hello Codex");
    assert!(seen.contains(&started), "{seen:#?}");
    let stored: serde_json::Value = http
        .get(format!("{url}/api/tasks/{codex_id}"))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answer = stored["result_text"].as_str().unwrap_or_default();
    assert!(answer.contains("started Codex in `"), "{stored}");

    sigterm(&child);
    exits_cleanly(child, &mut lines).await;
    // The demo password is shown once on the terminal, never in the log.
    for entry in std::fs::read_dir(home.path().join("logs"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(
            !text.contains(password),
            "password in {}",
            entry.path().display()
        );
    }
}
