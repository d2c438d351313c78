//! Reconnect after a real outage: how long after the server is back the device is online again,
//! for outages long enough that the reconnect backoff has grown to its 30 s cap.
//!
//! 1. Real processes: `WEGENT_BENCH_OUTAGE_DEVICES` (default 5) `wegent-executor run` processes
//!    (the bench build) against an in-process devserver with the real Wegent timings. The server
//!    stops listening (every socket dropped, the port closed: connects are refused) for 10 s and
//!    60 s, and also 10 min with `--long` (`WEGENT_BENCH_LONG=1`); then it listens again and the
//!    clock runs until each device's first accepted heartbeat. All processes connect from
//!    127.0.0.1, so the devserver's per-address connect limit is lifted here; the fleet
//!    simulation below checks the limit.
//! 2. Fleet simulation: 1,000 devices, each its own IP, on a simulated clock (in process, the
//!    session's own decision functions driven by `session::sim`; connects and checks take no
//!    time), against a server that is gone for 10 s, 60 s and 10 min and then applies the real
//!    connect rate limit (30 attempts per 30 s per IP, sliding window: protocol.md §1.1, §10).
//!    Reported: online after the server is back (p50/p99/max), connects per device in any 30 s
//!    window against the limit, refusals, the fleet's connects per second and readiness checks
//!    per second; the same with the checks turned off (the backoff alone, as before).
//!
//! Targets: online ≤ 2 s (p50 ≤ 1 s) after the server is back; every device under the limit.
//!
//! Run: `cargo bench -p wegent-executor --bench outage [-- --long]` (JSON in
//! `bench-results/reconnect.json`).

mod support;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use wegent_devserver::{DevServer, DevServerConfig, ServerEvent, Timings};
use wegent_executor::config::BackoffConfig;
use wegent_executor::session::machine::Failure;
use wegent_executor::session::probe::ProbeOutcome;
use wegent_executor::session::sim::{SimAction, SimDevice, SimServer};
use wegent_executor::sio::ConnectError;

use support::{accepted_heartbeat, ms, summary, summary_ms};

const WAIT: Duration = Duration::from_secs(60);
/// The server's connect rate limit (protocol.md §1.1: `DEVICE_CONNECT_RATE_LIMIT_*`).
const LIMIT_WINDOW: Duration = Duration::from_secs(30);
const LIMIT_MAX: usize = 30;
const FLEET: usize = 1_000;
const TARGET_MAX_MS: f64 = 2_000.0;
const TARGET_P50_MS: f64 = 1_000.0;

fn main() {
    let long = support::long_run();
    let mut outages = vec![10, 60];
    if long {
        outages.push(600);
    }
    let devices = support::env_number("WEGENT_BENCH_OUTAGE_DEVICES", 5).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let real = runtime.block_on(real_outages(&outages, devices));
    let fleet: Vec<Value> = [10, 60, 600]
        .iter()
        .map(|secs| fleet_outage(Duration::from_secs(*secs)))
        .collect();

    print_table(&real, &fleet);
    let results = json!({
        "binary": support::bin(),
        "long": long,
        "real_processes": real,
        "fleet_simulation": {
            "note": "in-process: the session's decision functions (SessionMachine via session::sim) on a simulated clock; 1,000 devices, each its own IP; connects and readiness checks take no time",
            "devices": FLEET,
            "server_limit": {"attempts": LIMIT_MAX, "window_secs": LIMIT_WINDOW.as_secs(), "per": "client IP, per worker"},
            "outages": fleet,
        },
        "backoff": format!("{:?}", BackoffConfig::default()),
        "targets": {"online_after_server_back_max_ms": TARGET_MAX_MS, "online_after_server_back_p50_ms": TARGET_P50_MS, "connects_per_ip_per_30s": LIMIT_MAX},
    });
    support::write_results("reconnect.json", &results);
    println!("bench-results/reconnect.json written");
}

// ---- real processes ------------------------------------------------------------------------

