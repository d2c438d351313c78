//! The test-facing API of a [`RunningDevServer`]: accounts, devices, tasks, events and faults.
//! Everything here acts as the REST API would, without HTTP.

use std::time::Duration;

use serde_json::{json, Value};

use crate::events::{EventStream, ServerEvent, WaitError};
use crate::faults::{AckFault, MalformedFrame};
use crate::server::RunningDevServer;
use crate::settle::TaskStatus;
use crate::state::lock;
use crate::store::User;
use crate::tasks::{ApiError, DispatchRequest, Dispatched};

/// A task's state as `GET /api/tasks/{id}` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    pub status: TaskStatus,
    /// The stored answer (completed text, else the deltas), or the live deltas while running.
    pub result_text: Option<String>,
    pub error_message: Option<String>,
    /// The full `GET /api/tasks/{id}` JSON.
    pub json: Value,
}

impl RunningDevServer {
    // ---- accounts ---------------------------------------------------------------------------

    /// Creates (or resets the password of) a user.
    pub fn create_user(&self, user_name: &str, password: &str) -> User {
        self.shared
            .store()
            .upsert_user(user_name, password)
            .expect("devserver database write")
    }

    /// `POST /api/auth/login`: a login JWT, or `None` for a wrong password.
    pub fn login(&self, user_name: &str, password: &str) -> Option<String> {
        let user = self
            .shared
            .store()
            .check_password(user_name, password)
            .ok()
            .flatten()?;
        Some(crate::auth::login_token(
            &user,
            &self.shared.cfg.jwt_secret,
            self.shared.cfg.timings.jwt_lifetime,
        ))
    }

    /// A login JWT for an existing user with a chosen lifetime (e.g. 2 s to test expiry at connect).
    pub fn token_with_lifetime(&self, user_name: &str, lifetime: Duration) -> String {
        let user = self.user(user_name);
        crate::auth::login_token(&user, &self.shared.cfg.jwt_secret, lifetime)
    }

    /// `POST /api/api-keys`: a new `wg-` key for the user.
    pub fn create_api_key(&self, user_name: &str) -> String {
        let user = self.user(user_name);
        let key = format!("wg-{}", crate::random_token(32));
        self.shared
            .store()
            .insert_api_key(user.id, "test", None, &key)
            .expect("devserver database write");
        key
    }

    fn user(&self, user_name: &str) -> User {
        self.shared
            .store()
            .user_by_name(user_name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no devserver user {user_name:?}"))
    }

    // ---- devices ----------------------------------------------------------------------------

    /// `GET /api/devices` for the user: `{"items": [DeviceInfo...], "total": n}`.
    pub fn list_devices(&self, user_name: &str) -> Value {
        crate::rest_devices::list(&self.shared, self.user(user_name).id, false)
            .unwrap_or_else(|e| json!({"error": e.detail}))
    }

    /// `GET /api/devices/online` for the user.
    pub fn online_devices(&self, user_name: &str) -> Value {
        crate::rest_devices::list(&self.shared, self.user(user_name).id, true)
            .unwrap_or_else(|e| json!({"error": e.detail}))
    }

    /// One `DeviceInfo` from the list, if the device is listed.
    pub fn device(&self, user_name: &str, device_id: &str) -> Option<Value> {
        let list = self.list_devices(user_name);
        list["items"]
            .as_array()?
            .iter()
            .find(|d| d["device_id"] == device_id)
            .cloned()
    }

    // ---- events -----------------------------------------------------------------------------

    /// Subscribes to server events from now on. Subscribe *before* acting, then await.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.shared.events.subscribe())
    }

    // ---- tasks ------------------------------------------------------------------------------

    /// `POST /api/device-chat/tasks` as `user_name` to `device_id` (or the default device).
    pub async fn dispatch_task(
        &self,
        user_name: &str,
        device_id: Option<&str>,
        prompt: &str,
    ) -> Result<Dispatched, ApiError> {
        let req = DispatchRequest {
            device_id: device_id.map(str::to_string),
            message: prompt.into(),
            ..Default::default()
        };
        self.dispatch(user_name, req).await
    }

    /// Dispatch with the full request (e.g. `task_id` for a follow-up message).
    pub async fn dispatch(
        &self,
        user_name: &str,
        req: DispatchRequest,
    ) -> Result<Dispatched, ApiError> {
        crate::tasks::dispatch(&self.shared, &self.user(user_name), req).await
    }

    /// `GET /api/tasks/{id}` (any user).
    pub fn task(&self, task_id: i64) -> Option<TaskOutcome> {
        let json = crate::tasks::view(&self.shared, None, task_id).ok()?;
        Some(TaskOutcome {
            status: serde_json::from_value(json["status"].clone()).unwrap_or(TaskStatus::Running),
            result_text: json["result_text"].as_str().map(str::to_string),
            error_message: json["error_message"].as_str().map(str::to_string),
            json,
        })
    }

