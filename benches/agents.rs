//! Agents benchmark: Codex vs Claude Code on the same mock model, through the device and alone.
//!
//! - `device`: the real `wegent-executor` binary (bench build) connected to the devserver, which
//!   dispatches a task to a Claude Code or a Codex bot; the clock starts at the dispatch and
//!   stops when the server has the first text delta (`first_delta_ms`) and when it stored the
//!   task COMPLETED (`completed_ms`).
//! - `cli_alone`: the same pinned CLI started by this bench with the arguments, environment and
//!   stdin the device gives it for the same payload (`launch::args`/`env`, the same prompt and
//!   conversation), against the same mock; from the spawn to the first text delta it prints and
//!   to its exit (the device reports COMPLETED once the CLI exited).
//! - `added_ms`: `device` − `cli_alone` (p50s): what the device adds (dispatch over Socket.IO,
//!   the task's folders, the relay of every event, the settlement), per agent.
//!
//! Both agents answer the same text (`Script::Text`, three deltas), with the devserver's mock
//! serving the Anthropic Messages and the OpenAI Responses APIs. `WEGENT_BENCH_RUNS` runs per agent
//! and mode (default 5), after one warm-up each (not counted). Needs `WEGENT_TEST_CLAUDE` and
//! `WEGENT_TEST_CODEX` (`./scripts/install-deps.sh`).
//!
//! Run: `cargo bench -p wegent-executor --bench agents` (JSON in `bench-results/agents.json`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use wegent_devserver::bots::Agent;
use wegent_devserver::model_mock::{MockModel, Script};
use wegent_devserver::payload::{task_execute_payload, ExecuteParams};
use wegent_devserver::store::User;
use wegent_devserver::{
    DevServer, DevServerConfig, DispatchRequest, ModelSettings, ServerEvent, TaskStatus,
};
use wegent_executor::task::agent::claude::{launch as claude_launch, stream::StreamMapper};
use wegent_executor::task::agent::codex::{launch as codex_launch, stream::AppServerMapper};
use wegent_executor::task::events::{Turn, TEXT_DELTA};
use wegent_executor::task::{child_env, payload, process, workspace::TaskDirs};

use support::{accepted_heartbeat, summary};

const USER: &str = "admin";
const DEVICE_ID: &str = "device-bench-agents";
const WAIT: Duration = Duration::from_secs(120);
const ANSWER: &str = "The same answer from both agents, in three text deltas.";
const PROMPT: &str = "say the answer";

fn main() {
    let runs = support::env_number("WEGENT_BENCH_RUNS", 5).max(1) as usize;
    support::run_and_write("agents.json", bench(runs));
}

/// Milliseconds to the first text delta and to the end, per run.
#[derive(Default)]
struct Samples {
    first_delta: Vec<Duration>,
    done: Vec<Duration>,
}

impl Samples {
    fn json(&self) -> Value {
        json!({"first_delta_ms": summary(&self.first_delta), "completed_ms": summary(&self.done)})
    }
}

/// The p50 the JSON summary reports.
fn p50(samples: &[Duration]) -> f64 {
    summary(samples)["p50"].as_f64().unwrap_or(f64::NAN)
}

