//! Tasks: dispatch (`task:execute`), settlement from Responses events, cancel, close, and the
//! failure paths (disconnect grace, heartbeat-timeout monitor). protocol.md §4, §5, §14.4.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use crate::bots::Agent;
use crate::events::{OfflineReason, ServerEvent};
use crate::payload::{task_execute_payload, ExecuteParams};
use crate::projects::{PayloadWorkspace, ProjectConfig};
use crate::settle::{effect, final_result, id_of, Effect, TaskStatus};
use crate::state::{device_room, lock, Session, Shared, NAMESPACE};
use crate::store::{SubtaskRecord, User};

/// An HTTP-shaped failure: status code and the `detail` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }
}

/// A database failure as the 500 every route answers with.
pub(crate) fn db(e: rusqlite::Error) -> ApiError {
    ApiError::new(500, format!("Database error: {e}"))
}

/// `POST /api/device-chat/tasks` body (the fields the devserver uses).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchRequest {
    pub device_id: Option<String>,
    pub message: String,
    pub title: Option<String>,
    /// Continue an existing task (a follow-up message).
    pub task_id: Option<i64>,
    /// Run the new task in this workspace project (its device unless `deviceId` is given).
    #[serde(default)]
    pub project_id: Option<i64>,
    #[serde(default)]
    pub team_id: Option<i64>,
    /// The bot's agent for a new task (default Claude Code); a follow-up keeps its task's.
    #[serde(default)]
    pub agent: Option<Agent>,
}

/// The dispatch answer, as the real endpoint spells it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Dispatched {
    pub task_id: i64,
    pub user_subtask_id: i64,
    pub assistant_subtask_id: i64,
    pub message_id: i64,
    pub ai_triggered: bool,
    pub device_id: String,
    pub chat_url: String,
}

/// Sends a message to a device: records the task and subtasks, marks the assistant subtask
/// RUNNING on `device-{id}`, emits `task:execute` (no ack; no online check, like the server).
pub async fn dispatch(
    shared: &Arc<Shared>,
    user: &User,
    req: DispatchRequest,
) -> Result<Dispatched, ApiError> {
    if req.message.trim().is_empty() {
        return Err(ApiError::new(400, "message must not be empty"));
    }
    let title = req
        .title
        .clone()
        .unwrap_or_else(|| req.message.chars().take(50).collect());
    let follow_up = req.task_id.is_some();
    let (task, user_sub, assistant_sub) = {
        let store = shared.store();
        let task = match req.task_id {
            // A follow-up goes to the task's own device and project; a `deviceId` is ignored.
            Some(id) => store
                .task(id)
                .map_err(db)?
                .filter(|t| t.user_id == user.id)
                .ok_or_else(|| ApiError::new(404, format!("Task {id} not found")))?,
            None => {
                let (device_id, project_id) = target_of_new_task(&store, user, &req)?;
                let id = store
                    .insert_task(
                        user.id,
                        &device_id,
                        &title,
                        project_id,
                        req.agent.unwrap_or_default(),
                    )
                    .map_err(db)?;
                store.task(id).map_err(db)?.expect("task just written")
            }
        };
        let user_sub = store
            .insert_subtask(task.id, "USER", &req.message, TaskStatus::Completed)
            .map_err(db)?;
        let assistant_sub = store
            .insert_subtask(task.id, "ASSISTANT", "", TaskStatus::Pending)
            .map_err(db)?;
        store
            .set_subtask_running(
                assistant_sub.id,
                &format!("device-{}", task.device_id),
                &format!("user-{}", user.id),
            )
            .map_err(db)?;
        store
            .set_task_status(task.id, TaskStatus::Running)
            .map_err(db)?;
        (task, user_sub, assistant_sub)
    };
    let (task_id, device_id) = (task.id, task.device_id.clone());
    let workspace = project_workspace(shared, user, task.project_id);
    let token = crate::auth::task_token(user, task_id, assistant_sub.id, &shared.cfg.jwt_secret);
    let payload = task_execute_payload(&ExecuteParams {
        task_id,
        subtask_id: assistant_sub.id,
        message_id: assistant_sub.message_id,
        user_subtask_id: user_sub.id,
        prompt: &req.message,
        title: &task.title,
        device_id: &device_id,
        user,
        agent: task.agent,
        model: match task.agent {
            Agent::ClaudeCode => &shared.cfg.model,
            Agent::Codex => &shared.cfg.codex_model,
        },
        // From the configuration, never from the request: a forged Host header must not choose
        // the model the device's agent talks to.
        backend_url: &shared.public_url(),
        auth_token: &token,
        follow_up,
        workspace: workspace.as_ref(),
    });
    emit_to_device(shared, user.id, &device_id, "task:execute", &payload).await;
    tracing::info!(task_id, subtask_id = assistant_sub.id, device = %device_id, "task:execute sent");
    shared.emit(ServerEvent::TaskDispatched {
        user_id: user.id,
        task_id,
        subtask_id: assistant_sub.id,
        device_id: device_id.clone(),
    });
    Ok(Dispatched {
        task_id,
        user_subtask_id: user_sub.id,
        assistant_subtask_id: assistant_sub.id,
        message_id: user_sub.message_id,
        ai_triggered: true,
        chat_url: format!("/devices/chat?taskId={task_id}"),
        device_id,
    })
}

