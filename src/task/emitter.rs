//! Sends one turn's events to the outbox and the shell, and guarantees exactly one terminal event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::agent::AgentKind;
use super::events::{ResponsesEvent, Turn, COMPLETED, ERROR, INCOMPLETE};
use super::fit;
use crate::outbox::Outbox;
use crate::redact::redact;
use crate::status::DeviceEvent;

#[derive(Clone)]
pub struct Emitter {
    turn: Turn,
    title: String,
    /// Named to the shell when the task starts.
    agent: AgentKind,
    outbox: Outbox,
    events: broadcast::Sender<DeviceEvent>,
    terminal_sent: Arc<AtomicBool>,
}

impl Emitter {
    pub fn new(
        turn: Turn,
        title: String,
        agent: AgentKind,
        outbox: Outbox,
        events: broadcast::Sender<DeviceEvent>,
    ) -> Self {
        Self {
            turn,
            title,
            agent,
            outbox,
            events,
            terminal_sent: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn turn(&self) -> &Turn {
        &self.turn
    }

    pub fn terminal_sent(&self) -> bool {
        self.terminal_sent.load(Ordering::SeqCst)
    }

    /// Tell the shell the task started running.
    pub fn started(&self) {
        let _ = self.events.send(DeviceEvent::TaskStarted {
            task_id: self.turn.task_id,
            title: self.title.clone(),
            agent: self.agent,
        });
    }

    /// Queue `event` for the server. Anything after the terminal event is dropped: the backend
    /// settles the subtask on the first one and would misread more.
    pub fn emit(&self, mut event: ResponsesEvent) {
        if event.is_terminal() {
            if self.terminal_sent.swap(true, Ordering::SeqCst) {
                return;
            }
        } else if self.terminal_sent() {
            return;
        }
        if event.name == ERROR {
            // Error texts quote the CLI's stderr and result, which may echo a credential.
            if let Some(message) = event.data["message"].as_str() {
                let clean = redact(message).into_owned();
                event.data["message"] = clean.into();
            }
        }
        if event.is_terminal() {
            tracing::info!(
                task_id = self.turn.task_id,
                subtask_id = self.turn.subtask_id,
                event = event.name,
                code = event.data["code"].as_str(),
                "task finished"
            );
        }
        let notice = self.device_event(&event);
        let name = event.name;
        let mut payload = self.turn.envelope(event);
        // An answer over the server's packet limit would be refused and the task never settle.
        let cut = fit::fit(&mut payload, fit::PACKET_BUDGET, fit::CUT_NOTE);
        if !cut.is_empty() {
            tracing::warn!(task_id = self.turn.task_id, event = name, fields = ?cut, "event cut to fit the server's packet limit");
        }
        self.outbox.push(name, payload);
        if let Some(notice) = notice {
            let _ = self.events.send(notice);
        }
    }

    fn device_event(&self, event: &ResponsesEvent) -> Option<DeviceEvent> {
        let (task_id, title) = (self.turn.task_id, self.title.clone());
        Some(match event.name {
            COMPLETED => DeviceEvent::TaskCompleted { task_id, title },
            INCOMPLETE => DeviceEvent::TaskCancelled { task_id, title },
            ERROR => DeviceEvent::TaskFailed {
                task_id,
                title,
                reason: event.data["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::events;

    /// A Claude turn of task 1, subtask 2 and its emitter into `outbox`.
    fn emitter(outbox: &Outbox, events: broadcast::Sender<DeviceEvent>) -> (Turn, Emitter) {
        let turn = Turn {
            task_id: 1,
            subtask_id: 2,
            message_id: None,
            model: String::new(),
            created_at: 0,
        };
        let emitter = Emitter::new(
            turn.clone(),
            "t".into(),
            AgentKind::Claude,
            outbox.clone(),
            events,
        );
        (turn, emitter)
    }

    #[test]
    fn exactly_one_terminal_event_and_nothing_after_it() {
        let outbox = Outbox::new(100);
        let (tx, mut rx) = broadcast::channel(8);
        let (turn, e) = emitter(&outbox, tx);
        e.emit(turn.text_delta("a", 0));
        e.emit(events::error("x", "first"));
        e.emit(turn.incomplete("", "late"));
        e.emit(turn.text_delta("b", 1));
        assert_eq!(outbox.len(), 2);
        assert!(e.terminal_sent());
        assert!(
            matches!(rx.try_recv(), Ok(DeviceEvent::TaskFailed { reason, .. }) if reason == "first")
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_answer_over_the_packet_limit_is_cut_and_noted_never_dropped() {
        let outbox = Outbox::new(100);
        let (tx, _rx) = broadcast::channel(8);
        let (turn, e) = emitter(&outbox, tx);
        // 1.5 MB of text with escapes: cancelled after a long answer.
        e.emit(turn.incomplete(&"line \"quoted\"\n".repeat(100_000), "Task cancelled"));
        let (_, sent) = outbox.next_to_write().expect("the event is queued");
        assert_eq!(sent.name, "response.incomplete");
        let size = serde_json::to_string(&sent.payload).unwrap().len();
        assert!(size <= fit::PACKET_BUDGET, "{size} bytes");
        let text = sent.payload["data"]["response"]["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap();
        assert!(text.starts_with("line \"quoted\"") && text.ends_with(fit::CUT_NOTE));
        assert_eq!(
            sent.payload["data"]["response"]["error"]["code"],
            "cancelled"
        );
    }
}
