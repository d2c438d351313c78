//! What a Codex task brings besides its prompt (protocol.md §16.6), with real parts: the real
//! pinned Codex CLI (`WEGENT_TEST_CODEX`, codex-cli 0.171.0) against the devserver's mock of the
//! OpenAI Responses API, the MCP server this test ships (`tests/fixtures/mcp_echo_server.py`,
//! `WEGENT_TEST_PYTHON`) over stdio and over streamable HTTP, and a skills backend.
//!
//! The mock model calls the server's tool as Codex lists it (`echo` in the namespace
//! `mcp__<server>`); the tool's answer must come back to the model, and the task complete. The
//! servers' credentials (a stdio server's env, an HTTP server's headers, the task token) must
//! reach the server and nothing else: no command line of any process, no log line, no file in
//! the device's home, no event sent to the server. A required skill must be listed to the
//! model by Codex itself (it reads `$CODEX_HOME/skills`).
//!
//! Only the model API is a fake (it cannot run here). Its own test binary: the log capture is
//! process-global.
#![cfg(unix)]

#[path = "support/log_capture.rs"]
mod log_capture;
#[path = "support/mock_anthropic.rs"]
mod mock_model;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/skills_backend.rs"]
mod skills_backend;
#[path = "support/task_harness.rs"]
mod task_harness;
#[path = "support/traced_device.rs"]
mod traced_device;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_model::{MockModel, Script, SeenRequest};
use serde_json::{json, Value};
use task_harness::{final_text, payload, Rig};
use tokio::io::AsyncBufReadExt;
use traced_device::assert_no_file_holds;
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::OutboundEvent;
use wegent_executor::task::orphans;

const HEADER_SECRET: &str = "hdr-SECRET-codex-mcp-header-5a1f";
const ENV_SECRET: &str = "env-SECRET-codex-mcp-env-9c3e";
const TASK_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.SECRET-task-token-codex-mcp.sig";
const SECRETS: [&str; 3] = [HEADER_SECRET, ENV_SECRET, TASK_TOKEN];

fn python() -> String {
    std::env::var("WEGENT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn echo_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp_echo_server.py")
}

