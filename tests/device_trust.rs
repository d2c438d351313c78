//! Trust, end to end with the real `wegent-executor` binary against the in-process devserver:
//! what the device's children can see of the device, and what outlives it.
//!
//! Real parts: the binary, the devserver, the Claude Code CLI (pinned) running real tools, the
//! pre-execute hook, command RPC. Only the Anthropic API is the devserver's mock (it cannot run
//! here).
#![cfg(target_os = "linux")]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_anthropic::{MockAnthropic, Script};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use wegent_devserver::{
    DevServer, DevServerConfig, RunningDevServer, ServerEvent, TaskStatus, Timings,
};

const BIN: &str = env!("CARGO_BIN_EXE_wegent-executor");
const WAIT: Duration = Duration::from_secs(60);
const USER: &str = "admin";
/// A second device secret in the device's environment: unused (WEGENT_TOKEN wins), and never a
/// child's business either.
const AUTH_CANARY: &str = "wg-canary-auth-token-5f2e9c";

/// Every server event from the moment of the call.
struct Recorder(Arc<Mutex<Vec<ServerEvent>>>);

impl Recorder {
    fn start(server: &RunningDevServer) -> Self {
        let mut stream = server.events();
        let events: Arc<Mutex<Vec<ServerEvent>>> = Arc::default();
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(e) = stream.next().await {
                sink.lock().unwrap().push(e);
            }
        });
        Self(events)
    }

    /// Every Responses event of `task_id`, serialized: what the server stores and shows.
    fn responses_text(&self, task_id: i64) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Responses { name, payload, .. } if payload["task_id"] == task_id => {
                    Some(format!("{name} {payload}\n"))
                }
                _ => None,
            })
            .collect()
    }
}

async fn devserver(mock: &MockAnthropic) -> RunningDevServer {
    let mut cfg = DevServerConfig::for_tests();
    cfg.model.base_url = format!("{}/v1", mock.url);
    cfg.model.api_key = "sk-fake".into();
    // The binary heartbeats every 30 s, as against the real backend: the real online TTL.
    cfg.timings.online_ttl = Timings::wegent().online_ttl;
    cfg.timings.monitor_interval = Timings::wegent().monitor_interval;
    DevServer::start(cfg).await.expect("the devserver starts")
}

