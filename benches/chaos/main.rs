//! Chaos: the trust claims of issue 10, each as a figure, in one run (driven by
//! `scripts/chaos.sh`; `--long` for the full counts).
//!
//! (a) connection drops during running tasks → 0 lost tasks, 0 conflicting deltas, exactly one
//!     distinct terminal event per task (the same one again is an at-least-once redelivery,
//!     counted); (b) devserver restarts mid-run → every task terminal; (c) codec,
//!     payload and mapping fuzzed (2 M inputs, 10 M with `--long`) → 0 panics; (d) canary
//!     secrets → 0 leaks; (e) SIGKILL of the device → 0 processes of its tree alive 1 s later;
//!     (f) every ack ≤ 1,000,000 bytes; (g) heartbeats on time while hostile payloads are
//!     processed.
//!
//! Tasks run on the pinned real Claude CLI against the devserver's mock Anthropic API; (a), (b),
//! (f), (g) drive the core in process (`device::start`), (d) and (e) the real binary.
//!
//! Each figure is a check. A failed *hard* check (a lost task, a panic, a leak of the device
//! token, an orphan, ...) makes the run exit 1; the others are reported. Output: a table and
//! `bench-results/chaos.json`.

#[path = "../support/mod.rs"]
mod support;

mod fuzz;
mod limits;
mod orphans;
mod resilience;
mod rig;
mod secrets;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One figure and its verdict.
struct Check {
    name: &'static str,
    figure: String,
    target: &'static str,
    ok: bool,
    /// A failure is a broken invariant (exit 1), not a missed figure.
    hard: bool,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
    sections: serde_json::Map<String, Value>,
}

impl Report {
    fn check(
        &mut self,
        name: &'static str,
        figure: String,
        target: &'static str,
        ok: bool,
        hard: bool,
    ) {
        self.checks.push(Check {
            name,
            figure,
            target,
            ok,
            hard,
        });
    }

    /// A section that could not run to its end: a failed check of its own (`hard` where the
    /// section's figures are invariants).
    fn broken(&mut self, name: &'static str, error: String, hard: bool) {
        eprintln!("{name}: {error}");
        self.sections
            .insert(name.to_owned(), json!({ "error": error }));
        self.check(name, format!("did not run: {error}"), "runs", false, hard);
    }
}

fn main() {
    if !Path::new("/proc/self/stat").exists() {
        eprintln!("chaos reads /proc (Linux only); skipped");
        return;
    }
    let long = support::long_run();
    let started = Instant::now();
    // The core runs in this process: a payload that makes it spin on the runtime's threads would
    // also stop this harness's timers. A plain thread bounds the whole run.
    let budget = Duration::from_secs(support::env_number("WEGENT_CHAOS_BUDGET_SECS", 900));
    std::thread::spawn(move || {
        std::thread::sleep(budget);
        eprintln!("chaos: still running after {budget:?}; stopping (a section hangs)");
        std::process::exit(2);
    });
    // (g) runs unless WEGENT_CHAOS_HOSTILE=0 (it once made the core spin for minutes: a 1 MB
    // header value as a redaction pattern; secrets are now bounded, see redact::MAX_SECRET_LEN).
    let hostile = long || std::env::var("WEGENT_CHAOS_HOSTILE").map_or(true, |v| v != "0");
    let mut report = Report::default();

    // (c) first: pure CPU, no server.
    // The counts can be lowered for a quick look (WEGENT_CHAOS_FUZZ_INPUTS, _DROPS, _RESTARTS).
    let fuzz_inputs = support::env_number(
        "WEGENT_CHAOS_FUZZ_INPUTS",
        if long { 10_000_000 } else { 2_000_000 },
    );
    let fuzzed = fuzz::run(fuzz_inputs, 0x5eed_c4a0);
    println!(
        "fuzz: {} inputs in {:.1} s ({:.0}/s), {} panics",
        fuzzed.inputs,
        fuzzed.seconds,
        fuzzed.inputs as f64 / fuzzed.seconds,
        fuzzed.panics.len()
    );
    report.check(
        "fuzz: panics",
        format!(
            "{} in {} inputs ({:.0}/s)",
            fuzzed.panics.len(),
            fuzzed.inputs,
            fuzzed.inputs as f64 / fuzzed.seconds
        ),
        "0",
        fuzzed.panics.is_empty(),
        true,
    );
    report.check(
        "fuzz: codec round trip",
        format!("{} mismatches", fuzzed.round_trip_mismatches.len()),
        "0",
        fuzzed.round_trip_mismatches.is_empty(),
        false,
    );
    report.sections.insert(
        "fuzz".into(),
        json!({"inputs": fuzzed.inputs, "seconds": fuzzed.seconds,
               "round_trip_mismatches": fuzzed.round_trip_mismatches,
               "per_sec": fuzzed.inputs as f64 / fuzzed.seconds,
               "targets": fuzzed.per_target, "panics": fuzzed.panics, "seeds": fuzzed.seeds}),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let drops = support::env_number("WEGENT_CHAOS_DROPS", if long { 300 } else { 100 });
        let restarts = support::env_number("WEGENT_CHAOS_RESTARTS", if long { 30 } else { 10 });
        core_sections(&mut report, drops, restarts, hostile).await;
        binary_sections(&mut report).await;
    });
    runtime.shutdown_timeout(Duration::from_secs(5));

    print_table(&report);
    let hard_failures: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.hard && !c.ok)
        .map(|c| c.name)
        .collect();
    let results = json!({
        "long": long,
        "seconds": started.elapsed().as_secs_f64(),
        "checks": report.checks.iter().map(|c| json!({
            "name": c.name, "figure": c.figure, "target": c.target, "ok": c.ok, "hard": c.hard,
        })).collect::<Vec<_>>(),
        "hard_failures": hard_failures,
        "sections": report.sections,
    });
    support::write_results("chaos.json", &results);
    println!(
        "bench-results/chaos.json written ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    if !hard_failures.is_empty() {
        eprintln!("chaos: broken invariants: {hard_failures:?}");
        std::process::exit(1);
    }
}

