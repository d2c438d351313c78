//! Relay benchmarks: how fast and how promptly task output goes from `claude`'s stdout through
//! the mapping into the outbox and out (serialized as the socket would send it).
//!
//! 1. Throughput: a synthetic `claude` (this binary in producer mode) writes N text deltas as
//!    fast as it can; the real TaskManager path relays them. Also the in-memory mapping alone.
//! 2. Added latency at 1k events/s: the producer stamps each delta with its write time; the
//!    consumer measures write → drained from the outbox.
//! 3. Time to first delta with the real CLI against the mock API, next to the CLI's own time to
//!    its first text line when run directly.
//!
//! Run: `cargo bench -p wegent-executor --bench relay` (JSON in `bench-results/relay.json`).

#[path = "../tests/support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "../tests/support/task_harness.rs"]
mod task_harness;

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::Outbox;
use wegent_executor::task::agent::claude::stream::StreamMapper;
use wegent_executor::task::events::Turn;

const MODE_VAR: &str = "RELAY_BENCH_MODE";
const THROUGHPUT_DELTAS: usize = 200_000;
const LATENCY_EVENTS: usize = 3_000;
const LATENCY_RATE_PER_SEC: u64 = 1_000;
const FIRST_DELTA_RUNS: usize = 7;

fn main() {
    if let Ok(mode) = std::env::var(MODE_VAR) {
        produce(&mode);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(run_all());
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("relay.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
}

async fn run_all() -> Value {
    let in_memory = mapping_only();
    println!(
        "mapping only: {:.0} deltas/s",
        in_memory["deltas_per_sec"].as_f64().unwrap()
    );
    let relay = relay_throughput().await;
    println!(
        "relay through the process pipe: {:.0} deltas/s",
        relay["deltas_per_sec"].as_f64().unwrap()
    );
    let latency = relay_latency().await;
    println!(
        "added latency at 1k/s: p50 {:.3} ms, p99 {:.3} ms",
        latency["p50_ms"].as_f64().unwrap(),
        latency["p99_ms"].as_f64().unwrap()
    );
    let first = first_delta().await;
    println!(
        "first delta: device {:.0} ms vs CLI alone {:.0} ms (medians)",
        first["device_first_delta_ms_median"].as_f64().unwrap(),
        first["cli_first_text_line_ms_median"].as_f64().unwrap()
    );
    json!({
        "machine": {"cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
                    "profile": if cfg!(debug_assertions) { "debug" } else { "release" }},
        "mapping_only": in_memory,
        "relay_throughput": relay,
        "relay_latency_1k_per_sec": latency,
        "first_delta_real_cli": first,
        "targets": {"deltas_per_sec_min": 100_000, "p99_ms_max": 2.0},
    })
}

fn delta_line(text: &str) -> String {
    json!({"type": "stream_event", "api_message_id": "msg_bench", "session_id": "bench",
           "event": {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": text}}})
    .to_string()
}

const RESULT_LINE: &str = r#"{"type":"result","subtype":"success","is_error":false,"result":"","session_id":"bench","usage":{"input_tokens":1,"output_tokens":1}}"#;

/// Producer mode: this binary plays `claude`, writing stream-json to stdout.
fn produce(mode: &str) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match mode {
        "throughput" => {
            for i in 0..THROUGHPUT_DELTAS {
                writeln!(out, "{}", delta_line(&format!("tok{i} "))).unwrap();
            }
        }
        "latency" => {
            let start = Instant::now();
            let tick = Duration::from_nanos(1_000_000_000 / LATENCY_RATE_PER_SEC);
            for i in 0..LATENCY_EVENTS {
                let due = start + tick * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                writeln!(out, "{}", delta_line(&format!("{}|", now_ns()))).unwrap();
                out.flush().unwrap();
            }
        }
        other => panic!("unknown producer mode {other}"),
    }
    writeln!(out, "{RESULT_LINE}").unwrap();
    out.flush().unwrap();
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn turn() -> Turn {
    Turn {
        task_id: 1,
        subtask_id: 2,
        message_id: Some(3),
        model: "m".into(),
        created_at: 0,
    }
}

/// The pure path alone: lines → mapper → envelope → outbox → serialized.
fn mapping_only() -> Value {
    let lines: Vec<String> = (0..THROUGHPUT_DELTAS)
        .map(|i| delta_line(&format!("tok{i} ")))
        .collect();
    let outbox = Outbox::new(THROUGHPUT_DELTAS + 10);
    let started = Instant::now();
    let mut mapper = StreamMapper::new(turn());
    let mut bytes = 0usize;
    for line in &lines {
        for event in mapper.feed(line) {
            outbox.push(event.name, mapper.turn().envelope(event));
        }
        // As the session does: take the next event to write (shared), write it, and drop it
        // from the outbox on the server's ack (here: at once).
        while let Some((seq, e)) = outbox.next_to_write() {
            bytes += serde_json::to_string(&e.payload).unwrap().len();
            outbox.acknowledged(seq);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    json!({"deltas": THROUGHPUT_DELTAS, "seconds": secs,
           "deltas_per_sec": THROUGHPUT_DELTAS as f64 / secs, "bytes_out": bytes})
}

fn synthetic_rig(mode: &str) -> (task_harness::Rig, Value) {
    let config = TaskConfig {
        claude_path: Some(std::env::current_exe().unwrap()),
        outbox_capacity: 1_000_000,
        ..TaskConfig::default()
    };
    let rig = task_harness::Rig::new(config);
    let mut payload = task_harness::payload(1, 2, "bench", "http://127.0.0.1:9");
    payload["model_config"]["env"] = json!({ MODE_VAR: mode });
    (rig, payload)
}

/// Drain the outbox like the session does, serializing each event; `on_delta` sees each delta.
async fn drain(rig: &task_harness::Rig, mut on_delta: impl FnMut(&Value)) -> usize {
    let mut deltas = 0;
    loop {
        rig.outbox.ready().await;
        while let Some((seq, e)) = rig.outbox.next_to_write() {
            rig.outbox.acknowledged(seq);
            let wire = serde_json::to_string(&e.payload).unwrap();
            std::hint::black_box(&wire);
            if e.name == "response.output_text.delta" {
                deltas += 1;
                on_delta(&e.payload);
            }
            if e.is_terminal() {
                assert_eq!(e.name, "response.completed", "{}", e.payload);
                return deltas;
            }
        }
    }
}

async fn relay_throughput() -> Value {
    let (rig, payload) = synthetic_rig("throughput");
    let started = Instant::now();
    rig.manager.execute(payload);
    let deltas = drain(&rig, |_| {}).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(deltas, THROUGHPUT_DELTAS);
    json!({"deltas": deltas, "seconds": secs, "deltas_per_sec": deltas as f64 / secs,
           "includes": "process spawn, pipe, line reading, mapping, outbox, JSON serialization"})
}

async fn relay_latency() -> Value {
    let (rig, payload) = synthetic_rig("latency");
    rig.manager.execute(payload);
    let mut latencies_ms = Vec::with_capacity(LATENCY_EVENTS);
    let deltas = drain(&rig, |p| {
        let text = p["data"]["delta"].as_str().unwrap();
        let sent: u128 = text.trim_end_matches('|').parse().unwrap();
        latencies_ms.push((now_ns().saturating_sub(sent)) as f64 / 1e6);
    })
    .await;
    assert_eq!(deltas, LATENCY_EVENTS);
    latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * p).round() as usize];
    json!({"events": deltas, "rate_per_sec": LATENCY_RATE_PER_SEC, "p50_ms": pct(0.50),
           "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
           "measured": "producer write → event drained and serialized from the outbox"})
}

async fn first_delta() -> Value {
    use mock_anthropic::{MockAnthropic, Script};
    let claude = task_harness::claude_path();
    let mock = MockAnthropic::start(Script::Text("Hello from the mock API.".into())).await;
    let mut device_ms = Vec::new();
    let mut cli_first_line_ms = Vec::new();
    let mut cli_first_text_ms = Vec::new();
    for run in 0..FIRST_DELTA_RUNS {
        let rig = task_harness::Rig::new(task_harness::config());
        let started = Instant::now();
        rig.manager.execute(task_harness::payload(
            10 + run as i64,
            20,
            "say hello",
            &mock.url,
        ));
        let mut first = None;
        loop {
            let e = rig.next().await;
            if e.name == "response.output_text.delta" && first.is_none() {
                first = Some(started.elapsed().as_secs_f64() * 1e3);
            }
            if e.is_terminal() {
                break;
            }
        }
        device_ms.push(first.expect("the device relayed no text"));
        let (first_line, first_text) = cli_alone(&claude, &mock.url);
        cli_first_line_ms.push(first_line);
        cli_first_text_ms.push(first_text);
    }
    let paired: Vec<f64> = device_ms
        .iter()
        .zip(&cli_first_text_ms)
        .map(|(d, c)| d - c)
        .collect();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (d, l, t) = (
        median(&mut device_ms),
        median(&mut cli_first_line_ms),
        median(&mut cli_first_text_ms),
    );
    json!({"runs": FIRST_DELTA_RUNS, "device_first_delta_ms_median": d,
           "cli_first_line_ms_median": l, "cli_first_text_line_ms_median": t,
           "device_overhead_ms_median_of_pairs": median(&mut paired.clone()),
           "device_overhead_ms_difference_of_medians": d - t,
           "note": "runs alternate device / CLI alone; the machine is shared, so single runs vary",
           "device_first_delta_ms": device_ms, "cli_first_text_line_ms": cli_first_text_ms})
}

/// The CLI run directly with the same flags and system prompt: ms to its first stdout line and
/// to its first text delta line.
fn cli_alone(claude: &std::path::Path, base_url: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (config_dir, tmp) = (dir.path().join("claude"), dir.path().join("tmp"));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let payload = task_harness::payload(1, 2, "say hello", base_url);
    let prompt_file = dir.path().join("system-prompt.md");
    std::fs::write(&prompt_file, payload["system_prompt"].as_str().unwrap()).unwrap();
    // The device's own argument list (claude::launch::args), so both sides run the same command.
    let request = wegent_executor::task::payload::parse(&payload).unwrap();
    let args = wegent_executor::task::agent::claude::launch::args(
        &request,
        None,
        Some(&prompt_file),
        None,
    );
    let started = Instant::now();
    let mut child = std::process::Command::new(claude)
        .args(&args)
        .current_dir(dir.path())
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("ANTHROPIC_API_KEY", "sk-fake")
        .env("CLAUDE_CONFIG_DIR", &config_dir)
        .env("TMPDIR", &tmp)
        .env("CLAUDE_CODE_TMPDIR", &tmp)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("IS_SANDBOX", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = json!({"type": "user", "session_id": "", "message": {"role": "user", "content": "say hello"},
                      "parent_tool_use_id": null});
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{line}").unwrap();
    drop(stdin);
    let mut first_line = None;
    let mut first_text = None;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let at = started.elapsed().as_secs_f64() * 1e3;
        first_line.get_or_insert(at);
        if line.contains("\"text_delta\"") {
            first_text.get_or_insert(at);
        }
    }
    child.wait().unwrap();
    (
        first_line.unwrap(),
        first_text.expect("the CLI streamed no text"),
    )
}
