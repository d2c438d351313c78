//! The mock model's OpenAI Responses API (`POST /v1/responses`): the SSE each script streams,
//! its request log, the demo model under the devserver's `/demo-model`, and the real Codex CLI
//! running a text turn, a resumed turn, a tool turn and an API error against it.
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use wegent_devserver::model_mock::{MockModel, ModelApi, Script, TOOL_RESULT};

/// One `POST {base}/responses` as codex sends it (a fresh thread: developer prompt, environment
/// context, the user's prompt); `more` is appended to the input.
fn request_body(prompt: &str, more: &[Value]) -> Value {
    let user = |text: &str| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]});
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex"}]}),
        user("<environment_context>\n  <cwd>/work/demo</cwd>\n</environment_context>"),
        user(prompt),
    ];
    input.extend_from_slice(more);
    json!({"model": "gpt-5.5", "stream": true, "store": false, "input": input})
}

/// The response: status and the `data:` JSON of every SSE event.
async fn post(base: &str, body: &Value) -> (u16, Vec<Value>, String) {
    let response = support::http()
        .post(format!("{base}/responses"))
        .bearer_auth("sk-test-key")
        .json(body)
        .send()
        .await
        .expect("the mock answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a complete body");
    let events = text
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).expect("every data line is JSON"))
        .collect();
    (status, events, text)
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[tokio::test]
async fn a_text_answer_streams_in_several_deltas_and_completes() {
    let mock = MockModel::start(Script::Text("Hello from the mock Responses API ✓".into())).await;
    let (status, events, _) = post(&mock.responses_base_url(), &request_body("say hi", &[])).await;

    assert_eq!(status, 200);
    let types = types(&events);
    assert_eq!(types.first(), Some(&"response.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.len() >= 3, "{deltas:?}");
    assert_eq!(deltas.concat(), "Hello from the mock Responses API ✓");
    // Codex builds the turn from `output_item.done` only, and needs the completed response's id.
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .expect("the message item is done");
    assert_eq!(
        done["item"]["content"][0]["text"],
        "Hello from the mock Responses API ✓"
    );
    assert_eq!(done["item"]["role"], "assistant");
    let completed = events.last().unwrap();
    assert!(completed["response"]["id"].as_str().is_some());
    assert_eq!(completed["response"]["status"], "completed");

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].api, ModelApi::Responses);
    assert_eq!(seen[0].api_key.as_deref(), Some("sk-test-key"));
    assert_eq!(
        (seen[0].prompt.as_str(), seen[0].cwd.as_str()),
        ("say hi", "/work/demo")
    );
    assert_eq!(seen[0].model, "gpt-5.5");
    assert!(!seen[0].has_tool_result);
}

#[tokio::test]
async fn a_tool_turn_asks_for_a_command_and_echoes_its_output_in_the_next_answer() {
    let mock = MockModel::start(Script::RunCommand {
        command: "echo from-the-tool".into(),
        then: format!("The command printed: {TOOL_RESULT}"),
    })
    .await;
    let base = mock.responses_base_url();
    let (_, first, _) = post(&base, &request_body("run it", &[])).await;
    let call = first
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .map(|e| e["item"].clone())
        .expect("a function call item");
    assert_eq!(
        (call["type"].as_str(), call["name"].as_str()),
        (Some("function_call"), Some("exec_command"))
    );
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"cmd": "echo from-the-tool"}));
    assert_eq!(types(&first).last(), Some(&"response.completed"));

    // The second request carries the call and its output, as codex sends them.
    let output = json!({"type": "function_call_output", "call_id": call["call_id"],
        "output": "Chunk ID: 1\nWall time: 0.01 seconds\nProcess exited with code 0\nOriginal token count: 3\nOutput:\nfrom-the-tool\n"});
    let (_, second, _) = post(&base, &request_body("run it", &[call, output])).await;
    let done = second
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .expect("an answer");
    assert_eq!(
        done["item"]["content"][0]["text"],
        "The command printed: from-the-tool"
    );
    let seen = mock.requests();
    assert_eq!(
        seen.iter().map(|r| r.has_tool_result).collect::<Vec<_>>(),
        [false, true]
    );
}

