//! Wegent Device executor core.
//!
//! Makes this computer a Wegent "local device": connects to a Wegent backend over Socket.IO
//! (namespace `/local-executor`), registers, heartbeats, runs tasks with the Claude Code CLI and
//! streams results back. The core has no GUI dependency; a shell (the `wegent-executor` CLI or the
//! tray app) talks to it through a `watch` of [`status::DeviceStatus`] and a command channel of
//! [`status::Command`] (see [`device::start`]).

pub mod account;
pub mod cli;
pub mod config;
pub mod device;
pub mod hardening;
pub mod identity;
pub mod keychain;
pub mod logging;
pub mod outbox;
pub mod pause;
pub mod recent;
pub mod redact;
pub mod rest;
pub mod session;
pub mod settings;
pub mod sio;
pub mod status;
pub mod stop_requests;
pub mod task;
pub mod token;
pub mod token_expiry;
pub mod web_links;