/// The device and project of a new task: an explicit `deviceId` first, else the project's bound
/// device, else the default device (`resolve_chat_task_device_id`).
fn target_of_new_task(
    store: &crate::store::Store,
    user: &User,
    req: &DispatchRequest,
) -> Result<(String, i64), ApiError> {
    let project = match req.project_id.filter(|id| *id != 0) {
        Some(id) => Some(
            store
                .project(user.id, id)
                .map_err(db)?
                .ok_or_else(|| ApiError::new(404, format!("Project {id} not found")))?,
        ),
        None => None,
    };
    let project_device = project
        .as_ref()
        .and_then(|p| ProjectConfig::of(p)?.execution?.device_id);
    let device = match req.device_id.clone().or(project_device) {
        Some(id) => store
            .active_device(user.id, &id)
            .map_err(db)?
            .ok_or_else(|| ApiError::new(404, format!("Device '{id}' not found")))?,
        None => store
            .default_device(user.id)
            .map_err(db)?
            .ok_or_else(|| ApiError::new(400, "No device selected and no default device"))?,
    };
    Ok((device.device_id, project.map_or(0, |p| p.id)))
}

/// The workspace fields of the task's project, read at every turn as the backend does (`None`
/// without a project, or if it was removed since).
fn project_workspace(shared: &Shared, user: &User, project_id: i64) -> Option<PayloadWorkspace> {
    if project_id == 0 {
        return None;
    }
    let project = shared.store().project(user.id, project_id).ok()??;
    crate::projects::payload_workspace(project_id, &ProjectConfig::of(&project)?)
}

/// Plain emit to room `device:{uid}:{dev}` on `/local-executor`.
async fn emit_to_device(
    shared: &Shared,
    user_id: i64,
    device_id: &str,
    event: &str,
    payload: &Value,
) {
    let Some(ops) = shared.io().and_then(|io| io.of(NAMESPACE)) else {
        return;
    };
    if let Err(e) = ops
        .to(device_room(user_id, device_id))
        .emit(event, payload)
        .await
    {
        tracing::warn!(event, device = %device_id, "emit failed: {e}");
    }
}

/// A Responses event from a registered socket; returns the ack the server would send.
pub fn on_responses_event(
    shared: &Shared,
    session: &Session,
    name: &str,
    payload: &Value,
) -> Value {
    if !session.registered {
        return json!({"error": "Not authenticated or not registered"});
    }
    let Some(data) = payload.get("data") else {
        return json!({"error": "Missing event data"});
    };
    if !data.is_object() {
        return json!({"error": "Invalid event data format"});
    }
    let (Some(_task_id), Some(subtask_id)) =
        (id_of(payload, "task_id"), id_of(payload, "subtask_id"))
    else {
        return json!({"error": "Missing task_id or subtask_id"});
    };
    apply_effect(shared, subtask_id, effect(name, data));
    json!({"success": true})
}

