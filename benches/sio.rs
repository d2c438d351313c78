//! Socket.IO client benchmarks.
//!
//! 1. Codec: decode and encode of a real 72 KB `task:execute` frame and of a heartbeat-sized
//!    event, in-memory.
//! 2. Wire, against an in-process socketioxide server on loopback: emit throughput of small
//!    events (each emit returns once written), call round-trip latency (p50/p99), and the round
//!    trip of a 72 KB `task:execute` and a 900 KB event (we emit it, the server emits it back).
//!
//! Run: `cargo bench -p wegent-executor --bench sio` (JSON in `bench-results/sio.json`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use tokio::sync::mpsc;
use wegent_executor::sio::codec;
use wegent_executor::sio::{self, ConnectOptions, Inbound};

const NS: &str = "/local-executor";
const CODEC_ROUNDS: usize = 300;
const SMALL_ROUNDS: usize = 200_000;
const EMITS: usize = 20_000;
const CALLS: usize = 2_000;
const BIG_EVENTS: usize = 50;
/// The longest any one step may wait; a lost event or echo must fail, never hang the run.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let codec = codec_bench();
    let wire = runtime.block_on(wire_bench());
    let results = json!({"codec": codec, "wire": wire});
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("sio.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
}

fn task_execute_payload() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/task-execute.sample.json"
    );
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap(),
        // Same size and shape class if shared/ is not beside the repository.
        Err(_) => json!({"task_id": 3, "subtask_id": 4, "system_prompt": "s".repeat(72_000)}),
    }
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn codec_bench() -> Value {
    let payload = task_execute_payload();
    let frame = codec::encode_event(NS, None, "task:execute", &payload).unwrap();

    let started = Instant::now();
    for _ in 0..CODEC_ROUNDS {
        std::hint::black_box(codec::decode(std::hint::black_box(&frame)).unwrap());
    }
    let decode = started.elapsed();
    let started = Instant::now();
    for _ in 0..CODEC_ROUNDS {
        std::hint::black_box(codec::encode_event(NS, None, "task:execute", &payload).unwrap());
    }
    let encode = started.elapsed();

    let small = json!({"device_id": "device-3f9c0a1b2c3d4e5f60718293",
        "runtime_capacity": {"limit": 5, "active": 1, "active_task_ids": ["282"], "queued": 0}});
    let small_frame = codec::encode_event(NS, Some(7), "device:heartbeat", &small).unwrap();
    let started = Instant::now();
    for _ in 0..SMALL_ROUNDS {
        std::hint::black_box(codec::decode(std::hint::black_box(&small_frame)).unwrap());
    }
    let small_decode = started.elapsed();

    let mb = frame.len() as f64 * CODEC_ROUNDS as f64 / 1e6;
    let result = json!({
        "task_execute_frame_bytes": frame.len(),
        "task_execute_decode_us": decode.as_secs_f64() * 1e6 / CODEC_ROUNDS as f64,
        "task_execute_decode_mb_per_sec": mb / decode.as_secs_f64(),
        "task_execute_encode_us": encode.as_secs_f64() * 1e6 / CODEC_ROUNDS as f64,
        "task_execute_encode_mb_per_sec": mb / encode.as_secs_f64(),
        "heartbeat_frame_bytes": small_frame.len(),
        "heartbeat_decode_per_sec": per_second(SMALL_ROUNDS, small_decode),
    });
    println!("codec: {result}");
    result
}

async fn start_server() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<()>) {
    let (layer, io) = SocketIo::builder().max_payload(8_000_000).build_layer();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    // Handlers are installed in a middleware: socketioxide runs the connect handler in a task
    // spawned *after* sending CONNECT, so handlers installed there can miss the client's first
    // events (the bench then waited forever for them).
    let install = move |s: SocketRef| {
        let seen = seen_tx.clone();
        s.on("note", async move |_: SocketRef| {
            let _ = seen.send(());
        });
        s.on("echo", async |Data(d): Data<Value>, ack: AckSender| {
            let _ = ack.send(&d);
        });
        s.on("send", async |s: SocketRef, Data(d): Data<Value>| {
            let _ = s.emit("payload", &d);
        });
        std::future::ready(Ok::<(), std::convert::Infallible>(()))
    };
    let on_connect = |_: SocketRef| async {};
    io.ns(NS, on_connect.with(install));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// A lost event fails the bench with a message instead of hanging it.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT_LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {WAIT_LIMIT:?}"))
}

async fn wire_bench() -> Value {
    let (addr, mut seen) = start_server().await;
    let opts = ConnectOptions::new(format!("http://{addr}"), NS, json!({"token": "bench"}));
    let (client, mut inbound) = within("connect", sio::connect(opts)).await.unwrap();

    // Emit throughput: until the server has received every event.
    let event = json!({"event_type": "response.output_text.delta", "task_id": 3, "subtask_id": 4,
                       "data": {"delta": "hello from the bench ".repeat(4)}});
    let started = Instant::now();
    for _ in 0..EMITS {
        client.emit("note", event.clone()).await.unwrap();
    }
    for i in 0..EMITS {
        within(&format!("the server's copy of event {i}"), seen.recv())
            .await
            .unwrap();
    }
    let emits = per_second(EMITS, started.elapsed());

    // Call round trips, one at a time.
    let mut rtts = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let started = Instant::now();
        let ack = client
            .call("echo", json!({"i": i}), Duration::from_secs(5))
            .await
            .unwrap();
        rtts.push(started.elapsed());
        assert_eq!(ack[0]["i"], json!(i));
    }
    rtts.sort();
    let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;

    // Large events both ways: we emit the payload, the server emits it back to us.
    let task_ms = echo_round_trip_ms(&client, &mut inbound, task_execute_payload()).await;
    let blob = json!({"blob": "x".repeat(900_000)});
    let blob_ms = echo_round_trip_ms(&client, &mut inbound, blob).await;
    client.disconnect().await;

    let result = json!({
        "emit_small_events_per_sec": emits,
        "call_rtt_p50_us": pct(0.50),
        "call_rtt_p99_us": pct(0.99),
        "task_execute_echo_round_trip_ms": task_ms,
        "event_900kb_echo_round_trip_ms": blob_ms,
    });
    println!("wire: {result}");
    result
}

/// Mean milliseconds from our emit of `payload` until the server's copy is on our inbound channel.
async fn echo_round_trip_ms(
    client: &sio::Client,
    inbound: &mut mpsc::Receiver<Inbound>,
    payload: Value,
) -> f64 {
    let started = Instant::now();
    for _ in 0..BIG_EVENTS {
        client.emit("send", payload.clone()).await.unwrap();
        match within("the server's echo", inbound.recv()).await {
            Some(Inbound::Event { name, .. }) => assert_eq!(name, "payload"),
            other => panic!("unexpected {other:?}"),
        }
    }
    started.elapsed().as_secs_f64() * 1e3 / BIG_EVENTS as f64
}
