//! What a task brings besides its prompt (protocol.md §16.6–16.7), with real parts: the real
//! Claude Code CLI against the mock model, a stdio MCP server this test ships (a Python script),
//! attachments served by the in-process devserver.
//!
//! Only the Anthropic API is a fake (it cannot run here). Its own test binary: the log capture
//! is process-global.
#![cfg(unix)]

#[path = "support/log_capture.rs"]
mod log_capture;
#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/skills_backend.rs"]
mod skills_backend;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mock_anthropic::{MockAnthropic, Script};
use serde_json::{json, Value};
use task_harness::{config, final_text, payload, Rig};
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer};
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::OutboundEvent;

const HEADER_SECRET: &str = "hdr-SECRET-mcp-header-0123456789";
const ENV_SECRET: &str = "env-SECRET-mcp-env-0123456789";
const TASK_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.SECRET-task-token-extras.sig";

fn python() -> String {
    std::env::var("WEGENT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

fn error_of(events: &[OutboundEvent]) -> (String, String) {
    let last = events.last().unwrap();
    assert_eq!(last.name, "error", "{events:#?}");
    (
        last.payload["data"]["code"].as_str().unwrap().to_owned(),
        last.payload["data"]["message"].as_str().unwrap().to_owned(),
    )
}

/// The device stays usable after a failed task: the next one completes.
async fn next_task_completes(rig: &Rig, mock_url: &str, task_id: i64) {
    rig.manager
        .execute(payload(task_id, task_id + 1, "still there?", mock_url));
    let events = rig.until_terminal(task_id + 1).await;
    assert_eq!(
        events.last().unwrap().name,
        "response.completed",
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_mcp_server_answers_the_model_through_the_real_cli() {
    log_capture::install();
    const CANARY: &str = "canary-7f3a9c";
    let mock = MockAnthropic::start(Script::CallTool {
        tool: "mcp__echo__echo".into(),
        input: json!({"text": "ping"}),
    })
    .await;
    let rig = Rig::new(TaskConfig {
        allow_stdio_mcp: true,
        ..config()
    });
    let mut p = payload(40, 41, "use the echo tool", &mock.url);
    p["auth_token"] = TASK_TOKEN.into();
    p["bot"][0]["mcp_servers"] = json!([
        {"name": "echo", "type": "stdio", "command": python(),
         "args": [fixture("mcp_echo_server.py")],
         "env": {"MCP_ECHO_CANARY": CANARY, "ECHO_API_TOKEN": ENV_SECRET}},
        // Unreachable (discard port): the CLI reports it failed and goes on. Its header is
        // what must never reach a log.
        {"name": "remote", "type": "http", "url": "http://127.0.0.1:9/mcp",
         "headers": {"X-Api-Key": HEADER_SECRET, "Authorization": "Bearer ${{task_token}}"}},
    ]);
    rig.manager.execute(p);

    let events = rig.until_terminal(41).await;
    let done = events.last().unwrap();
    assert_eq!(done.name, "response.completed", "{events:#?}");
    let text = final_text(done);
    assert!(text.contains(&format!("{CANARY}:ping")), "{text}");

    let config = find_file(rig.home.path(), "mcp.json").expect("mcp.json written");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", config.display());
    // The credentials reach the CLI through its environment, not the file: the canary the
    // server answered with came through an env reference the CLI expanded.
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("${WEGENT_MCP_SECRET_"), "{written}");
    let log = log_capture::text();
    assert!(log.contains("MCP servers configured"), "the capture works");
    for secret in [HEADER_SECRET, ENV_SECRET, CANARY, TASK_TOKEN] {
        assert!(!written.contains(secret), "{secret} in mcp.json");
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_mcp_servers_are_skipped_unless_enabled() {
    log_capture::install();
    let mock = MockAnthropic::start(Script::Text("no tools needed".into())).await;
    let rig = Rig::new(config());
    let mut p = payload(50, 51, "hi", &mock.url);
    p["bot"][0]["mcp_servers"] = json!({"local-tool": {"type": "stdio", "command": "touch",
        "args": [rig.home.path().join("stdio-ran")]}});
    rig.manager.execute(p);
    let events = rig.until_terminal(51).await;
    assert_eq!(events.last().unwrap().name, "response.completed");
    assert!(!rig.home.path().join("stdio-ran").exists());
    assert!(find_file(rig.home.path(), "mcp.json").is_none());
    let log = log_capture::text();
    assert!(
        log.lines()
            .any(|l| l.contains("stdio MCP servers skipped") && l.contains("local-tool")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_placeholder_fails_the_task_and_names_it() {
    log_capture::install();
    let mock = MockAnthropic::start(Script::Text("fine".into())).await;
    let rig = Rig::new(config());
    let mut p = payload(60, 61, "hi", &mock.url);
    p["mcp_servers"] = json!([{"name": "board", "type": "sse",
        "url": "${{backend_url}}/mcp/${{workspace.board_id}}"}]);
    rig.manager.execute(p);
    let events = rig.until_terminal(61).await;
    let (code, message) = error_of(&events);
    assert_eq!(code, "mcp_config_invalid");
    assert!(
        message.contains("`board`") && message.contains("${{workspace.board_id}}"),
        "{message}"
    );
    assert!(mock.requests().is_empty(), "the CLI did not start");
    next_task_completes(&rig, &mock.url, 62).await;
}

// ---- attachments ---------------------------------------------------------------------------

async fn devserver() -> RunningDevServer {
    DevServer::start(DevServerConfig::for_tests())
        .await
        .expect("the devserver starts")
}

/// Store `content` as an attachment of the demo user; its `attachments[]` entry.
async fn upload(server: &RunningDevServer, name: &str, content: &[u8]) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let res = reqwest::Client::new()
        .post(format!("{}/api/attachments?filename={name}", server.url()))
        .bearer_auth(server.demo_token().unwrap())
        .header("content-type", "text/plain")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

/// A follow-up with attachments, as the backend builds it (§16.7): the prompt names the
/// sandbox path built from the user subtask.
fn attachment_payload(
    task_id: i64,
    subtask_id: i64,
    user_subtask: i64,
    entry: &Value,
    server: &RunningDevServer,
    mock_url: &str,
) -> Value {
    let name = entry["original_filename"].as_str().unwrap();
    let mut entry = entry.clone();
    entry["subtask_id"] = user_subtask.into();
    let mut p = payload(task_id, subtask_id, "", mock_url);
    p["prompt"] = json!([
        {"type": "input_text", "text": format!(
            "<attachment>[Attachment: {name} | ID: {} | File Path(already in sandbox): /home/user/{task_id}:executor:attachments/{user_subtask}/{name}]</attachment>",
            entry["id"])},
        {"type": "input_text", "text": "please read the attached notes"},
    ]);
    p["attachments"] = json!([entry]);
    p["user_subtask_id"] = user_subtask.into();
    // The devserver accepts the user's login token as well as a task token.
    p["auth_token"] = server.demo_token().unwrap().into();
    // The payload's backend URL is the server's internal one: never used for downloads.
    p["backend_url"] = "http://127.0.0.1:9".into();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_is_downloaded_and_the_cli_reads_it() {
    log_capture::install();
    const CONTENT: &str = "research notes: the answer is 42";
    let server = devserver().await;
    let entry = upload(&server, "research-notes.txt", CONTENT.as_bytes()).await;
    // The model reads the file with Bash at its local path in the task's private state
    // (`<config dir>/../attachments/<user subtask>/<name>`).
    let mock = MockAnthropic::start(Script::CallTool {
        tool: "Bash".into(),
        input: json!({"command": "cat \"$CLAUDE_CONFIG_DIR/../attachments/71/research-notes.txt\"",
                      "description": "Read the attachment"}),
    })
    .await;
    let rig = Rig::with_backend(config(), &server.url());
    rig.manager
        .execute(attachment_payload(70, 72, 71, &entry, &server, &mock.url));

    let events = rig.until_terminal(72).await;
    let done = events.last().unwrap();
    assert_eq!(done.name, "response.completed", "{events:#?}");
    assert!(final_text(done).contains(CONTENT), "{}", final_text(done));
    // The model saw the local path, not the sandbox one.
    let local = find_file(rig.home.path(), "research-notes.txt").unwrap();
    let seen = &mock.requests()[0].prompt;
    assert!(
        seen.contains("Available attachments:") && seen.contains(&local.display().to_string()),
        "{seen}"
    );
    assert!(local.ends_with("attachments/71/research-notes.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_that_404s_fails_the_task_clearly_and_the_device_goes_on() {
    log_capture::install();
    let server = devserver().await;
    let mock = MockAnthropic::start(Script::Text("fine".into())).await;
    let rig = Rig::with_backend(config(), &server.url());
    let missing = json!({"id": 999, "original_filename": "gone.pdf", "mime_type": "application/pdf",
        "file_size": 10});
    rig.manager
        .execute(attachment_payload(80, 82, 81, &missing, &server, &mock.url));
    let events = rig.until_terminal(82).await;
    let (code, message) = error_of(&events);
    assert_eq!(code, "attachment_download_failed");
    assert!(
        message.contains("`gone.pdf`") && message.contains("HTTP 404"),
        "{message}"
    );
    assert!(mock.requests().is_empty(), "the CLI did not start");
    next_task_completes(&rig, &mock.url, 84).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_over_the_size_limit_fails_the_task() {
    log_capture::install();
    let server = devserver().await;
    let entry = upload(&server, "big.txt", &[b'x'; 4096]).await;
    let mock = MockAnthropic::start(Script::Text("fine".into())).await;
    let rig = Rig::with_backend(
        TaskConfig {
            max_attachment_bytes: 1000,
            ..config()
        },
        &server.url(),
    );
    rig.manager
        .execute(attachment_payload(90, 92, 91, &entry, &server, &mock.url));
    let events = rig.until_terminal(92).await;
    let (code, message) = error_of(&events);
    assert_eq!(code, "attachment_download_failed");
    assert!(
        message.contains("`big.txt`") && message.contains("limit of 1000 bytes"),
        "{message}"
    );
    assert!(find_file(rig.home.path(), "big.txt").is_none());
    assert!(find_file(rig.home.path(), "big.txt.part").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_interrupts_an_attachment_download() {
    log_capture::install();
    // A backend that accepts the download and never answers: only a cancel ends the wait
    // before the 60 s download timeout (which would end the task with an `error` instead).
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel::<()>();
    let arrived_tx = Arc::new(Mutex::new(Some(arrived_tx)));
    let app = axum::Router::new().route(
        "/api/attachments/{id}/executor-download",
        axum::routing::get(move || {
            let arrived_tx = arrived_tx.clone();
            async move {
                if let Some(tx) = arrived_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                std::future::pending::<&'static str>().await
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mock = MockAnthropic::start(Script::Text("fine".into())).await;
    let rig = Rig::with_backend(config(), &url);
    let mut p = payload(100, 102, "read it", &mock.url);
    p["attachments"] = json!([{"id": 5, "original_filename": "slow.bin", "subtask_id": 101}]);
    rig.manager.execute(p);
    tokio::time::timeout(task_harness::WAIT, arrived)
        .await
        .expect("the download started")
        .unwrap();
    rig.manager
        .cancel(&json!({"task_id": 100, "subtask_id": 102}));
    let events = rig.until_terminal(102).await;
    let last = events.last().unwrap();
    assert_eq!(last.name, "response.incomplete", "{events:#?}");
    assert_eq!(last.payload["data"]["response"]["status"], "cancelled");
    assert!(mock.requests().is_empty(), "the CLI did not start");
    assert!(find_file(rig.home.path(), "slow.bin.part").is_none());
}

// ---- skills --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_skill_is_installed_for_the_cli_and_a_missing_one_fails_the_task() {
    log_capture::install();
    let backend = skills_backend::serve(b"# Notes skill: skill-canary-5b1e").await;
    let mock = MockAnthropic::start(Script::CallTool {
        tool: "Bash".into(),
        input: json!({"command": "cat \"$CLAUDE_CONFIG_DIR/skills/notes-skill/SKILL.md\"",
                      "description": "Read the skill"}),
    })
    .await;
    let rig = Rig::with_backend(config(), &backend);
    let mut p = payload(110, 111, "use the skill", &mock.url);
    p["preload_skills"] = json!(["notes-skill"]);
    p["preload_skill_refs"] = json!({"notes-skill": {"skill_id": 13, "namespace": "default"}});
    p["skill_names"] = json!(["notes-skill", "browser"]);
    rig.manager.execute(p);
    let events = rig.until_terminal(111).await;
    let done = events.last().unwrap();
    assert_eq!(done.name, "response.completed", "{events:#?}");
    assert!(
        final_text(done).contains("skill-canary-5b1e"),
        "{}",
        final_text(done)
    );
    assert!(log_capture::text()
        .lines()
        .any(|l| l.contains("skills not installed") && l.contains("browser")));

    let mut p = payload(120, 121, "use the skill", &mock.url);
    p["required_skills"] = json!(["gone-skill"]);
    p["skill_refs"] = json!({"gone-skill": {"skill_id": 404, "namespace": "default"}});
    rig.manager.execute(p);
    let (code, message) = error_of(&rig.until_terminal(121).await);
    assert_eq!(code, "skill_install_failed");
    assert_eq!(
        message,
        "required Skill deployment failed: gone-skill (the server answered HTTP 404)"
    );
}