/// (a), (b), (f), (g) on the core in process.
async fn core_sections(report: &mut Report, drops: u64, restarts: u64, hostile: bool) {
    let heartbeat = Duration::from_secs(1);
    let rig = match rig::CoreRig::start(heartbeat).await {
        Ok(rig) => rig,
        Err(e) => return report.broken("core rig", e, true),
    };
    let acks = limits::acks(&rig).await;
    let largest = acks["largest_ack_bytes"].as_u64().unwrap_or(u64::MAX);
    let missing = acks["acks_missing"].as_u64().unwrap_or(1);
    report.check(
        "acks ≤ packet limit",
        format!("largest {largest} B, {missing} missing"),
        "≤ 1000000 B, 0 missing",
        largest <= limits::PACKET_LIMIT as u64 && missing == 0,
        true,
    );
    report.sections.insert("acks".into(), acks);

    for (name, fault, count) in [
        ("drops", resilience::Fault::Drop, drops),
        ("restarts", resilience::Fault::Restart, restarts),
    ] {
        match resilience::run(&rig, fault, count as usize).await {
            Ok(v) => {
                println!("{name}: {v}");
                resilience_checks(report, name, &v);
                report.sections.insert(name.into(), v);
            }
            // A section that stalls (a harness wait timing out) is reported, not an invariant:
            // its figures above are what the invariants are about.
            Err(e) => report.broken(name, e, false),
        }
    }

    // Last: a payload that wedges task handling must not spoil the figures above.
    if !hostile {
        report.check(
            "heartbeat under hostile payloads",
            "skipped (WEGENT_CHAOS_HOSTILE=0)".into(),
            "late ≤ 1000 ms, 0 reconnects",
            false,
            false,
        );
        rig.shutdown().await;
        return;
    }
    let model_url = rig.server.config().model.base_url.clone();
    let hostile = limits::hostile(&rig, &model_url).await;
    let late = hostile["heartbeat_lateness_ms"]
        .as_f64()
        .unwrap_or(f64::MAX);
    let reconnects = hostile["reconnects"].as_u64().unwrap_or(1);
    report.check(
        "heartbeat under hostile payloads",
        format!(
            "max gap {:.0} ms (late {late:.0} ms), {reconnects} reconnects",
            hostile["max_heartbeat_gap_ms"].as_f64().unwrap_or(f64::NAN)
        ),
        "late ≤ 1000 ms, 0 reconnects",
        late <= 1000.0 && reconnects == 0,
        // The lateness is a figure (a loaded CI machine may miss it by a little).
        false,
    );
    // A reconnect means the session loop stalled past the server's patience: an invariant.
    report.check(
        "no reconnect under hostile payloads",
        format!("{reconnects} reconnects"),
        "0",
        reconnects == 0,
        true,
    );
    let next_task = hostile["next_normal_task_started_after_ms"].as_f64();
    report.check(
        "next task after hostile payloads",
        next_task.map_or("did not start within 30 s".into(), |ms| {
            format!("started after {ms:.0} ms")
        }),
        "starts",
        next_task.is_some(),
        true,
    );
    // The decodable hostile tasks (the flood and the huge strings) must each end with an answer
    // the server can settle on; the 5,000-deep one cannot be decoded and is skipped.
    let answered = hostile["hostile_tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["task_id"] != 990_003)
        .filter(|t| t["last"].as_str().is_some_and(rig::is_terminal_name))
        .count();
    report.check(
        "hostile tasks answered",
        format!("{answered} of 2 with a terminal event"),
        "2",
        answered == 2,
        true,
    );
    report.sections.insert("hostile_payloads".into(), hostile);
    rig.shutdown().await;
}

fn resilience_checks(report: &mut Report, name: &'static str, v: &Value) {
    let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
    let (lost, dup, redelivered_name, terminal) = if name == "drops" {
        (
            "drops: lost tasks",
            "drops: duplicate deltas / gaps",
            "drops: events redelivered",
            "drops: one terminal event per task",
        )
    } else {
        (
            "restarts: lost tasks",
            "restarts: duplicate deltas / gaps",
            "restarts: events redelivered",
            "restarts: one terminal event per task",
        )
    };
    let tasks = v["tasks"].as_u64().unwrap_or(0);
    let faults = v["faults"].as_u64().unwrap_or(0);
    report.check(
        lost,
        format!("{} of {tasks} tasks, {faults} faults", count("lost_tasks")),
        "0",
        count("lost_tasks") == 0,
        true,
    );
    let conflicting = v["conflicting_duplicate_deltas"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let gaps = v["delta_gaps"].as_u64().unwrap_or(u64::MAX);
    report.check(
        dup,
        format!("{conflicting} conflicting, {gaps} gaps"),
        "0, 0",
        conflicting == 0 && gaps == 0,
        true,
    );
    // At-least-once delivery: acks in flight when the TCP connection is cut are lost, so those
    // events come again, the same (deltas: same offset and text) (src/outbox.rs). A figure, not
    // an invariant.
    let redelivered = v["redelivered_deltas"].as_u64().unwrap_or(u64::MAX);
    let terminals_again = v["redelivered_terminal_events"]
        .as_u64()
        .unwrap_or(u64::MAX);
    report.check(
        redelivered_name,
        format!("{redelivered} deltas, {terminals_again} terminal events (the same again)"),
        "0",
        redelivered == 0 && terminals_again == 0,
        false,
    );
    let bad = count("tasks_without_exactly_one_terminal_event");
    report.check(
        terminal,
        format!("{bad} tasks with ≠ 1 distinct"),
        "0",
        bad == 0,
        true,
    );
}

/// (d), (e) on the real binary.
async fn binary_sections(report: &mut Report) {
    let mut exe = match orphans::Executor::start().await {
        Ok(exe) => exe,
        Err(e) => return report.broken("binary rig", e, false),
    };
    match secrets::run(&mut exe).await {
        Ok(v) => {
            let device_token = v["device_token_hits"].as_u64().unwrap_or(u64::MAX);
            let leaks = v["leak_count"].as_u64().unwrap_or(u64::MAX);
            report.check(
                "canary: device token",
                format!("{device_token} hits"),
                "0",
                device_token == 0,
                true,
            );
            report.check(
                "canary: task secrets leaks",
                format!("{leaks} outside their channel"),
                "0",
                leaks == 0,
                false,
            );
            println!("canaries: {v}");
            report.sections.insert("canaries".into(), v);
        }
        Err(e) => report.broken("canaries", e, false),
    }
    match orphans::sigkill(&mut exe).await {
        Ok(v) => {
            let alive = v["alive_1s_after_sigkill"].as_u64().unwrap_or(u64::MAX);
            report.check(
                "SIGKILL: tree alive after 1 s",
                format!(
                    "{alive} of {} (after restart: {})",
                    v["tree_before_kill"], v["alive_after_the_device_started_again"]
                ),
                "0",
                alive == 0,
                true,
            );
            report.sections.insert("sigkill".into(), v);
        }
        Err(e) => report.broken("sigkill", e, false),
    }
    exe.stop().await;
}

fn print_table(report: &Report) {
    println!();
    println!("{:<42} {:<46} {:<24} verdict", "check", "figure", "target");
    for c in &report.checks {
        let verdict = match (c.ok, c.hard) {
            (true, _) => "ok",
            (false, true) => "FAIL (invariant)",
            (false, false) => "miss (reported)",
        };
        println!("{:<42} {:<46} {:<24} {verdict}", c.name, c.figure, c.target);
    }
    println!();
}
