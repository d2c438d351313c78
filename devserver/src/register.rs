//! `device:register`, `device:heartbeat` and `device:status` (protocol.md §2, §3, §7).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use socketioxide::extract::AckSender;

use crate::device_ns::{error_ack, send_ack};
use crate::events::ServerEvent;
use crate::faults::AckFault;
use crate::online::{OnlineEntry, Refresh};
use crate::schema::{validate_heartbeat, validate_register, RegisterPayload};
use crate::state::{device_room, lock, Session, Shared};
use crate::store::DeviceUpsert;

fn payload_device_id(data: &Value) -> Option<String> {
    data.get("device_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub fn on_register(shared: &Arc<Shared>, session: Session, data: Value, ack: AckSender) {
    let fault = lock(&shared.faults).register_ack.clone();
    let outcome = match (&fault, validate_register(&data)) {
        (AckFault::Error(text), _) => Err(text.clone()),
        (_, Err(e)) => Err(format!("Invalid payload: {e}")),
        (_, Ok(p)) => register(shared, &session, &p).map(|()| p),
    };
    let ack_value = match &outcome {
        Ok(p) => json!({"success": true, "device_id": p.device_id}),
        Err(text) => error_ack(text.clone()),
    };
    tracing::info!(sid = %session.socket.id, device = ?payload_device_id(&data), auth = session.auth_type.as_str(), ok = outcome.is_ok(), "device:register");
    shared.emit(ServerEvent::Register {
        sid: session.socket.id.to_string(),
        user_id: session.user.id,
        device_id: payload_device_id(&data),
        payload: data,
        ack: ack_value.clone(),
    });
    send_ack(ack, ack_value, &fault);
    if let Ok(p) = outcome {
        shared.emit(ServerEvent::DeviceOnline {
            user_id: session.user.id,
            device_id: p.device_id.clone(),
        });
        shared.emit(ServerEvent::DevicesChanged {
            user_id: session.user.id,
        });
        if !lock(&shared.faults).skip_capability_sync {
            spawn_capability_sync(shared.clone(), session, p.device_id);
        }
    }
}

/// The side effects of a valid register, in the server's order.
fn register(shared: &Shared, session: &Session, p: &RegisterPayload) -> Result<(), String> {
    let key = (session.user.id, p.device_id.clone());
    let now = Instant::now();
    let debounced = lock(&shared.last_register)
        .get(&key)
        .is_some_and(|t| now.duration_since(*t) < shared.cfg.timings.register_debounce);
    if !debounced {
        let upsert = DeviceUpsert {
            user_id: session.user.id,
            device_id: &p.device_id,
            name: &p.name,
            device_type: &p.device_type,
            bind_shell: &p.bind_shell,
            client_ip: &session.client_ip,
            runtime_transfer_host: p
                .runtime_transfer_host
                .as_deref()
                .or(p.client_ip.as_deref()),
            runtime_instance_id: p.runtime_instance_id.as_deref(),
            app_device_id: p.app_device_id.as_deref().filter(|s| !s.is_empty()),
        };
        shared
            .store()
            .upsert_device(&upsert)
            .map_err(|e| format!("Registration failed: {e}"))?;
    }
    let sid = session.socket.id.to_string();
    if let Some(s) = lock(&shared.sessions).get_mut(&sid) {
        s.device_id = Some(p.device_id.clone());
        s.registered = true;
        s.runtime_instance_id = p.runtime_instance_id.clone();
    }
    session
        .socket
        .join(device_room(session.user.id, &p.device_id));
    let entry = OnlineEntry {
        socket_id: sid,
        name: p.name.clone(),
        status: "online".into(),
        last_heartbeat: crate::store::now_iso(),
        expires_at: now + shared.cfg.timings.online_ttl,
        executor_version: p.executor_version.clone(),
        client_ip: session.client_ip.clone(),
        runtime_transfer_host: p.runtime_transfer_host.clone().or(p.client_ip.clone()),
        runtime_instance_id: p.runtime_instance_id.clone(),
        runtime_features: p.runtime_features.clone(),
        running_task_ids: Vec::new(),
        runtime_capacity: None,
    };
    lock(&shared.online).set(key.clone(), entry);
    lock(&shared.last_register).insert(key, now);
    *lock(&shared.register_counts)
        .entry(p.device_id.clone())
        .or_default() += 1;
    Ok(())
}

/// `device:sync_capabilities`, called right after a register; the ack is only reported.
fn spawn_capability_sync(shared: Arc<Shared>, session: Session, device_id: String) {
    tokio::spawn(async move {
        let payload = json!({"mode": "replace", "skills": [], "plugins": [], "mcps": []});
        let timeout = shared.cfg.timings.capability_sync_timeout;
        let ack = match session
            .socket
            .timeout(timeout)
            .emit_with_ack::<_, Value>("device:sync_capabilities", &payload)
        {
            Ok(stream) => stream.await.map(unwrap_single).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        shared.emit(ServerEvent::CapabilitySync {
            sid: session.socket.id.to_string(),
            device_id,
            ack,
        });
    });
}

/// Acks may arrive as `[value]` or `value`; both mean `value`.
pub fn unwrap_single(v: Value) -> Value {
    match v {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    }
}

pub fn on_heartbeat(shared: &Arc<Shared>, session: Session, data: Value, ack: AckSender) {
    let fault = lock(&shared.faults).heartbeat_ack.clone();
    let outcome = match &fault {
        AckFault::Error(text) => Err(text.clone()),
        _ => heartbeat(shared, &session, &data),
    };
    let ack_value = match &outcome {
        Ok(()) => json!({"success": true}),
        Err(text) => error_ack(text.clone()),
    };
    tracing::debug!(sid = %session.socket.id, ok = outcome.is_ok(), "device:heartbeat");
    let user_id = session.user.id;
    shared.emit(ServerEvent::Heartbeat {
        sid: session.socket.id.to_string(),
        user_id,
        device_id: payload_device_id(&data).or(session.device_id.clone()),
        payload: data,
        ack: ack_value.clone(),
    });
    send_ack(ack, ack_value, &fault);
    if outcome.is_ok() {
        shared.emit(ServerEvent::DevicesChanged { user_id });
    }
}

fn heartbeat(shared: &Shared, session: &Session, data: &Value) -> Result<(), String> {
    let hb = validate_heartbeat(data).map_err(|e| format!("Invalid payload: {e}"))?;
    if !session.registered || session.device_id.as_deref() != Some(hb.device_id.as_str()) {
        return Err("Device ID mismatch".into());
    }
    let sid = session.socket.id.to_string();
    let key = (session.user.id, hb.device_id.clone());
    let now = Instant::now();
    let mut online = lock(&shared.online);
    if online.live(&key, now).is_some_and(|e| e.socket_id != sid) {
        return Err("Stale device connection".into());
    }
    if let Some(expected) = &session.runtime_instance_id {
        if hb.runtime_instance_id.as_ref() != Some(expected) {
            return Err("Runtime instance ID mismatch".into());
        }
    }
    let template = || OnlineEntry {
        socket_id: sid.clone(),
        name: lock(&shared.store)
            .device_any(session.user.id, &hb.device_id)
            .ok()
            .flatten()
            .map(|d| d.name)
            .unwrap_or_else(|| hb.device_id.clone()),
        status: "online".into(),
        last_heartbeat: String::new(),
        expires_at: now,
        executor_version: None,
        client_ip: session.client_ip.clone(),
        runtime_transfer_host: None,
        runtime_instance_id: None,
        runtime_features: None,
        running_task_ids: Vec::new(),
        runtime_capacity: None,
    };
    let refresh = online.refresh(&key, template, &hb, shared.cfg.timings.online_ttl, now);
    drop(online);
    if refresh == Refresh::Recreated {
        shared.emit(ServerEvent::DeviceOnline {
            user_id: session.user.id,
            device_id: hb.device_id,
        });
    }
    Ok(())
}

/// `device:status` `{device_id, status: online|busy|offline}` sets the online entry's status.
pub fn on_status(shared: &Arc<Shared>, session: Session, data: Value, ack: AckSender) {
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let device_id = payload_device_id(&data);
    let reply = if device_id.is_none() || !["online", "busy", "offline"].contains(&status.as_str())
    {
        error_ack("Invalid payload: device_id and status (online|busy|offline) are required")
    } else if !session.registered || session.device_id != device_id {
        error_ack("Device ID mismatch")
    } else {
        let device_id = device_id.unwrap_or_default();
        if let Some(e) =
            lock(&shared.online).live_mut(&(session.user.id, device_id.clone()), Instant::now())
        {
            e.status = status.clone();
        }
        shared.emit(ServerEvent::DeviceStatus {
            user_id: session.user.id,
            device_id,
            status,
        });
        shared.emit(ServerEvent::DevicesChanged {
            user_id: session.user.id,
        });
        json!({"success": true})
    };
    let _ = ack.send(&reply);
}
