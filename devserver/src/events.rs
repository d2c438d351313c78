//! Server-side events, broadcast to tests (and to the web console) so they can await
//! "the next heartbeat of device X" instead of polling.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::settle::TaskStatus;

/// Why a device stopped being online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    /// The socket disconnected and the grace period passed without a new socket.
    Disconnected,
    /// No heartbeat within the online TTL (no `device:offline` is broadcast by the real server here).
    TtlExpired,
}

/// Something the server saw or did. Payloads are the parsed JSON the device sent.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Connected {
        sid: String,
        user_id: i64,
        auth_type: String,
        client_ip: String,
    },
    ConnectRefused {
        message: String,
        client_ip: String,
    },
    /// Every `device:register`, accepted or not; `ack` is exactly what was (or would have been) sent.
    Register {
        sid: String,
        user_id: i64,
        device_id: Option<String>,
        payload: Value,
        ack: Value,
    },
    /// Every `device:heartbeat`; `ack` is what the server answered (sent only if the client asked).
    Heartbeat {
        sid: String,
        user_id: i64,
        device_id: Option<String>,
        payload: Value,
        ack: Value,
    },
    /// A socket of namespace `/local-executor` went away.
    Disconnected {
        sid: String,
        user_id: i64,
        device_id: Option<String>,
        reason: String,
    },
    DeviceOnline {
        user_id: i64,
        device_id: String,
    },
    DeviceOffline {
        user_id: i64,
        device_id: String,
        reason: OfflineReason,
    },
    DeviceStatus {
        user_id: i64,
        device_id: String,
        status: String,
    },
    /// The ack of `device:sync_capabilities` (`Err` = timeout or transport error).
    CapabilitySync {
        sid: String,
        device_id: String,
        ack: Result<Value, String>,
    },
    /// A Responses event (`response.*`, `error`, ...) from a device, name and full payload.
    Responses {
        sid: String,
        device_id: Option<String>,
        name: String,
        payload: Value,
    },
    /// Any other event the device sent that the server has no handler for.
    Unhandled {
        sid: String,
        name: String,
        payload: Value,
    },
    /// A task was sent to a device with `task:execute`.
    TaskDispatched {
        user_id: i64,
        task_id: i64,
        subtask_id: i64,
        device_id: String,
    },
    /// A subtask (and its task) reached a terminal state.
    TaskSettled {
        user_id: i64,
        task_id: i64,
        subtask_id: i64,
        status: TaskStatus,
        result: Option<String>,
        error: Option<String>,
    },
    /// Answer text streamed for a subtask (for live views).
    TaskDelta {
        user_id: i64,
        task_id: i64,
        subtask_id: i64,
        delta: String,
    },
    /// The device list of a user changed (register, default, delete, heartbeat capacity, offline).
    DevicesChanged {
        user_id: i64,
    },
}

impl ServerEvent {
    /// The user this event belongs to, if any (the console only shows a user their own events).
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Self::Connected { user_id, .. }
            | Self::Register { user_id, .. }
            | Self::Heartbeat { user_id, .. }
            | Self::Disconnected { user_id, .. }
            | Self::DeviceOnline { user_id, .. }
            | Self::DeviceOffline { user_id, .. }
            | Self::DeviceStatus { user_id, .. }
            | Self::TaskDispatched { user_id, .. }
            | Self::TaskSettled { user_id, .. }
            | Self::TaskDelta { user_id, .. }
            | Self::DevicesChanged { user_id } => Some(*user_id),
            _ => None,
        }
    }
}

/// Waiting for an event failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("the devserver stopped")]
    Closed,
}

