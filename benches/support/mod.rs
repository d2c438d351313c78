//! What the benchmarks that run the real `wegent-executor` binary share: starting it against a
//! devserver, awaiting its first accepted heartbeat, summarising samples, writing the JSON.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::{Child, Command};
use wegent_devserver::{EventStream, ServerEvent};

/// The binary under test; `WEGENT_BENCH_BIN` points at another build (A/B comparisons).
pub fn bin() -> String {
    std::env::var("WEGENT_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wegent-executor").to_owned())
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `--long` on the command line (`cargo bench --bench X -- --long`) or `WEGENT_BENCH_LONG=1`.
pub fn long_run() -> bool {
    std::env::args().any(|a| a == "--long")
        || std::env::var("WEGENT_BENCH_LONG").is_ok_and(|v| v == "1")
}

/// `wegent-executor run` for `device_id` with its own home, the token in the environment, no
/// keychain, output discarded (the log file under the home remains). Task folders go under
/// `home/projects` (never the user's `~/.wecode`).
pub fn executor_command(home: &Path, server_url: &str, token: &str, device_id: &str) -> Command {
    let mut cmd = Command::new(bin());
    for var in ["WEGENT_AUTH_TOKEN", "WEGENT_SOCKET_URL", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    let projects = home.join("projects");
    cmd.arg("run")
        .env("WEGENT_EXECUTOR_HOME", home)
        .env("WEGENT_NO_KEYCHAIN", "1")
        .env("WEGENT_BACKEND_URL", server_url)
        .env("WEGENT_TOKEN", token)
        .env("DEVICE_ID", device_id)
        .env("DEVICE_NAME", format!("Bench {device_id}"))
        .env("WECODE_HOME", home.join("wecode"))
        .env("WEGENT_EXECUTOR_PROJECTS_DIR", projects)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

pub fn spawn_executor(home: &Path, server_url: &str, token: &str, device_id: &str) -> Child {
    executor_command(home, server_url, token, device_id)
        .spawn()
        .expect("the wegent-executor binary starts")
}

/// The pinned real Claude CLI (`WEGENT_TEST_CLAUDE`).
pub fn claude_path() -> String {
    let claude = std::env::var("WEGENT_TEST_CLAUDE").unwrap_or_else(|_| {
        format!(
            "{}/.tools/claude/node_modules/.bin/claude",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        Path::new(&claude).is_file(),
        "the Claude Code CLI is needed at {claude} (WEGENT_TEST_CLAUDE); run ./scripts/install-deps.sh"
    );
    claude
}

/// `config.toml` in `home` pointing at the pinned real Claude CLI (`WEGENT_TEST_CLAUDE`).
pub fn write_claude_config(home: &Path) {
    std::fs::write(
        home.join("config.toml"),
        format!(
            "claude_path = {:?}\ntask_timeout_secs = 300\n",
            claude_path()
        ),
    )
    .unwrap();
}

/// The pinned real Codex CLI (`WEGENT_TEST_CODEX`).
pub fn codex_path() -> String {
    let codex = std::env::var("WEGENT_TEST_CODEX").unwrap_or_else(|_| {
        format!(
            "{}/.tools/codex/node_modules/.bin/codex",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        Path::new(&codex).is_file(),
        "the Codex CLI is needed at {codex} (WEGENT_TEST_CODEX); run ./scripts/install-deps.sh"
    );
    codex
}

/// [`write_claude_config`], and the pinned real Codex CLI for Codex bots.
pub fn write_agents_config(home: &Path) {
    write_claude_config(home);
    let file = home.join("config.toml");
    let mut config = std::fs::read_to_string(&file).unwrap();
    config.push_str(&format!("codex_path = {:?}\n", codex_path()));
    std::fs::write(file, config).unwrap();
}

// ---- processes (Linux /proc) ---------------------------------------------------------------

/// `(pid, ppid, pgid, state)` of every process.
pub fn process_table() -> Vec<(u32, u32, i32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces and parentheses; the fields follow the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut f = rest.split_whitespace();
            let state = f.next()?.chars().next()?;
            let ppid = f.next()?.parse().ok()?;
            let pgid = f.next()?.parse().ok()?;
            Some((pid, ppid, pgid, state))
        })
        .collect()
}

/// Every live (not zombie) descendant of `root`.
pub fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            table
                .iter()
                .filter(|(_, ppid, _, state)| *ppid == parent && *state != 'Z')
                .map(|(pid, ..)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The process group of `pid`.
pub fn pgid_of(pid: u32) -> Option<i32> {
    process_table()
        .into_iter()
        .find(|(p, ..)| *p == pid)
        .map(|(_, _, g, _)| g)
}

/// Live (not zombie) processes among `pids` or in the groups `pgids`.
pub fn alive(pids: &[u32], pgids: &[i32]) -> Vec<u32> {
    process_table()
        .into_iter()
        .filter(|(pid, _, pgid, state)| {
            *state != 'Z' && (pids.contains(pid) || pgids.contains(pgid))
        })
        .map(|(pid, ..)| pid)
        .collect()
}

/// Waits for the next heartbeat of `device_id` the server accepted (the device is online: its
/// register was acked, and the first heartbeat follows it at once).
pub async fn accepted_heartbeat(
    events: &mut EventStream,
    device_id: &str,
    wait: Duration,
) -> Result<(), String> {
    events
        .wait_for("an accepted heartbeat", wait, |e| match e {
            ServerEvent::Heartbeat {
                device_id: Some(d),
                ack,
                ..
            } if d == device_id && ack == &json!({"success": true}) => Some(()),
            _ => None,
        })
        .await
        .map_err(|e| format!("{device_id}: {e}"))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `{min, p50, p90, max, samples}` in milliseconds.
pub fn summary(samples: &[Duration]) -> Value {
    summary_ms(&samples.iter().map(|d| ms(*d)).collect::<Vec<_>>())
}

pub fn summary_ms(samples: &[f64]) -> Value {
    if samples.is_empty() {
        return json!({"samples": []});
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let mut v = json!({
        "min": sorted[0],
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "max": sorted[sorted.len() - 1],
        "count": sorted.len(),
    });
    if sorted.len() <= 50 {
        v["samples"] = json!(sorted);
    }
    v
}

/// Runs `bench` on the 2-worker runtime the benchmarks use, prints its results and writes them
/// to `bench-results/<name>`.
pub fn run_and_write(name: &str, bench: impl std::future::Future<Output = Value>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(bench);
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    write_results(name, &results);
}

/// Writes `bench-results/<name>`.
pub fn write_results(name: &str, results: &Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(name),
        serde_json::to_string_pretty(results).unwrap(),
    )
    .unwrap();
}