    /// Waits until the task is COMPLETED, FAILED or CANCELLED (driven by events, not polling).
    pub async fn wait_task_terminal(
        &self,
        task_id: i64,
        timeout: Duration,
    ) -> Result<TaskOutcome, WaitError> {
        let mut events = self.events();
        if let Some(t) = self.task(task_id).filter(|t| t.status.is_terminal()) {
            return Ok(t);
        }
        events
            .wait_for(&format!("task {task_id} to finish"), timeout, |e| match e {
                ServerEvent::TaskSettled { task_id: t, .. } if *t == task_id => Some(()),
                _ => None,
            })
            .await?;
        self.task(task_id).ok_or(WaitError::Closed)
    }

    /// Cancel as the web UI does: `task:cancel`, then wait for the device's `response.incomplete`.
    pub async fn cancel_task(&self, user_name: &str, task_id: i64) -> Result<Value, ApiError> {
        crate::tasks::cancel(&self.shared, &self.user(user_name), task_id).await
    }

    /// `DELETE /api/tasks/{id}`: `task:close-session` to the device.
    pub async fn delete_task(&self, user_name: &str, task_id: i64) -> Result<Value, ApiError> {
        crate::tasks::delete(&self.shared, &self.user(user_name), task_id).await
    }

    // ---- faults -----------------------------------------------------------------------------

    pub fn set_register_ack(&self, fault: AckFault) {
        lock(&self.shared.faults).register_ack = fault;
    }

    pub fn set_heartbeat_ack(&self, fault: AckFault) {
        lock(&self.shared.faults).heartbeat_ack = fault;
    }

    /// Refuse every connect with this message (`None` restores normal auth).
    pub fn refuse_connects(&self, message: Option<&str>) {
        lock(&self.shared.faults).refuse_connects = message.map(str::to_string);
    }

    /// Do not send `device:sync_capabilities` after registers.
    pub fn skip_capability_sync(&self, skip: bool) {
        lock(&self.shared.faults).skip_capability_sync = skip;
    }

    /// Cuts the TCP connection of every socket that registered `device_id`, as a network loss
    /// would: no Socket.IO goodbye, the client just sees its connection close. Returns how many.
    pub fn drop_device(&self, device_id: &str) -> usize {
        let sessions = self.shared.sessions_of_device(device_id);
        sessions
            .iter()
            .filter_map(|s| s.peer)
            .filter(|p| self.shared.connections.kill(*p))
            .count()
    }

    /// Politely disconnects the device's sockets from the namespace (`41/local-executor,`), as the
    /// server's `sio.disconnect(sid)` does. Returns how many.
    pub fn disconnect_device(&self, device_id: &str) -> usize {
        let sockets = self.shared.sockets_of_device(device_id);
        sockets
            .into_iter()
            .filter(|s| s.clone().disconnect().is_ok())
            .count()
    }

    /// Emits `event` with `payload` to every socket that registered `device_id`. Returns how many.
    pub fn emit_to_device(&self, device_id: &str, event: &str, payload: &Value) -> usize {
        let sockets = self.shared.sockets_of_device(device_id);
        sockets
            .iter()
            .filter(|s| s.emit(event, payload).is_ok())
            .count()
    }

    /// Calls `event` on the device's socket and awaits its ack (unwrapped from its array).
    pub async fn call_device(
        &self,
        device_id: &str,
        event: &str,
        payload: &Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let socket = self
            .shared
            .sockets_of_device(device_id)
            .pop()
            .ok_or_else(|| format!("{device_id} is not connected"))?;
        let stream = socket
            .timeout(timeout)
            .emit_with_ack::<_, Value>(event, payload)
            .map_err(|e| e.to_string())?;
        stream
            .await
            .map(crate::register::unwrap_single)
            .map_err(|e| e.to_string())
    }

    /// Pushes an odd frame to the device's sockets. Returns how many got it.
    pub fn send_malformed(&self, device_id: &str, frame: MalformedFrame) -> usize {
        let sockets = self.shared.sockets_of_device(device_id);
        let send = |s: &socketioxide::extract::SocketRef| match frame {
            MalformedFrame::TaskExecuteNotAnObject => s.emit("task:execute", "garbage").is_ok(),
            MalformedFrame::TaskExecuteMissingIds => s
                .emit("task:execute", &json!({"prompt": "no ids here"}))
                .is_ok(),
            MalformedFrame::TaskCancelBadIds => s
                .emit(
                    "task:cancel",
                    &json!({"task_id": "abc", "subtask_id": null}),
                )
                .is_ok(),
            MalformedFrame::BinaryAttachment => s
                .emit(
                    "task:execute",
                    &bytes::Bytes::from_static(b"\x00\x01binary"),
                )
                .is_ok(),
            MalformedFrame::UnknownEvent => s.emit("no:such:event", &json!({})).is_ok(),
        };
        sockets.iter().filter(|s| send(s)).count()
    }
}
