//! Devserver throughput and latency on loopback, measured with the independent wire client.
//! Prints the numbers and writes `bench-results/devserver-bench.json`.
//!
//! `cargo bench -p wegent-devserver --bench devserver` (`scripts/bench.sh` runs it).

use std::time::{Duration, Instant};

use serde_json::json;
use wegent_devserver::wire_client::{Incoming, WireClient};
use wegent_devserver::{DevServer, DevServerConfig};

const T: Duration = Duration::from_secs(10);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    json!({"n": ms.len(), "p50_ms": percentile(&ms, 0.5), "p99_ms": percentile(&ms, 0.99), "max_ms": ms[ms.len() - 1]})
}

fn register(device_id: &str) -> serde_json::Value {
    json!({"device_id": device_id, "name": device_id, "device_type": "local", "runtime_instance_id": "rt"})
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut cfg = DevServerConfig::for_tests();
    cfg.timings.online_ttl = Duration::from_secs(600);
    cfg.timings.rate_limit_max = 100_000;
    let server = DevServer::start(cfg).await.expect("devserver starts");
    let token = server.demo_token().expect("demo user");

    // 1. connect + register, sequential devices.
    let mut connect_ms = Vec::new();
    let mut clients = Vec::new();
    for i in 0..50 {
        let t0 = Instant::now();
        let mut c = WireClient::connect_with_token(&server.url(), &token)
            .await
            .expect("connect");
        let ack = c
            .call("device:register", &register(&format!("bench-{i}")), T)
            .await
            .unwrap_or_else(|e| panic!("register {i}: {e}"));
        assert_eq!(ack["success"], true);
        connect_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        clients.push(c);
    }

    // 2. heartbeat ack latency on one socket.
    let mut dev = clients.remove(0);
    let hb = json!({"device_id": "bench-0", "runtime_instance_id": "rt",
        "runtime_capacity": {"limit": 5, "active": 0, "active_task_ids": [], "queued": 0}});
    let mut hb_ms = Vec::new();
    for _ in 0..2000 {
        let t0 = Instant::now();
        let ack = dev
            .call("device:heartbeat", &hb, T)
            .await
            .expect("heartbeat");
        assert_eq!(ack["success"], true);
        hb_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }

    // 3. dispatch → task:execute (72 KB) → 10 deltas + completed → COMPLETED, one at a time.
    let device = tokio::spawn(async move {
        loop {
            match dev.next(Duration::from_secs(30)).await {
                Ok(Incoming::Event { name, args, .. }) if name == "task:execute" => {
                    let (t, s) = (args[0]["task_id"].clone(), args[0]["subtask_id"].clone());
                    for k in 0..10 {
                        dev.emit("response.output_text.delta", &json!({"task_id": t, "subtask_id": s, "data": {"delta": format!("w{k} "), "offset": k}}));
                    }
                    dev.emit("response.completed", &json!({"task_id": t, "subtask_id": s, "data": {"response": {"output": []}}}));
                }
                Ok(Incoming::Closed) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    let mut task_ms = Vec::new();
    let started = Instant::now();
    for i in 0..200 {
        let t0 = Instant::now();
        let d = server
            .dispatch_task("admin", Some("bench-0"), &format!("task {i}"))
            .await
            .expect("dispatch");
        let outcome = server
            .wait_task_terminal(d.task_id, T)
            .await
            .expect("settles");
        assert_eq!(
            outcome.result_text.as_deref(),
            Some("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 ")
        );
        task_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let tasks_per_s = 200.0 / started.elapsed().as_secs_f64();

    let report = json!({
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "connect_and_register": summary(connect_ms),
        "heartbeat_ack": summary(hb_ms),
        "task_round_trip_72kb_payload_10_deltas": summary(task_ms),
        "tasks_per_second_sequential": tasks_per_s,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results");
    std::fs::create_dir_all(&dir).expect("bench-results directory");
    std::fs::write(
        dir.join("devserver-bench.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .expect("write");
    device.abort();
    server.shutdown().await;
}
