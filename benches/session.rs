//! Session benchmarks with the real `wegent-executor` binary (built with the bench profile, i.e.
//! release) as a child process, against an in-process devserver with the real Wegent timings
//! (pings every 25 s; the CLI heartbeats every 30 s).
//!
//! 1. Process start → online: from `spawn` until the devserver has accepted the device's first
//!    heartbeat (register acked, then heartbeat acked), over `WEGENT_BENCH_RUNS` runs (default 10).
//! 2. Back online after the server restarts: devserver `restart()` (all sockets dropped, port
//!    closed and reopened), then until the next accepted heartbeat. One per run, each with a
//!    fresh process so every sample starts from the same backoff state.
//! 3. Idle: RSS (`VmRSS`, peak `VmHWM`) and CPU (`utime + stime`) of a process that stays online
//!    for `WEGENT_BENCH_IDLE_SECS` (default 60).
//!
//! Targets: ≤ 20 ms to online, ≤ 8 MB RSS, ≈ 0 % idle CPU, ≤ 1 s back online.
//!
//! Run: `cargo bench -p wegent-executor --bench session` (JSON in `bench-results/session.json`).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Child;
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer, ServerEvent, Timings};

use support::{bin, env_number, ms, summary};

const DEVICE_ID: &str = "device-bench-session";
const WAIT: Duration = Duration::from_secs(30);

fn main() {
    if !Path::new("/proc/self/stat").exists() {
        eprintln!("the session bench reads /proc (Linux only); skipped");
        return;
    }
    let runs = env_number("WEGENT_BENCH_RUNS", 10).max(1) as usize;
    let idle = Duration::from_secs(env_number("WEGENT_BENCH_IDLE_SECS", 60));
    support::run_and_write("session.json", bench(runs, idle));
}

async fn bench(runs: usize, idle: Duration) -> Value {
    let mut cfg = DevServerConfig::for_tests();
    cfg.timings = Timings {
        // Every run reconnects a few times from 127.0.0.1.
        rate_limit_max: 10_000,
        ..Timings::wegent()
    };
    let server = DevServer::start(cfg).await.unwrap();
    // A login JWT, as after `wegent-executor login` (an API key skips the default-device refresh
    // that follows the register: `WEGENT_BENCH_API_KEY=1`).
    let token = if std::env::var_os("WEGENT_BENCH_API_KEY").is_some() {
        server.create_api_key("admin")
    } else {
        server.demo_token().unwrap()
    };
    // One executor home for all runs, as on an installed machine (device id and logs exist).
    let home = tempfile::tempdir().unwrap();

    // Warm-up: creates the device id and log folder, loads the binary into the page cache.
    let (warm, _) = start_online(&server, home.path(), &token).await;
    stop(&server, warm).await;

    let mut to_online = Vec::with_capacity(runs);
    let mut back_online = Vec::with_capacity(runs);
    let mut back_online_total = Vec::with_capacity(runs);
    for run in 0..runs {
        let (mut child, took) = start_online(&server, home.path(), &token).await;
        to_online.push(took);

        let mut events = server.events();
        let down = Instant::now();
        server.restart().await.unwrap();
        let up = Instant::now();
        accepted_heartbeat(&mut events, &mut child).await;
        back_online.push(up.elapsed());
        back_online_total.push(down.elapsed());
        println!(
            "run {run}: online after {:.1} ms; after a restart ({:.0} ms down) online again {:.0} ms later",
            ms(to_online[run]),
            ms(up - down),
            ms(back_online[run]),
        );
        stop(&server, child).await;
    }

    let idle_result = idle_bench(&server, home.path(), &token, idle).await;
    server.shutdown().await;

    json!({
        "binary": bin(),
        "runs": runs,
        "start_to_online_ms": summary(&to_online),
        "server_restart": {
            "back_online_after_server_up_ms": summary(&back_online),
            "back_online_from_restart_call_ms": summary(&back_online_total),
        },
        "idle": idle_result,
        "targets": {
            "start_to_online_ms": 20,
            "idle_rss_mb": 8,
            "idle_cpu_percent": 0,
            "back_online_ms": 1000,
        },
    })
}

/// Keep one process online for `idle`, then read its memory and the CPU it used meanwhile.
async fn idle_bench(server: &RunningDevServer, home: &Path, token: &str, idle: Duration) -> Value {
    let (child, _) = start_online(server, home, token).await;
    let pid = child.id().unwrap();
    let mut events = server.events();
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    tokio::time::sleep(idle).await;
    let elapsed = started.elapsed();
    let cpu_after = cpu_ticks(pid);
    let memory = memory_kb(pid);
    // RSS split: private (heap, stacks) vs file-backed (the binary's and libraries' pages,
    // shared with every other process mapping them and dropped first under memory pressure).
    let rss_anon = proc_status_value(pid, "RssAnon:");
    let rss_file = proc_status_value(pid, "RssFile:");
    let threads = proc_status_value(pid, "Threads:");
    // Heartbeats during the idle period (expected: one per 30 s).
    let mut beats = 0;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(1), events.next()).await {
        if matches!(e, ServerEvent::Heartbeat { .. }) {
            beats += 1;
        }
    }
    stop(server, child).await;

    let ticks_per_sec = clock_ticks_per_sec();
    let cpu_secs = (cpu_after - cpu_before) as f64 / ticks_per_sec;
    let result = json!({
        "idle_secs": elapsed.as_secs_f64(),
        "vm_rss_kb": memory.0,
        "vm_hwm_kb": memory.1,
        "vm_rss_mb": memory.0 as f64 / 1024.0,
        "vm_hwm_mb": memory.1 as f64 / 1024.0,
        "rss_anon_kb": rss_anon,
        "rss_file_kb": rss_file,
        "binary_bytes": std::fs::metadata(bin()).map(|m| m.len()).unwrap_or(0),
        "threads": threads,
        "cpu_ticks": cpu_after - cpu_before,
        "cpu_percent": 100.0 * cpu_secs / elapsed.as_secs_f64(),
        "heartbeats_seen": beats,
    });
    println!("idle: {result}");
    result
}

fn spawn(home: &Path, server: &RunningDevServer, token: &str) -> Child {
    support::spawn_executor(home, &server.url(), token, DEVICE_ID)
}

/// Start a process and wait until the devserver accepted its first heartbeat: the process and
/// how long that took from just before `spawn`.
async fn start_online(server: &RunningDevServer, home: &Path, token: &str) -> (Child, Duration) {
    let mut events = server.events();
    let started = Instant::now();
    let mut child = spawn(home, server, token);
    accepted_heartbeat(&mut events, &mut child).await;
    (child, started.elapsed())
}

async fn accepted_heartbeat(events: &mut wegent_devserver::EventStream, child: &mut Child) {
    tokio::select! {
        r = support::accepted_heartbeat(events, DEVICE_ID, WAIT) => r.expect("the device comes online"),
        status = child.wait() => panic!("wegent-executor exited: {status:?}"),
    }
}

/// SIGTERM, wait for the exit and for the server to see the socket go.
async fn stop(server: &RunningDevServer, mut child: Child) {
    let mut events = server.events();
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    events
        .disconnect_of(DEVICE_ID, WAIT)
        .await
        .expect("the server saw the disconnect");
}

fn proc_status_value(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `(VmRSS, VmHWM)` in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    (
        proc_status_value(pid, "VmRSS:"),
        proc_status_value(pid, "VmHWM:"),
    )
}

/// `utime + stime` of the process, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may contain spaces; the fields after it start past the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14 → index 11, stime → index 12.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
