//! A small mock model API that the real agent CLIs run against: the Anthropic Messages API
//! (`POST /v1/messages`, SSE streaming) for Claude Code (claude-cli.md §6), and the OpenAI
//! Responses API (`POST /v1/responses`, [`responses`]) for Codex (codex-cli.md §2.4). Each mock
//! follows one [`Script`], on both APIs, and logs every request it answers ([`SeenRequest`]).
//!
//! Two users: the tests, where it stands in for the real API (which cannot run here; everything
//! around it — the CLI, its process, its tools, the files it writes — is real), and the demo mode,
//! where the devserver serves [`Script::Demo`] under `/demo-model` so a first-time user sees a task
//! run end to end with Claude Code or Codex and no model account.

mod messages;
mod responses;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{any, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};

/// How the mock answers every request.
#[derive(Debug, Clone)]
pub enum Script {
    /// A text answer, streamed in a few deltas.
    Text(String),
    /// First turn: a Bash `tool_use` (Responses: an `exec_command` function call) running
    /// `command`; after the tool result: `then` as text, with [`TOOL_RESULT`] in it replaced by
    /// the tool's output (so a test can see what the tool really read).
    RunCommand { command: String, then: String },
    /// First turn: a `tool_use` of `tool` (e.g. `mcp__server__echo`) with `input`; after the
    /// tool result: `Tool result: <its text>`, so a test sees what the tool answered. On the
    /// Responses side an `mcp__<server>__<tool>` is called as Codex lists it (`<tool>` in the
    /// namespace `mcp__<server>`).
    CallTool { tool: String, input: Value },
    /// An HTTP error with an `api_error` body carrying `message`, not to be retried (the
    /// Responses side answers OpenAI's `{"error": {"message", …}}`).
    ApiError { status: u16, message: String },
    /// `chunks` text deltas, one every `interval`.
    Slow { chunks: usize, interval: Duration },
    /// Headers and `message_start` (`response.created`), then silence (the CLIs have no idle
    /// timeout short enough to matter).
    Stall,
    /// The demo answer: says what happened (the prompt, the working directory the agent ran
    /// in) and that no AI wrote it, streamed slowly enough to watch.
    Demo,
    /// `before` text deltas, then a pause until `gate` opens, then `after` more; one every
    /// `interval`. The text is that of [`Script::Slow`] with `before + after` chunks.
    Gated {
        before: usize,
        after: usize,
        interval: Duration,
        gate: Gate,
    },
}

/// In [`Script::RunCommand`]'s `then`: replaced by the text of the tool result.
pub const TOOL_RESULT: &str = "{tool_result}";

/// Holds a [`Script::Gated`] stream until [`Gate::open`].
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Gate {
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub(crate) async fn wait(&self) {
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }
}

/// Which API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelApi {
    /// Anthropic Messages (`/v1/messages`): Claude Code.
    Messages,
    /// OpenAI Responses (`/v1/responses`): Codex.
    Responses,
}

/// What the mock saw of one request.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub api: ModelApi,
    /// `x-api-key` (Messages) or the `Authorization: Bearer` value (Responses).
    pub api_key: Option<String>,
    pub model: String,
    /// The request answers a tool call (it carries the tool's result).
    pub has_tool_result: bool,
    /// The first user prompt of the conversation.
    pub prompt: String,
    /// Every user prompt of the conversation, in order: a resumed session's request carries the
    /// earlier turns' prompts before this turn's.
    pub prompts: Vec<String>,
    /// Assistant answers already in the conversation (more than 0 on a resumed session).
    pub earlier_answers: usize,
    /// The working directory the CLI reported to the model (Claude's `Primary working
    /// directory`, Codex's `<environment_context>` `<cwd>`).
    pub cwd: String,
    pub headers: Vec<(String, String)>,
    /// The whole request body.
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    script: Script,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    arrived: Arc<Notify>,
}

/// A mock model API on its own loopback port, serving both wire APIs.
pub struct MockModel {
    /// Base URL without `/v1`: `ANTHROPIC_BASE_URL` for Claude Code; Codex's provider
    /// `base_url` is [`MockModel::responses_base_url`].
    pub url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

/// The name the Claude tests know the mock by.
pub type MockAnthropic = MockModel;

impl Drop for MockModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockModel {
    pub async fn start(script: Script) -> Self {
        let shared = Shared {
            script,
            seen: Arc::default(),
            arrived: Arc::default(),
        };
        let app = routes(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mock model API on loopback");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// The `base_url` of an OpenAI-style model config (`{url}/v1`): codex POSTs
    /// `{base_url}/responses`.
    pub fn responses_base_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared.seen).clone()
    }

