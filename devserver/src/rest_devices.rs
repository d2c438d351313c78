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
use crate::tasks::{db, ApiError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/devices", get(list_all))
        .route("/api/devices/online", get(list_online))
        .route("/api/devices/{id}/default", put(set_default))
        .route("/api/devices/{id}", delete(delete_device))
        .route("/api/devices/{id}/commands", post(run_command))
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
    let call = CommandCall {
        key: &body.command_key,
        cwd: body.path.or(body.cwd),
        args: body.args,
        timeout_seconds: body.timeout_seconds,
        max_output_bytes: body.max_output_bytes,
    };
    execute_command(&state, user.id, &id, call).await.map(Json)
}

/// One configured command for a device (the body of `POST /api/devices/{id}/commands`).
pub struct CommandCall<'a> {
    pub key: &'a str,
    pub cwd: Option<String>,
    pub args: Vec<String>,
    pub timeout_seconds: u64,
    pub max_output_bytes: u64,
}

impl<'a> CommandCall<'a> {
    /// A call with the REST defaults (60 s, 1 MiB).
    pub fn new(key: &'a str, cwd: Option<&str>, args: &[&str]) -> Self {
        Self {
            key,
            cwd: cwd.map(str::to_string),
            args: args.iter().map(|a| a.to_string()).collect(),
            timeout_seconds: default_timeout(),
            max_output_bytes: default_max_output(),
        }
    }
}

/// `execute_configured_device_command`: a configured key → `device:execute_command` call with a
/// timeout; the device's ack object.
pub async fn execute_command(
    state: &Shared,
    user_id: i64,
    device_id: &str,
    call: CommandCall<'_>,
) -> Result<Value, ApiError> {
    if state
        .store()
        .active_device(user_id, device_id)
        .map_err(db)?
        .is_none()
    {
        return Err(ApiError::new(404, "Device not found or access denied"));
    }
    let command = state
        .cfg
        .commands
        .get(call.key)
        .cloned()
        .ok_or_else(|| ApiError::new(400, format!("Unknown command key: {}", call.key)))?;
    let socket = state
        .device_socket(user_id, device_id)
        .ok_or_else(|| ApiError::new(400, format!("Device '{device_id}' is offline")))?;
    let mut argv = shell_split(&command);
    argv.extend(call.args.iter().cloned());
    let payload = json!({"command": command, "cwd": call.cwd, "args": call.args, "argv": argv,
        "env": {}, "timeout_seconds": call.timeout_seconds, "max_output_bytes": call.max_output_bytes});
    let wait = Duration::from_secs(call.timeout_seconds) + state.cfg.timings.command_ack_grace;
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
    Ok(ack)
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

    /// The backend's command lines (`command_registry.py`, evaluated with Python), and the argv
    /// `shlex.split` makes of them: "Clone from Git" and "New worktree" depend on both.
    #[test]
    fn project_command_keys_are_the_backends() {
        let c = crate::config::default_commands();
        let root = r#"sh -c 'printf %s "${WEGENT_EXECUTOR_PROJECTS_DIR:-${WECODE_HOME:-$HOME/.wecode}/wegent-executor/workspace/projects}"'"#;
        assert_eq!(c["project_workspace_root"], root);
        assert_eq!(shell_split(root).len(), 3);
        let add = r#"sh -c 'source=$1; target=$2; ref=$3; mkdir -p "$(dirname "$target")"; if git -C "$target" rev-parse --is-inside-work-tree >/dev/null 2>&1; then if [ -n "$ref" ]; then git -C "$target" checkout --force --detach "$ref"; fi; else if [ -e "$target" ]; then echo "target exists and is not a Git worktree" >&2; exit 64; fi; if [ -n "$ref" ]; then git -C "$source" worktree add --detach "$target" "$ref"; else git -C "$source" worktree add --detach "$target"; fi; fi' --"#;
        assert_eq!(c["git_worktree_add"], add);
        let argv = shell_split(add);
        assert_eq!((argv.len(), argv[3].as_str()), (4, "--"));
        assert_eq!(
            shell_split(&c["git_is_worktree"]),
            [
                "sh",
                "-c",
                r#"git -C "$1" rev-parse --is-inside-work-tree"#,
                "--"
            ]
        );
        for (key, line) in [
            ("mkdir_p", "mkdir -p"),
            ("path_exists", "test -e"),
            ("git_clone", "git clone"),
            ("git_config", "git config"),
        ] {
            assert_eq!(c[key], line);
        }
    }
}
