//! The `/local-executor` namespace: connect auth, then `device:register`, `device:heartbeat`,
//! `device:status`, Responses events and disconnect, as `backend/app/api/ws/device_namespace.py` does.
//!
//! socketioxide runs every handler as its own task, which would let a delta overtake the one
//! before it. So the handlers only forward into a per-socket queue, and one worker per socket
//! processes the socket's events in arrival order (the real server orders them per subtask).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ConnectInfo;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide::SocketIo;
use tokio::sync::mpsc;

use crate::auth::{self, SHUTTING_DOWN, TOO_MANY_CONNECTS};
use crate::events::ServerEvent;
use crate::faults::AckFault;
use crate::listener::PeerAddr;
use crate::state::{lock, Session, Shared, NAMESPACE};

/// A connect refusal; its text becomes `{"message": ...}` of the CONNECT_ERROR packet.
#[derive(Debug)]
pub struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Inbound {
    Event {
        name: String,
        data: Value,
        ack: AckSender,
    },
    Disconnect(DisconnectReason),
}

/// Registers the namespace on `io`.
pub fn install(io: &SocketIo, shared: Arc<Shared>) {
    let middleware = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let shared = shared.clone();
        async move { authorize(&shared, &s, auth.ok()) }
    };
    // Everything happens in the middleware: socketioxide runs the connect handler in a task
    // spawned *after* sending CONNECT, so handlers installed there could miss the first event.
    let on_connect = |_: SocketRef| async {};
    io.ns(NAMESPACE, on_connect.with(middleware));
}

fn peer(s: &SocketRef) -> Option<SocketAddr> {
    s.req_parts()
        .extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0 .0)
}

/// `on_connect`: shutting down, rate limit, then the token.
fn authorize(shared: &Arc<Shared>, s: &SocketRef, auth: Option<Value>) -> Result<(), Refusal> {
    let peer = peer(s);
    let ip = peer
        .map(|p| p.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let refuse = |message: String| {
        shared.emit(ServerEvent::ConnectRefused {
            message: message.clone(),
            client_ip: ip.clone(),
        });
        Err(Refusal(message))
    };
    if shared.shutting_down.load(Ordering::SeqCst) {
        return refuse(SHUTTING_DOWN.into());
    }
    if let Some(message) = lock(&shared.faults).refuse_connects.clone() {
        return refuse(message);
    }
    let t = &shared.cfg.timings;
    if !lock(&shared.rate).allow(&ip, Instant::now(), t.rate_limit_window, t.rate_limit_max) {
        return refuse(TOO_MANY_CONNECTS.into());
    }
    let token = auth::token_from_auth(auth.as_ref());
    let verdict = auth::authenticate_connect(token, &shared.store(), &shared.cfg.jwt_secret);
    match verdict {
        Err(message) => refuse(message.into()),
        Ok((user, auth_type)) => {
            tracing::info!(sid = %s.id, user = %user.user_name, auth = auth_type.as_str(), "device socket connected");
            shared.emit(ServerEvent::Connected {
                sid: s.id.to_string(),
                user_id: user.id,
                auth_type: auth_type.as_str().into(),
                client_ip: ip.clone(),
            });
            s.join(format!("user:{}", user.id));
            let session = Session {
                socket: s.clone(),
                user,
                auth_type,
                client_ip: ip,
                peer,
                device_id: None,
                registered: false,
                runtime_instance_id: None,
            };
            lock(&shared.sessions).insert(s.id.to_string(), session);
            start_worker(shared, s.clone());
            Ok(())
        }
    }
}

fn start_worker(shared: &Arc<Shared>, s: SocketRef) {
    let shared = shared.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<Inbound>();
    let events_tx = tx.clone();
    s.on_fallback(
        move |Event(name): Event, TryData(data): TryData<Value>, ack: AckSender| {
            // A missing or undecodable argument reaches the handler as null, like python's `data=None`.
            let _ = events_tx.send(Inbound::Event {
                name,
                data: data.unwrap_or(Value::Null),
                ack,
            });
            std::future::ready(())
        },
    );
    s.on_disconnect(move |reason: DisconnectReason| {
        let _ = tx.send(Inbound::Disconnect(reason));
        std::future::ready(())
    });
    let sid = s.id.to_string();
    tokio::spawn(async move {
        while let Some(inbound) = rx.recv().await {
            match inbound {
                Inbound::Event { name, data, ack } => handle_event(&shared, &sid, &name, data, ack),
                Inbound::Disconnect(reason) => {
                    on_disconnect(&shared, &sid, reason);
                    break;
                }
            }
        }
    });
}

fn handle_event(shared: &Arc<Shared>, sid: &str, name: &str, data: Value, ack: AckSender) {
    let Some(session) = shared.session(sid) else {
        return;
    };
    match name {
        "device:register" => crate::register::on_register(shared, session, data, ack),
        "device:heartbeat" => crate::register::on_heartbeat(shared, session, data, ack),
        "device:status" => crate::register::on_status(shared, session, data, ack),
        _ if crate::settle::is_responses_event(name, &data) => {
            tracing::debug!(sid, event = name, "responses event");
            shared.emit(ServerEvent::Responses {
                sid: sid.to_string(),
                device_id: session.device_id.clone(),
                name: name.to_string(),
                payload: data.clone(),
            });
            let reply = crate::tasks::on_responses_event(shared, &session, name, &data);
            let _ = ack.send(&reply);
        }
        _ => {
            tracing::debug!(sid, event = name, "event without a handler");
            shared.emit(ServerEvent::Unhandled {
                sid: sid.to_string(),
                name: name.to_string(),
                payload: data,
            });
        }
    }
}

/// Sends `ack` now, later, or never, as the fault switch says.
pub(crate) fn send_ack(ack: AckSender, value: Value, fault: &AckFault) {
    match fault {
        AckFault::Normal | AckFault::Error(_) => {
            let _ = ack.send(&value);
        }
        AckFault::Withhold => {}
        AckFault::Delay(d) => {
            let d = *d;
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let _ = ack.send(&value);
            });
        }
    }
}