#[tokio::test]
async fn an_api_error_answers_the_status_with_its_message() {
    let mock = MockModel::start(Script::ApiError {
        status: 400,
        message: "the mock model refuses this request".into(),
    })
    .await;
    let (status, _, body) = post(&mock.responses_base_url(), &request_body("x", &[])).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["error"]["message"],
        "the mock model refuses this request"
    );
}

#[tokio::test]
async fn a_stall_sends_the_created_event_and_then_nothing() {
    let mock = MockModel::start(Script::Stall).await;
    let mut response = support::http()
        .post(format!("{}/responses", mock.responses_base_url()))
        .json(&request_body("x", &[]))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().expect("the created event");
    assert!(String::from_utf8_lossy(&first).contains("response.created"));
    // Absence can only be observed over a while: the stream stays open and silent.
    let next = tokio::time::timeout(Duration::from_millis(500), response.chunk()).await;
    assert!(next.is_err(), "a stalled stream sent more: {next:?}");
}

#[tokio::test]
async fn the_log_shows_a_second_request_carrying_the_first_turn() {
    let mock = MockModel::start(Script::Text("noted".into())).await;
    let base = mock.responses_base_url();
    post(&base, &request_body("one", &[])).await;
    let answer = json!({"type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": "noted"}]});
    let again = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]});
    post(&base, &request_body("one", &[answer, again])).await;
    mock.wait_for_requests(2).await;
    let seen = mock.requests();
    assert_eq!(seen[0].prompts, ["one"]);
    assert_eq!(seen[0].earlier_answers, 0);
    assert_eq!(seen[1].prompts, ["one", "two"]);
    assert_eq!(seen[1].earlier_answers, 1);
}

#[tokio::test]
async fn the_devservers_demo_model_speaks_responses_and_names_codex() {
    let server = support::server().await;
    let base = format!("{}/demo-model/v1", server.url());
    let (status, events, _) = post(&base, &request_body("what can you do?", &[])).await;
    assert_eq!(status, 200);
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(text.contains("You asked: \"what can you do?\""), "{text}");
    assert!(text.contains("started Codex in `/work/demo`"), "{text}");
    assert_eq!(types(&events).last(), Some(&"response.completed"));
    server.shutdown().await;
}

// ---- the real Codex CLI ---------------------------------------------------------------------

/// The pinned Codex CLI: `WEGENT_TEST_CODEX` (must exist), else the repository's
/// `.tools/codex` (installed by `scripts/install-deps.sh`); `None` when neither is there.
fn codex_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WEGENT_TEST_CODEX") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "WEGENT_TEST_CODEX={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/codex/node_modules/.bin/codex");
    path.is_file().then_some(path)
}

macro_rules! codex_or_skip {
    () => {
        match codex_path() {
            Some(path) => path,
            None => {
                eprintln!(
                    "SKIPPED: the Codex CLI is not installed (set WEGENT_TEST_CODEX or run \
                     ./scripts/install-deps.sh)"
                );
                return;
            }
        }
    };
}

/// A codex home and a work directory, outside `/tmp` (codex refuses helper binaries there).
struct CodexDirs {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl CodexDirs {
    fn new() -> Self {
        let tmp = env!("CARGO_TARGET_TMPDIR");
        std::fs::create_dir_all(tmp).unwrap();
        Self {
            home: tempfile::tempdir_in(tmp).unwrap(),
            work: tempfile::tempdir_in(tmp).unwrap(),
        }
    }
}

/// What one `codex exec --json` printed.
struct Run {
    success: bool,
    events: Vec<Value>,
    stderr: String,
}

impl Run {
    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["type"] == kind)
    }

    fn answer(&self) -> Option<&str> {
        self.of_type("item.completed")
            .filter(|e| e["item"]["type"] == "agent_message")
            .last()
            .and_then(|e| e["item"]["text"].as_str())
    }

    fn thread_id(&self) -> &str {
        self.of_type("thread.started")
            .find_map(|e| e["thread_id"].as_str())
            .unwrap_or_else(|| panic!("no thread.started in {:?}", self.events))
    }
}