fn apply_effect(shared: &Shared, subtask_id: i64, effect: Effect) {
    let store = shared.store();
    let Ok(Some(sub)) = store.subtask(subtask_id) else {
        return;
    };
    if sub.status.is_terminal() {
        return;
    }
    let Ok(Some(task)) = store.task(sub.task_id) else {
        return;
    };
    match effect {
        Effect::Nothing => {}
        Effect::Delta(delta) => {
            lock(&shared.deltas)
                .entry(subtask_id)
                .or_default()
                .push_str(&delta);
            shared.emit(ServerEvent::TaskDelta {
                user_id: task.user_id,
                task_id: task.id,
                subtask_id,
                delta,
            });
        }
        Effect::Settle {
            status,
            result,
            error,
        } => {
            let deltas = lock(&shared.deltas).remove(&subtask_id).unwrap_or_default();
            let result = (status == TaskStatus::Completed).then(|| final_result(result, &deltas));
            let result = result.or((!deltas.is_empty()).then_some(deltas));
            drop(store);
            settle(shared, &sub, status, result, error);
        }
    }
}

/// Moves a subtask and its task to a terminal state and tells listeners.
fn settle(
    shared: &Shared,
    sub: &SubtaskRecord,
    status: TaskStatus,
    result: Option<String>,
    error: Option<String>,
) {
    let user_id = {
        let store = shared.store();
        if let Err(e) =
            store.set_subtask_status(sub.id, status, result.as_deref(), error.as_deref())
        {
            tracing::error!(subtask_id = sub.id, "cannot store the subtask state: {e}");
        }
        let _ = store.set_task_status(sub.task_id, status);
        store
            .task(sub.task_id)
            .ok()
            .flatten()
            .map(|t| t.user_id)
            .unwrap_or_default()
    };
    tracing::info!(
        task_id = sub.task_id,
        subtask_id = sub.id,
        status = status.as_str(),
        "task settled"
    );
    shared.emit(ServerEvent::TaskSettled {
        user_id,
        task_id: sub.task_id,
        subtask_id: sub.id,
        status,
        result,
        error,
    });
}

/// Fails every RUNNING subtask of executor `device-{device_id}` (any user: the server matches by name only).
pub fn fail_running_of_device(shared: &Shared, device_id: &str, message: &str) {
    let running = shared
        .store()
        .running_subtasks_of_executor(&format!("device-{device_id}"))
        .unwrap_or_default();
    for sub in running {
        lock(&shared.deltas).remove(&sub.id);
        settle(
            shared,
            &sub,
            TaskStatus::Failed,
            None,
            Some(message.to_string()),
        );
    }
}

/// One monitor pass: expire online keys, then fail RUNNING device subtasks whose device is gone.
pub fn monitor_tick(shared: &Shared) {
    let now = Instant::now();
    let expired = lock(&shared.online).purge_expired(now);
    for (user_id, device_id) in expired {
        tracing::info!(device = %device_id, "online TTL expired");
        shared.emit(ServerEvent::DeviceOffline {
            user_id,
            device_id,
            reason: OfflineReason::TtlExpired,
        });
        shared.emit(ServerEvent::DevicesChanged { user_id });
    }
    let running = shared.store().running_device_subtasks().unwrap_or_default();
    for sub in running {
        // `strip_prefix`, not `trim_start_matches`: ids themselves start with "device-", so the
        // executor name is "device-device-…" and only the first prefix is the marker.
        let Some(device_id) = sub.executor_name.strip_prefix("device-") else {
            continue;
        };
        let device_id = device_id.to_string();
        let Some(user_id) = sub
            .executor_namespace
            .strip_prefix("user-")
            .and_then(|u| u.parse::<i64>().ok())
        else {
            continue;
        };
        let online = lock(&shared.online)
            .live(&(user_id, device_id), now)
            .is_some();
        if !online {
            settle(
                shared,
                &sub,
                TaskStatus::Failed,
                None,
                Some("Device connection lost (heartbeat timeout)".into()),
            );
        }
    }
}

