//! Workspace projects (protocol.md §16.1, §16.4, §16.5): creating projects over REST, dispatching
//! into them and following up, compared key by key with the payloads captured from the real
//! backend (`tests/fixtures/task-execute/`), and "Clone from Git" through command RPC.
mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::*;
use wegent_devserver::wire_client::WireClient;
use wegent_devserver::RunningDevServer;

/// The keys a project sets in `task:execute` (§16.1) plus the turn markers of §16.5.
const WORKSPACE_KEYS: &[&str] = &[
    "project_id",
    "project_workspace_path",
    "workspace_source",
    "execution_target_type",
    "standalone_chat_workspace",
    "git_url",
    "branch_name",
    "git_domain",
    "git_repo",
    "git_repo_id",
    "skip_git_clone",
    "workspace",
    "new_session",
    "executor_name",
    "executor_namespace",
];

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/task-execute")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The fixture with the capture's own names (device, folder, repository, ids) replaced by this
/// test's, so what is left to compare is how the backend builds the fields.
fn fixture_for(name: &str, replace: &[(&str, &str)], project_id: i64) -> Value {
    let mut text = fixture(name).to_string();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["project_id"] = json!(project_id);
    v["workspace"]["project"]["project_id"] = json!(project_id);
    v
}

/// Every workspace key, with the same value, type and nesting as in the real backend's payload.
fn assert_workspace_fields(ours: &Value, real: &Value, skip: &[&str]) {
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(ours), keys(real), "the payload's top-level keys");
    for key in WORKSPACE_KEYS.iter().filter(|k| !skip.contains(k)) {
        assert_eq!(ours[*key], real[*key], "`{key}` differs from the capture");
    }
}

async fn rest(server: &RunningDevServer, method: &str, path: &str, body: Value) -> (u16, Value) {
    let url = format!("{}{path}", server.url());
    let req = match method {
        "GET" => http().get(url),
        _ => http().post(url).json(&body),
    };
    let resp = req
        .bearer_auth(server.demo_token().unwrap())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn create_project(server: &RunningDevServer, config: Value) -> i64 {
    let (status, body) = rest(
        server,
        "POST",
        "/api/projects",
        json!({"name": "p", "description": "", "config": config}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// `task:execute` of a device-chat message; returns the payload.
async fn send(server: &RunningDevServer, dev: &mut WireClient, body: Value) -> Value {
    let (status, answer) = rest(server, "POST", "/api/device-chat/tasks", body).await;
    assert_eq!(status, 200, "{answer}");
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(exec["task_id"], answer["taskId"]);
    assert_eq!(exec["subtask_id"], answer["assistantSubtaskId"]);
    exec
}

fn local_config(device: &str, folder: &str) -> Value {
    json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": device},
        "workspace": {"source": "local_path", "localPath": folder}})
}

#[tokio::test]
async fn local_path_project_and_follow_up_match_the_captured_payloads() {
    let server = server().await;
    let mut dev = registered_device(&server, "ws-dev").await;
    let id = create_project(&server, local_config("ws-dev", "/home/me/code/app")).await;
    let replace = [
        ("ws-research-dev-1", "ws-dev"),
        ("/home/u/code/myproj", "/home/me/code/app"),
    ];

    // No deviceId: the project's device runs it.
    let first = send(
        &server,
        &mut dev,
        json!({"teamId": 0, "projectId": id, "message": "hello"}),
    )
    .await;
    // The devserver starts a task with a fresh session (DIFFERENCES.md); the capture says false.
    assert_workspace_fields(
        &first,
        &fixture_for("localpath.json", &replace, id),
        &["new_session"],
    );
    assert_eq!(first["new_session"], true);

    // A follow-up: same task and workspace, next subtask, executor name filled, no new session.
    // The body's deviceId is ignored: the task's own device gets it.
    let second = send(
        &server,
        &mut dev,
        json!({"teamId": 0, "taskId": first["task_id"], "deviceId": "elsewhere", "message": "more"}),
    )
    .await;
    assert_workspace_fields(&second, &fixture_for("followup.json", &replace, id), &[]);
    assert_eq!(second["task_id"], first["task_id"]);
    assert_eq!(second["prompt"], "more");
    assert_eq!(
        (
            second["subtask_id"].as_i64().unwrap(),
            second["message_id"].as_i64()
        ),
        (first["subtask_id"].as_i64().unwrap() + 2, Some(4))
    );
    assert_eq!(second["task_title"], first["task_title"]);
    assert_ne!(second["auth_token"], first["auth_token"]);

    let (status, project) = rest(&server, "GET", &format!("/api/projects/{id}"), json!(null)).await;
    assert_eq!((status, project["task_count"].as_i64()), (200, Some(1)));
    server.shutdown().await;
}

#[tokio::test]
async fn git_project_matches_the_captured_payload() {
    let server = server().await;
    let mut dev = registered_device(&server, "ws-dev").await;
    let url = "https://git.example.com/team/my-app.git";
    let id = create_project(
        &server,
        json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "ws-dev"},
            "workspace": {"source": "git"}, "git": {"url": url, "branch": "main"}}),
    )
    .await;
    let exec = send(
        &server,
        &mut dev,
        json!({"teamId": 0, "projectId": id, "message": "hi"}),
    )
    .await;
    let replace = [
        ("ws-research-dev-1", "ws-dev"),
        ("git://127.0.0.1:9418/demo.git", url),
        ("projects/demo", "projects/my-app"),
        ("\"checkout_path\":\"demo\"", "\"checkout_path\":\"my-app\""),
    ];
    assert_workspace_fields(
        &exec,
        &fixture_for("git.json", &replace, id),
        &["new_session"],
    );
    assert_eq!(exec["project_workspace_path"], "projects/my-app");
    server.shutdown().await;
}

