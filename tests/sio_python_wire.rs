//! The Socket.IO client against the Wegent backend's own stack: python-socketio 5.15.1 /
//! python-engineio 4.12.3 over uvicorn (`tests/python/sio_server.py`), with Wegent's auth,
//! register and heartbeat semantics.
//!
//! Needs a Python with `tests/python/requirements.txt` installed:
//! `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt`
//! (or point `WEGENT_TEST_PYTHON` at one). Without it these tests fail, saying so.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;
use wegent_executor::sio::{
    self, Client, CloseReason, ConnectError, ConnectOptions, Inbound, SendError,
};

const NS: &str = "/local-executor";
const API_KEY: &str = "wg-test-key-0123456789abcdef";
const DEVICE: &str = "py-wire-device-1";
const RUNTIME: &str = "py-wire-runtime-1";
const PROMPT: Duration = Duration::from_secs(10);

fn python() -> String {
    if let Ok(python) = std::env::var("WEGENT_TEST_PYTHON") {
        return python;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if Path::new(venv).exists() {
        venv.to_owned()
    } else {
        "python3".to_owned()
    }
}

struct PyServer {
    _child: Child, // killed on drop
    url: String,
    jwt: String,
    lines: mpsc::UnboundedReceiver<String>,
}

impl PyServer {
    async fn start(extra: &[&str]) -> Self {
        let python = python();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sio_server.py");
        let mut child = Command::new(&python)
            .arg(script)
            .args(["--api-key", API_KEY])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}. {}", setup_hint()));
        let (tx, mut lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (err_tx, mut err_lines) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("[sio_server] {line}"); // shown when a test fails
                let _ = err_tx.send(line);
            }
        });

        let mut jwt = None;
        let port = loop {
            match timeout(PROMPT, lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(token) = line.strip_prefix("JWT ") {
                        jwt = Some(token.to_owned());
                    } else if let Some(port) = line.strip_prefix("LISTENING ") {
                        break port.parse::<u16>().expect("port");
                    }
                }
                Ok(None) | Err(_) => {
                    let mut stderr = Vec::new();
                    while let Ok(Some(line)) =
                        timeout(Duration::from_millis(500), err_lines.recv()).await
                    {
                        stderr.push(line);
                    }
                    panic!(
                        "the Python Socket.IO server did not start with {python}:\n{}\n{}",
                        stderr.join("\n"),
                        setup_hint()
                    );
                }
            }
        };
        PyServer {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            jwt: jwt.expect("JWT line"),
            lines,
        }
    }

    fn options(&self, token: &str) -> ConnectOptions {
        let mut opts = ConnectOptions::new(self.url.clone(), NS, json!({ "token": token }));
        opts.connect_timeout = PROMPT;
        opts
    }

    async fn connect(&self) -> (Client, mpsc::Receiver<Inbound>) {
        sio::connect(self.options(&self.jwt)).await.unwrap()
    }

    /// The next stdout line starting with `prefix` (others are skipped); its remainder.
    async fn expect_line(&mut self, prefix: &str) -> String {
        loop {
            let line = timeout(PROMPT, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {prefix} line within {PROMPT:?}"))
                .unwrap_or_else(|| panic!("server exited before printing {prefix}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }
}

fn setup_hint() -> String {
    "python-socketio must be importable: `python3 -m venv .venv && \
     .venv/bin/pip install -r tests/python/requirements.txt`, or set WEGENT_TEST_PYTHON"
        .to_owned()
}

fn register_payload() -> Value {
    json!({
        "device_id": DEVICE, "runtime_instance_id": RUNTIME, "name": "Python wire device",
        "device_type": "local", "bind_shell": "claudecode", "executor_version": "0.1.0",
        "client_ip": "127.0.0.1", "runtime_transfer_host": "127.0.0.1", "app_device_id": "",
        "runtime_features": {"schemaVersion": 1, "worktrees": {"version": 1, "managed": true}}
    })
}

fn heartbeat(active: u32, ids: &[&str]) -> Value {
    json!({
        "device_id": DEVICE, "runtime_instance_id": RUNTIME,
        "runtime_capacity": {"limit": 5, "active": active, "active_task_ids": ids, "queued": 0},
        "running_task_ids": ids, "executor_version": "0.1.0",
        "runtime_features": {"schemaVersion": 1}, "runtime_transfer_host": "127.0.0.1"
    })
}

async fn call(client: &Client, event: &str, data: Value) -> Vec<Value> {
    client.call(event, data, PROMPT).await.unwrap()
}

async fn next_event(
    inbound: &mut mpsc::Receiver<Inbound>,
) -> (String, Vec<Value>, Option<sio::Ack>) {
    match timeout(PROMPT, inbound.recv()).await {
        Ok(Some(Inbound::Event { name, args, ack })) => (name, args, ack),
        other => panic!("expected an event, got {other:?}"),
    }
}

fn error_of(ack: &[Value]) -> &str {
    ack[0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error ack: {ack:?}"))
}

#[tokio::test]
async fn registers_answers_sync_capabilities_and_heartbeats() {
    let mut server = PyServer::start(&[]).await;
    let (client, mut inbound) = server.connect().await;

    let ack = call(&client, "device:register", register_payload()).await;
    assert_eq!(ack, vec![json!({"success": true, "device_id": DEVICE})]);
    assert_eq!(server.expect_line("REGISTERED").await, DEVICE);

    // The backend calls device:sync_capabilities right after the register.
    let (name, args, ack) = next_event(&mut inbound).await;
    assert_eq!(name, "device:sync_capabilities");
    assert_eq!(
        args,
        vec![json!({"mode": "replace", "skills": [], "plugins": [], "mcps": []})]
    );
    let answer = json!({"success": true, "device_id": DEVICE, "skills": [], "plugins": [],
                        "mcps": [], "errors": []});
    ack.expect("a call carries an ack")
        .send(vec![answer.clone()]);
    let seen: Value = serde_json::from_str(&server.expect_line("SYNC_ACK").await).unwrap();
    assert_eq!(seen, answer);

    let ack = call(&client, "device:heartbeat", heartbeat(2, &["282", "305"])).await;
    assert_eq!(ack, vec![json!({"success": true})]);
    let ack = call(&client, "device:heartbeat", json!({"device_id": DEVICE})).await;
    assert_eq!(ack, vec![json!({"success": true})]);
}

#[tokio::test]
async fn heartbeat_error_acks_come_back_as_values() {
    let server = PyServer::start(&[]).await;
    let (client, _inbound) = server.connect().await;

    // Before registering, any device id is a mismatch.
    let ack = call(&client, "device:heartbeat", heartbeat(0, &[])).await;
    assert_eq!(error_of(&ack), "Device ID mismatch");

    call(&client, "device:register", register_payload()).await;
    let mut other = heartbeat(0, &[]);
    other["device_id"] = json!("someone-else");
    let ack = call(&client, "device:heartbeat", other).await;
    assert_eq!(error_of(&ack), "Device ID mismatch");

    let ack = call(&client, "device:heartbeat", heartbeat(1, &[])).await;
    let text = error_of(&ack);
    assert!(text.starts_with("Invalid payload: "), "{text}");
    assert!(
        text.contains("active_task_ids must identify every active Runtime task"),
        "{text}"
    );

    let mut moved = heartbeat(0, &[]);
    moved["runtime_instance_id"] = json!("another-runtime");
    let ack = call(&client, "device:heartbeat", moved).await;
    assert_eq!(error_of(&ack), "Runtime instance ID mismatch");

    let ack = call(&client, "device:heartbeat", json!({})).await;
    assert!(
        error_of(&ack).contains("device_id\n  Field required"),
        "{ack:?}"
    );

    let ack = call(&client, "device:register", json!({"device_id": ""})).await;
    assert!(
        error_of(&ack).starts_with("Invalid payload: 2 validation errors"),
        "{ack:?}"
    );

    // Error acks do not end the connection.
    let ack = call(&client, "device:heartbeat", heartbeat(0, &[])).await;
    assert_eq!(ack, vec![json!({"success": true})]);
}

#[tokio::test]
async fn refusals_are_typed() {
    let server = PyServer::start(&["--rate-limit", "6"]).await;
    let cases = [
        (
            "not-a-jwt",
            ConnectError::TokenRejected("Invalid or expired token".into()),
        ),
        (
            "wg-unknown-key",
            ConnectError::TokenRejected("Invalid or expired API key".into()),
        ),
        (
            "",
            ConnectError::TokenRejected("Missing authentication token".into()),
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            sio::connect(server.options(token)).await.unwrap_err(),
            expected
        );
    }
    let mut expired = server.jwt.clone();
    expired.push('x'); // bad signature
    assert_eq!(
        sio::connect(server.options(&expired)).await.unwrap_err(),
        ConnectError::TokenRejected("Invalid or expired token".into())
    );
    // An API key works like a JWT.
    let (client, _inbound) = sio::connect(server.options(API_KEY)).await.unwrap();
    client.disconnect().await;
    // Attempt 6 is the last allowed in the window; the 7th is rate-limited.
    let (client, _inbound) = server.connect().await;
    client.disconnect().await;
    assert_eq!(
        sio::connect(server.options(API_KEY)).await.unwrap_err(),
        ConnectError::RateLimited("Too many device connection attempts".into())
    );
}

#[tokio::test]
async fn receives_a_large_task_execute() {
    let server = PyServer::start(&[]).await;
    let (client, mut inbound) = server.connect().await;
    let size = 2 * 1024 * 1024 + 5;
    client
        .emit("test:dispatch_task", json!({"size": size}))
        .await
        .unwrap();
    let (name, args, ack) = next_event(&mut inbound).await;
    assert_eq!(name, "task:execute");
    assert!(ack.is_none(), "task:execute is a plain emit");
    assert_eq!(args[0]["task_id"], json!(3));
    assert_eq!(args[0]["system_prompt"].as_str().unwrap().len(), size);
}

#[tokio::test]
async fn oversize_outbound_is_refused_and_the_largest_allowed_packet_is_accepted() {
    let mut server = PyServer::start(&[]).await;
    let (client, _inbound) = server.connect().await;
    assert_eq!(client.max_outbound_packet(), 1_000_000); // python-engineio's maxPayload

    let err = client
        .emit("note", json!("n".repeat(1_000_000)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SendError::TooLarge {
                limit: 1_000_000,
                ..
            }
        ),
        "{err:?}"
    );

    // One byte under the limit: python-engineio accepts it (it drops the connection above).
    let frame_overhead = r#"42/local-executor,["note",""]"#.len();
    let body = 1_000_000 - 1 - frame_overhead;
    client.emit("note", json!("n".repeat(body))).await.unwrap();
    assert_eq!(server.expect_line("NOTE").await, (body + 2).to_string());

    call(&client, "device:register", register_payload()).await;
    let ack = call(&client, "device:heartbeat", heartbeat(0, &[])).await;
    assert_eq!(ack, vec![json!({"success": true})]);
}

#[tokio::test]
async fn answers_python_engineio_pings_and_leaves_politely() {
    // python-engineio advertises `int(interval) * 1000` ms, so intervals are whole seconds.
    let server = PyServer::start(&["--ping-interval", "1", "--ping-timeout", "0.5"]).await;
    let (client, mut inbound) = server.connect().await;
    // Two pings pass with no other traffic: python-engineio drops a client that does not answer
    // within 0.5 s, and we would drop a server whose ping is 0.5 s late.
    let quiet = timeout(Duration::from_millis(2_400), inbound.recv()).await;
    assert!(quiet.is_err(), "unexpected inbound: {quiet:?}");
    let ack = call(&client, "device:register", register_payload()).await;
    assert_eq!(ack[0]["success"], json!(true));
    // Drain the sync_capabilities call (dropping its ack unanswered is allowed).
    let (name, _, _) = next_event(&mut inbound).await;
    assert_eq!(name, "device:sync_capabilities");

    timeout(PROMPT, client.disconnect()).await.unwrap();
    match timeout(PROMPT, inbound.recv()).await {
        Ok(Some(Inbound::Closed(reason))) => assert_eq!(reason, CloseReason::ClientDisconnect),
        other => panic!("expected Closed, got {other:?}"),
    }
}
