//! What the core tells a shell (CLI or tray) and what a shell can ask of it.
//!
//! The core publishes [`DeviceStatus`] through a `tokio::sync::watch` (latest value wins; a shell
//! renders it), one-off [`DeviceEvent`]s through a `broadcast` (things to notify about, which a
//! `watch` could coalesce away), and takes [`Command`]s through an `mpsc`.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::task::agent::AgentKind;
use crate::token::{Token, TokenKind};

/// The connection to the Wegent backend, as a user would describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    /// No token configured: nothing to connect with until the user gives one.
    NoToken,
    /// Connecting or registering (attempt counts from 1 since the last time online).
    Connecting { attempt: u32 },
    /// Registered and heartbeating.
    Online,
    /// Not connected; retrying at `retry_at` (`None`: not retrying by itself).
    Offline {
        reason: String,
        retry_at: Option<SystemTime>,
    },
    /// The server refused the token. No retry until a new token is given.
    TokenRejected { message: String },
    /// The core has shut down.
    Stopped,
}

/// A task currently holding a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningTask {
    pub task_id: i64,
    pub subtask_id: i64,
    pub title: String,
    /// The coding agent running it (from the bot's shell type).
    pub agent: AgentKind,
    pub started_at: SystemTime,
    /// The project folder's name (last component of the task's directory); `None` for the
    /// device's scratch dir of a task without a project.
    pub project: Option<String>,
    /// The task's working directory ("Open folder"); `None` if it could not be chosen.
    pub folder: Option<PathBuf>,
}

/// A task waiting for a free slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedTask {
    pub task_id: i64,
    pub subtask_id: i64,
    pub title: String,
    pub agent: AgentKind,
}

/// How a task's turn ended on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEnd {
    Completed,
    Failed,
    Cancelled,
}

impl TaskEnd {
    /// The end in a word, as the tray and the CLI show it.
    pub fn label(self) -> &'static str {
        match self {
            TaskEnd::Completed => "Completed",
            TaskEnd::Failed => "Failed",
            TaskEnd::Cancelled => "Cancelled",
        }
    }
}

/// A task that finished lately ([`DeviceStatus::recent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedTask {
    pub task_id: i64,
    pub title: String,
    pub end: TaskEnd,
    pub ended_at: SystemTime,
}

/// Slot usage as reported in heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slots {
    pub max: u8,
    pub running: Vec<RunningTask>,
    /// How many tasks wait for a slot (what heartbeats report): `waiting.len()`.
    pub queued: usize,
    /// The waiting tasks, first to start first.
    pub waiting: Vec<QueuedTask>,
    /// Tasks that may wait; a new one beyond this fails at once.
    pub max_queued: usize,
}

impl Slots {
    pub fn used(&self) -> usize {
        self.running.len()
    }

    /// No new task can wait: the next one that finds every slot busy fails at once.
    pub fn queue_full(&self) -> bool {
        self.queued >= self.max_queued
    }
}

/// Everything a shell needs to render the device's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStatus {
    pub connection: Connection,
    pub device_id: String,
    pub device_name: String,
    pub server_url: String,
    /// Where Wegent's web app is: a task's page is [`crate::web_links::task_page_url`] of it.
    pub web_url: String,
    pub slots: Slots,
    /// Kind of the configured token, if any.
    pub token_kind: Option<TokenKind>,
    /// JWT `exp` of the configured token (never verified locally).
    pub token_expires_at: Option<SystemTime>,
    /// Whether the server lists this device as the user's default (`None`: unknown, e.g. API-key
    /// token or server not asked yet).
    pub is_default: Option<bool>,
    /// The last error of a user-requested action (set default, …), in words.
    pub last_error: Option<String>,
    /// The server is reached over `http://`/`ws://` on another machine: the token and task
    /// secrets cross the network unencrypted.
    pub insecure_transport: bool,
    /// The user paused new tasks ([`crate::pause`]): online, running tasks go on, new ones are
    /// refused.
    pub paused: bool,
    /// The device is stopping ([`Command::Drain`]): it takes no new task, the running ones may
    /// finish.
    pub draining: bool,
    /// The last [`crate::recent::RECENT_TASKS`] tasks that finished here, newest first, one
    /// entry per task.
    pub recent: Vec<FinishedTask>,
}

/// Something worth telling the user about once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceEvent {
    TaskStarted {
        task_id: i64,
        title: String,
        /// The coding agent running it.
        agent: AgentKind,
    },
    TaskCompleted {
        task_id: i64,
        title: String,
    },
    TaskFailed {
        task_id: i64,
        title: String,
        reason: String,
    },
    TaskCancelled {
        task_id: i64,
        title: String,
    },
    /// The server registered this device (again).
    Registered,
}

/// Requests from a shell to the core.
#[derive(Debug)]
pub enum Command {
    /// Drop the connection and connect again now (resets backoff).
    Restart,
    /// Use this token from now on and reconnect (the shell has already stored it).
    SetToken(Token),
    /// Forget the token and disconnect.
    ClearToken,
    /// Ask the server to make this device the user's default (needs a login JWT).
    SetDefault,
    /// Refresh `is_default` from the server.
    RefreshDefault,
    /// Pause (`true`) or resume new tasks; saved in the executor home, so it survives a restart.
    SetPaused(bool),
    /// Stop one task on this device (its running turn and any queued ones): the server gets
    /// `response.incomplete` with [`crate::task::STOPPED_BY_USER`], its processes end as with a
    /// cancel from the server.
    StopTask { task_id: i64 },
    /// Cancel running tasks (each gets a terminal event), disconnect politely and stop.
    Shutdown,
    /// Stop gracefully: take no new task (it fails saying the device is shutting down), end the
    /// queued ones, let the running ones finish for up to `grace`, then [`Command::Shutdown`]
    /// (which cancels what still runs). A `Shutdown` meanwhile cancels at once.
    Drain { grace: std::time::Duration },
}
