//! Pure Engine.IO v4 / Socket.IO v5 codec for WebSocket text frames: strings in, typed packets
//! out (and back). No I/O, no logging, no panics on any input.
//!
//! A WebSocket text frame carries one Engine.IO packet: a type digit then its payload. An
//! Engine.IO MESSAGE (`4`) carries one Socket.IO packet: a type digit, an optional `/namespace,`,
//! an optional ack id, then JSON data, e.g. `42/local-executor,7["device:heartbeat",{…}]`.
//!
//! Errors never quote the frame: payloads carry tokens and API keys.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

/// The namespace Socket.IO omits from the wire.
const ROOT_NAMESPACE: &str = "/";

/// One decoded WebSocket text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Engine.IO OPEN: the server's handshake parameters.
    Open(OpenInfo),
    /// Engine.IO CLOSE.
    Close,
    /// Engine.IO PING (answer with a PONG carrying the same payload).
    Ping(String),
    /// Engine.IO PONG.
    Pong(String),
    /// Engine.IO UPGRADE (only meaningful when upgrading from polling; ignored here).
    Upgrade,
    /// Engine.IO NOOP.
    Noop,
    /// Engine.IO MESSAGE holding a Socket.IO packet.
    Message(SioPacket),
}

/// The server's Engine.IO OPEN parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub sid: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// The largest packet the server accepts, if it said.
    pub max_payload: Option<usize>,
}