    /// Wait until at least `n` model requests (either API) arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        loop {
            let arrived = self.shared.arrived.notified();
            if self.requests().len() >= n {
                return;
            }
            arrived.await;
        }
    }
}

/// The mock as a router, to mount under another server (the devserver's `/demo-model`).
pub fn router(script: Script) -> Router {
    routes(Shared {
        script,
        seen: Arc::default(),
        arrived: Arc::default(),
    })
}

fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/v1/messages", post(messages::messages))
        .route("/v1/responses", post(responses::responses))
        .fallback(any(other))
        .with_state(shared)
}

fn lock(seen: &Mutex<Vec<SeenRequest>>) -> std::sync::MutexGuard<'_, Vec<SeenRequest>> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Warm-up probes (`HEAD /`, `HEAD /api/hello`) and anything unexpected.
async fn other() -> StatusCode {
    StatusCode::OK
}

/// Logs a request and wakes [`MockModel::wait_for_requests`].
fn record(shared: &Shared, seen: SeenRequest) {
    lock(&shared.seen).push(seen);
    shared.arrived.notify_waiters();
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect()
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-should-retry", "false")
        .body(Body::from(body.to_string()))
        .expect("static response parts")
}

/// The SSE response whose body is what the script's task sends into `rx`.
fn sse_response(rx: mpsc::Receiver<String>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("request-id", "req_mock")
        .body(Body::from_stream(stream))
        .expect("static response parts")
}

type Sent = Result<(), mpsc::error::SendError<String>>;

/// The demo answer of `agent` (the CLI that asked): the latest prompt, where it ran, and whether
/// it resumed the task's session.
fn demo_answer(agent: &str, prompt: &str, cwd: &str, earlier_answers: usize) -> String {
    let place = if cwd.is_empty() {
        "in this task's workspace".to_owned()
    } else {
        format!("in `{cwd}`")
    };
    let prompt: String = prompt.chars().take(200).collect();
    let follow_up = match earlier_answers {
        0 => String::new(),
        n => format!(
            " This is a follow-up: {agent} resumed the task's session, which already holds \
             {n} earlier answer{}.",
            if n == 1 { "" } else { "s" }
        ),
    };
    format!(
        "Hello from your own machine! You asked: \"{prompt}\". This task was dispatched by the \
         devserver to your Wegent device, which started {agent} {place} and streamed this \
         answer back live.{follow_up} The words come from the devserver's demo model, not from \
         an AI: connect Wegent Device to a Wegent server to get real answers."
    )
}

/// A streamed text answer: what [`Script::Text`], [`Script::Slow`], [`Script::Gated`] and
/// [`Script::Demo`] send, and the answer after a tool call. Each API writes it in its own events.
struct TextAnswer {
    /// One text delta each.
    chunks: Vec<String>,
    /// The pause before each chunk.
    interval: Duration,
    /// The stream waits before chunk `.0` until the gate opens.
    gate: Option<(usize, Gate)>,
}

impl TextAnswer {
    /// The answer of a text-only `script` (`demo` writes [`Script::Demo`]'s text); `None` for the
    /// scripts that answer otherwise.
    fn of(script: &Script, demo: impl FnOnce() -> String) -> Option<Self> {
        let (chunks, interval, gate) = match script {
            Script::Text(text) => (chunks_of(text, 3), Duration::ZERO, None),
            Script::Slow { chunks, interval } => (numbered_chunks(*chunks), *interval, None),
            Script::Gated {
                before,
                after,
                interval,
                gate,
            } => (
                numbered_chunks(before + after),
                *interval,
                Some((*before, gate.clone())),
            ),
            Script::Demo => (chunks_of(&demo(), 12), Duration::from_millis(150), None),
            Script::RunCommand { .. }
            | Script::CallTool { .. }
            | Script::ApiError { .. }
            | Script::Stall => return None,
        };
        Some(Self {
            chunks,
            interval,
            gate,
        })
    }

    /// `text` as one delta, at once.
    fn whole(text: String) -> Self {
        Self {
            chunks: vec![text],
            interval: Duration::ZERO,
            gate: None,
        }
    }

    /// Waits until chunk `i` is due.
    async fn before_chunk(&self, i: usize) {
        if let Some((at, gate)) = &self.gate {
            if i == *at {
                gate.wait().await;
            }
        }
        if !self.interval.is_zero() {
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// The text of a message's content (or a tool's result): a string as it is, or the `text` of
/// each of its parts, one per line.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text of [`Script::Slow`] and [`Script::Gated`]: `chunk 0. chunk 1. …`, one delta each.
fn numbered_chunks(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("chunk {i}. ")).collect()
}

/// `text` in `parts` pieces of about equal length (the deltas of a streamed answer).
fn chunks_of(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(parts).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:06}", NEXT.fetch_add(1, Ordering::Relaxed))
}
