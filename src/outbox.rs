//! Events on their way to the server, kept until the server has them.
//!
//! Task runners push Responses events here whether or not the socket is up; the session writes
//! them in order whenever it is online, each asking for an ack, and an event leaves the queue
//! only when the server has acknowledged it (or a later event: frames arrive in order).
//!
//! Written is not delivered: a connection the server has already dropped, or one that died
//! silently, still takes writes until the client notices (for a silent death, the ping window of
//! 45 s). So every new connection [`rewind`](Outbox::rewind)s: what the server did not
//! acknowledge is written again, in order. Nothing is lost on a blip; an event the server took
//! but whose ack was lost with the connection (at most the acks in flight at that instant) is
//! sent twice. Writes are by reference to shared events: nothing is deep-copied on the way out.
//!
//! Bound policy: when `capacity` is reached, the oldest `response.output_text.delta` (and other
//! non-terminal progress events) are dropped first. The terminal `response.completed` carries the
//! full answer, so the stored result stays complete; terminal events (`response.completed`,
//! `error`, `response.incomplete`) are never dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{oneshot, Notify};

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    pub name: String,
    pub payload: Value,
}

impl OutboundEvent {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.name.as_str(),
            "response.completed" | "error" | "response.incomplete"
        )
    }
}

#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

struct Entry {
    seq: u64,
    event: Arc<OutboundEvent>,
}

#[derive(Default)]
struct State {
    /// Oldest first. The first `written` entries were written on the current connection and wait
    /// for their acknowledgement; the rest are still to be written.
    events: VecDeque<Entry>,
    written: usize,
    next_seq: u64,
    dropped: u64,
}

impl State {
    fn remove_at(&mut self, index: usize) {
        self.events.remove(index);
        if index < self.written {
            self.written -= 1;
        }
    }
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(State::default()),
                notify: Notify::new(),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Queue an event for the server.
    pub fn push(&self, name: impl Into<String>, payload: Value) {
        let event = Arc::new(OutboundEvent {
            name: name.into(),
            payload,
        });
        {
            let mut state = self.lock();
            if state.events.len() >= self.inner.capacity {
                if let Some(pos) = state.events.iter().position(|e| !e.event.is_terminal()) {
                    state.remove_at(pos);
                    state.dropped += 1;
                    if state.dropped.is_power_of_two() {
                        tracing::warn!(
                            dropped = state.dropped,
                            "outbox full while offline: dropped old progress events (final answers are kept)"
                        );
                    }
                }
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            state.events.push_back(Entry { seq, event });
        }
        self.inner.notify.notify_one();
    }

    /// The next event to write on the current connection, with its sequence number for
    /// [`acknowledged`](Self::acknowledged) or [`discard`](Self::discard). It counts as written
    /// from now on; if the write fails the connection is gone, and the next one rewinds.
    pub fn next_to_write(&self) -> Option<(u64, Arc<OutboundEvent>)> {
        let mut state = self.lock();
        let entry = state.events.get(state.written)?;
        let next = (entry.seq, entry.event.clone());
        state.written += 1;
        Some(next)
    }

    /// The server acknowledged event `seq`, so it has every event written before it too.
    pub fn acknowledged(&self, seq: u64) {
        let mut state = self.lock();
        while state.written > 0 && state.events.front().is_some_and(|e| e.seq <= seq) {
            state.events.pop_front();
            state.written -= 1;
        }
    }

    /// Give up on event `seq` (it cannot be sent: too large, not encodable).
    pub fn discard(&self, seq: u64) {
        let mut state = self.lock();
        if let Some(pos) = state.events.iter().position(|e| e.seq == seq) {
            state.remove_at(pos);
        }
    }

    /// A new connection: everything not acknowledged is to be written again, oldest first.
    pub fn rewind(&self) {
        let mut state = self.lock();
        state.written = 0;
        if !state.events.is_empty() {
            self.inner.notify.notify_one();
        }
    }

    /// Start a connection: [`rewind`](Self::rewind), and track its acknowledgements.
    pub fn connection(&self) -> Acks {
        self.rewind();
        Acks {
            outbox: self.clone(),
            waiting: VecDeque::new(),
            warned: false,
        }
    }

    /// The oldest queued event, without removing it (for consumers that do not wait for acks;
    /// see [`pop_sent`](Self::pop_sent)). Shared, not copied.
    pub fn front(&self) -> Option<Arc<OutboundEvent>> {
        self.lock().events.front().map(|e| e.event.clone())
    }

    /// Remove the oldest event (after [`front`](Self::front) handed it out and it was sent).
    pub fn pop_sent(&self) {
        let mut state = self.lock();
        if state.events.pop_front().is_some() && state.written > 0 {
            state.written -= 1;
        }
    }

    /// Wait until an event is waiting to be written.
    pub async fn ready(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.has_unwritten() {
                return;
            }
            notified.await;
        }
    }

