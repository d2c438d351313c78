//! Projects benchmark: time from `task:execute` (handed to the TaskManager) to the agent's
//! start, i.e. the device's own preparation of a task's directory.
//!
//! Cases, each over `WEGENT_BENCH_RUNS` runs (default 10):
//! - `plain`: a task without a project (scratch dir), the baseline;
//! - `git_clone_1000_files`: a fresh clone (new folder each run) of a repository with 1,000
//!   files served by `git daemon` on loopback;
//! - `git_reuse`: the same project again, its checkout already there (no clone, no fetch).
//! - `local_path`: a `local_path` project, i.e. an existing folder of the user's;
//! - `follow_up`: the second turn of a `local_path` task, resuming the first turn's session
//!   (`--resume`, checked).
//!
//! The agent is a stand-in script that records the instant it starts (and its arguments), says
//! its session id as the CLI does, and exits: measuring the device, not the Claude CLI's own
//! start-up (~1 s, the same for every case). The stand-in is not Claude, so each task ends with
//! an `error` event; only the start instant counts.
//!
//! Adding a case: build its payload, time it with [`Bench::time_to_agent`] (a new task) or
//! [`Bench::time_follow_up`] (a second turn), and add its summary to the JSON.
//!
//! Target: overhead ≤ 20 ms over a plain task except the clone.
//!
//! Run: `cargo bench -p wegent-executor --bench projects` (JSON in `bench-results/projects.json`).

#[path = "../tests/support/git_server.rs"]
mod git_server;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::broadcast;
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::Outbox;
use wegent_executor::task::TaskManager;

const WAIT: Duration = Duration::from_secs(120);
const REPO_FILES: usize = 1_000;

fn main() {
    if !Path::new("/proc/self/stat").exists() {
        eprintln!("the projects bench needs Linux (git daemon, /proc); skipped");
        return;
    }
    let runs = support::env_number("WEGENT_BENCH_RUNS", 10).max(1) as usize;
    support::run_and_write("projects.json", bench(runs));
}

struct Bench {
    manager: TaskManager,
    outbox: Outbox,
    /// The stand-in agent appends a line per start here: the instant (ns since the epoch),
    /// then its arguments.
    starts: PathBuf,
    next_id: i64,
}

/// The session id the stand-in agent reports, as the CLI's `init` line does.
const AGENT_SESSION: &str = "bench-session";

impl Bench {
    /// Milliseconds from handing `payload` (as a new task) to the manager until the agent
    /// started.
    async fn time_to_agent(&mut self, payload: Value) -> f64 {
        self.next_id += 2;
        self.time_turn(payload, self.next_id, self.next_id + 1)
            .await
            .0
    }

    /// A new task's first turn (not timed), then its second turn (timed), which must resume
    /// the first one's session.
    async fn time_follow_up(&mut self, payload: Value) -> f64 {
        self.next_id += 3;
        let task_id = self.next_id;
        self.time_turn(payload.clone(), task_id, task_id + 1).await;
        let (ms, agent_args) = self.time_turn(payload, task_id, task_id + 2).await;
        assert!(
            agent_args.contains(&format!("--resume {AGENT_SESSION}")),
            "the follow-up did not resume: {agent_args}"
        );
        ms
    }

    /// Run one turn; the milliseconds until the agent started and the agent's arguments.
    async fn time_turn(&self, mut payload: Value, task_id: i64, subtask_id: i64) -> (f64, String) {
        payload["task_id"] = task_id.into();
        payload["subtask_id"] = subtask_id.into();
        let before = std::fs::read_to_string(&self.starts)
            .unwrap_or_default()
            .lines()
            .count();
        let sent = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        self.manager.execute(payload);
        self.until_terminal(subtask_id).await;
        let starts = std::fs::read_to_string(&self.starts).unwrap_or_default();
        let lines: Vec<&str> = starts.lines().collect();
        assert_eq!(
            lines.len(),
            before + 1,
            "the agent did not start (task {task_id})"
        );
        let (started, args) = lines[before].split_once(' ').unwrap_or((lines[before], ""));
        let started: u128 = started.trim().parse().unwrap();
        (
            (started.saturating_sub(sent.as_nanos())) as f64 / 1e6,
            args.to_owned(),
        )
    }

    async fn until_terminal(&self, subtask_id: i64) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                self.outbox.ready().await;
                let event = self.outbox.front().unwrap();
                self.outbox.pop_sent();
                if event.payload["subtask_id"] == subtask_id && event.is_terminal() {
                    return event.payload.clone();
                }
            }
        })
        .await
        .expect("no terminal event in time")
    }
}

