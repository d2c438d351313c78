//! `wegent-devserver`: a Wegent-compatible local backend for development, demos and tests.
//!
//! It speaks the device channel of protocol.md on the wire (Socket.IO v5 at `/socket.io/`,
//! namespace `/local-executor`), offers the REST routes a device user needs under `/api`, and a
//! web console at `/`. Embed it with [`DevServer::start`]; see `progress-devserver.md` for the test API.

mod attachments;
pub mod auth;
pub mod bots;
pub mod config;
mod console;
mod device_ns;
pub mod events;
pub mod faults;
mod handle;
pub mod host_guard;
pub mod jwt;
mod listener;
pub mod model_mock;
pub mod online;
pub mod payload;
pub mod projects;
mod register;
mod rest;
mod rest_devices;
mod rest_projects;
pub mod schema;
mod server;
pub mod settle;
mod sign_in_links;
mod state;
pub mod store;
mod tasks;
pub mod wire_client;

pub use config::{DevServerConfig, ModelSettings, Storage, Timings};
pub use events::{EventStream, OfflineReason, ServerEvent, WaitError};
pub use faults::{AckFault, MalformedFrame};
pub use handle::TaskOutcome;
pub use rest_devices::shell_split;
pub use server::{DevServer, RunningDevServer, StartError};
pub use settle::TaskStatus;
pub use tasks::{ApiError, DispatchRequest, Dispatched};

/// A random URL-safe token of `bytes` random bytes (API keys, salts, request ids).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