/// A subscription to server events, taken *before* the action whose effect you await.
pub struct EventStream {
    rx: broadcast::Receiver<ServerEvent>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<ServerEvent>) -> Self {
        Self { rx }
    }

    /// The next event, whatever it is.
    pub async fn next(&mut self) -> Result<ServerEvent, WaitError> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Ok(e),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Err(WaitError::Closed),
            }
        }
    }

    /// The next event for which `pick` returns `Some`, within `timeout`.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&ServerEvent) -> Option<T>,
    ) -> Result<T, WaitError> {
        let search = async {
            loop {
                let e = self.next().await?;
                if let Some(t) = pick(&e) {
                    return Ok(t);
                }
            }
        };
        tokio::time::timeout(timeout, search)
            .await
            .map_err(|_| WaitError::Timeout(timeout, what.to_string()))?
    }

    /// The next `device:register` of `device_id` (accepted or not): `(payload, ack)`.
    pub async fn register_of(
        &mut self,
        device_id: &str,
        timeout: Duration,
    ) -> Result<(Value, Value), WaitError> {
        self.wait_for(&format!("register of {device_id}"), timeout, |e| match e {
            ServerEvent::Register {
                device_id: Some(d),
                payload,
                ack,
                ..
            } if d == device_id => Some((payload.clone(), ack.clone())),
            _ => None,
        })
        .await
    }

    /// The next heartbeat naming `device_id`: `(payload, ack)`.
    pub async fn heartbeat_of(
        &mut self,
        device_id: &str,
        timeout: Duration,
    ) -> Result<(Value, Value), WaitError> {
        self.wait_for(&format!("heartbeat of {device_id}"), timeout, |e| match e {
            ServerEvent::Heartbeat {
                device_id: Some(d),
                payload,
                ack,
                ..
            } if d == device_id => Some((payload.clone(), ack.clone())),
            _ => None,
        })
        .await
    }

    /// The next Responses event named `name` (e.g. `response.completed`) for `task_id`.
    pub async fn responses_event(
        &mut self,
        task_id: i64,
        name: &str,
        timeout: Duration,
    ) -> Result<Value, WaitError> {
        self.wait_for(&format!("{name} of task {task_id}"), timeout, |e| match e {
            ServerEvent::Responses {
                name: n, payload, ..
            } if n == name && crate::settle::id_of(payload, "task_id") == Some(task_id) => {
                Some(payload.clone())
            }
            _ => None,
        })
        .await
    }

    /// The next connect refusal: its message.
    pub async fn connect_refused(&mut self, timeout: Duration) -> Result<String, WaitError> {
        self.wait_for("a refused connect", timeout, |e| match e {
            ServerEvent::ConnectRefused { message, .. } => Some(message.clone()),
            _ => None,
        })
        .await
    }

    /// The next time `device_id` comes online (a register, or a heartbeat after TTL expiry).
    pub async fn online_of(&mut self, device_id: &str, timeout: Duration) -> Result<(), WaitError> {
        self.wait_for(&format!("{device_id} online"), timeout, |e| match e {
            ServerEvent::DeviceOnline { device_id: d, .. } if d == device_id => Some(()),
            _ => None,
        })
        .await
    }

    /// The next settlement of `task_id`: `(status, result, error)`.
    pub async fn settled(
        &mut self,
        task_id: i64,
        timeout: Duration,
    ) -> Result<(TaskStatus, Option<String>, Option<String>), WaitError> {
        self.wait_for(&format!("task {task_id} to settle"), timeout, |e| match e {
            ServerEvent::TaskSettled {
                task_id: t,
                status,
                result,
                error,
                ..
            } if *t == task_id => Some((*status, result.clone(), error.clone())),
            _ => None,
        })
        .await
    }

    /// The next time `device_id` goes offline: why.
    pub async fn offline_of(
        &mut self,
        device_id: &str,
        timeout: Duration,
    ) -> Result<OfflineReason, WaitError> {
        self.wait_for(&format!("{device_id} offline"), timeout, |e| match e {
            ServerEvent::DeviceOffline {
                device_id: d,
                reason,
                ..
            } if d == device_id => Some(*reason),
            _ => None,
        })
        .await
    }

    /// The next disconnect of a socket that registered `device_id`.
    pub async fn disconnect_of(
        &mut self,
        device_id: &str,
        timeout: Duration,
    ) -> Result<String, WaitError> {
        self.wait_for(&format!("{device_id} disconnect"), timeout, |e| match e {
            ServerEvent::Disconnected {
                device_id: Some(d),
                reason,
                ..
            } if d == device_id => Some(reason.clone()),
            _ => None,
        })
        .await
    }
}