async fn real_outages(outages: &[u64], devices: usize) -> Value {
    let mut cfg = DevServerConfig::for_tests();
    cfg.timings = Timings {
        // Every process connects from 127.0.0.1: the per-address limit would count them as one.
        rate_limit_max: 10_000,
        ..Timings::wegent()
    };
    let server = DevServer::start(cfg).await.unwrap();
    let token = server.demo_token().unwrap();
    let homes: Vec<tempfile::TempDir> =
        (0..devices).map(|_| tempfile::tempdir().unwrap()).collect();
    let ids: Vec<String> = (0..devices)
        .map(|i| format!("device-bench-outage-{i}"))
        .collect();

    let mut events = server.events();
    let mut children: Vec<_> = homes
        .iter()
        .zip(&ids)
        .map(|(home, id)| support::spawn_executor(home.path(), &server.url(), &token, id))
        .collect();
    for id in &ids {
        accepted_heartbeat(&mut events, id, WAIT)
            .await
            .expect("online at start");
    }

    let mut results = Vec::new();
    for &secs in outages {
        server.stop_accepting().await;
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let mut events = server.events();
        let up = Instant::now();
        server.resume().await.unwrap();
        let back = online_again(&mut events, &ids, up).await;
        let samples: Vec<Duration> = back.values().copied().collect();
        let s = summary(&samples);
        println!(
            "real outage {secs} s: {} devices online again after the server was back: p50 {:.0} ms, max {:.0} ms",
            samples.len(),
            s["p50"].as_f64().unwrap_or(f64::NAN),
            s["max"].as_f64().unwrap_or(f64::NAN),
        );
        results.push(json!({
            "outage_secs": secs,
            "devices": ids.len(),
            "online_after_server_back_ms": s,
            "not_back_within_secs": {"secs": WAIT.as_secs(), "devices": ids.len() - samples.len()},
        }));
    }
    for child in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    server.shutdown().await;
    json!(results)
}

/// The first accepted heartbeat of each device after `up`: how long after `up` it came.
async fn online_again(
    events: &mut wegent_devserver::EventStream,
    ids: &[String],
    up: Instant,
) -> HashMap<String, Duration> {
    let mut back = HashMap::new();
    let deadline = up + WAIT;
    while back.len() < ids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = events
            .wait_for("an accepted heartbeat", left, |e| match e {
                ServerEvent::Heartbeat {
                    device_id: Some(d),
                    ack,
                    ..
                } if ack == &json!({"success": true}) => Some(d.clone()),
                _ => None,
            })
            .await;
        match seen {
            Ok(id) => {
                back.entry(id).or_insert_with(|| up.elapsed());
            }
            Err(e) => {
                eprintln!("not every device came back: {e}");
                break;
            }
        }
    }
    back
}

// ---- fleet simulation ----------------------------------------------------------------------

/// The simulated server: gone until `up_at`, then the real per-IP sliding-window limit.
struct FleetServer {
    up_at: Instant,
    /// Per device (= per IP): the attempts the limiter counted, as the real one keeps them.
    attempts: Vec<Vec<Instant>>,
    /// Per device: every connect the device made (while down too), for the window figure.
    connects: Vec<Vec<Instant>>,
    refused: usize,
    probes: Vec<Instant>,
}

impl SimServer for FleetServer {
    fn probe(&mut self, _: usize, at: Instant) -> ProbeOutcome {
        self.probes.push(at);
        if at >= self.up_at {
            ProbeOutcome::Ready
        } else {
            ProbeOutcome::Down
        }
    }

    fn connect(&mut self, device: usize, at: Instant) -> Result<(), Failure> {
        self.connects[device].push(at);
        if at < self.up_at {
            return Err(Failure::Connect(ConnectError::Unreachable(
                "connection refused".into(),
            )));
        }
        let attempts = &mut self.attempts[device];
        attempts.retain(|t| *t > at - LIMIT_WINDOW);
        if attempts.len() >= LIMIT_MAX {
            self.refused += 1;
            return Err(Failure::Connect(ConnectError::RateLimited(
                "Too many device connection attempts".into(),
            )));
        }
        attempts.push(at);
        Ok(())
    }
}

fn fleet_outage(outage: Duration) -> Value {
    let with = simulate_fleet(outage, true);
    let without = simulate_fleet(outage, false);
    json!({"outage_secs": outage.as_secs(), "with_readiness_checks": with, "backoff_only": without})
}