/// The task's latest assistant subtask, checking ownership.
fn owned_latest(
    shared: &Shared,
    user: &User,
    task_id: i64,
) -> Result<(String, SubtaskRecord), ApiError> {
    let store = shared.store();
    let task = store
        .task(task_id)
        .map_err(db)?
        .filter(|t| t.user_id == user.id)
        .ok_or_else(|| ApiError::new(404, "Task not found"))?;
    let subs = store.subtasks_of(task_id).map_err(db)?;
    let latest = subs
        .into_iter()
        .rev()
        .find(|s| s.role == "ASSISTANT")
        .ok_or_else(|| ApiError::new(404, "Task not found"))?;
    Ok((task.device_id, latest))
}

/// Cancel as the web UI does it (`chat:cancel`): emit `task:cancel`, then wait for the device's
/// `response.incomplete` (or any terminal event) up to `cancel_wait`.
pub async fn cancel(shared: &Arc<Shared>, user: &User, task_id: i64) -> Result<Value, ApiError> {
    let (device_id, sub) = owned_latest(shared, user, task_id)?;
    if sub.status.is_terminal() {
        return Ok(json!({"message": "Task already finished", "status": sub.status}));
    }
    let mut events = crate::events::EventStream::new(shared.events.subscribe());
    {
        let store = shared.store();
        store
            .set_subtask_status(sub.id, TaskStatus::Cancelling, None, None)
            .map_err(db)?;
        store
            .set_task_status(task_id, TaskStatus::Cancelling)
            .map_err(db)?;
    }
    emit_to_device(
        shared,
        user.id,
        &device_id,
        "task:cancel",
        &json!({"task_id": task_id, "subtask_id": sub.id}),
    )
    .await;
    let wait = shared.cfg.timings.cancel_wait;
    let settled = events
        .wait_for("cancel confirmation", wait, |e| match e {
            ServerEvent::TaskSettled {
                subtask_id, status, ..
            } if *subtask_id == sub.id => Some(*status),
            _ => None,
        })
        .await;
    Ok(match settled {
        Ok(status) => json!({"message": "Chat stopped successfully", "status": status}),
        Err(_) => {
            json!({"message": format!("The device did not confirm the cancel within {} s", wait.as_secs_f32()),
            "status": TaskStatus::Cancelling})
        }
    })
}

/// `DELETE /api/tasks/{id}`: emit `task:close-session`, hide the task.
pub async fn delete(shared: &Arc<Shared>, user: &User, task_id: i64) -> Result<Value, ApiError> {
    let (device_id, _) = owned_latest(shared, user, task_id)?;
    emit_to_device(
        shared,
        user.id,
        &device_id,
        "task:close-session",
        &json!({"task_id": task_id}),
    )
    .await;
    shared.store().mark_task_deleted(task_id).map_err(db)?;
    Ok(json!({"message": "Task deleted successfully"}))
}

/// `GET /api/tasks/{id}`: status, the latest answer (live deltas while running) and the subtasks.
pub fn view(shared: &Shared, user_id: Option<i64>, task_id: i64) -> Result<Value, ApiError> {
    let store = shared.store();
    let task = store
        .task(task_id)
        .map_err(db)?
        .filter(|t| user_id.is_none_or(|u| u == t.user_id));
    let task = task.ok_or_else(|| ApiError::new(404, "Task not found"))?;
    let subs = store.subtasks_of(task_id).map_err(db)?;
    let deltas = lock(&shared.deltas);
    let subtasks: Vec<Value> = subs
        .iter()
        .map(|s| {
            let text = s.result.clone().or_else(|| deltas.get(&s.id).cloned());
            json!({"id": s.id, "role": s.role, "message_id": s.message_id, "status": s.status, "prompt": s.prompt,
                "result": text.as_ref().map(|t| json!({"value": t})), "error_message": s.error_message,
                "executor_name": s.executor_name})
        })
        .collect();
    let latest = subs.iter().rev().find(|s| s.role == "ASSISTANT");
    let result_text = latest.and_then(|s| s.result.clone().or_else(|| deltas.get(&s.id).cloned()));
    Ok(
        json!({"id": task.id, "title": task.title, "status": task.status, "device_id": task.device_id, "project_id": task.project_id, "agent": task.agent,
        "created_at": task.created_at, "updated_at": task.updated_at, "result_text": result_text,
        "error_message": latest.and_then(|s| s.error_message.clone()), "subtasks": subtasks}),
    )
}
