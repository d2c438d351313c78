//! The devserver's project features against the real device (protocol.md §16.2, §16.4, §16.8):
//! "Clone from Git" runs the backend's command keys on the core through command RPC, the clone
//! lands where the device's own task path for the project points, a task in the project runs the
//! real Claude Code CLI in that checkout, a "Reply" resumes it, and the worktree keys work too.
//!
//! Only the model is scripted: the devserver's demo model, whose answer names the prompt and the
//! directory Claude Code ran in. The CLI, git, the command RPC children and the devserver are real.
#![cfg(unix)]

#[path = "support/git_server.rs"]
mod git_server;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use wegent_devserver::{
    DevServer, DevServerConfig, ModelSettings, RunningDevServer, ServerEvent, TaskStatus,
};
use wegent_executor::config::TaskConfig;
use wegent_executor::status::Command;

const WAIT: Duration = Duration::from_secs(90);
const DEVICE_ID: &str = "devserver-projects-e2e";

async fn rest(server: &RunningDevServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = format!("{}{path}", server.url());
    let req = match method {
        "GET" => http.get(url),
        _ => http.post(url).json(&body),
    };
    let resp = req
        .bearer_auth(server.demo_token().unwrap())
        .timeout(WAIT)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A message to the device (a new task in `project`, or a follow-up of `task`); its answer.
async fn ask(server: &RunningDevServer, body: Value) -> (i64, String) {
    let (status, sent) = rest(server, "POST", "/api/device-chat/tasks", body).await;
    assert_eq!(status, 200, "{sent}");
    let task_id = sent["taskId"].as_i64().unwrap();
    let mut events = server.events();
    // The dispatch answer may come after a fast task already settled: check the subtask first.
    let subtask = sent["assistantSubtaskId"].as_i64().unwrap();
    let settled = |s: &RunningDevServer| {
        let t = s.task(task_id)?;
        let sub = t.json["subtasks"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == subtask)?
            .clone();
        t.status.is_terminal().then_some((t, sub))
    };
    if settled(server).is_none() {
        events
            .wait_for("the answer", WAIT, |e| match e {
                ServerEvent::TaskSettled { subtask_id, .. } if *subtask_id == subtask => Some(()),
                _ => None,
            })
            .await
            .unwrap();
    }
    let (task, _) = settled(server).unwrap();
    assert_eq!(
        task.status,
        TaskStatus::Completed,
        "{:?}",
        task.error_message
    );
    (task_id, task.result_text.unwrap_or_default())
}

async fn command(server: &RunningDevServer, key: &str, cwd: Option<&Path>, args: &[&str]) -> Value {
    let (status, ack) = rest(
        server,
        "POST",
        &format!("/api/devices/{DEVICE_ID}/commands"),
        json!({"command_key": key, "path": cwd, "args": args, "timeout_seconds": 60}),
    )
    .await;
    assert_eq!(status, 200, "{key}: {ack}");
    ack
}

#[tokio::test]
async fn clone_from_git_then_task_and_reply_run_in_the_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let bare = git_server::bare_repo(tmp.path(), "demo", 0);
    let url = format!("file://{}", bare.display());
    // P, as a user overrides it; W = dirname(P) because P ends in `projects`.
    let projects_dir = tmp.path().join("wecode/workspace/projects");
    let workspace_root = projects_dir.parent().unwrap().to_owned();

    let mut cfg = DevServerConfig::for_tests();
    cfg.model = ModelSettings::built_in();
    cfg.timings.online_ttl = Duration::from_secs(30);
    let server = DevServer::start(cfg).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = task_harness::device_config(
        server.url(),
        home.path(),
        DEVICE_ID,
        "Devserver projects e2e",
        TaskConfig {
            claude_path: Some(task_harness::claude_path()),
            projects_dir: Some(projects_dir.clone()),
            task_timeout: Duration::from_secs(120),
            ..TaskConfig::default()
        },
    );
    let device = task_harness::start_online(&server, config).await;

    // The device answers `project_workspace_root` with its own P.
    let root = command(&server, "project_workspace_root", None, &[]).await;
    assert_eq!(
        root["stdout"],
        json!(projects_dir.display().to_string()),
        "{root}"
    );

    // Clone from Git: the backend's commands, run by the device, clone into P/demo.
    let (status, created) = rest(
        &server,
        "POST",
        "/api/projects/git-workspace",
        json!({"device_id": DEVICE_ID, "git": {"url": url, "branch": "main"}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["checkout_path"], "demo");
    let checkout = projects_dir.join("demo");
    assert!(checkout.join("only-in-repo.txt").is_file());

    // A task in the project: task:execute says `projects/demo`, the device resolves it under W,
    // which is the checkout just made (no second clone), and Claude Code runs there.
    let project_id = created["project"]["id"].as_i64().unwrap();
    let (task_id, first) = ask(
        &server,
        json!({"teamId": 0, "projectId": project_id, "message": "what is here?"}),
    )
    .await;
    assert_eq!(workspace_root.join("projects/demo"), checkout);
    let ran_in = format!("Claude Code in `{}`", checkout.display());
    assert!(first.contains(&ran_in), "{first}");
    assert!(first.contains("You asked: \"what is here?\""), "{first}");

    // Reply: the same task, the same checkout, the session resumed.
    let (again, second) = ask(
        &server,
        json!({"teamId": 0, "taskId": task_id, "message": "and now?"}),
    )
    .await;
    assert_eq!(again, task_id);
    assert!(second.contains(&ran_in), "{second}");
    assert!(
        second.contains("resumed the task's session, which already holds 1 earlier answer"),
        "{second}"
    );

    // "New worktree" keys on the same device: the checkout is a work tree, and a worktree of it
    // is added under W/worktrees/<task>/demo.
    let inside = command(
        &server,
        "git_is_worktree",
        None,
        &[checkout.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        inside["stdout"].as_str().map(str::trim),
        Some("true"),
        "{inside}"
    );
    let target = workspace_root.join(format!("worktrees/{task_id}/demo"));
    let added = command(
        &server,
        "git_worktree_add",
        None,
        &[checkout.to_str().unwrap(), target.to_str().unwrap(), "main"],
    )
    .await;
    assert_eq!(added["exit_code"], 0, "{added}");
    assert!(target.join("only-in-repo.txt").is_file());
    assert!(target.join(".git").is_file(), "a worktree has a .git file");

    let _ = device.commands.send(Command::Shutdown).await;
    device.stopped().await;
    server.shutdown().await;
}