/// `wegent-executor` as a user starts it, with its token in `WEGENT_TOKEN`.
fn device(home: &Path, server: &RunningDevServer, device_id: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RUST_LOG")
        .env("WEGENT_EXECUTOR_HOME", home)
        .env("WEGENT_NO_KEYCHAIN", "1")
        .env("WEGENT_BACKEND_URL", server.url())
        .env("WEGENT_AUTH_TOKEN", AUTH_CANARY)
        .env("DEVICE_ID", device_id)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn online(server: &RunningDevServer, device_id: &str) {
    let mut events = server.events();
    events
        .heartbeat_of(device_id, WAIT)
        .await
        .expect("the device comes online");
}

fn hook_script(dir: &Path, env_file: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("hook.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nenv > '{}'\n", env_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn assert_clean(what: &str, text: &str, token: &str) {
    for secret in [token, AUTH_CANARY] {
        assert!(
            !text.contains(secret),
            "{what} carries a device secret:\n{text}"
        );
    }
    assert!(
        !text.contains("WEGENT_BACKEND_URL") && !text.contains("DEVICE_ID="),
        "{what} carries the device's configuration:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_child_sees_the_devices_token_and_no_task_output_carries_it() {
    let scratch = tempfile::tempdir().unwrap();
    let claude_env = scratch.path().join("claude-tool.env");
    let hook_env = scratch.path().join("hook.env");
    // The agent's tool prints the environment into the task's output (as any `env` would), and
    // keeps a full copy for the test.
    let mock = MockAnthropic::start(Script::RunCommand {
        command: format!(
            "env > '{}'; env | grep -E 'WEGENT|DEVICE|TOKEN' | sort",
            claude_env.display()
        ),
        then: "Printed the environment.".into(),
    })
    .await;
    let server = devserver(&mock).await;
    let token = server.demo_token().unwrap();
    let log = Recorder::start(&server);
    let home = tempfile::tempdir().unwrap();
    let device_id = "trust-env-device";
    let hook = hook_script(scratch.path(), &hook_env);
    let claude = task_harness::claude_path();
    let mut cmd = device(
        home.path(),
        &server,
        device_id,
        &[
            "--claude-path",
            claude.to_str().unwrap(),
            "--pre-execute-hook",
            hook.to_str().unwrap(),
        ],
    );
    cmd.env("WEGENT_TOKEN", &token);
    let _device: Child = cmd.spawn().unwrap();
    online(&server, device_id).await;

    let task = server
        .dispatch_task(USER, Some(device_id), "print the environment")
        .await
        .expect("dispatch");
    let outcome = server
        .wait_task_terminal(task.task_id, WAIT)
        .await
        .expect("the task ends");
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");

    let tool_env = std::fs::read_to_string(&claude_env).expect("the tool ran");
    assert!(tool_env.contains("PATH="), "{tool_env}");
    assert_clean("the environment of Claude's tool", &tool_env, &token);
    let hook_seen = std::fs::read_to_string(&hook_env).expect("the hook ran");
    assert!(hook_seen.contains("WEGENT_TASK_ID="), "{hook_seen}");
    assert_clean("the hook's environment", &hook_seen, &token);
    // The tool's output reached the server (so a token in it would have too) ...
    let sent = log.responses_text(task.task_id);
    assert!(sent.contains("WEGENT_TASK_ID="), "{sent}");
    // ... without the device's secrets.
    assert_clean("the task output sent to the server", &sent, &token);

    let ack = server
        .call_device(
            device_id,
            "device:execute_command",
            &json!({"argv": ["env"], "timeout_seconds": 10}),
            WAIT,
        )
        .await
        .expect("the command is answered");
    let stdout = ack["stdout"].as_str().unwrap_or_default();
    assert!(stdout.contains("PATH="), "{ack}");
    assert_clean("a command RPC's environment", stdout, &token);

    // A payload cannot plant a loader or shell hook in a command.
    let ack: Value = server
        .call_device(
            device_id,
            "device:execute_command",
            &json!({"argv": ["true"], "env": {"LD_PRELOAD": "/tmp/evil.so"}, "timeout_seconds": 10}),
            WAIT,
        )
        .await
        .expect("the refusal is answered");
    assert_eq!(ack["success"], false, "{ack}");
    assert!(
        ack["error"]
            .as_str()
            .unwrap_or_default()
            .contains("LD_PRELOAD"),
        "{ack}"
    );
    server.shutdown().await;
}

/// 5 MiB of output (quotes, which JSON doubles) through the devserver: the caller gets an ack
/// under the packet limit that says the output was cut, not a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_mib_command_output_is_answered_cut_within_the_packet_limit() {
    let mock = MockAnthropic::start(Script::Text(String::new())).await;
    let server = devserver(&mock).await;
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();
    let device_id = "trust-ack-device";
    let mut cmd = device(
        home.path(),
        &server,
        device_id,
        &["--claude-path", "/nonexistent/claude"],
    );
    cmd.env("WEGENT_TOKEN", &token);
    let _device: Child = cmd.spawn().unwrap();
    online(&server, device_id).await;

    let five_mib = 5 * 1024 * 1024;
    let ack = server
        .call_device(
            device_id,
            "device:execute_command",
            &json!({
                "argv": ["sh", "-c", format!("head -c {five_mib} /dev/zero | tr '\\0' '\"'; echo done >&2")],
                "max_output_bytes": five_mib, "timeout_seconds": 60,
            }),
            Duration::from_secs(30),
        )
        .await
        .expect("the device answers instead of letting the call time out");
    assert_eq!(ack["stdout_truncated"], true);
    assert_eq!(ack["stderr"], "done\n");
    assert_eq!(ack["exit_code"], 0);
    let size = serde_json::to_string(&ack).unwrap().len();
    assert!(size < 1_000_000, "{size} bytes");
    let stdout = ack["stdout"].as_str().unwrap();
    assert!(
        stdout.len() > 400_000 && stdout.chars().all(|c| c == '"'),
        "as much as fits: {} bytes",
        stdout.len()
    );
    server.shutdown().await;
}

/// Pids whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .filter(|pid| !procs::is_zombie(*pid))
        .collect()
}

/// Every process below `root` (through `/proc` parent links).
fn descendants(root: u32) -> Vec<u32> {
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, _) in all.iter().filter(|(_, ppid)| *ppid == p) {
            out.push(pid);
            frontier.push(pid);
        }
    }
    out
}