async fn bench(runs: usize) -> Value {
    let claude = PathBuf::from(support::claude_path());
    let codex = PathBuf::from(support::codex_path());
    let mock = MockModel::start(Script::Text(ANSWER.into())).await;
    let mut cfg = DevServerConfig::for_tests();
    cfg.model.base_url = format!("{}/v1", mock.url);
    cfg.model.api_key = "sk-bench".into();
    cfg.codex_model.base_url = mock.responses_base_url();
    cfg.codex_model.api_key = "sk-bench".into();
    cfg.timings.online_ttl = Duration::from_secs(120);
    let claude_model = cfg.model.clone();
    let codex_model = cfg.codex_model.clone();
    let server = DevServer::start(cfg).await.expect("the devserver starts");
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();
    support::write_agents_config(home.path());
    let mut events = server.events();
    let mut device = support::spawn_executor(home.path(), &server.url(), &token, DEVICE_ID);
    accepted_heartbeat(&mut events, DEVICE_ID, WAIT)
        .await
        .expect("the device comes online");

    let mut results = json!({"runs": runs, "answer_chars": ANSWER.chars().count()});
    for (agent, name, model) in [
        (Agent::ClaudeCode, "claude", &claude_model),
        (Agent::Codex, "codex", &codex_model),
    ] {
        let mut device_samples = Samples::default();
        let mut alone = Samples::default();
        for run in 0..=runs {
            let (first, done) = through_device(&server, agent).await;
            let scratch = tempfile::tempdir().unwrap();
            let req = bench_request(agent, model, &server.url(), run as i64);
            let (first_alone, done_alone) = match agent {
                Agent::ClaudeCode => claude_alone(&claude, &req, scratch.path()).await,
                Agent::Codex => codex_alone(&codex, &req, scratch.path()).await,
            };
            // The first run of each warms caches (the CLI's files, the model's connection).
            if run > 0 {
                device_samples.first_delta.push(first);
                device_samples.done.push(done);
                alone.first_delta.push(first_alone);
                alone.done.push(done_alone);
            }
        }
        println!(
            "agents ({name}): dispatch → first delta p50 {:.0} ms (CLI alone {:.0} ms), → COMPLETED p50 {:.0} ms (CLI alone {:.0} ms)",
            p50(&device_samples.first_delta),
            p50(&alone.first_delta),
            p50(&device_samples.done),
            p50(&alone.done),
        );
        results[name] = json!({
            "device": device_samples.json(),
            "cli_alone": alone.json(),
            "added_ms": {
                "first_delta_p50": p50(&device_samples.first_delta) - p50(&alone.first_delta),
                "completed_p50": p50(&device_samples.done) - p50(&alone.done),
            },
        });
    }
    let _ = device.kill().await;
    server.shutdown().await;
    results
}

/// Dispatch one task to `agent` and time it: `(first delta, COMPLETED stored)`.
async fn through_device(
    server: &wegent_devserver::RunningDevServer,
    agent: Agent,
) -> (Duration, Duration) {
    let mut events = server.events();
    let start = Instant::now();
    let d = server
        .dispatch(
            USER,
            DispatchRequest {
                device_id: Some(DEVICE_ID.into()),
                message: PROMPT.into(),
                agent: Some(agent),
                ..Default::default()
            },
        )
        .await
        .expect("dispatch");
    let task_id = d.task_id;
    events
        .wait_for("the first delta", WAIT, |e| match e {
            ServerEvent::Responses { name, payload, .. }
                if name == TEXT_DELTA && payload["task_id"] == task_id =>
            {
                Some(())
            }
            _ => None,
        })
        .await
        .expect("a text delta");
    let first = start.elapsed();
    let outcome = server.wait_task_terminal(task_id, WAIT).await.unwrap();
    let done = start.elapsed();
    assert_eq!(outcome.status, TaskStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.result_text.as_deref(), Some(ANSWER));
    (first, done)
}

/// The request the device parses from the payload the devserver sends this agent.
fn bench_request(
    agent: Agent,
    model: &ModelSettings,
    server_url: &str,
    id: i64,
) -> payload::TaskRequest {
    let user = User {
        id: 1,
        user_name: USER.into(),
    };
    let payload = task_execute_payload(&ExecuteParams {
        task_id: 9_000 + id,
        subtask_id: 9_000 + id,
        message_id: 1,
        user_subtask_id: 1,
        prompt: PROMPT,
        title: "bench",
        device_id: DEVICE_ID,
        user: &user,
        agent,
        model,
        backend_url: server_url,
        auth_token: "bench-task-token",
        follow_up: false,
        workspace: None,
    });
    payload::parse(&payload).unwrap()
}

