//! The client against a *scripted* WebSocket server (tokio-tungstenite's server side). Real
//! Socket.IO servers never send malformed or binary frames, so this is the one place a scripted
//! peer stands in for them; the real servers are in `tests/sio_socketioxide.rs` and
//! `tests/sio_python_wire.rs`.

use std::future::Future;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::{accept_async, WebSocketStream};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::sio::{CloseReason, ConnectError, ConnectOptions, Inbound, SERVER_MAX_PAYLOAD};

const NS: &str = "/local-executor";
const OPEN: &str =
    r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const PROMPT: Duration = Duration::from_secs(5);

type Peer = WebSocketStream<TcpStream>;

/// Serve one connection: accept, then hand the WebSocket to `script`.
async fn serve<F, Fut>(script: F) -> SocketAddr
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        script(accept_async(tcp).await.unwrap()).await;
    });
    addr
}

/// OPEN, then accept the namespace CONNECT.
async fn handshake(ws: &mut Peer) {
    ws.send(Message::text(OPEN)).await.unwrap();
    let connect = ws.next().await.unwrap().unwrap();
    assert!(connect
        .to_text()
        .unwrap()
        .starts_with("40/local-executor,{"));
    ws.send(Message::text(r#"40/local-executor,{"sid":"n1"}"#))
        .await
        .unwrap();
}

async fn send(ws: &mut Peer, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

fn options(addr: SocketAddr) -> ConnectOptions {
    let mut opts = ConnectOptions::new(format!("ws://{addr}"), NS, json!({"token": "t0k3n-abc"}));
    opts.connect_timeout = PROMPT;
    opts
}

async fn next(inbound: &mut mpsc::Receiver<Inbound>) -> Inbound {
    timeout(PROMPT, inbound.recv())
        .await
        .expect("nothing inbound in time")
        .expect("inbound closed")
}

#[tokio::test]
async fn malformed_binary_and_foreign_frames_are_skipped_and_the_connection_lives() {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let addr = serve(|mut ws| async move {
        handshake(&mut ws).await;
        for junk in [
            "",
            "9",
            "4",
            "0not json",
            "42/local-executor,not json",
            "42/local-executor,{\"not\":\"an array\"}",
            "42/local-executor,[]",
            "43/local-executor,[1]",
            "451-/local-executor,[\"up\",{\"_placeholder\":true,\"num\":0}]",
            "42/other-namespace,[\"elsewhere\"]",
            "43/local-executor,999[{}]", // an ack nobody waits for
            "6",
        ] {
            send(&mut ws, junk).await;
        }
        ws.send(Message::binary(vec![0u8, 1, 2, 3])).await.unwrap();
        send(
            &mut ws,
            r#"42/local-executor,["task:cancel",{"task_id":1}]"#,
        )
        .await;
        let _ = done_rx.await; // keep the socket open until the test is done
    })
    .await;
    let (client, mut inbound) = connect(options(addr)).await.unwrap();
    match next(&mut inbound).await {
        Inbound::Event { name, args, ack } => {
            assert_eq!(name, "task:cancel");
            assert_eq!(args, vec![json!({"task_id": 1})]);
            assert!(ack.is_none());
        }
        other => panic!("expected the valid event, got {other:?}"),
    }
    assert!(client.is_connected());
    drop(done_tx);
}

#[tokio::test]
async fn answers_engine_io_pings_with_the_same_payload() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let addr = serve(|mut ws| async move {
        handshake(&mut ws).await;
        send(&mut ws, "2").await;
        let first = ws.next().await.unwrap().unwrap().into_text().unwrap();
        send(&mut ws, "2probe").await;
        let second = ws.next().await.unwrap().unwrap().into_text().unwrap();
        let _ = seen_tx.send((first.to_string(), second.to_string()));
    })
    .await;
    let (_client, _inbound) = connect(options(addr)).await.unwrap();
    let (first, second) = timeout(PROMPT, seen_rx).await.unwrap().unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("3", "3probe"));
}

#[tokio::test]
async fn frames_over_the_inbound_limit_end_the_connection_with_a_clear_reason() {
    let addr = serve(|mut ws| async move {
        handshake(&mut ws).await;
        let big = format!(r#"42/local-executor,["big","{}"]"#, "x".repeat(300_000));
        let _ = ws.send(Message::text(big)).await;
        let _ = ws.next().await;
    })
    .await;
    let mut opts = options(addr);
    opts.max_inbound_frame = 200_000;
    let (_client, mut inbound) = connect(opts).await.unwrap();
    match next(&mut inbound).await {
        Inbound::Closed(CloseReason::Transport(why)) => {
            assert!(
                why.contains("too long") || why.contains("Space limit"),
                "{why}"
            )
        }
        other => panic!("expected Closed(Transport), got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_pings_is_a_ping_timeout() {
    let addr = serve(|mut ws| async move {
        ws.send(Message::text(
            r#"0{"sid":"s","upgrades":[],"pingInterval":100,"pingTimeout":100}"#,
        ))
        .await
        .unwrap();
        let _ = ws.next().await;
        send(&mut ws, r#"40/local-executor,{"sid":"n"}"#).await;
        while ws.next().await.is_some() {} // silent, but reading
    })
    .await;
    let (client, mut inbound) = connect(options(addr)).await.unwrap();
    assert_eq!(client.max_outbound_packet(), SERVER_MAX_PAYLOAD); // no maxPayload: ours
    let started = Instant::now();
    match next(&mut inbound).await {
        Inbound::Closed(reason) => assert_eq!(reason, CloseReason::PingTimeout),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_non_engine_io_first_frame_is_a_handshake_error() {
    let addr = serve(|mut ws| async move {
        send(&mut ws, "hello, I am a chat server").await;
        let _ = ws.next().await;
    })
    .await;
    match connect(options(addr)).await {
        Err(ConnectError::Handshake(text)) => {
            assert!(text.contains("Socket.IO v5"), "{text}")
        }
        other => panic!("expected Handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_last_handle_closes_politely() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let addr = serve(|mut ws| async move {
        handshake(&mut ws).await;
        let mut seen = Vec::new();
        while let Some(Ok(message)) = ws.next().await {
            seen.push(match message {
                Message::Text(t) => t.to_string(),
                Message::Close(_) => "<close>".to_owned(),
                _ => continue,
            });
        }
        let _ = seen_tx.send(seen);
    })
    .await;
    let (client, mut inbound) = connect(options(addr)).await.unwrap();
    let other = client.clone();
    drop(client);
    assert!(other.is_connected(), "a clone still holds the connection");
    drop(other);
    let seen = timeout(PROMPT, seen_rx).await.unwrap().unwrap();
    assert_eq!(
        seen,
        vec!["41/local-executor,".to_owned(), "<close>".to_owned()]
    );
    match next(&mut inbound).await {
        Inbound::Closed(reason) => assert_eq!(reason, CloseReason::ClientDisconnect),
        other => panic!("expected Closed, got {other:?}"),
    }
}

/// A `MakeWriter` collecting every log line of the test.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn trace_logs_name_events_and_never_carry_tokens_or_payloads() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // Current-thread runtime: every task of this test logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = serve(|mut ws| async move {
        handshake(&mut ws).await;
        send(&mut ws, "2").await;
        send(
            &mut ws,
            r#"42/local-executor,["task:execute",{"api_key":"sk-SECRET-model-key"}]"#,
        )
        .await;
        send(
            &mut ws,
            r#"42/local-executor,7["runtime:rpc",{"token":"SECRET-rpc"}]"#,
        )
        .await;
        send(
            &mut ws,
            r#"42/local-executor,{"bad":"SECRET-in-malformed"}"#,
        )
        .await;
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            if t.starts_with("42/local-executor,0[") {
                send(&mut ws, r#"43/local-executor,0[{"secret":"SECRET-ack"}]"#).await;
            }
        }
    })
    .await;
    let mut opts = options(addr);
    opts.auth = json!({"token": "SECRET-user-token"});
    let (client, mut inbound) = connect(opts).await.unwrap();
    let ack = client
        .call("device:register", json!({"k": "SECRET-register"}), PROMPT)
        .await
        .unwrap();
    assert_eq!(ack, vec![json!({"secret": "SECRET-ack"})]);
    client
        .emit("response.completed", json!({"text": "SECRET-output"}))
        .await
        .unwrap();
    let mut names = Vec::new();
    while names.len() < 2 {
        if let Inbound::Event { name, ack, .. } = next(&mut inbound).await {
            if let Some(ack) = ack {
                ack.send(vec![json!({"result": "SECRET-answer"})]);
            }
            names.push(name);
        }
    }
    assert_eq!(names, ["task:execute", "runtime:rpc"]);
    client.disconnect().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("Socket.IO connected"), "{text}");
    assert!(
        text.contains("runtime:rpc"),
        "event names are logged: {text}"
    );
    assert!(text.contains("skipping a malformed frame"), "{text}");
    assert!(
        !text.contains("SECRET"),
        "a secret reached the log:\n{text}"
    );
}
