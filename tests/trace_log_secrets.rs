//! At the most verbose log level, a task's secrets still never reach a log: the real
//! `wegent-executor run` binary at `RUST_LOG=trace` runs a real task (the real Claude CLI against
//! the devserver's demo model) whose model API key is a canary, and neither the log files nor
//! stderr contain it. Transport libraries log whole WebSocket frames at `trace`, before the task's
//! secrets are known to the redactor.
#![cfg(unix)]

#[path = "support/task_harness.rs"]
mod task_harness;
#[path = "support/traced_device.rs"]
mod traced_device;

use std::time::Duration;

use traced_device::{assert_no_file_holds, TracedDevice};
use wegent_devserver::{DevServer, DevServerConfig, ModelSettings, TaskStatus};

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
    let home = tempfile::tempdir().unwrap();

    let device = TracedDevice::start(
        &server,
        home.path(),
        "Trace box",
        "--claude-path",
        &task_harness::claude_path(),
    )
    .await;
    let task = server
        .dispatch_task("admin", Some(&device.device_id), "say hello")
        .await
        .unwrap();
    let outcome = server.wait_task_terminal(task.task_id, WAIT).await.unwrap();

    let stderr_text = device.stop().await;
    assert!(
        stderr_text.contains("DEBUG wegent_executor"),
        "the device really logged verbosely"
    );
    assert!(
        !stderr_text.contains(CANARY_KEY),
        "the API key is on stderr"
    );
    let logged = assert_no_file_holds(&home.path().join("logs"), CANARY_KEY);
    assert!(logged.bytes > 0, "the log files are empty");
    // The payload really went through the device (and its key to the model).
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
}
