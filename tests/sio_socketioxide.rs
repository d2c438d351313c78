//! The Socket.IO client against a real in-process Socket.IO v5 server (socketioxide 0.18 on axum).
//!
//! A small TCP proxy sits between client and server where a test needs to cut or freeze the
//! connection; everything else is the real client talking to the real server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, SocketIoBuilder};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use wegent_executor::sio::{
    self, CallError, CloseReason, ConnectError, ConnectOptions, Inbound, SendError,
};

const NS: &str = "/local-executor";
const GOOD_TOKEN: &str = "good-token-123456";
/// Generous bound for things that should happen "at once" on loopback.
const PROMPT: Duration = Duration::from_secs(5);

/// What the server saw: (event name, data).
type Seen = mpsc::UnboundedReceiver<(String, Value)>;

struct Server {
    addr: SocketAddr,
    seen: Seen,
}

/// The exact refusal texts of protocol.md §1.1, chosen by the token the client sends.
#[derive(Debug)]
struct Refusal(&'static str);
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn authenticate(TryData(auth): TryData<Value>) -> Result<(), Refusal> {
    let token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    match token.as_str() {
        GOOD_TOKEN => Ok(()),
        "" => Err(Refusal("Missing authentication token")),
        "flood" => Err(Refusal("Too many device connection attempts")),
        "bye" => Err(Refusal("Server is shutting down")),
        "db-down" => Err(Refusal("Authentication service unavailable")),
        t if t.starts_with("wg-") => Err(Refusal("Invalid or expired API key")),
        _ => Err(Refusal("Invalid or expired token")),
    }
}

async fn start_server(configure: impl FnOnce(SocketIoBuilder) -> SocketIoBuilder) -> Server {
    let (layer, io) = configure(SocketIo::builder()).build_layer();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    // Handlers are installed in a middleware (after `authenticate`, which runs first): socketioxide
    // runs the connect handler in a task spawned *after* sending CONNECT, so handlers installed
    // there can miss the client's first event.
    let install = move |s: SocketRef| {
        register_handlers(s, seen_tx.clone());
        std::future::ready(Ok::<(), std::convert::Infallible>(()))
    };
    let on_connect = |_: SocketRef| async {};
    io.ns(NS, on_connect.with(install).with(authenticate));
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { addr, seen }
}

fn register_handlers(s: SocketRef, seen: mpsc::UnboundedSender<(String, Value)>) {
    let tx = seen.clone();
    s.on("note", async move |Data(d): Data<Value>| {
        let _ = tx.send(("note".into(), d));
    });
    s.on(
        "device:register",
        async |Data(d): Data<Value>, ack: AckSender| {
            let id = d.get("device_id").cloned().unwrap_or(Value::Null);
            let _ = ack.send(&json!({"success": true, "device_id": id}));
        },
    );
    s.on("silent", async |_: SocketRef| {}); // never acks: the client's call times out
    let tx = seen.clone();
    s.on("ask-me", async move |s: SocketRef, Data(d): Data<Value>| {
        let answer = match s
            .timeout(Duration::from_secs(5))
            .emit_with_ack::<_, Value>("server:question", &d)
        {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let _ = tx.send(("answer".into(), json!(format!("{answer:?}"))));
        if let Ok(v) = answer {
            let _ = tx.send(("answer-value".into(), v));
        }
    });
    s.on("send-big", async |s: SocketRef, Data(size): Data<usize>| {
        let _ = s.emit("big", &json!({"blob": "x".repeat(size)}));
    });
    s.on("close-me", async |s: SocketRef| {
        let _ = s.disconnect();
    });
}

fn options(addr: SocketAddr, token: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::new(format!("http://{addr}"), NS, json!({ "token": token }));
    opts.connect_timeout = Duration::from_secs(5);
    opts
}

async fn next_seen(seen: &mut Seen) -> (String, Value) {
    timeout(PROMPT, seen.recv())
        .await
        .expect("the server saw nothing in time")
        .expect("server channel closed")
}

async fn next_closed(inbound: &mut mpsc::Receiver<Inbound>) -> CloseReason {
    loop {
        match timeout(PROMPT, inbound.recv()).await {
            Ok(Some(Inbound::Closed(reason))) => return reason,
            Ok(Some(Inbound::Event { .. })) => continue,
            Ok(None) => panic!("inbound ended without Closed"),
            Err(_) => panic!("no Closed within {PROMPT:?}"),
        }
    }
}

fn default_server(b: SocketIoBuilder) -> SocketIoBuilder {
    b.max_payload(8_000_000)
}

#[tokio::test]
async fn connects_with_auth_emits_and_calls_with_ack() {
    let mut server = start_server(default_server).await;
    let (client, _inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    assert!(client.is_connected());

    client.emit("note", json!({"n": 1})).await.unwrap();
    assert_eq!(
        next_seen(&mut server.seen).await,
        ("note".into(), json!({"n": 1}))
    );

    let ack = client
        .call("device:register", json!({"device_id": "d-1"}), PROMPT)
        .await
        .unwrap();
    assert_eq!(ack, vec![json!({"success": true, "device_id": "d-1"})]);

    // Ack ids count up; a second call gets its own answer.
    let ack = client
        .call("device:register", json!({"device_id": "d-2"}), PROMPT)
        .await
        .unwrap();
    assert_eq!(ack, vec![json!({"success": true, "device_id": "d-2"})]);
}

#[tokio::test]
async fn refusals_map_to_typed_connect_errors() {
    let server = start_server(default_server).await;
    let cases = [
        (
            "expired.jwt.token",
            ConnectError::TokenRejected("Invalid or expired token".into()),
        ),
        (
            "wg-unknown",
            ConnectError::TokenRejected("Invalid or expired API key".into()),
        ),
        (
            "",
            ConnectError::TokenRejected("Missing authentication token".into()),
        ),
        (
            "flood",
            ConnectError::RateLimited("Too many device connection attempts".into()),
        ),
        ("bye", ConnectError::ServerShuttingDown),
        (
            "db-down",
            ConnectError::Refused("Authentication service unavailable".into()),
        ),
    ];
    for (token, expected) in cases {
        let err = sio::connect(options(server.addr, token)).await.unwrap_err();
        assert_eq!(err, expected, "token {token:?}");
        assert!(!err.to_string().contains(token) || token.is_empty() || token == "bye");
    }
}

#[tokio::test]
async fn call_without_ack_times_out_and_the_connection_stays_usable() {
    let server = start_server(default_server).await;
    let (client, _inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    let started = Instant::now();
    let err = client
        .call("silent", json!({}), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::Timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < PROMPT);
    let ack = client
        .call("device:register", json!({"device_id": "d"}), PROMPT)
        .await
        .unwrap();
    assert_eq!(ack[0]["success"], json!(true));
}

#[tokio::test]
async fn answers_a_server_call_through_ack() {
    let mut server = start_server(default_server).await;
    let (client, mut inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    client
        .emit("ask-me", json!({"mode": "replace"}))
        .await
        .unwrap();

    let Some(Inbound::Event { name, args, ack }) = timeout(PROMPT, inbound.recv()).await.unwrap()
    else {
        panic!("expected an event");
    };
    assert_eq!(name, "server:question");
    assert_eq!(args, vec![json!({"mode": "replace"})]);
    let ack = ack.expect("a server call carries an ack");
    assert_eq!(ack.event(), "server:question");
    ack.send(vec![json!({"success": true, "skills": []})]);

    loop {
        let (name, value) = next_seen(&mut server.seen).await;
        if name == "answer-value" {
            assert_eq!(value, json!({"success": true, "skills": []}));
            break;
        }
        assert_eq!(name, "answer", "{value}");
    }
}

#[tokio::test]
async fn receives_a_2mb_event() {
    let server = start_server(default_server).await;
    let (client, mut inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    let size = 2 * 1024 * 1024 + 17;
    client.emit("send-big", json!(size)).await.unwrap();
    let Some(Inbound::Event { name, args, ack }) = timeout(PROMPT, inbound.recv()).await.unwrap()
    else {
        panic!("expected an event");
    };
    assert_eq!(name, "big");
    assert!(ack.is_none());
    assert_eq!(args[0]["blob"].as_str().unwrap().len(), size);
}

#[tokio::test]
async fn oversize_outbound_is_refused_and_the_connection_stays_up() {
    let mut server = start_server(default_server).await;
    let (client, _inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    assert_eq!(client.max_outbound_packet(), 1_000_000);

    let big = json!({"blob": "y".repeat(1_000_000)});
    match client.emit("note", big.clone()).await {
        Err(SendError::TooLarge { size, limit }) => {
            assert!(size > 1_000_000, "{size}");
            assert_eq!(limit, 1_000_000);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let err = client
        .call("device:register", big, PROMPT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Send(SendError::TooLarge { .. })),
        "{err:?}"
    );

    // Just under the limit still goes through.
    let header = r#"42/local-executor,["note",{"blob":""}]"#.len();
    let fits = json!({"blob": "z".repeat(1_000_000 - header - 1)});
    client.emit("note", fits).await.unwrap();
    let (name, value) = next_seen(&mut server.seen).await;
    assert_eq!(name, "note");
    assert_eq!(
        value["blob"].as_str().unwrap().len(),
        1_000_000 - header - 1
    );
    assert!(client.is_connected());
}

#[tokio::test]
async fn honours_a_smaller_server_max_payload() {
    let server = start_server(|b| b.max_payload(50_000)).await;
    let (client, _inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    assert_eq!(client.max_outbound_packet(), 50_000);
    let err = client
        .emit("note", json!("q".repeat(60_000)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::TooLarge { limit: 50_000, .. }),
        "{err:?}"
    );
    client.emit("note", json!("small")).await.unwrap();
}

#[tokio::test]
async fn server_disconnect_is_reported_promptly_and_fails_pending_calls() {
    let server = start_server(default_server).await;
    let (client, mut inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.call("silent", json!({}), PROMPT * 2).await })
    };
    // Let the call reach the server before asking it to disconnect us (ordered on one socket).
    client.emit("note", json!(0)).await.unwrap();
    let started = Instant::now();
    client.emit("close-me", json!({})).await.unwrap();
    assert_eq!(
        next_closed(&mut inbound).await,
        CloseReason::ServerDisconnect
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!client.is_connected());
    assert_eq!(pending.await.unwrap(), Err(CallError::Closed));
    assert_eq!(client.emit("note", json!(1)).await, Err(SendError::Closed));
    assert!(matches!(
        client.call("note", json!(1), PROMPT).await,
        Err(CallError::Closed)
    ));
}

#[tokio::test]
async fn polite_disconnect_reports_client_disconnect() {
    let server = start_server(default_server).await;
    let (client, mut inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    timeout(PROMPT, client.disconnect()).await.unwrap();
    assert!(!client.is_connected());
    assert_eq!(
        next_closed(&mut inbound).await,
        CloseReason::ClientDisconnect
    );
    client.disconnect().await; // idempotent
}

#[tokio::test]
async fn pings_keep_the_connection_alive_across_many_intervals() {
    let server = start_server(|b| {
        b.ping_interval(Duration::from_millis(150))
            .ping_timeout(Duration::from_millis(400))
    })
    .await;
    let (client, mut inbound) = sio::connect(options(server.addr, GOOD_TOKEN))
        .await
        .unwrap();
    // ~6 ping intervals pass with nothing but pings on the wire; the server would drop a client
    // that does not pong within 400 ms, and we would drop a server that stops pinging.
    let quiet = timeout(Duration::from_millis(1_000), inbound.recv()).await;
    assert!(quiet.is_err(), "unexpected inbound: {quiet:?}");
    assert!(client.is_connected());
    let ack = client
        .call("device:register", json!({"device_id": "d"}), PROMPT)
        .await
        .unwrap();
    assert_eq!(ack[0]["success"], json!(true));
}

/// A TCP proxy the test can freeze (stop forwarding, keep sockets open) or cut (close both).
struct Proxy {
    addr: SocketAddr,
    control: watch::Sender<ProxyMode>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum ProxyMode {
    Forward,
    Freeze,
    Cut,
}

async fn start_proxy(upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (control, mode) = watch::channel(ProxyMode::Forward);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            tokio::spawn(pipe_pair(client, server, mode.clone()));
        }
    });
    Proxy { addr, control }
}

async fn pipe_pair(client: TcpStream, server: TcpStream, mut mode: watch::Receiver<ProxyMode>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let forward = async {
        tokio::select! {
            _ = tokio::io::copy(&mut cr, &mut sw) => {},
            _ = tokio::io::copy(&mut sr, &mut cw) => {},
        }
    };
    tokio::select! {
        () = forward => {}
        _ = mode.wait_for(|m| *m != ProxyMode::Forward) => {}
    }
    if *mode.borrow() == ProxyMode::Freeze {
        // Hold the sockets open and silent until cut.
        let _ = mode.wait_for(|m| *m == ProxyMode::Cut).await;
    }
    let _ = cw.shutdown().await;
    let _ = sw.shutdown().await;
}

#[tokio::test]
async fn a_cut_connection_is_noticed_at_once() {
    let server = start_server(default_server).await;
    let proxy = start_proxy(server.addr).await;
    let (client, mut inbound) = sio::connect(options(proxy.addr, GOOD_TOKEN)).await.unwrap();
    let started = Instant::now();
    proxy.control.send(ProxyMode::Cut).unwrap();
    let reason = next_closed(&mut inbound).await;
    assert!(matches!(reason, CloseReason::Transport(_)), "{reason:?}");
    // Far sooner than the default 25 s + 20 s ping window.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!client.is_connected());
}

#[tokio::test]
async fn a_server_that_stops_answering_is_a_ping_timeout() {
    let server = start_server(|b| {
        b.ping_interval(Duration::from_millis(150))
            .ping_timeout(Duration::from_millis(150))
    })
    .await;
    let proxy = start_proxy(server.addr).await;
    let (client, mut inbound) = sio::connect(options(proxy.addr, GOOD_TOKEN)).await.unwrap();
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.call("silent", json!({}), PROMPT * 2).await })
    };
    proxy.control.send(ProxyMode::Freeze).unwrap();
    let started = Instant::now();
    assert_eq!(next_closed(&mut inbound).await, CloseReason::PingTimeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pending.await.unwrap(), Err(CallError::Closed));
    proxy.control.send(ProxyMode::Cut).unwrap();
}

#[tokio::test]
async fn connect_failures_are_typed() {
    // Nothing listens on a port we just released.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let err = sio::connect(ConnectOptions::new(
        format!("http://127.0.0.1:{port}"),
        NS,
        json!({}),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable(_)), "{err:?}");

    // An HTTP server without Socket.IO.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new()).await });
    let err = sio::connect(options(web, GOOD_TOKEN)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Handshake(_)), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("HTTP 404 Not Found at /socket.io/"),
        "{shown}"
    );
    assert!(shown.contains("is this a Wegent backend?"), "{shown}");

    // TLS to a plain-HTTP server.
    let server = start_server(default_server).await;
    let mut opts = options(server.addr, GOOD_TOKEN);
    opts.url = format!("https://{}", server.addr);
    let err = sio::connect(opts).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tls(_)), "{err:?}");

    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut opts = options(silent.local_addr().unwrap(), GOOD_TOKEN);
    opts.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = sio::connect(opts).await.unwrap_err();
    assert_eq!(err, ConnectError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(silent);

    let mut opts = options(server.addr, GOOD_TOKEN);
    opts.url = "ftp://x".into();
    let err = sio::connect(opts).await.unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl { .. }), "{err:?}");
}