/// Every distinct command line seen in `/proc` while it runs (sampled every 10 ms): a secret in
/// any process's argv, even briefly, would be visible to every user of the machine.
struct ArgvWatch {
    seen: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ArgvWatch {
    fn start() -> Self {
        let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (sink, stopped) = (seen.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                let pids = std::fs::read_dir("/proc").unwrap().filter_map(|e| {
                    let name = e.ok()?.file_name();
                    name.to_str()?.parse::<u32>().ok()
                });
                for pid in pids {
                    if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                        sink.lock().unwrap().insert(line);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self { seen, stop, task }
    }

    async fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

/// What one Codex task with `mcp_servers` left behind.
struct Run {
    rig: Rig,
    events: Vec<OutboundEvent>,
    requests: Vec<SeenRequest>,
    argv: BTreeSet<String>,
}

/// A manager whose Codex tasks use the pinned CLI; downloads go to `backend_url`.
fn codex_rig(backend_url: &str) -> Rig {
    log_capture::install();
    let config = TaskConfig {
        codex_path: Some(task_harness::codex_path()),
        claude_path: Some("/nonexistent/claude".into()),
        allow_stdio_mcp: true,
        task_timeout: Duration::from_secs(120),
        ..TaskConfig::default()
    };
    Rig::with_backend(config, backend_url)
}

/// The sample payload as a Codex bot's task against `mock`.
fn codex_payload(task_id: i64, subtask_id: i64, prompt: &str, mock: &MockModel) -> Value {
    let mut p = payload(task_id, subtask_id, prompt, &mock.url);
    p["bot"][0]["shell_type"] = "Codex".into();
    p["model_config"]["model_id"] = "gpt-5.5".into();
    p["model_config"]["api_format"] = "responses".into();
    p["auth_token"] = TASK_TOKEN.into();
    p
}

/// A Codex task whose bot has `mcp_servers`, and a follow-up message (a new Codex process
/// resuming the thread); in each turn the mock model calls `tool` with `{"text": "ping"}`.
async fn run_codex_task(task_id: i64, mcp_servers: Value, tool: &str) -> Run {
    let mock = MockModel::start(Script::CallTool {
        tool: tool.into(),
        input: json!({"text": "ping"}),
    })
    .await;
    // Nothing listens on the discard port: the tasks download nothing.
    let rig = codex_rig("http://127.0.0.1:9");
    let watch = ArgvWatch::start();
    let mut events = Vec::new();
    for (subtask_id, prompt) in [(task_id + 1, "use the echo tool"), (task_id + 2, "again")] {
        let mut p = codex_payload(task_id, subtask_id, prompt, &mock);
        p["bot"][0]["mcp_servers"] = mcp_servers.clone();
        rig.manager.execute(p);
        events.extend(rig.until_terminal(subtask_id).await);
    }
    let argv = watch.finish().await;
    Run {
        requests: mock.requests(),
        rig,
        events,
        argv,
    }
}

impl Run {
    /// Both turns completed with the tool's answer: Codex called the server's tool, and the
    /// next model request carried its output; the follow-up did so in the resumed thread.
    fn assert_the_tool_answered(&self, expected: &str) {
        let terminals: Vec<&OutboundEvent> =
            self.events.iter().filter(|e| e.is_terminal()).collect();
        assert_eq!(terminals.len(), 2, "{:#?}", self.events);
        for done in terminals {
            assert_eq!(done.name, "response.completed", "{:#?}", self.events);
            let text = final_text(done);
            assert!(text.contains(expected), "{text}");
        }
        assert_eq!(
            self.requests.len(),
            4,
            "per turn: the call, then its result"
        );
        for answered in [&self.requests[1], &self.requests[3]] {
            assert!(answered.has_tool_result);
            assert!(answered.body.to_string().contains(expected));
        }
        let thread = |i: usize| {
            let headers = &self.requests[i].headers;
            headers
                .iter()
                .find(|(k, _)| k == "thread-id")
                .map(|(_, v)| v.clone())
        };
        assert!(thread(0).is_some());
        assert_eq!(thread(0), thread(2), "the follow-up resumed the thread");
    }

    /// No secret in any argv, log line, file of the device's home or event.
    fn assert_no_secret_leaked(&self) {
        let argv: Vec<&String> = self.argv.iter().collect();
        assert!(
            argv.iter().any(|a| a.contains("app-server")),
            "the watch saw codex run: {argv:#?}"
        );
        let log = log_capture::text();
        assert!(log.contains("MCP servers configured"), "the capture works");
        for secret in SECRETS {
            for line in &argv {
                assert!(!line.contains(secret), "{secret} in the argv {line}");
            }
            assert!(!log.contains(secret), "{secret} in the log");
            let scanned = assert_no_file_holds(self.rig.home.path(), secret);
            assert!(
                scanned.files > 3,
                "the task's and Codex's files were scanned"
            );
            for event in &self.events {
                assert!(
                    !event.payload.to_string().contains(secret),
                    "{secret} sent to the server in {}",
                    event.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_mcp_server_answers_the_model_through_codex() {
    const CANARY: &str = "codex-stdio-canary-4b7d";
    let run = run_codex_task(
        70,
        json!([{"name": "echo", "type": "stdio", "command": python(),
            "args": [echo_server()],
            "env": {"MCP_ECHO_CANARY": CANARY, "ECHO_API_TOKEN": ENV_SECRET}}]),
        "mcp__echo__echo",
    )
    .await;
    // Codex told the model about the server's tools (deferred behind its tool search).
    let first = run.requests[0].body.to_string();
    assert!(first.contains("mcp__echo"), "{first}");
    // The canary came from the server's env: the env values reached it.
    run.assert_the_tool_answered(&format!("{CANARY}:ping"));
    // The call shows in the chat as a tool block, named as in a Claude task.
    let block = run
        .events
        .iter()
        .find(|e| e.name == "response.output_item.done")
        .expect("a tool block");
    assert_eq!(block.payload["data"]["item"]["name"], "mcp__echo__echo");
    assert!(
        run.argv.iter().any(|a| a.contains("mcp_echo_server.py")),
        "the watch saw the MCP server run"
    );
    // Claude's config file is not written for Codex, which got the servers over stdin.
    let mcp_json = run.rig.home.path().join("tasks/70/mcp.json");
    assert!(!mcp_json.exists(), "{}", mcp_json.display());
    run.assert_no_secret_leaked();
}

/// Codex starts a stdio MCP server in a process group of its own, with few variables. The
/// server carries the device's process markers all the same, which is how a SIGKILLed device's
/// sentinel (and its next start) finds it once Codex is gone: a server that stays alive after its
/// stdin ends would otherwise live on. At the end of a turn it is gone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_mcp_server_carries_the_device_markers_and_does_not_outlive_the_turn() {
    let mock = MockModel::start(Script::CallTool {
        tool: "mcp__echo__echo".into(),
        input: json!({"text": "ping"}),
    })
    .await;
    let rig = codex_rig("http://127.0.0.1:9");
    // Unique to this test process: finds this test's server only.
    let tag = format!("linger-{}", std::process::id());
    let mut p = codex_payload(74, 75, "use the echo tool", &mock);
    p["bot"][0]["mcp_servers"] = json!([{"name": "echo", "type": "stdio", "command": python(),
        "args": [echo_server(), "--linger", tag]}]);
    // Its environment, read while it runs.
    let environ = tokio::spawn({
        let tag = tag.clone();
        async move {
            loop {
                let found = procs::processes_with_arg(&tag).into_iter().find_map(|pid| {
                    std::fs::read(format!("/proc/{pid}/environ"))
                        .ok()
                        .filter(|e| !e.is_empty())
                });
                if let Some(environ) = found {
                    return environ;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    rig.manager.execute(p);
    let events = rig.until_terminal(75).await;
    let environ = tokio::time::timeout(task_harness::WAIT, environ)
        .await
        .expect("the MCP server ran")
        .unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let run = format!("WEGENT_DEVICE_RUN={}", orphans::current_run());
    assert!(vars.contains(&run), "{run} not in {vars:?}");
    assert!(
        vars.iter().any(|v| v.starts_with("WEGENT_DEVICE_TURN=75@")),
        "no turn marker in {vars:?}"
    );
    assert_eq!(events.last().unwrap().name, "response.completed");
    assert!(
        final_text(events.last().unwrap()).contains("no-canary:ping"),
        "the server answered"
    );
    let mut slots = rig.manager.slots();
    tokio::time::timeout(task_harness::WAIT, slots.wait_for(|s| s.running.is_empty()))
        .await
        .expect("the slot is freed")
        .unwrap();
    let lingering = procs::processes_with_arg(&tag);
    // Bounded: a kill's delivery is asynchronous. Killed here whatever happens.
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while !procs::processes_with_arg(&tag).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for pid in procs::processes_with_arg(&tag) {
        // SAFETY: kill only sends a signal, to this test's own MCP server.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(
        gone.is_ok(),
        "the MCP server outlived the turn: {lingering:?}"
    );
}

/// The fixture as a streamable HTTP server requiring `headers`: `(child, its URL)`.
async fn http_echo_server(canary: &str, headers: Value) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(python())
        .arg(echo_server())
        .arg("--http")
        .env("MCP_ECHO_CANARY", canary)
        .env("MCP_ECHO_REQUIRE_HEADERS", headers.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the MCP echo server starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(task_harness::WAIT, lines.next_line())
        .await
        .expect("the server prints its URL")
        .unwrap()
        .expect("a URL line");
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_mcp_server_gets_its_headers_and_answers_through_codex() {
    const CANARY: &str = "codex-http-canary-8e2a";
    // The server refuses any request without exactly these headers, so its answer proves Codex
    // sent them (the header from the bot's config, the bearer from `${{task_token}}`).
    let (_server, url) = http_echo_server(
        CANARY,
        json!({"X-Api-Key": HEADER_SECRET, "Authorization": format!("Bearer {TASK_TOKEN}")}),
    )
    .await;
    let run = run_codex_task(
        80,
        json!([{"name": "remote", "type": "http", "url": url,
            "headers": {"X-Api-Key": HEADER_SECRET, "Authorization": "Bearer ${{task_token}}"}}]),
        "mcp__remote__echo",
    )
    .await;
    run.assert_the_tool_answered(&format!("{CANARY}:ping"));
    run.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_skill_is_listed_to_the_model_by_codex() {
    const DESCRIPTION: &str = "Take notes the team's way (skill-canary-3f9d)";
    let backend = skills_backend::serve(
        b"---\nname: notes-skill\ndescription: Take notes the team's way (skill-canary-3f9d)\n---\n\
          # Notes\nWrite them down.\n",
    )
    .await;
    let mock = MockModel::start(Script::Text("noted".into())).await;
    let rig = codex_rig(&backend);
    let mut p = codex_payload(90, 91, "take a note", &mock);
    p["preload_skills"] = json!(["notes-skill"]);
    p["preload_skill_refs"] = json!({"notes-skill": {"skill_id": 13, "namespace": "default"}});
    rig.manager.execute(p);
    let events = rig.until_terminal(91).await;
    assert_eq!(
        events.last().unwrap().name,
        "response.completed",
        "{events:#?}"
    );
    // Codex lists the skill (its name, description and file) among the model's instructions.
    let request = mock.requests()[0].body.to_string();
    let codex_home = rig.home.path().join("tasks/90/codex");
    assert!(request.contains(DESCRIPTION), "{request}");
    assert!(request.contains("- notes-skill: "), "{request}");
    assert!(
        request.contains(&codex_home.join("skills").display().to_string()),
        "the skill root is the task's Codex home: {request}"
    );
    let skill_file = codex_home.join("skills/notes-skill/SKILL.md");
    assert!(skill_file.is_file(), "{}", skill_file.display());
}
