//! Task execution: `task:execute` → slot → workspace → agent (`claude` or `codex`) → Responses
//! events in the outbox.
//!
//! - [`payload`]: lenient reading of `task:execute`.
//! - [`slots`]: which queued task may start (pure).
//! - [`agent`]: which agent runs a task, the child-process turn they share, and each agent's
//!   launch and output mapping ([`agent::claude`], [`agent::codex`]); [`events`]: Responses
//!   events (pure).
//! - [`failure`]: every way a task fails, with the code the server receives.
//! - [`runner`]: one turn's lifecycle; [`emitter`]: exactly one terminal event per turn.
//! - [`manager`] (this module's [`TaskManager`]): queue, slots, cancel, shutdown.
//! - [`command_rpc`]: `device:execute_command`; [`hook`]: the pre-execute hook.
//! - [`child_env`]: every child's environment (scrubbed; dangerous payload names refused).
//! - [`fit`]: every event and ack fits the server's packet limit (cut, flagged, never dropped).
//! - [`orphans`]: children of a device that died, ended at the next start.
//! - [`process`]: process groups and stopping them.
//! - [`workdir`]: which directory a task runs in (pure) and making it exist; [`git`]: its
//!   checkout; [`workspace`]: the task's private state; [`record`]: `task.json` for cleanup;
//!   [`cleanup`]: removing a closed or expired task's folders.
//! - [`extras`]: what a task brings besides its prompt (§16.6–16.7): [`mcp`] servers,
//!   required [`skills`], [`attachments`]; [`fetch`]: their downloads.

pub mod agent;
pub mod attachments;
pub mod child_env;
pub mod cleanup;
pub mod command_rpc;
mod emitter;
pub mod events;
pub mod extras;
pub mod failure;
mod fetch;
pub mod fit;
pub mod git;
pub mod hook;
mod manager;
pub mod mcp;
pub mod orphans;
pub mod payload;
pub mod process;
pub mod record;
mod runner;
pub mod skills;
pub mod slots;
pub mod workdir;
pub mod workspace;

pub use manager::{TaskManager, STOPPED_BY_USER};
pub use runner::StopSignal;
