//! The I/O tasks of one connection, started by [`spawn`]:
//! - the *reader* owns the read half: answers pings, watches the ping deadline, resolves pending
//!   calls, forwards events to the inbound channel, and decides when and why the connection ended;
//! - the *writer* owns the write half and writes queued frames in order, so an emit returns once
//!   its frame is on the socket, and a stalled write never stops ping-timeout detection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::client::Ack;
use super::codec::{self, Frame, OpenInfo, SioPacket};
use super::handshake::WsStream;
use super::{CloseReason, Inbound, SendError};

/// Inbound messages buffered for the consumer. A consumer that stops reading stalls the reader
/// (and so, eventually, the server's ping timeout ends the connection): events are never dropped.
const INBOUND_CAPACITY: usize = 256;

/// Start the reader and writer tasks on an open, namespace-joined WebSocket.
pub(super) fn spawn(
    ws: WsStream,
    open: &OpenInfo,
    namespace: String,
    max_outbound: usize,
) -> (Arc<Shared>, mpsc::Receiver<Inbound>) {
    let (sink, stream) = ws.split();
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let (finished_tx, finished_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        namespace,
        max_outbound,
        connected: AtomicBool::new(true),
        closing: AtomicBool::new(false),
        next_id: AtomicU64::new(0),
        pending: Mutex::new(HashMap::new()),
        writer: writer_tx,
        stop: Notify::new(),
        transport_error: Mutex::new(None),
        finished: finished_rx,
    });
    let writer = tokio::spawn(write_loop(sink, writer_rx, shared.clone()));
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
    let reader = Reader {
        shared: shared.clone(),
        inbound: inbound_tx,
        ping_window: open.ping_interval + open.ping_timeout,
    };
    tokio::spawn(reader.run(stream, writer, finished_tx));
    (shared, inbound_rx)
}

/// State shared by the client handles, the reader, the writer and [`Ack`]s.
pub(super) struct Shared {
    pub(super) namespace: String,
    /// Outbound packets at or above this many bytes are refused.
    pub(super) max_outbound: usize,
    pub(super) connected: AtomicBool,
    /// We started the close: the end of the stream is then a [`CloseReason::ClientDisconnect`].
    pub(super) closing: AtomicBool,
    pub(super) next_id: AtomicU64,
    /// Calls waiting for their ack. Emptied (under the lock) when the connection ends.
    pub(super) pending: Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>,
    pub(super) writer: mpsc::UnboundedSender<Outgoing>,
    /// Tells the reader to end now (a write failed, or a polite close took too long).
    pub(super) stop: Notify,
    pub(super) transport_error: Mutex<Option<String>>,
    pub(super) finished: watch::Receiver<bool>,
}

