//! At the most verbose log level, a task's secrets still never reach a log: the real
//! `wegent-executor run` binary at `RUST_LOG=trace` runs a real task (the real Claude CLI against
//! the devserver's demo model) whose model API key is a canary, and neither the log files nor
//! stderr contain it. Transport libraries log whole WebSocket frames at `trace`, before the task's
//! secrets are known to the redactor.
#![cfg(unix)]

#[path = "support/task_harness.rs"]
mod task_harness;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use wegent_devserver::{DevServer, DevServerConfig, ModelSettings, TaskStatus};

const BIN: &str = env!("CARGO_BIN_EXE_wegent-executor");
const WAIT: Duration = Duration::from_secs(60);
const CANARY_KEY: &str = "sk-ant-CANARY-trace-7f3a9c0e5b1d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_run_at_trace_level_logs_no_secret() {
    let mut cfg = DevServerConfig::for_tests();
    cfg.model = ModelSettings::built_in();
    cfg.model.api_key = CANARY_KEY.into();
    // Logging every trace line slows a loaded 2-core machine down: keep healthy sockets up.
    cfg.timings.ping_interval = Duration::from_secs(5);
    cfg.timings.ping_timeout = Duration::from_secs(10);
    cfg.timings.online_ttl = Duration::from_secs(10);
    let server = DevServer::start(cfg).await.unwrap();
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();

    let mut cmd = Command::new(BIN);
    for var in ["WEGENT_AUTH_TOKEN", "WEGENT_SOCKET_URL", "DEVICE_ID"] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .env("RUST_LOG", "trace")
        .env("WEGENT_EXECUTOR_HOME", home.path())
        .env("WEGENT_NO_KEYCHAIN", "1")
        .env("WEGENT_BACKEND_URL", server.url())
        .env("WEGENT_TOKEN", &token)
        .env("DEVICE_NAME", "Trace box")
        .args(["--mode", "local", "--claude-path"])
        .arg(task_harness::claude_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain stderr all along: at trace it outgrows a pipe buffer.
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        String::from_utf8_lossy(&buf).into_owned()
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Online") {
                return;
            }
        }
        panic!("the device exited before it came online");
    })
    .await
    .expect("the device comes online");

    let device_id = std::fs::read_to_string(home.path().join("device_id"))
        .unwrap()
        .trim()
        .to_owned();
    let task = server
        .dispatch_task("admin", Some(&device_id), "say hello")
        .await
        .unwrap();
    let outcome = server.wait_task_terminal(task.task_id, WAIT).await.unwrap();

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();

    let stderr_text = stderr_text.await.unwrap();
    assert!(
        stderr_text.contains("DEBUG wegent_executor"),
        "the device really logged verbosely"
    );
    assert!(
        !stderr_text.contains(CANARY_KEY),
        "the API key is on stderr"
    );
    let mut logged = 0;
    for entry in std::fs::read_dir(home.path().join("logs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        logged += text.len();
        let hits = text.lines().filter(|l| l.contains(CANARY_KEY)).count();
        assert_eq!(hits, 0, "the API key is in {}", path.display());
    }
    assert!(logged > 0, "the log files are empty");
    // The payload really went through the device (and its key to the model).
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
}
