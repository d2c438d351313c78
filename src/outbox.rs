//! Events on their way to the server, kept while the connection is down.
//!
//! Task runners push Responses events here whether or not the socket is up; the session drains
//! the queue in order whenever it is online. An event leaves the queue only once it has been
//! written to the socket, so nothing is lost on a blip and nothing is sent twice.
//!
//! Bound policy: when `capacity` is reached, the oldest `response.output_text.delta` (and other
//! non-terminal progress events) are dropped first. The terminal `response.completed` carries the
//! full answer, so the stored result stays complete; terminal events (`response.completed`,
//! `error`, `response.incomplete`) are never dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Notify;

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

#[derive(Default)]
struct State {
    events: VecDeque<OutboundEvent>,
    dropped: u64,
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
        let event = OutboundEvent {
            name: name.into(),
            payload,
        };
        {
            let mut state = self.lock();
            if state.events.len() >= self.inner.capacity {
                if let Some(pos) = state.events.iter().position(|e| !e.is_terminal()) {
                    state.events.remove(pos);
                    state.dropped += 1;
                    if state.dropped.is_power_of_two() {
                        tracing::warn!(
                            dropped = state.dropped,
                            "outbox full while offline: dropped old progress events (final answers are kept)"
                        );
                    }
                }
            }
            state.events.push_back(event);
        }
        self.inner.notify.notify_one();
    }

    /// The oldest queued event, without removing it.
    pub fn front(&self) -> Option<OutboundEvent> {
        self.lock().events.front().cloned()
    }

    /// Remove the oldest event after it was written to the socket.
    pub fn pop_sent(&self) {
        self.lock().events.pop_front();
    }

    /// Wait until the queue is non-empty.
    pub async fn ready(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if !self.lock().events.is_empty() {
                return;
            }
            notified.await;
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let names: Vec<_> = std::iter::from_fn(|| {
            let e = outbox.front()?;
            outbox.pop_sent();
            Some(e.name)
        })
        .collect();
        assert_eq!(names, ["response.completed", "error"]);
        assert_eq!(outbox.dropped(), 1);
    }

    #[tokio::test]
    async fn ready_wakes_on_push() {
        let outbox = Outbox::new(4);
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.ready().await })
        };
        tokio::task::yield_now().await;
        outbox.push("x", json!(null));
        waiter.await.unwrap();
    }
}
