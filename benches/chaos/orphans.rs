//! The real `wegent-executor` binary as a child process (for what needs a process: its logs, its
//! children's argv and environment, a SIGKILL), and (e): SIGKILL of the device during a task →
//! how many processes of its tree are alive 1 s later, and after the device starts again.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Child;
use wegent_devserver::model_mock::{MockAnthropic, Script};
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer, ServerEvent, Timings};

use crate::rig::{Recorder, USER, WAIT};
use crate::support;

pub struct Executor {
    pub server: RunningDevServer,
    pub log: Recorder,
    pub child: Child,
    pub pid: u32,
    pub home: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub token: String,
    pub device_id: String,
    /// The mock model's URL as a payload carries it (with `/v1`).
    pub model_url: String,
    _mock: MockAnthropic,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Executor {
    /// The binary at `RUST_LOG=trace`, online, with the pinned CLI, its stdout/stderr in files.
    pub async fn start() -> Result<Self, String> {
        let mock = MockAnthropic::start(Script::Slow {
            chunks: 60,
            interval: Duration::from_millis(50),
        })
        .await;
        let model_url = format!("{}/v1", mock.url);
        let mut cfg = DevServerConfig::for_tests();
        cfg.model.base_url = model_url.clone();
        cfg.model.api_key = "sk-chaos-binary".into();
        // The real timings: the binary heartbeats every 30 s (the fast test timings would take
        // it for lost after 1.5 s and fail its task).
        cfg.timings = Timings::wegent();
        let server = DevServer::start(cfg)
            .await
            .map_err(|e| format!("devserver: {e}"))?;
        let log = Recorder::start(&server);
        let token = server.demo_token().ok_or("no demo user")?;
        let home_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let capture_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let home = home_dir.path().to_owned();
        support::write_claude_config(&home);
        let device_id = "device-chaos-binary".to_owned();
        let (stdout, stderr, child) = spawn(
            &home,
            capture_dir.path(),
            &server.url(),
            &token,
            &device_id,
            "a",
        );
        let pid = child.id().ok_or("no pid")?;
        let exe = Self {
            server,
            log,
            child,
            pid,
            home,
            stdout,
            stderr,
            token,
            device_id,
            model_url,
            _mock: mock,
            _dirs: (home_dir, capture_dir),
        };
        exe.online_from(0).await?;
        Ok(exe)
    }

    async fn online_from(&self, mut from: usize) -> Result<(), String> {
        let id = self.device_id.clone();
        self.log
            .next_from("the binary online", &mut from, WAIT, |e| match e {
                ServerEvent::Heartbeat {
                    device_id: Some(d),
                    ack,
                    ..
                } if *d == id && ack["success"] == true => Some(()),
                _ => None,
            })
            .await
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.server.shutdown().await;
    }
}

fn spawn(
    home: &std::path::Path,
    capture: &std::path::Path,
    url: &str,
    token: &str,
    device_id: &str,
    run: &str,
) -> (PathBuf, PathBuf, Child) {
    let (out, err, o, e) = crate::secrets::capture_files(&capture.join(run));
    let mut cmd = support::executor_command(home, url, token, device_id);
    cmd.env("RUST_LOG", "trace").stdout(o).stderr(e);
    (
        out,
        err,
        cmd.spawn().expect("the wegent-executor binary starts"),
    )
}

/// SIGKILL the device while a task streams; count its tree 1 s later, then start the device
/// again on the same home and count again (a device may end what a crashed run left).
pub async fn sigkill(exe: &mut Executor) -> Result<Value, String> {
    let mark = exe.log.len();
    let task = exe
        .server
        .dispatch_task(USER, Some(&exe.device_id), "write slowly")
        .await
        .map_err(|e| format!("dispatch: {e:?}"))?;
    let mut cursor = mark;
    exe.log
        .next_from("a delta before the kill", &mut cursor, WAIT, |e| match e {
            ServerEvent::Responses { name, payload, .. }
                if name == "response.output_text.delta" && payload["task_id"] == task.task_id =>
            {
                Some(())
            }
            _ => None,
        })
        .await?;
    let own_group = support::pgid_of(std::process::id());
    let pids = support::descendants(exe.pid);
    let groups: Vec<i32> = pids
        .iter()
        .filter_map(|p| support::pgid_of(*p))
        .filter(|g| Some(*g) != own_group)
        .collect();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &exe.pid.to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !killed.success() {
        return Err("kill -KILL failed".into());
    }
    let _ = exe.child.wait().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alive_after_1s = support::alive(&pids, &groups);

    // Start again on the same home.
    let mark = exe.log.len();
    let capture = exe
        .stdout
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_owned();
    let (stdout, stderr, child) = spawn(
        &exe.home,
        &capture,
        &exe.server.url(),
        &exe.token,
        &exe.device_id,
        "b",
    );
    exe.pid = child.id().ok_or("no pid")?;
    exe.child = child;
    exe.stdout = stdout;
    exe.stderr = stderr;
    exe.online_from(mark).await?;
    let alive_after_restart = support::alive(&pids, &groups);

    // The bench started these processes: end what is left so nothing outlives the run.
    for pid in support::alive(&pids, &groups) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    Ok(json!({
        "tree_before_kill": pids.len(),
        "process_groups": groups.len(),
        "alive_1s_after_sigkill": alive_after_1s.len(),
        "alive_after_the_device_started_again": alive_after_restart.len(),
    }))
}