/// `codex exec --json` against the mock as a custom Responses provider (codex-cli.md §2.2, §2.7),
/// the prompt on stdin; `resume` continues that thread.
async fn codex_exec(
    codex: &Path,
    mock: &MockModel,
    dirs: &CodexDirs,
    prompt: &str,
    resume: Option<&str>,
) -> Run {
    let base_url = mock.responses_base_url();
    let config = [
        "model_provider=\"wegent\"".to_owned(),
        "model_providers.wegent.name=\"Wegent\"".to_owned(),
        format!("model_providers.wegent.base_url={}", json!(base_url)),
        "model_providers.wegent.wire_api=\"responses\"".to_owned(),
        "model_providers.wegent.env_key=\"WEGENT_CODEX_API_KEY\"".to_owned(),
        "model_providers.wegent.request_max_retries=0".to_owned(),
        "model_providers.wegent.stream_max_retries=0".to_owned(),
        "features.plugins=false".to_owned(),
        "analytics.enabled=false".to_owned(),
    ];
    let mut cmd = tokio::process::Command::new(codex);
    cmd.args(["exec", "--json", "--skip-git-repo-check", "-C"])
        .arg(dirs.work.path())
        .args([
            "--dangerously-bypass-approvals-and-sandbox",
            "-m",
            "gpt-5.5",
        ]);
    for c in &config {
        cmd.args(["-c", c]);
    }
    if let Some(thread) = resume {
        cmd.args(["resume", thread]);
    }
    cmd.arg("-")
        .env("CODEX_HOME", dirs.home.path())
        .env("WEGENT_CODEX_API_KEY", "sk-codex-test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("codex starts");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(prompt.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("codex finishes within 2 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    Run {
        success: out.status.success(),
        events: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_answers_from_the_mock_and_a_resumed_turn_carries_the_first() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(Script::Text("Hello from the mock, ünïcode ✓".into())).await;
    let dirs = CodexDirs::new();

    let first = codex_exec(&codex, &mock, &dirs, "one", None).await;
    assert!(first.success, "{:?}\n{}", first.events, first.stderr);
    assert_eq!(first.answer(), Some("Hello from the mock, ünïcode ✓"));
    assert_eq!(first.of_type("turn.completed").count(), 1);

    let thread = first.thread_id().to_owned();
    let second = codex_exec(&codex, &mock, &dirs, "two", Some(&thread)).await;
    assert!(second.success, "{:?}\n{}", second.events, second.stderr);
    assert_eq!(second.thread_id(), thread);

    let seen = mock.requests();
    assert_eq!(seen.len(), 2, "one model request per turn");
    assert_eq!(seen[0].api_key.as_deref(), Some("sk-codex-test"));
    assert_eq!(seen[0].model, "gpt-5.5");
    assert_eq!(
        Path::new(&seen[0].cwd).canonicalize().unwrap(),
        dirs.work.path().canonicalize().unwrap()
    );
    assert_eq!(
        (seen[0].prompts.clone(), seen[0].earlier_answers),
        (vec!["one".to_owned()], 0)
    );
    assert_eq!(
        (seen[1].prompts.clone(), seen[1].earlier_answers),
        (vec!["one".to_owned(), "two".to_owned()], 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_runs_the_scripted_command_and_the_answer_quotes_its_output() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(Script::RunCommand {
        command: "echo written-by-codex > proof.txt && cat proof.txt".into(),
        then: format!("The command printed: {TOOL_RESULT}"),
    })
    .await;
    let dirs = CodexDirs::new();

    let run = codex_exec(&codex, &mock, &dirs, "write the proof", None).await;
    assert!(run.success, "{:?}\n{}", run.events, run.stderr);
    assert_eq!(run.answer(), Some("The command printed: written-by-codex"));
    let command = run
        .of_type("item.completed")
        .find(|e| e["item"]["type"] == "command_execution")
        .expect("codex ran the command");
    assert_eq!(command["item"]["exit_code"], 0);
    let written = std::fs::read_to_string(dirs.work.path().join("proof.txt")).unwrap();
    assert_eq!(written.trim(), "written-by-codex");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_fails_the_turn_with_the_api_errors_message() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(Script::ApiError {
        status: 400,
        message: "the mock model refuses this request".into(),
    })
    .await;
    let dirs = CodexDirs::new();

    let run = codex_exec(&codex, &mock, &dirs, "anything", None).await;
    assert!(!run.success, "{:?}", run.events);
    let failed = run.of_type("turn.failed").next().expect("turn.failed");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the mock model refuses this request"),
        "{message}"
    );
}