/// The device SIGKILLed mid-task (a crash, the OOM killer): its direct child, Claude, dies with
/// it at once (`PR_SET_PDEATHSIG`), and the tool Claude started in a session of its own is
/// ended by the device's sentinel, without waiting for a restart: nothing of the device's tree
/// (Claude, the tool, the sentinel itself) is left a few seconds later. The next start on the
/// same home then finds nothing to end and comes online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_sigkilled_device_started_outlives_it() {
    let tool = ["sleep", "3017"];
    let mock = MockAnthropic::start(Script::RunCommand {
        // Claude Code refuses a bare long `sleep`; inside a longer line it runs.
        command: format!("trap '' HUP; {}", tool.join(" ")),
        then: "slept".into(),
    })
    .await;
    let server = devserver(&mock).await;
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();
    let device_id = "trust-orphans-device";
    let claude = task_harness::claude_path();
    let start = || {
        let mut cmd = device(
            home.path(),
            &server,
            device_id,
            &["--claude-path", claude.to_str().unwrap()],
        );
        cmd.env("WEGENT_TOKEN", &token);
        cmd.spawn().unwrap()
    };
    let mut first = start();
    online(&server, device_id).await;
    server
        .dispatch_task(USER, Some(device_id), "run a long tool")
        .await
        .expect("dispatch");
    let tool_pids = tokio::time::timeout(WAIT, async {
        loop {
            let pids = pids_running(&tool);
            if !pids.is_empty() {
                return pids;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the tool never started: {:?}", server.task(1)));
    let device_pid = first.id().unwrap();
    let tree = descendants(device_pid);
    let children: Vec<u32> = tree
        .iter()
        .copied()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(')').is_some_and(|(_, r)| {
                    r.split_whitespace().nth(1) == Some(&device_pid.to_string())
                })
            })
        })
        .collect();
    assert!(!children.is_empty(), "Claude runs as the device's child");
    assert!(
        tool_pids.iter().all(|p| tree.contains(p)),
        "the tool belongs to the device's tree"
    );

    first.start_kill().unwrap();
    let killed_at = std::time::Instant::now();
    first.wait().await.unwrap();
    // Everything the device started goes with it, without a restart.
    let gone = tokio::time::timeout(Duration::from_secs(3), async {
        while !tree.iter().all(|pid| procs::is_zombie(*pid)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let left: Vec<u32> = tree
        .iter()
        .copied()
        .filter(|pid| !procs::is_zombie(*pid))
        .collect();
    assert!(
        gone.is_ok(),
        "processes of the SIGKILLed device's tree still run ({} of {:?} with the tool {tool_pids:?}): {left:?}",
        left.len(),
        tree
    );
    eprintln!(
        "the device's tree ({} processes) was gone {:?} after its SIGKILL",
        tree.len(),
        killed_at.elapsed()
    );

    let _second = start();
    online(&server, device_id).await;
    assert!(pids_running(&tool).is_empty());
    server.shutdown().await;
}

/// `wegent-executor --token …` as a user without privileges would start it: once online, its
/// command line no longer holds the token, and its `/proc` files (environment, memory) belong to
/// root, not to the user (non-dumpable), so other processes of the user cannot read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_leaves_the_command_line_and_the_process_is_not_dumpable() {
    use std::os::unix::fs::MetadataExt;

    let mock = MockAnthropic::start(Script::Text(String::new())).await;
    let server = devserver(&mock).await;
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();
    let device_id = "trust-argv-device";
    // As root, run the device as `nobody`: a root process's /proc files belong to root anyway,
    // so only a non-root device shows whether it is dumpable.
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let user = if as_root {
        65534
    } else {
        unsafe { libc::geteuid() }
    };
    if as_root {
        std::os::unix::fs::chown(home.path(), Some(user), Some(user)).unwrap();
    }
    let mut cmd = device(
        home.path(),
        &server,
        device_id,
        &["--token", &token, "--claude-path", "/nonexistent/claude"],
    );
    cmd.env_remove("WEGENT_TOKEN").env("HOME", home.path());
    if as_root {
        cmd.uid(user).gid(user);
    }
    let child = cmd.spawn().unwrap();
    online(&server, device_id).await;

    let pid = child.id().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("--claude-path"),
        "the same process: {cmdline}"
    );
    assert!(
        !cmdline.contains(&token),
        "the token is on the command line: {cmdline}"
    );
    assert!(!cmdline.contains("--token"), "{cmdline}");

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(
            |l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&user.to_string())
        ),
        "the device runs as {user}: {status}"
    );
    let environ = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(
        environ.uid(),
        0,
        "a dumpable process's /proc files belong to its user ({user})"
    );
    server.shutdown().await;
}