fn turn(req: &payload::TaskRequest) -> Turn {
    Turn {
        task_id: req.task_id,
        subtask_id: req.subtask_id,
        message_id: None,
        model: String::new(),
        created_at: 0,
    }
}

/// The task's folders under `scratch`, created as the device creates them (its working
/// directory is `scratch/cwd`).
fn task_dirs(req: &payload::TaskRequest, scratch: &Path) -> TaskDirs {
    let dirs = TaskDirs::new(scratch, req.task_id, scratch.join("cwd"));
    dirs.create_private().unwrap();
    std::fs::create_dir_all(&dirs.cwd).unwrap();
    dirs
}

/// Claude Code alone: `(first text delta, exit)` from the spawn.
async fn claude_alone(
    program: &Path,
    req: &payload::TaskRequest,
    scratch: &Path,
) -> (Duration, Duration) {
    let dirs = task_dirs(req, scratch);
    let prompt_file = req.system_prompt.as_ref().map(|text| {
        let file = dirs.system_prompt_file();
        std::fs::write(&file, text).unwrap();
        file
    });
    let mut cmd = Command::new(program);
    child_env::prepare(&mut cmd)
        .args(claude_launch::args(req, None, prompt_file.as_deref(), None))
        .envs(claude_launch::env(req, &dirs, process::is_root()));
    let mut mapper = StreamMapper::new(turn(req));
    run_alone(
        cmd,
        &dirs.cwd,
        vec![claude_launch::stdin_line(&req.prompt)],
        false,
        |line| {
            let first = mapper.feed(line).iter().any(|e| e.name == TEXT_DELTA);
            (first, Vec::new(), false)
        },
    )
    .await
}

/// Codex alone, the same conversation the device holds: `(first text delta, exit)`.
async fn codex_alone(
    program: &Path,
    req: &payload::TaskRequest,
    scratch: &Path,
) -> (Duration, Duration) {
    let dirs = task_dirs(req, scratch);
    std::fs::create_dir_all(&dirs.codex_home).unwrap();
    let mut cmd = Command::new(program);
    child_env::prepare(&mut cmd)
        .args(codex_launch::args(req))
        .envs(codex_launch::env(req, &dirs));
    let params = codex_launch::ThreadParams {
        cwd: dirs.cwd.clone(),
        developer_instructions: req.system_prompt.clone(),
        config: None,
    };
    let mut mapper = AppServerMapper::new(turn(req), params, req.prompt.clone(), None);
    let opening = mapper.opening();
    run_alone(cmd, &dirs.cwd, opening, true, |line| {
        let first = mapper.feed(line).iter().any(|e| e.name == TEXT_DELTA);
        (first, mapper.take_replies(), mapper.is_over())
    })
    .await
}

/// Spawn `cmd`, write `opening` (then close stdin unless `conversation`), feed stdout lines to
/// `on_line` → (a text delta came, replies to write, the turn is over: close stdin). Returns
/// `(first text delta, exit)` from the spawn.
async fn run_alone(
    mut cmd: Command,
    cwd: &Path,
    opening: Vec<String>,
    conversation: bool,
    mut on_line: impl FnMut(&str) -> (bool, Vec<String>, bool),
) -> (Duration, Duration) {
    cmd.current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the CLI starts");
    let mut stdin = child.stdin.take();
    for line in opening {
        stdin
            .as_mut()
            .unwrap()
            .write_all(line.as_bytes())
            .await
            .unwrap();
    }
    if !conversation {
        stdin = None;
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first = None;
    let read = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let (delta, replies, over) = on_line(&line);
            if delta && first.is_none() {
                first = Some(start.elapsed());
            }
            if let Some(stdin) = stdin.as_mut() {
                for reply in replies {
                    let _ = stdin.write_all(reply.as_bytes()).await;
                }
            }
            if over {
                stdin = None;
            }
        }
        child.wait().await.unwrap();
    })
    .await;
    read.expect("the CLI finished in time");
    (first.expect("the CLI streamed text"), start.elapsed())
}
