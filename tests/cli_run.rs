//! `wegent-executor run` end to end: the real binary against the real devserver (a
//! Wegent-compatible Socket.IO + REST server, in-process on loopback).
#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer};

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