fn simulate_fleet(outage: Duration, probing: bool) -> Value {
    let mut rng = rand::rngs::StdRng::seed_from_u64(outage.as_secs() * 2 + probing as u64);
    let t0 = Instant::now();
    let up_at = t0 + outage;
    let mut server = FleetServer {
        up_at,
        attempts: vec![Vec::new(); FLEET],
        connects: vec![Vec::new(); FLEET],
        refused: 0,
        probes: Vec::new(),
    };
    let mut devices: Vec<SimDevice> = (0..FLEET)
        .map(|id| SimDevice::online(id, BackoffConfig::default(), probing, t0))
        .collect();
    // Every device sees its connection reset within 50 ms of the server going away.
    let mut queue = BinaryHeap::new();
    for (id, device) in devices.iter_mut().enumerate() {
        let lost = t0 + Duration::from_millis(rng.random_range(0..50));
        device.lose_connection(lost, rng.random());
        if let Some(at) = device.next_action_at() {
            queue.push(Reverse((at, id)));
        }
    }
    let give_up = up_at + Duration::from_secs(300);
    let mut online_after = Vec::with_capacity(FLEET);
    while let Some(Reverse((at, id))) = queue.pop() {
        if at > give_up {
            break;
        }
        let action = devices[id].step(at, &mut server, || rng.random());
        if action == Some(SimAction::Connected) {
            online_after.push(ms(at - up_at));
        }
        if let Some(next) = devices[id].next_action_at() {
            queue.push(Reverse((next, id)));
        }
    }

    let busiest_window = server
        .connects
        .iter()
        .map(|c| busiest(c, LIMIT_WINDOW))
        .max()
        .unwrap_or(0);
    let all_connects: Vec<Instant> = server.connects.iter().flatten().copied().collect();
    let while_down = all_connects.iter().filter(|t| **t < up_at).count();
    let secs_down = outage.as_secs_f64().max(1.0);
    let probes_while_down = server.probes.iter().filter(|t| **t < up_at).count();
    json!({
        "online_after_server_back_ms": summary_ms(&online_after),
        "devices_online": online_after.len(),
        "connects_while_down": while_down,
        "connects_after_back": all_connects.len() - while_down,
        "fleet_connects_per_sec_peak": busiest(&all_connects, Duration::from_secs(1)),
        "fleet_connects_per_sec_peak_after_back": busiest(
            &all_connects.iter().filter(|t| **t >= up_at).copied().collect::<Vec<_>>(),
            Duration::from_secs(1),
        ),
        "max_connects_per_device_in_30s": busiest_window,
        "rate_limited_refusals": server.refused,
        "readiness_checks_per_sec_while_down": probes_while_down as f64 / secs_down,
        "readiness_checks_per_sec_peak": busiest(&server.probes, Duration::from_secs(1)),
    })
}

/// The most instants in any window of `width`.
fn busiest(times: &[Instant], width: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

fn print_table(real: &Value, fleet: &[Value]) {
    println!();
    println!("online after the server is back (target: max ≤ 2000 ms, p50 ≤ 1000 ms)");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>11} {:>9} {:>12} {:>10}",
        "", "p50 ms", "p99 ms", "max ms", "max/IP/30s", "refused", "connects/s*", "checks/s"
    );
    for r in real.as_array().into_iter().flatten() {
        let s = &r["online_after_server_back_ms"];
        println!(
            "{:<44} {:>9.0} {:>9.0} {:>9.0}",
            format!(
                "real: {} processes, {} s outage",
                r["devices"], r["outage_secs"]
            ),
            s["p50"].as_f64().unwrap_or(f64::NAN),
            s["p99"].as_f64().unwrap_or(f64::NAN),
            s["max"].as_f64().unwrap_or(f64::NAN),
        );
    }
    for f in fleet {
        for (label, key) in [
            ("checks", "with_readiness_checks"),
            ("backoff only", "backoff_only"),
        ] {
            let r = &f[key];
            let s = &r["online_after_server_back_ms"];
            let n = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<44} {:>9.0} {:>9.0} {:>9.0} {:>11} {:>9} {:>12} {:>10.0}",
                format!("fleet 1000, {} s outage, {label}", f["outage_secs"]),
                s["p50"].as_f64().unwrap_or(f64::NAN),
                s["p99"].as_f64().unwrap_or(f64::NAN),
                s["max"].as_f64().unwrap_or(f64::NAN),
                n("max_connects_per_device_in_30s"),
                n("rate_limited_refusals"),
                n("fleet_connects_per_sec_peak_after_back"),
                n("readiness_checks_per_sec_while_down"),
            );
        }
    }
    println!("* connects/s: the fleet's busiest second after the server is back; checks/s: readiness checks per second while it is down");
    println!();
}