/// `on_disconnect`: unless another socket took over, wait the grace, then drop the online key,
/// fail the device's RUNNING tasks and report it offline.
fn on_disconnect(shared: &Arc<Shared>, sid: &str, reason: DisconnectReason) {
    let Some(session) = lock(&shared.sessions).remove(sid) else {
        return;
    };
    tracing::info!(sid, ?reason, device = ?session.device_id, "device socket disconnected");
    shared.emit(ServerEvent::Disconnected {
        sid: sid.to_string(),
        user_id: session.user.id,
        device_id: session.device_id.clone(),
        reason: format!("{reason:?}"),
    });
    let (Some(device_id), true) = (session.device_id.clone(), session.registered) else {
        return;
    };
    let key = (session.user.id, device_id.clone());
    if points_elsewhere(shared, &key, sid) {
        return;
    }
    let shared = shared.clone();
    let sid = sid.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(shared.cfg.timings.disconnect_grace).await;
        if points_elsewhere(&shared, &key, &sid) {
            return;
        }
        {
            let mut online = lock(&shared.online);
            if online
                .live(&key, Instant::now())
                .is_some_and(|e| e.socket_id == sid)
            {
                online.remove(&key);
            }
        }
        crate::tasks::fail_running_of_device(
            &shared,
            &device_id,
            "Device disconnected unexpectedly",
        );
        shared.emit(ServerEvent::DeviceOffline {
            user_id: key.0,
            device_id: device_id.clone(),
            reason: crate::events::OfflineReason::Disconnected,
        });
        shared.emit(ServerEvent::DevicesChanged { user_id: key.0 });
    });
}

/// Is the device's online key held by another socket (a reconnect took over)?
fn points_elsewhere(shared: &Shared, key: &crate::online::DeviceKey, sid: &str) -> bool {
    lock(&shared.online)
        .live(key, Instant::now())
        .is_some_and(|e| e.socket_id != sid)
}

/// The register/heartbeat ack for a refusal.
pub(crate) fn error_ack(text: impl Into<String>) -> Value {
    json!({"error": text.into()})
}