/// A decoded Socket.IO packet. Binary packets (5/6) are not supported: Wegent never sends them.
#[derive(Debug, Clone, PartialEq)]
pub enum SioPacket {
    /// `0`: namespace connected (the server sends `{"sid":…}`).
    Connect {
        namespace: String,
        data: Option<Value>,
    },
    /// `1`: namespace disconnected.
    Disconnect { namespace: String },
    /// `2`: an event; `id` is present when the sender wants an acknowledgement.
    Event {
        namespace: String,
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3`: the acknowledgement of our call `id`.
    Ack {
        namespace: String,
        id: u64,
        args: Vec<Value>,
    },
    /// `4`: the namespace connection was refused.
    ConnectError { namespace: String, message: String },
}

impl SioPacket {
    pub fn namespace(&self) -> &str {
        match self {
            Self::Connect { namespace, .. }
            | Self::Disconnect { namespace }
            | Self::Event { namespace, .. }
            | Self::Ack { namespace, .. }
            | Self::ConnectError { namespace, .. } => namespace,
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "CONNECT",
            Self::Disconnect { .. } => "DISCONNECT",
            Self::Event { .. } => "EVENT",
            Self::Ack { .. } => "ACK",
            Self::ConnectError { .. } => "CONNECT_ERROR",
        }
    }
}

impl Frame {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Open(_) => "OPEN",
            Self::Close => "CLOSE",
            Self::Ping(_) => "PING",
            Self::Pong(_) => "PONG",
            Self::Upgrade => "UPGRADE",
            Self::Noop => "NOOP",
            Self::Message(p) => p.kind(),
        }
    }
}

/// Why a frame could not be decoded. The text names the packet kind and the defect, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty frame")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownEngineType(char),
    #[error("malformed Engine.IO OPEN: {0}")]
    BadOpen(&'static str),
    #[error("empty Engine.IO MESSAGE")]
    EmptyMessage,
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownSocketType(char),
    #[error("binary Socket.IO packet ({0}) is not supported")]
    BinaryUnsupported(&'static str),
    #[error("Socket.IO {0} packet: ack id out of range")]
    BadAckId(&'static str),
    #[error("Socket.IO {kind} packet: invalid JSON ({category} at column {column})")]
    BadJson {
        kind: &'static str,
        category: &'static str,
        column: usize,
    },
    #[error("Socket.IO {kind} packet: {reason}")]
    BadData {
        kind: &'static str,
        reason: &'static str,
    },
}

/// Decode one WebSocket text frame.
pub fn decode(frame: &str) -> Result<Frame, DecodeError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(DecodeError::Empty)?;
    let rest = chars.as_str();
    match kind {
        '0' => decode_open(rest).map(Frame::Open),
        '1' => Ok(Frame::Close),
        '2' => Ok(Frame::Ping(rest.to_owned())),
        '3' => Ok(Frame::Pong(rest.to_owned())),
        '4' => decode_socket(rest).map(Frame::Message),
        '5' => Ok(Frame::Upgrade),
        '6' => Ok(Frame::Noop),
        other => Err(DecodeError::UnknownEngineType(other)),
    }
}

fn decode_open(json: &str) -> Result<OpenInfo, DecodeError> {
    let value: Value =
        serde_json::from_str(json).map_err(|_| DecodeError::BadOpen("not a JSON object"))?;
    let object = value
        .as_object()
        .ok_or(DecodeError::BadOpen("not a JSON object"))?;
    let millis = |key: &'static str| {
        object
            .get(key)
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
    };
    Ok(OpenInfo {
        sid: object
            .get("sid")
            .and_then(Value::as_str)
            .ok_or(DecodeError::BadOpen("missing sid"))?
            .to_owned(),
        ping_interval: millis("pingInterval")
            .ok_or(DecodeError::BadOpen("missing pingInterval"))?,
        ping_timeout: millis("pingTimeout").ok_or(DecodeError::BadOpen("missing pingTimeout"))?,
        max_payload: object
            .get("maxPayload")
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// Decode the Socket.IO packet inside an Engine.IO MESSAGE.
pub fn decode_socket(packet: &str) -> Result<SioPacket, DecodeError> {
    let mut chars = packet.chars();
    let kind = chars.next().ok_or(DecodeError::EmptyMessage)?;
    let rest = chars.as_str();
    let name = match kind {
        '0' => "CONNECT",
        '1' => "DISCONNECT",
        '2' => "EVENT",
        '3' => "ACK",
        '4' => "CONNECT_ERROR",
        '5' => return Err(DecodeError::BinaryUnsupported("BINARY_EVENT")),
        '6' => return Err(DecodeError::BinaryUnsupported("BINARY_ACK")),
        other => return Err(DecodeError::UnknownSocketType(other)),
    };
    let (namespace, rest) = split_namespace(rest);
    let (id, rest) = split_ack_id(rest, name)?;
    let data = if rest.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str::<Value>(rest).map_err(|e| DecodeError::BadJson {
                kind: name,
                category: json_category(&e),
                column: e.column(),
            })?,
        )
    };
    let namespace = namespace.to_owned();
    match kind {
        '0' => Ok(SioPacket::Connect { namespace, data }),
        '1' => Ok(SioPacket::Disconnect { namespace }),
        '2' => {
            let mut args = into_array(data, name)?;
            if args.is_empty() {
                return Err(bad(name, "no event name"));
            }
            let Value::String(event) = args.remove(0) else {
                return Err(bad(name, "event name is not a string"));
            };
            Ok(SioPacket::Event {
                namespace,
                id,
                name: event,
                args,
            })
        }
        '3' => Ok(SioPacket::Ack {
            namespace,
            id: id.ok_or(bad(name, "missing ack id"))?,
            args: into_array(data, name)?,
        }),
        _ => {
            let message = match data {
                Some(Value::Object(mut o)) => match o.remove("message") {
                    Some(Value::String(m)) => m,
                    _ => return Err(bad(name, "no message")),
                },
                // Socket.IO v4 servers sent the bare message.
                Some(Value::String(m)) => m,
                _ => return Err(bad(name, "no message")),
            };
            Ok(SioPacket::ConnectError { namespace, message })
        }
    }
}

/// `/ns,rest` → (`/ns`, `rest`); anything else is the root namespace.
fn split_namespace(rest: &str) -> (&str, &str) {
    if !rest.starts_with('/') {
        return (ROOT_NAMESPACE, rest);
    }
    match rest.find(',') {
        Some(comma) => (&rest[..comma], &rest[comma + 1..]),
        None => (rest, ""),
    }
}

fn split_ack_id<'a>(
    rest: &'a str,
    kind: &'static str,
) -> Result<(Option<u64>, &'a str), DecodeError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, rest));
    }
    let id = rest[..digits]
        .parse::<u64>()
        .map_err(|_| DecodeError::BadAckId(kind))?;
    Ok((Some(id), &rest[digits..]))
}

fn into_array(data: Option<Value>, kind: &'static str) -> Result<Vec<Value>, DecodeError> {
    match data {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(bad(kind, "data is not an array")),
        None => Err(bad(kind, "no data")),
    }
}

fn bad(kind: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::BadData { kind, reason }
}

fn json_category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "truncated",
    }
}

// ---- encoding -------------------------------------------------------------------------------

/// `4` (Engine.IO MESSAGE) + Socket.IO type + `/ns,` (omitted for the root namespace).
fn socket_prefix(socket_type: char, namespace: &str, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity + namespace.len() + 3);
    out.push('4');
    out.push(socket_type);
    if namespace != ROOT_NAMESPACE && !namespace.is_empty() {
        out.push_str(namespace);
        out.push(',');
    }
    out
}

/// Engine.IO PONG answering a PING with `payload`.
pub fn encode_pong(payload: &str) -> String {
    format!("3{payload}")
}

/// Socket.IO CONNECT to `namespace` with the `auth` object: `40/ns,{…}`.
pub fn encode_connect(namespace: &str, auth: &Value) -> String {
    let mut out = socket_prefix('0', namespace, 64);
    if !auth.is_null() {
        out.push_str(&auth.to_string());
    }
    out
}

/// Socket.IO DISCONNECT from `namespace`: `41/ns,`.
pub fn encode_disconnect(namespace: &str) -> String {
    socket_prefix('1', namespace, 0)
}

/// Socket.IO EVENT `["name",data]`, with an ack id when a reply is wanted: `42/ns,7["name",{…}]`.
pub fn encode_event(
    namespace: &str,
    id: Option<u64>,
    name: &str,
    data: &Value,
) -> Result<String, serde_json::Error> {
    let body = serde_json::to_string(&(name, data))?;
    let mut out = socket_prefix('2', namespace, body.len() + 20);
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
    out.push_str(&body);
    Ok(out)
}

/// Socket.IO ACK answering the server's call `id`: `43/ns,7[…]`.
pub fn encode_ack(namespace: &str, id: u64, args: &[Value]) -> Result<String, serde_json::Error> {
    let body = serde_json::to_string(args)?;
    let mut out = socket_prefix('3', namespace, body.len() + 20);
    let _ = write!(out, "{id}");
    out.push_str(&body);
    Ok(out)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
