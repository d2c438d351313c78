//! A minimal Socket.IO v5 client over a raw websocket, for the devserver's own tests and the
//! scripted demo device. It is deliberately independent of the executor core's client, so the
//! devserver is tested against something other than the code it will test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const NS: &str = "/local-executor";

/// Something the server sent on the namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An event; `ack_id` is set when the server expects an ack (a call).
    Event {
        name: String,
        args: Vec<Value>,
        ack_id: Option<i64>,
    },
    /// A frame this client could not parse (kept raw).
    Unparsed(String),
    /// The socket closed (server disconnect, transport close).
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("websocket: {0}")]
    Transport(String),
    #[error("connect refused: {0}")]
    Refused(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("connection closed")]
    Closed,
}

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;

/// A connected namespace socket.
pub struct WireClient {
    out: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    pending: Pending,
    next_ack: i64,
    /// The Socket.IO sid the server assigned.
    pub sid: String,
}

/// Splits `<type><binary-count->?</ns,>?<ack id>?<json>` (the part after Engine.IO's `4`).
fn parse_packet(p: &str) -> Option<(char, Option<i64>, &str)> {
    let mut rest = p.get(1..)?;
    let kind = p.chars().next()?;
    if matches!(kind, '5' | '6') {
        rest = &rest[rest.find('-')? + 1..];
    }
    if rest.starts_with('/') {
        let comma = rest.find(',').unwrap_or(rest.len());
        if &rest[..comma] != NS {
            return None;
        }
        rest = rest.get(comma + 1..).unwrap_or("");
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let ack = (digits > 0).then(|| rest[..digits].parse().ok()).flatten();
    Some((kind, ack, &rest[digits..]))
}

impl WireClient {
    /// Connects to `base_url` (`http://host:port`) with `auth` as the CONNECT payload (`None` = no auth).
    pub async fn connect(
        base_url: &str,
        auth: Option<Value>,
        timeout: Duration,
    ) -> Result<Self, WireError> {
        tokio::time::timeout(timeout, Self::connect_inner(base_url, auth))
            .await
            .map_err(|_| WireError::Timeout("the namespace connect".into()))?
    }

    /// Connects with `{"token": token}`.
    pub async fn connect_with_token(base_url: &str, token: &str) -> Result<Self, WireError> {
        Self::connect(
            base_url,
            Some(serde_json::json!({"token": token})),
            Duration::from_secs(5),
        )
        .await
    }

    async fn connect_inner(base_url: &str, auth: Option<Value>) -> Result<Self, WireError> {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base_url.replacen("http", "ws", 1)
        );
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .map_err(|e| WireError::Transport(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        // Engine.IO open packet.
        match stream.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
            other => {
                return Err(WireError::Transport(format!(
                    "no Engine.IO open packet: {other:?}"
                )))
            }
        }
        let connect = match &auth {
            Some(a) => format!("40{NS},{a}"),
            None => format!("40{NS},"),
        };
        sink.send(Message::text(connect))
            .await
            .map_err(|e| WireError::Transport(e.to_string()))?;
        let sid = loop {
            let Some(Ok(msg)) = stream.next().await else {
                return Err(WireError::Closed);
            };
            let Message::Text(t) = msg else { continue };
            if t.as_str() == "2" {
                sink.send(Message::text("3"))
                    .await
                    .map_err(|e| WireError::Transport(e.to_string()))?;
                continue;
            }
            let Some((kind, _, json)) = t.strip_prefix('4').and_then(parse_packet) else {
                continue;
            };
            let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            match kind {
                '0' => break v["sid"].as_str().unwrap_or_default().to_string(),
                '4' => {
                    return Err(WireError::Refused(
                        v["message"].as_str().unwrap_or_default().to_string(),
                    ))
                }
                _ => continue,
            }
        };
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let pong = out.clone();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let acks = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Binary(_) => continue,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if text == "2" {
                    let _ = pong.send("3".into());
                    continue;
                }
                let Some(packet) = text.strip_prefix('4') else {
                    continue;
                };
                match parse_packet(packet) {
                    Some(('2' | '5', ack_id, json)) => {
                        let mut args: Vec<Value> = serde_json::from_str(json).unwrap_or_default();
                        if args.is_empty() {
                            let _ = in_tx.send(Incoming::Unparsed(text.clone()));
                            continue;
                        }
                        let name = args.remove(0).as_str().unwrap_or_default().to_string();
                        let _ = in_tx.send(Incoming::Event { name, args, ack_id });
                    }
                    Some(('3', Some(id), json)) => {
                        let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                        if let Some(tx) = acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)
                        {
                            let _ = tx.send(v);
                        }
                    }
                    Some(('1', _, _)) => break,
                    _ => {
                        let _ = in_tx.send(Incoming::Unparsed(text.clone()));
                    }
                }
            }
            let _ = in_tx.send(Incoming::Closed);
        });
        Ok(Self {
            out,
            incoming,
            pending,
            next_ack: 0,
            sid,
        })
    }

    /// Plain emit (no ack requested), like the Rust executor's Responses events.
    pub fn emit(&self, event: &str, data: &Value) {
        let _ = self
            .out
            .send(format!("42{NS},{}", serde_json::json!([event, data])));
    }

    /// Emit with an ack id and wait for the ack; returns the ack's first argument.
    pub async fn call(
        &mut self,
        event: &str,
        data: &Value,
        timeout: Duration,
    ) -> Result<Value, WireError> {
        self.next_ack += 1;
        let id = self.next_ack;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let _ = self
            .out
            .send(format!("42{NS},{id}{}", serde_json::json!([event, data])));
        let ack = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| WireError::Timeout(format!("the ack of {event}")))?
            .map_err(|_| WireError::Closed)?;
        Ok(match ack {
            Value::Array(mut items) if !items.is_empty() => items.remove(0),
            other => other,
        })
    }

    /// Answers a server call.
    pub fn ack(&self, ack_id: i64, value: &Value) {
        let _ = self
            .out
            .send(format!("43{NS},{ack_id}{}", serde_json::json!([value])));
    }

    /// Sends a raw Engine.IO text frame (for malformed-input tests).
    pub fn send_raw(&self, frame: &str) {
        let _ = self.out.send(frame.to_string());
    }

    /// The next thing the server sent, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Incoming, WireError> {
        tokio::time::timeout(timeout, self.incoming.recv())
            .await
            .map_err(|_| WireError::Timeout("a server frame".into()))?
            .ok_or(WireError::Closed)
    }

    /// The next event named `name`: `(first argument, ack id)`. Other events are skipped.
    pub async fn wait_event(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<(Value, Option<i64>), WireError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .next(left)
                .await
                .map_err(|_| WireError::Timeout(name.to_string()))?
            {
                Incoming::Event {
                    name: n,
                    mut args,
                    ack_id,
                } if n == name => {
                    return Ok((
                        if args.is_empty() {
                            Value::Null
                        } else {
                            args.remove(0)
                        },
                        ack_id,
                    ));
                }
                Incoming::Closed => return Err(WireError::Closed),
                _ => continue,
            }
        }
    }

    /// Waits until the server closes the socket.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<(), WireError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(Incoming::Closed) | Err(WireError::Closed) => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Disconnects from the namespace and closes the websocket.
    pub fn close(self) {
        let _ = self.out.send(format!("41{NS},"));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_packet;

    #[test]
    fn packet_parts() {
        assert_eq!(
            parse_packet(r#"2/local-executor,["a",1]"#),
            Some(('2', None, r#"["a",1]"#))
        );
        assert_eq!(
            parse_packet(r#"3/local-executor,12[{"x":1}]"#),
            Some(('3', Some(12), r#"[{"x":1}]"#))
        );
        assert_eq!(
            parse_packet(r#"51-/local-executor,["a",{"_placeholder":true,"num":0}]"#).map(|p| p.0),
            Some('5')
        );
        assert_eq!(parse_packet(r#"2/other,["a"]"#), None);
    }
}