async fn bench(runs: usize) -> Value {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let starts = root.path().join("agent-starts");
    let agent = root.path().join("agent.sh");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\necho \"$(date +%s%N) $*\" >> '{}'\n\
             echo '{{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"{AGENT_SESSION}\"}}'\n",
            starts.display()
        ),
    )
    .unwrap();
    // A user's project folder, with some files in it.
    let project = root.path().join("code").join("myproj");
    std::fs::create_dir_all(project.join("src")).unwrap();
    for i in 0..100 {
        std::fs::write(project.join("src").join(format!("f{i}.rs")), "// code\n").unwrap();
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let repos = root.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    git_server::bare_repo(&repos, "big", REPO_FILES);
    let daemon = git_server::GitDaemon::start(&repos).await;
    let url = daemon.url("big.git");

    let config = TaskConfig {
        claude_path: Some(agent),
        ..TaskConfig::default()
    };
    let outbox = Outbox::new(100_000);
    let (tx, _events) = broadcast::channel(256);
    // No download in these tasks: the backend URL is never used.
    let manager = TaskManager::new(
        config,
        home.clone(),
        "http://127.0.0.1:9".into(),
        outbox.clone(),
        tx,
    );
    let mut bench = Bench {
        manager,
        outbox,
        starts,
        next_id: 0,
    };
    let base = base_payload();
    let git_payload = |path: &str| {
        let mut p = base.clone();
        p["git_url"] = url.as_str().into();
        p["branch_name"] = "main".into();
        p["workspace_source"] = "git".into();
        p["project_workspace_path"] = path.into();
        p["project_id"] = 2.into();
        // As in every captured payload: the user's git account, set as the repo's identity.
        p["user"]["git_login"] = "research-bot".into();
        p["user"]["git_email"] = "research-bot@example.invalid".into();
        p
    };

    let mut local_path = base.clone();
    local_path["project_id"] = 1.into();
    local_path["workspace_source"] = "local_path".into();
    local_path["project_workspace_path"] = project.to_str().unwrap().into();

    // Warm-up: the first task pays for page cache and the runtime's first spawns.
    bench.time_to_agent(base.clone()).await;
    let mut plain = Vec::new();
    let mut clone = Vec::new();
    let mut reuse = Vec::new();
    let mut local = Vec::new();
    let mut follow_up = Vec::new();
    for run in 0..runs {
        plain.push(bench.time_to_agent(base.clone()).await);
        local.push(bench.time_to_agent(local_path.clone()).await);
        follow_up.push(bench.time_follow_up(local_path.clone()).await);
        clone.push(
            bench
                .time_to_agent(git_payload(&format!("projects/fresh-{run}")))
                .await,
        );
        reuse.push(bench.time_to_agent(git_payload("projects/fresh-0")).await);
    }
    let checkout = home.join("workspace/projects/fresh-0");
    assert_eq!(
        std::fs::read_dir(checkout.join("src")).unwrap().count(),
        REPO_FILES,
        "the clone holds the repository"
    );
    let plain = support::summary_ms(&plain);
    let clone = support::summary_ms(&clone);
    let reuse = support::summary_ms(&reuse);
    let local = support::summary_ms(&local);
    let follow_up = support::summary_ms(&follow_up);
    let over_plain =
        |case: &Value| round(case["p50"].as_f64().unwrap() - plain["p50"].as_f64().unwrap());
    json!({
        "what": "ms from task:execute to the agent's start (stand-in agent); \
                 git over git daemon on loopback",
        "runs": runs,
        "repo_files": REPO_FILES,
        "plain": plain,
        "git_clone_1000_files": clone,
        "git_reuse": reuse,
        "local_path": local,
        "follow_up": follow_up,
        "git_reuse_overhead_over_plain_p50_ms": over_plain(&reuse),
        "git_clone_overhead_over_plain_p50_ms": over_plain(&clone),
        "local_path_overhead_over_plain_p50_ms": over_plain(&local),
        "follow_up_overhead_over_plain_p50_ms": over_plain(&follow_up),
    })
}

/// The captured sample payload, its model pointed nowhere (the stand-in agent never calls it).
fn base_payload() -> Value {
    let raw = include_str!("../tests/fixtures/task-execute.sample.json");
    let mut p: Value = serde_json::from_str(raw).unwrap();
    p["prompt"] = "bench".into();
    p["model_config"]["base_url"] = "http://127.0.0.1:9/v1".into();
    p
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}
