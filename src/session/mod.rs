//! The device session: connect → `device:register` → heartbeats → reconnect with backoff.
//!
//! - [`machine`]: the decisions, a plain struct without I/O.
//! - [`backoff`]: exponential backoff with full jitter.
//! - [`probe`]: the readiness check that brings a reconnect forward once the server is back.
//! - [`payload`]: register/heartbeat payloads and ack reading.
//! - [`sim`]: the machine on a simulated clock (unit tests, the fleet benchmark).
//! - [`runner`]: the event loop that owns the socket and drives the machine.
//! - [`dispatch`]: what the device answers to server events.

pub mod backoff;
mod dispatch;
pub mod machine;
pub mod payload;
pub mod probe;
mod runner;
pub mod sim;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::watch;

use crate::status::Slots;
use crate::token::Token;

pub use payload::Identity;
pub use runner::{run, Session};

/// What the session needs from task execution. [`crate::task::TaskManager`] implements it; tests
/// of the session alone can drive slots directly through a stand-in.
pub trait TaskPort: Send + Sync + 'static {
    /// `task:execute` (a plain emit, no ack).
    fn execute(&self, payload: Value);
    /// `task:cancel` `{task_id, subtask_id}`.
    fn cancel(&self, payload: &Value);
    /// The user stopped this task on the device ([`crate::status::Command::StopTask`]).
    fn stop_task(&self, task_id: i64);
    /// `task:close-session` `{task_id}`.
    fn close_session(&self, payload: &Value);
    /// `device:execute_command`: returns the ack object (protocol.md §6).
    fn execute_command(&self, payload: Value) -> Pin<Box<dyn Future<Output = Value> + Send>>;
    /// Pause (`true`) or resume new tasks: while paused a new task ends at once, refused.
    fn set_paused(&self, paused: bool);
    /// Stop taking tasks (a drain): new ones are refused, queued ones end now, running ones go on.
    fn drain(&self);
    /// Running and queued tasks, updated on every change.
    fn slots(&self) -> watch::Receiver<Slots>;
    /// The user's Codex login file as the heartbeat reports it (`runtime_auth_files.codex`), or
    /// `None` to say nothing (the backend then pushes nothing). Read at every heartbeat.
    fn codex_auth_file(&self) -> Option<crate::task::agent::codex::auth::AuthFileState> {
        None
    }
    /// Cancel everything; every task's terminal event is in the outbox when this returns.
    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Requests to the session (the device facade turns shell [`crate::status::Command`]s into these).
#[derive(Debug)]
pub enum SessionCommand {
    Restart,
    SetToken(Option<Token>),
    Shutdown,
}