impl Shared {
    pub(super) fn pending(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Vec<Value>>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn check_size(&self, frame: &str) -> Result<(), SendError> {
        if frame.len() >= self.max_outbound {
            return Err(SendError::TooLarge {
                size: frame.len(),
                limit: self.max_outbound,
            });
        }
        Ok(())
    }

    /// Queue `frame` and wait until it is written to the socket.
    pub(super) async fn send_frame(&self, frame: String) -> Result<(), SendError> {
        self.check_size(&frame)?;
        if !self.connected.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let (done_tx, done_rx) = oneshot::channel();
        self.writer
            .send(Outgoing::Frame(frame, Some(done_tx)))
            .map_err(|_| SendError::Closed)?;
        done_rx.await.map_err(|_| SendError::Closed)
    }

    /// Start a polite close: Socket.IO DISCONNECT, then a WebSocket close.
    pub(super) fn begin_close(&self) -> Option<oneshot::Receiver<()>> {
        if self.closing.swap(true, Ordering::AcqRel) || !self.connected.load(Ordering::Acquire) {
            return None;
        }
        let (done_tx, done_rx) = oneshot::channel();
        let frame = codec::encode_disconnect(&self.namespace);
        self.writer.send(Outgoing::Close(frame, done_tx)).ok()?;
        Some(done_rx)
    }
}

pub(super) enum Outgoing {
    /// A text frame; the sender learns when it was written.
    Frame(String, Option<oneshot::Sender<()>>),
    /// The Socket.IO DISCONNECT frame, then a WebSocket close.
    Close(String, oneshot::Sender<()>),
}

async fn write_loop(
    mut sink: SplitSink<WsStream, Message>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    while let Some(outgoing) = queue.recv().await {
        match outgoing {
            Outgoing::Frame(frame, done) => {
                if let Err(e) = sink.send(Message::text(frame)).await {
                    tracing::debug!(error = %e, "write failed");
                    *shared
                        .transport_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(format!("write failed: {e}"));
                    shared.stop.notify_one();
                    return;
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Outgoing::Close(frame, done) => {
                let _ = sink.send(Message::text(frame)).await;
                let _ = sink.close().await;
                let _ = done.send(());
                return;
            }
        }
    }
}

/// The read side of one connection; it decides when and why the connection ended.
struct Reader {
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Inbound>,
    ping_window: Duration,
}

/// What woke the reader.
enum Wake {
    Message(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    PingDeadline,
    Stop,
}

/// What the reader does after one frame.
enum Step {
    Continue,
    End(CloseReason),
}

impl Reader {
    async fn run(
        self,
        mut stream: SplitStream<WsStream>,
        writer: JoinHandle<()>,
        finished: watch::Sender<bool>,
    ) {
        let deadline = tokio::time::sleep(self.ping_window);
        tokio::pin!(deadline);
        let reason = loop {
            let woke = tokio::select! {
                message = stream.next() => Wake::Message(message),
                () = &mut deadline => Wake::PingDeadline,
                () = self.shared.stop.notified() => Wake::Stop,
            };
            let step = match woke {
                Wake::Message(message) => self.on_message(message, &mut deadline).await,
                Wake::PingDeadline => Step::End(CloseReason::PingTimeout),
                Wake::Stop => Step::End(self.stopped_reason()),
            };
            if let Step::End(reason) = step {
                // Whatever ended it (the server's close answer, EOF, a deadline), we asked first.
                if self.shared.closing.load(Ordering::Acquire) {
                    break CloseReason::ClientDisconnect;
                }
                break reason;
            }
        };
        {
            // Under the lock, so a call registering now sees `connected == false` instead.
            let mut pending = self.shared.pending();
            self.shared.connected.store(false, Ordering::Release);
            pending.clear(); // dropping the senders fails the calls with `CallError::Closed`
        }
        writer.abort();
        match &reason {
            CloseReason::ClientDisconnect => tracing::info!("Socket.IO disconnected"),
            other => tracing::warn!(reason = ?other, "Socket.IO connection ended"),
        }
        let _ = self.inbound.send(Inbound::Closed(reason)).await;
        let _ = finished.send(true);
    }

    fn stopped_reason(&self) -> CloseReason {
        let error = self
            .shared
            .transport_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match error {
            Some(e) => CloseReason::Transport(e),
            None => CloseReason::ClientDisconnect,
        }
    }

    async fn on_message(
        &self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Step {
        match message {
            Some(Ok(Message::Text(text))) => self.on_text(&text, deadline).await,
            Some(Ok(Message::Binary(bytes))) => {
                tracing::warn!(
                    bytes = bytes.len(),
                    "skipping a binary frame: binary Socket.IO packets are not supported"
                );
                Step::Continue
            }
            Some(Ok(Message::Close(frame))) => Step::End(CloseReason::Transport(match frame {
                Some(f) => format!("the server closed the WebSocket (code {})", f.code),
                None => "the server closed the WebSocket".to_owned(),
            })),
            Some(Ok(_)) => Step::Continue, // WebSocket ping/pong: answered by tungstenite.
            Some(Err(e)) => Step::End(CloseReason::Transport(e.to_string())),
            None => Step::End(CloseReason::Transport(
                "the connection was closed".to_owned(),
            )),
        }
    }

    async fn on_text(
        &self,
        text: &str,
        deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Step {
        let frame = match codec::decode(text) {
            Ok(frame) => frame,
            Err(e) => {
                // Never the payload: it may carry secrets.
                tracing::warn!(error = %e, bytes = text.len(), "skipping a malformed frame");
                return Step::Continue;
            }
        };
        tracing::debug!(kind = frame.kind(), bytes = text.len(), "received");
        match frame {
            Frame::Ping(payload) => {
                deadline.as_mut().reset(Instant::now() + self.ping_window);
                let _ = self
                    .shared
                    .writer
                    .send(Outgoing::Frame(codec::encode_pong(&payload), None));
                Step::Continue
            }
            Frame::Close => Step::End(CloseReason::ServerDisconnect),
            Frame::Message(packet) => self.on_packet(packet).await,
            Frame::Open(_) | Frame::Pong(_) | Frame::Upgrade | Frame::Noop => Step::Continue,
        }
    }

    async fn on_packet(&self, packet: SioPacket) -> Step {
        if packet.namespace() != self.shared.namespace {
            tracing::debug!(
                kind = packet.kind(),
                "skipping a packet for another namespace"
            );
            return Step::Continue;
        }
        match packet {
            SioPacket::Event { id, name, args, .. } => {
                tracing::debug!(event = %name, ack_id = ?id, "event received");
                let ack = id.map(|id| Ack::new(id, name.clone(), self.shared.clone()));
                // A consumer that dropped the receiver simply does not get events.
                let _ = self.inbound.send(Inbound::Event { name, args, ack }).await;
                Step::Continue
            }
            SioPacket::Ack { id, args, .. } => {
                match self.shared.pending().remove(&id) {
                    Some(waiter) => {
                        let _ = waiter.send(args);
                    }
                    None => tracing::debug!(ack_id = id, "ack for no pending call (timed out?)"),
                }
                Step::Continue
            }
            SioPacket::Disconnect { .. } | SioPacket::ConnectError { .. } => {
                Step::End(CloseReason::ServerDisconnect)
            }
            SioPacket::Connect { .. } => Step::Continue,
        }
    }
}