#[tokio::test]
async fn project_without_workspace_config_uses_project_id_folder() {
    let server = server().await;
    let mut dev = registered_device(&server, "d").await;
    let id = create_project(
        &server,
        json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"}}),
    )
    .await;
    let exec = send(
        &server,
        &mut dev,
        json!({"teamId": 0, "projectId": id, "message": "hi"}),
    )
    .await;
    let path = format!("project{id}");
    assert_eq!(
        (
            &exec["workspace_source"],
            &exec["project_workspace_path"],
            &exec["workspace"]["project"]["local_path"]
        ),
        (&json!("local_path"), &json!(path), &json!(path))
    );
    // A task without a project keeps the sample's empty workspace.
    let plain = send(&server, &mut dev, json!({"teamId": 0, "message": "hi"})).await;
    assert_eq!(
        (&plain["project_id"], &plain["project_workspace_path"]),
        (&json!(0), &Value::Null)
    );
    assert!(plain["workspace"].get("project").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn bad_projects_and_targets_are_refused_with_the_backends_reasons() {
    let server = server().await;
    let bad = [
        (
            json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"},
                "workspace": {"source": "local_path"}}),
            "workspace.localPath is required for local_path source",
        ),
        (
            json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"},
                "workspace": {"source": "local_path", "localPath": "/a"}, "git": {"url": "u"}}),
            "git config must be empty for local_path source",
        ),
        (
            json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"},
                "workspace": {"source": "git"}}),
            "git config is required when workspace.source is git",
        ),
        (
            json!({"mode": "workspace", "execution": {"targetType": "local"}}),
            "deviceId is required when targetType is local",
        ),
        (
            json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"},
                "workspace": {"source": "local_path", "local_path": "/a"}}),
            "unknown field `local_path`",
        ),
    ];
    for (config, reason) in bad {
        let (status, body) = rest(
            &server,
            "POST",
            "/api/projects",
            json!({"name": "p", "config": config}),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{detail} should say {reason}");
    }
    let (status, body) = rest(
        &server,
        "POST",
        "/api/device-chat/tasks",
        json!({"teamId": 0, "projectId": 99, "message": "hi"}),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("Project 99 not found"))
    );
    let (status, body) = rest(
        &server,
        "POST",
        "/api/device-chat/tasks",
        json!({"teamId": 0, "taskId": 99, "message": "hi"}),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("Task 99 not found"))
    );
    // A project bound to a device that never registered.
    let id = create_project(&server, local_config("ghost", "/tmp")).await;
    let (status, body) = rest(
        &server,
        "POST",
        "/api/device-chat/tasks",
        json!({"teamId": 0, "projectId": id, "message": "hi"}),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("Device 'ghost' not found"))
    );
    let (_, list) = rest(&server, "GET", "/api/projects", json!(null)).await;
    assert_eq!(list["total"], 1);
    server.shutdown().await;
}

// ---- "Clone from Git" through command RPC ----------------------------------------------------

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository with one commit on `main` holding `NOTES.md`; returns its `file://` URL.
fn bare_repo(root: &Path) -> String {
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("NOTES.md"), "only in the repository\n").unwrap();
    git(&work, &["add", "NOTES.md"]);
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "init",
        ],
    );
    git(root, &["clone", "-q", "--bare", "work", "demo.git"]);
    format!("file://{}", root.join("demo.git").display())
}

