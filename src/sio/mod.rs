//! A small Socket.IO v5 / Engine.IO v4 client over WebSocket (tokio-tungstenite, rustls with the
//! OS trust store).
//!
//! - [`codec`]: pure bytes ↔ packets (Engine.IO and Socket.IO), no I/O.
//! - [`endpoint`]: the user's server URL → the `ws(s)://…/socket.io/?EIO=4&transport=websocket`
//!   endpoint (pure).
//! - `handshake`: TCP, TLS (rustls + `ring`), WebSocket upgrade, Engine.IO OPEN, namespace
//!   CONNECT with `auth`; every failure typed as a [`ConnectError`].
//! - `connection`: the reader and writer tasks of an open connection (pings, acks, events).
//! - [`client`]: the public API: [`connect`], [`Client`] (emit, call with timeout, disconnect)
//!   and [`Ack`] for answering server calls.
//!
//! No proxy is used, whatever `HTTP(S)_PROXY` says: the device talks to its backend directly, like
//! the Wegent executor (which sets `NO_PROXY` for loopback). Payloads are never logged, only
//! packet kinds, event names, ack ids and sizes: payloads carry tokens and API keys.

pub mod client;
pub mod codec;
mod connection;
pub mod endpoint;
mod handshake;

use std::time::Duration;

use serde_json::Value;

pub use client::{connect, Ack, Client};

/// Engine.IO refuses packets over this many bytes (python-engineio `max_http_buffer_size`).
pub const SERVER_MAX_PAYLOAD: usize = 1_000_000;
/// Inbound frames we accept; a real `task:execute` is ~72 KB.
pub const DEFAULT_MAX_INBOUND: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `http(s)://host[:port][/prefix]` or `ws(s)://…`; `/socket.io/` is appended.
    pub url: String,
    /// e.g. `/local-executor`.
    pub namespace: String,
    /// The CONNECT `auth` object, e.g. `{"token": "…"}`.
    pub auth: Value,
    /// Covers TCP + TLS + WebSocket + Engine.IO open + namespace connect.
    pub connect_timeout: Duration,
    pub max_inbound_frame: usize,
    /// Outbound packets at or above this size are refused with [`SendError::TooLarge`].
    pub max_outbound_packet: usize,
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>, namespace: impl Into<String>, auth: Value) -> Self {
        Self {
            url: url.into(),
            namespace: namespace.into(),
            auth,
            connect_timeout: Duration::from_secs(10),
            max_inbound_frame: DEFAULT_MAX_INBOUND,
            max_outbound_packet: SERVER_MAX_PAYLOAD,
        }
    }
}

/// Why a connection could not be established. Server refusals (CONNECT_ERROR messages from
/// protocol.md §1.1) are typed so the session can decide whether retrying makes sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("server unreachable: {0}")]
    Unreachable(String),
    #[error("TLS failure: {0}")]
    Tls(String),
    #[error("connection timed out")]
    Timeout,
    #[error("unexpected answer from the server (is this a Wegent backend?): {0}")]
    Handshake(String),
    /// "Invalid or expired token" / "Invalid or expired API key" / "Missing authentication token".
    #[error("the server refused the token: {0}")]
    TokenRejected(String),
    /// "Too many device connection attempts".
    #[error("the server is rate-limiting connection attempts: {0}")]
    RateLimited(String),
    /// "Server is shutting down".
    #[error("the server is shutting down")]
    ServerShuttingDown,
    /// "Authentication service unavailable" and any other refusal message.
    #[error("the server refused the connection: {0}")]
    Refused(String),
}

impl ConnectError {
    /// Map a CONNECT_ERROR message from the server to a typed error.
    pub fn from_refusal(message: &str) -> Self {
        match message {
            "Invalid or expired token"
            | "Invalid or expired API key"
            | "Missing authentication token" => Self::TokenRejected(message.to_owned()),
            "Too many device connection attempts" => Self::RateLimited(message.to_owned()),
            "Server is shutting down" => Self::ServerShuttingDown,
            other => Self::Refused(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("payload of {size} bytes exceeds the server's limit of {limit} bytes; not sent")]
    TooLarge { size: usize, limit: usize },
    #[error("the connection is closed")]
    Closed,
    #[error("could not encode the payload: {0}")]
    Encode(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before the acknowledgement arrived")]
    Closed,
}

/// Why an established connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The server sent a Socket.IO DISCONNECT or an Engine.IO CLOSE.
    ServerDisconnect,
    /// No ping from the server within `pingInterval + pingTimeout`.
    PingTimeout,
    /// The socket failed or closed (TCP reset, EOF, protocol error).
    Transport(String),
    /// We disconnected ([`Client::disconnect`]).
    ClientDisconnect,
}

/// Something the server sent us.
#[derive(Debug)]
pub enum Inbound {
    /// An EVENT. `ack` is present when the server asked for an acknowledgement (a "call").
    Event {
        name: String,
        args: Vec<Value>,
        ack: Option<Ack>,
    },
    /// The connection ended; no more inbound messages follow.
    Closed(CloseReason),
}
