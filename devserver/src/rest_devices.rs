//! `/api/devices` routes (Bearer JWT only): list, online list, default, delete, command RPC.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::online::OnlineEntry;
use crate::register::unwrap_single;
use crate::rest::{AppState, JwtUser};
use crate::state::{lock, Shared};
use crate::store::DeviceRecord;
use crate::tasks::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/devices", get(list_all))
        .route("/api/devices/online", get(list_online))
        .route("/api/devices/{id}/default", put(set_default))
        .route("/api/devices/{id}", delete(delete_device))
        .route("/api/devices/{id}/commands", post(run_command))
}

fn db(e: rusqlite::Error) -> ApiError {
    ApiError::new(500, format!("Database error: {e}"))
}

/// A `DeviceInfo` as `GET /api/devices` shows it (protocol.md §8, §14.3).
pub fn device_info(d: &DeviceRecord, online: Option<&OnlineEntry>) -> Value {
    let (slot_used, slot_max) = online.map(OnlineEntry::slots).unwrap_or((0, 0));
    let version = online.and_then(|e| e.executor_version.clone());
    json!({
        "id": d.id, "device_id": d.device_id, "name": d.name,
        "status": online.map(|e| e.status.as_str()).unwrap_or("offline"),
        "is_default": d.is_default,
        "last_heartbeat": online.map(|e| e.last_heartbeat.clone()),
        "device_type": d.device_type, "connection_mode": "websocket", "capabilities": null,
        "slot_used": slot_used, "slot_max": slot_max, "running_tasks": [],
        "executor_version": version, "latest_version": version, "update_available": false,
        "client_ip": online.map(|e| e.client_ip.clone()).or(d.client_ip.clone()),
        "runtime_transfer_host": online.and_then(|e| e.runtime_transfer_host.clone()).or(d.runtime_transfer_host.clone()),
        "runtime_instance_id": online.and_then(|e| e.runtime_instance_id.clone()).or(d.runtime_instance_id.clone()),
        "app_device_id": d.app_device_id, "socket_device_id": null,
        "runtime_features": online.and_then(|e| e.runtime_features.clone()),
        "cloud_config": null, "remote_config": null, "bind_shell": d.bind_shell,
    })
}

/// The user's active devices as `DeviceInfo`s; `online_only` filters like `/devices/online`.
pub fn list(shared: &Shared, user_id: i64, online_only: bool) -> Result<Value, ApiError> {
    let devices = shared.store().active_devices(user_id).map_err(db)?;
    let online = lock(&shared.online);
    let now = Instant::now();
    let items: Vec<Value> = devices
        .iter()
        .filter_map(|d| {
            let entry = online.live(&(user_id, d.device_id.clone()), now);
            (!online_only || entry.is_some()).then(|| device_info(d, entry))
        })
        .collect();
    Ok(json!({"total": items.len(), "items": items}))
}

async fn list_all(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
) -> Result<Json<Value>, ApiError> {
    list(&state, user.id, false).map(Json)
}

async fn list_online(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
) -> Result<Json<Value>, ApiError> {
    list(&state, user.id, true).map(Json)
}

async fn set_default(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state.store().set_default(user.id, &id).map_err(db)? {
        return Err(ApiError::new(404, format!("Device '{id}' not found")));
    }
    state.emit(crate::events::ServerEvent::DevicesChanged { user_id: user.id });
    Ok(Json(
        json!({"message": format!("Device '{id}' set as default")}),
    ))
}

async fn delete_device(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state.store().soft_delete_device(user.id, &id).map_err(db)? {
        return Err(ApiError::new(404, format!("Device '{id}' not found")));
    }
    state.emit(crate::events::ServerEvent::DevicesChanged { user_id: user.id });
    Ok(Json(json!({"message": format!("Device '{id}' deleted")})))
}

fn default_timeout() -> u64 {
    60
}

fn default_max_output() -> u64 {
    1024 * 1024
}

#[derive(Deserialize)]
struct CommandBody {
    command_key: String,
    path: Option<String>,
    cwd: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    // No `env`: the real server forwards a caller's `env` to the device, which would let any
    // holder of a login token set `LD_PRELOAD`, `BASH_ENV`, `GIT_CONFIG_*`… for a command the
    // devserver itself chose. A body's `env` is ignored and the device gets `{}`.
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_max_output")]
    max_output_bytes: u64,
}

/// Splits a command line like `shlex.split`: whitespace, single and double quotes, backslashes.
pub fn shell_split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// `POST /api/devices/{id}/commands`: a configured key → `device:execute_command` call with a timeout.
async fn run_command(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    Path(id): Path<String>,
    body: Result<Json<CommandBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(422, e.body_text()))?;
    if !(1..=600).contains(&body.timeout_seconds) {
        return Err(ApiError::new(
            422,
            "timeout_seconds must be between 1 and 600",
        ));
    }
    if !(1..=5 * 1024 * 1024).contains(&body.max_output_bytes) {
        return Err(ApiError::new(
            422,
            "max_output_bytes must be between 1 and 5242880",
        ));
    }
    if state
        .store()
        .active_device(user.id, &id)
        .map_err(db)?
        .is_none()
    {
        return Err(ApiError::new(404, "Device not found or access denied"));
    }
    let command = state
        .cfg
        .commands
        .get(&body.command_key)
        .cloned()
        .ok_or_else(|| ApiError::new(400, format!("Unknown command key: {}", body.command_key)))?;
    let socket = state
        .device_socket(user.id, &id)
        .ok_or_else(|| ApiError::new(400, format!("Device '{id}' is offline")))?;
    let mut argv = shell_split(&command);
    argv.extend(body.args.iter().cloned());
    let payload = json!({"command": command, "cwd": body.path.or(body.cwd), "args": body.args, "argv": argv,
        "env": {}, "timeout_seconds": body.timeout_seconds, "max_output_bytes": body.max_output_bytes});
    let wait = Duration::from_secs(body.timeout_seconds) + state.cfg.timings.command_ack_grace;
    let timed_out = || {
        ApiError::new(
            400,
            format!("Command RPC timed out after {} seconds", wait.as_secs_f32()),
        )
    };
    let stream = socket
        .timeout(wait)
        .emit_with_ack::<_, Value>("device:execute_command", &payload)
        .map_err(|e| ApiError::new(400, format!("Device command failed: {e}")))?;
    let ack = match stream.await {
        Ok(v) => unwrap_single(v),
        Err(socketioxide::AckError::Timeout) => return Err(timed_out()),
        Err(e) => return Err(ApiError::new(400, format!("Device command failed: {e}"))),
    };
    if !ack.is_object() {
        return Err(ApiError::new(
            400,
            "Device command failed: the device's answer is not an object",
        ));
    }
    Ok(Json(ack))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_split_like_shlex() {
        assert_eq!(
            shell_split("git status --short"),
            ["git", "status", "--short"]
        );
        assert_eq!(
            shell_split("sh -c 'echo $HOME'"),
            ["sh", "-c", "echo $HOME"]
        );
        assert_eq!(shell_split(r#"a "b c" d\ e ''"#), ["a", "b c", "d e", ""]);
        assert!(shell_split("   ").is_empty());
    }
}
