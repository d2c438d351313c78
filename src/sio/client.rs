//! The public face of one Socket.IO connection: [`connect`], the [`Client`] handle (emit, call,
//! disconnect) and [`Ack`] for answering server calls. The I/O tasks live in `connection`.
//!
//! [`Client`] handles are cheap clones; dropping the last one closes the connection politely.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::codec;
use super::connection::{self, Outgoing, Shared};
use super::handshake;
use super::{endpoint, CallError, ConnectError, ConnectOptions, Inbound, SendError};

/// How long [`Client::disconnect`] waits for the polite close before cutting the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Open a connection and join the namespace. Inbound events and the final
/// [`Inbound::Closed`] arrive on the returned receiver.
pub async fn connect(
    opts: ConnectOptions,
) -> Result<(Client, mpsc::Receiver<Inbound>), ConnectError> {
    let endpoint = endpoint::endpoint(&opts.url)?;
    let namespace = normalize_namespace(&opts)?;
    let opts = ConnectOptions { namespace, ..opts };
    let (ws, open) = tokio::time::timeout(opts.connect_timeout, handshake::open(&endpoint, &opts))
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let max_outbound = open.max_payload.map_or(opts.max_outbound_packet, |server| {
        server.min(opts.max_outbound_packet)
    });
    tracing::info!(
        url = %endpoint.url,
        namespace = %opts.namespace,
        ping_interval_ms = open.ping_interval.as_millis() as u64,
        ping_timeout_ms = open.ping_timeout.as_millis() as u64,
        max_outbound,
        "Socket.IO connected"
    );

    let (shared, inbound) = connection::spawn(ws, &open, opts.namespace.clone(), max_outbound);
    let client = Client {
        handle: Arc::new(Handle { shared }),
    };
    Ok((client, inbound))
}

fn normalize_namespace(opts: &ConnectOptions) -> Result<String, ConnectError> {
    let ns = opts.namespace.trim();
    if ns.contains(',') || ns.contains('?') {
        return Err(ConnectError::InvalidUrl {
            url: opts.url.clone(),
            reason: format!("invalid Socket.IO namespace {ns:?}"),
        });
    }
    Ok(if ns.starts_with('/') {
        ns.to_owned()
    } else {
        format!("/{ns}")
    })
}

/// A cheap handle on one connection. Dropping the last handle closes the connection politely.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Fire and forget: the reader ends when the server answers the close (or the ping
        // deadline passes).
        let _ = self.shared.begin_close();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("namespace", &self.handle.shared.namespace)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Send an event without asking for an ack. Returns once the frame is written to the socket.
    pub async fn emit(&self, event: &str, data: Value) -> Result<(), SendError> {
        let shared = self.shared();
        let frame = codec::encode_event(&shared.namespace, None, event, &data)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        tracing::debug!(event, bytes = frame.len(), "emit");
        shared.send_frame(frame).await
    }

    /// Send an event and wait up to `timeout` for the server's ack; returns the ack arguments
    /// (python-socketio sends one: the handler's return value).
    pub async fn call(
        &self,
        event: &str,
        data: Value,
        timeout: Duration,
    ) -> Result<Vec<Value>, CallError> {
        let shared = self.shared();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode_event(&shared.namespace, Some(id), event, &data)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        shared.check_size(&frame)?;
        let (ack_tx, ack_rx) = oneshot::channel();
        {
            let mut pending = shared.pending();
            if !shared.connected.load(Ordering::Acquire) {
                return Err(CallError::Closed);
            }
            pending.insert(id, ack_tx);
        }
        // Removes the entry whether the call completes, times out or is cancelled.
        let _forget = PendingGuard { shared, id };
        tracing::debug!(event, ack_id = id, bytes = frame.len(), "call");
        let exchange = async {
            shared.send_frame(frame).await.map_err(|e| match e {
                SendError::Closed => CallError::Closed,
                other => CallError::Send(other),
            })?;
            ack_rx.await.map_err(|_| CallError::Closed)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
    }

    /// Send an event asking for an ack, without waiting for the ack: returns once the frame is
    /// written, with a receiver for the ack arguments (it fails if the connection ends first).
    /// Awaiting one call after another writes the frames in that order, with several acks
    /// outstanding at once.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        data: &Value,
    ) -> Result<oneshot::Receiver<Vec<Value>>, SendError> {
        let shared = self.shared();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode_event(&shared.namespace, Some(id), event, data)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        shared.check_size(&frame)?;
        let (ack_tx, ack_rx) = oneshot::channel();
        {
            let mut pending = shared.pending();
            if !shared.connected.load(Ordering::Acquire) {
                return Err(SendError::Closed);
            }
            pending.insert(id, ack_tx);
        }
        tracing::debug!(event, ack_id = id, bytes = frame.len(), "emit with ack");
        if let Err(e) = shared.send_frame(frame).await {
            shared.pending().remove(&id);
            return Err(e);
        }
        Ok(ack_rx)
    }

    /// Leave politely: Socket.IO DISCONNECT for the namespace, then close the WebSocket. Returns
    /// when the connection has ended (at most a couple of seconds on a dead socket).
    pub async fn disconnect(&self) {
        let shared = self.shared();
        if let Some(written) = shared.begin_close() {
            let _ = tokio::time::timeout(CLOSE_GRACE, written).await;
        }
        let mut finished = shared.finished.clone();
        if tokio::time::timeout(CLOSE_GRACE, finished.wait_for(|f| *f))
            .await
            .is_err()
        {
            // The server did not answer the close: end the reader now.
            shared.closing.store(true, Ordering::Release);
            shared.stop.notify_one();
            let _ = finished.wait_for(|f| *f).await;
        }
    }

    /// True until the connection ends (for any reason).
    pub fn is_connected(&self) -> bool {
        self.shared().connected.load(Ordering::Acquire)
    }

    /// The largest outbound packet (exclusive) this connection accepts: the smaller of our limit
    /// and the server's `maxPayload`.
    pub fn max_outbound_packet(&self) -> usize {
        self.shared().max_outbound
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.id);
    }
}

/// The answer to a server call (an event that carried an ack id). Dropping it unanswered is
/// allowed: the server's own timeout then applies.
pub struct Ack {
    id: u64,
    event: String,
    shared: Arc<Shared>,
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("id", &self.id)
            .field("event", &self.event)
            .finish()
    }
}

impl Ack {
    pub(super) fn new(id: u64, event: String, shared: Arc<Shared>) -> Self {
        Self { id, event, shared }
    }

    /// Answer the call with `args` (usually one value). Failures are logged; see [`Ack::try_send`].
    pub fn send(self, args: Vec<Value>) {
        let (id, event) = (self.id, self.event.clone());
        if let Err(e) = self.try_send(args) {
            tracing::warn!(event = %event, ack_id = id, error = %e, "could not answer a server call");
        }
    }

    /// Answer the call with `args`; queued for writing without waiting.
    pub fn try_send(self, args: Vec<Value>) -> Result<(), SendError> {
        let frame = codec::encode_ack(&self.shared.namespace, self.id, &args)
            .map_err(|e| SendError::Encode(e.to_string()))?;
        self.shared.check_size(&frame)?;
        if !self.shared.connected.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        tracing::debug!(event = %self.event, ack_id = self.id, bytes = frame.len(), "ack");
        self.shared
            .writer
            .send(Outgoing::Frame(frame, None))
            .map_err(|_| SendError::Closed)
    }

    /// The event this ack answers.
    pub fn event(&self) -> &str {
        &self.event
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