/// A STAND-IN for the device's command RPC (the executor core answers these the same way): it
/// runs each `device:execute_command` argv for real, in its cwd, with `WEGENT_EXECUTOR_PROJECTS_DIR`
/// set as the device does for command children, and acks stdout/stderr/exit code.
fn answer_commands(
    mut dev: WireClient,
    projects_dir: PathBuf,
) -> tokio::task::JoinHandle<Vec<Value>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok((p, ack_id)) = dev
            .wait_event("device:execute_command", std::time::Duration::from_secs(30))
            .await
        {
            let argv: Vec<String> = serde_json::from_value(p["argv"].clone()).unwrap();
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .env("WEGENT_EXECUTOR_PROJECTS_DIR", &projects_dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_TERMINAL_PROMPT", "0");
            if let Some(cwd) = p["cwd"].as_str() {
                cmd.current_dir(cwd);
            }
            let out = cmd.output().await.unwrap();
            dev.ack(
                ack_id.unwrap(),
                &json!({"success": true, "exit_code": out.status.code(), "timed_out": false,
                    "stdout": String::from_utf8_lossy(&out.stdout), "stderr": String::from_utf8_lossy(&out.stderr),
                    "duration": 0.1, "stdout_truncated": false, "stderr_truncated": false}),
            );
            seen.push(p);
        }
        seen
    })
}

#[tokio::test]
async fn clone_from_git_runs_the_backends_commands_and_agrees_with_the_task_path() {
    let tmp = tempfile::tempdir().unwrap();
    let url = bare_repo(tmp.path());
    let projects_dir = tmp.path().join("wegent/workspace/projects");
    let server = server().await;
    let dev = registered_device(&server, "gitdev").await;
    let device = answer_commands(dev, projects_dir.clone());
    let clone = json!({"device_id": "gitdev", "git": {"url": url, "branch": "main"}});

    let (status, body) = rest(
        &server,
        "POST",
        "/api/projects/git-workspace",
        clone.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["checkout_path"], "demo");
    assert_eq!(body["project"]["name"], "demo");
    let checkout = projects_dir.join("demo");
    assert_eq!(
        std::fs::read_to_string(checkout.join("NOTES.md")).unwrap(),
        "only in the repository\n"
    );

    // The task's path is relative to W = dirname(P) (§16.2): it names the directory just cloned.
    let id = body["project"]["id"].as_i64().unwrap();
    let (_, project) = rest(&server, "GET", &format!("/api/projects/{id}"), json!(null)).await;
    assert_eq!(project["config"]["workspace"]["checkoutPath"], "demo");
    let workspace_root = projects_dir.parent().unwrap();
    let task_path = "projects/demo"; // what task:execute carries (checked above against git.json)
    assert_eq!(
        std::fs::canonicalize(workspace_root.join(task_path)).unwrap(),
        std::fs::canonicalize(&checkout).unwrap()
    );

    // Again: the directory exists → 409 naming it, and that second project is not kept.
    let (status, body) = rest(&server, "POST", "/api/projects/git-workspace", clone).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["detail"],
        format!(
            "Target project directory already exists: {}",
            checkout.display()
        )
    );
    // A repository that does not exist → 400 with git's own words, project not kept.
    let missing = json!({"device_id": "gitdev", "name": "gone",
        "git": {"url": format!("file://{}/nope.git", tmp.path().display())}});
    let (status, body) = rest(&server, "POST", "/api/projects/git-workspace", missing).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("nope.git"),
        "{body}"
    );
    let (_, list) = rest(&server, "GET", "/api/projects", json!(null)).await;
    assert_eq!(list["total"], 1, "{list}");

    server.shutdown().await;
    let seen = device.await.unwrap();
    let keys: Vec<&str> = seen
        .iter()
        .map(|p| p["argv"][0].as_str().unwrap())
        .collect();
    // project_workspace_root, mkdir_p, path_exists, git clone (then the two refused attempts).
    assert_eq!(&keys[..4], &["sh", "mkdir", "test", "git"]);
    assert_eq!(
        seen[3]["argv"],
        json!([
            "git",
            "clone",
            "--branch",
            "main",
            "--single-branch",
            url,
            "demo"
        ])
    );
    assert_eq!(seen[3]["cwd"], json!(projects_dir.display().to_string()));
    assert_eq!(seen[3]["timeout_seconds"], 600);
}