    /// Is an event waiting to be written on the current connection?
    pub fn has_unwritten(&self) -> bool {
        let state = self.lock();
        state.events.len() > state.written
    }

    /// Events not yet acknowledged (written or not).
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Progress events dropped because the bound was hit.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Acks awaited beyond this are not waited for (a server that never acknowledges must not grow
/// them without bound); their events count as delivered.
const MAX_AWAITED_ACKS: usize = 4096;

/// The acknowledgements awaited on one connection, oldest first.
pub struct Acks {
    outbox: Outbox,
    waiting: VecDeque<(u64, oneshot::Receiver<Vec<Value>>)>,
    warned: bool,
}

impl Acks {
    /// Event `seq` was written; `ack` resolves with the server's acknowledgement.
    pub fn push(&mut self, seq: u64, ack: oneshot::Receiver<Vec<Value>>) {
        self.waiting.push_back((seq, ack));
        if self.waiting.len() > MAX_AWAITED_ACKS {
            if let Some((oldest, _)) = self.waiting.pop_front() {
                if !self.warned {
                    self.warned = true;
                    tracing::warn!(
                        "the server is not acknowledging task events; counting them as delivered"
                    );
                }
                self.outbox.acknowledged(oldest);
            }
        }
    }

    /// Wait for the oldest awaited ack and apply it. Never resolves while none is awaited.
    /// Cancel-safe: an ack that was not applied is still awaited next time.
    pub async fn next(&mut self) {
        let Some((seq, ack)) = self.waiting.front_mut() else {
            return std::future::pending().await;
        };
        let seq = *seq;
        let answer = ack.await;
        self.waiting.pop_front();
        // Closed: the connection ended first; the next connection writes the event again.
        if let Ok(args) = answer {
            let error = args
                .iter()
                .flat_map(|a| a.as_array().map_or(std::slice::from_ref(a), Vec::as_slice))
                .find_map(|a| a.get("error").and_then(Value::as_str));
            if let Some(error) = error {
                // The server has the event and refused it; sending it again would not help.
                tracing::warn!(error, "the server refused a task event");
            }
            self.outbox.acknowledged(seq);
        }
    }

    /// No ack is awaited.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

impl Drop for Acks {
    /// The connection is over: acks that arrived but were not applied yet still count (else
    /// their events would be written twice on the next connection).
    fn drop(&mut self) {
        let received = self
            .waiting
            .iter_mut()
            .filter_map(|(seq, ack)| ack.try_recv().ok().map(|_| *seq))
            .max();
        if let Some(seq) = received {
            self.outbox.acknowledged(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(outbox: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| {
            let e = outbox.front()?;
            outbox.pop_sent();
            Some(e.name.clone())
        })
        .collect()
    }

    #[test]
    fn keeps_order_and_removes_only_after_send() {
        let outbox = Outbox::new(10);
        outbox.push("a", json!(1));
        outbox.push("b", json!(2));
        assert_eq!(outbox.front().unwrap().name, "a");
        assert_eq!(outbox.front().unwrap().name, "a", "front does not remove");
        outbox.pop_sent();
        assert_eq!(outbox.front().unwrap().name, "b");
    }

    #[test]
    fn when_full_drops_oldest_progress_never_terminal() {
        let outbox = Outbox::new(2);
        outbox.push("response.completed", json!(1));
        outbox.push("response.output_text.delta", json!(2));
        outbox.push("error", json!(3));
        assert_eq!(names(&outbox), ["response.completed", "error"]);
        assert_eq!(outbox.dropped(), 1);
    }

    #[test]
    fn written_events_stay_until_acknowledged_and_a_new_connection_writes_them_again() {
        let outbox = Outbox::new(10);
        for name in ["a", "b", "c"] {
            outbox.push(name, json!(null));
        }
        let (a, _) = outbox.next_to_write().unwrap();
        let (b, _) = outbox.next_to_write().unwrap();
        assert!(outbox.has_unwritten());
        let (c, _) = outbox.next_to_write().unwrap();
        assert!(!outbox.has_unwritten() && outbox.next_to_write().is_none());
        assert!(a < b && b < c);
        // The ack of `a` only; the connection drops with `b` and `c` unacknowledged.
        outbox.acknowledged(a);
        assert_eq!(outbox.len(), 2);
        outbox.rewind();
        let again: Vec<String> = std::iter::from_fn(|| outbox.next_to_write())
            .map(|(_, e)| e.name.clone())
            .collect();
        assert_eq!(again, ["b", "c"]);
        // An ack covers everything written before it.
        outbox.acknowledged(c);
        assert!(outbox.is_empty());
    }

    #[test]
    fn overflow_and_discard_keep_the_written_mark_right() {
        let outbox = Outbox::new(3);
        outbox.push("response.output_text.delta", json!(1));
        outbox.push("response.completed", json!(2));
        let (first, _) = outbox.next_to_write().unwrap();
        let (second, _) = outbox.next_to_write().unwrap();
        outbox.push("x", json!(3));
        // Full: the written delta is dropped, not the unwritten event behind the written ones.
        outbox.push("y", json!(4));
        assert_eq!(outbox.dropped(), 1);
        let (_, next) = outbox.next_to_write().unwrap();
        assert_eq!(next.name, "x");
        outbox.discard(second);
        outbox.acknowledged(first);
        let (_, last) = outbox.next_to_write().unwrap();
        assert_eq!(last.name, "y");
        assert_eq!(outbox.len(), 2, "x (written) and y (written)");
    }

    #[tokio::test]
    async fn acks_apply_in_order_and_a_closed_connection_leaves_events_queued() {
        let outbox = Outbox::new(10);
        outbox.push("a", json!(null));
        outbox.push("b", json!(null));
        let mut acks = outbox.connection();
        let (a, _) = outbox.next_to_write().unwrap();
        let (b, _) = outbox.next_to_write().unwrap();
        let (tx_a, rx_a) = oneshot::channel();
        let (tx_b, rx_b) = oneshot::channel();
        acks.push(a, rx_a);
        acks.push(b, rx_b);
        tx_a.send(vec![json!([{"success": true}])]).unwrap();
        acks.next().await;
        assert_eq!(outbox.len(), 1);
        drop(tx_b); // the connection ended before the ack
        acks.next().await;
        assert!(acks.is_empty());
        assert_eq!(outbox.len(), 1);
        let _acks = outbox.connection();
        assert_eq!(outbox.next_to_write().unwrap().1.name, "b");
    }

    #[test]
    fn acks_received_but_not_applied_still_count_when_the_connection_ends() {
        let outbox = Outbox::new(10);
        outbox.push("a", json!(null));
        outbox.push("b", json!(null));
        let mut acks = outbox.connection();
        for _ in 0..2 {
            let (seq, _) = outbox.next_to_write().unwrap();
            let (tx, rx) = oneshot::channel();
            acks.push(seq, rx);
            if seq == 0 {
                tx.send(vec![json!({"success": true})]).unwrap();
            }
        }
        drop(acks);
        let _next = outbox.connection();
        let again: Vec<String> = std::iter::from_fn(|| outbox.next_to_write())
            .map(|(_, e)| e.name.clone())
            .collect();
        assert_eq!(again, ["b"]);
    }

    #[tokio::test]
    async fn ready_wakes_on_push_and_on_rewind() {
        let outbox = Outbox::new(4);
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.ready().await })
        };
        tokio::task::yield_now().await;
        outbox.push("x", json!(null));
        waiter.await.unwrap();
        outbox.next_to_write().unwrap();
        assert!(!outbox.has_unwritten());
        outbox.rewind();
        tokio::time::timeout(std::time::Duration::from_secs(5), outbox.ready())
            .await
            .unwrap();
    }
}
