//! The session event loop: owns the socket, drives [`SessionMachine`], keeps the status current.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::SessionConfig;
use crate::outbox::{Acks, OutboundEvent, Outbox};
use crate::session::dispatch::dispatch;
use crate::session::machine::{Failure, Next, SessionMachine};
use crate::session::payload::{
    heartbeat_payload, read_ack, register_payload, AckVerdict, Identity,
};
use crate::session::probe::{Probe, ProbeOutcome};
use crate::session::{SessionCommand, TaskPort};
use crate::sio::{self, CallError, Client, ConnectOptions, Inbound, SendError};
use crate::status::{DeviceEvent, DeviceStatus};
use crate::task::failure::TaskFailure;
use crate::token::Token;

pub const NAMESPACE: &str = "/local-executor";
/// Events written per loop turn before looking at the socket and commands again.
const OUTBOX_BATCH: usize = 256;
/// How long a shutdown waits to flush final task events before disconnecting anyway.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Everything the session loop works with.
pub struct Session {
    pub socket_url: String,
    pub config: SessionConfig,
    pub identity: Identity,
    pub tasks: Arc<dyn TaskPort>,
    pub outbox: Outbox,
    pub status: Arc<watch::Sender<DeviceStatus>>,
    pub events: broadcast::Sender<DeviceEvent>,
}

/// Run the session until [`SessionCommand::Shutdown`] (or the command channel closes).
pub async fn run(
    session: Session,
    token: Option<Token>,
    mut commands: mpsc::Receiver<SessionCommand>,
) {
    let mut token = token;
    let mut machine = SessionMachine::new(session.config.backoff.clone(), token.is_some());
    let mut next = machine.start();
    let probe = Probe::new(&session.socket_url);
    loop {
        session.publish(&machine);
        next = match next {
            Next::Connect | Next::Register | Next::Stay => {
                let Some(current) = token.clone() else {
                    next = machine.set_token(false);
                    continue;
                };
                tokio::select! {
                    result = sio::connect(session.connect_options(&current)) => match result {
                        Ok((client, inbound)) => {
                            machine.connected();
                            session.publish(&machine);
                            session.connected(&mut machine, &client, inbound, &mut commands, &mut token).await
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "connect failed");
                            machine.failed(Failure::Connect(e), Instant::now(), jitter())
                        }
                    },
                    cmd = commands.recv() => session.on_command_offline(cmd, &mut machine, &mut token),
                }
            }
            Next::WaitUntil(until) => {
                let check = check_readiness(probe.as_ref(), machine.probe_at());
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => machine.wait_elapsed(),
                    outcome = check => machine.probed(outcome, Instant::now(), jitter()),
                    cmd = commands.recv() => session.on_command_offline(cmd, &mut machine, &mut token),
                }
            }
            Next::WaitForCommand => {
                let cmd = commands.recv().await;
                session.on_command_offline(cmd, &mut machine, &mut token)
            }
            Next::Stop => {
                // Not connected: cancel what runs; its final events cannot reach the server now.
                session.tasks.shutdown().await;
                session.publish(&machine);
                return;
            }
        };
        if machine.phase() == &crate::session::machine::Phase::Stopped {
            session.publish(&machine);
            return;
        }
    }
}

impl Session {
    fn connect_options(&self, token: &Token) -> ConnectOptions {
        let mut opts = ConnectOptions::new(
            self.socket_url.clone(),
            NAMESPACE,
            json!({ "token": token.expose() }),
        );
        opts.connect_timeout = self.config.connect_timeout;
        opts
    }

    fn publish(&self, machine: &SessionMachine) {
        let connection = machine.connection(Instant::now(), SystemTime::now());
        self.status.send_if_modified(|s| {
            let changed = s.connection != connection;
            s.connection = connection;
            changed
        });
    }

    fn set_token(&self, slot: &mut Option<Token>, new: Option<Token>) {
        self.status.send_modify(|s| {
            s.token_kind = new.as_ref().map(Token::kind);
            s.token_expires_at = new.as_ref().and_then(Token::expires_at);
            s.is_default = None;
        });
        *slot = new;
    }

    fn on_command_offline(
        &self,
        cmd: Option<SessionCommand>,
        machine: &mut SessionMachine,
        token: &mut Option<Token>,
    ) -> Next {
        match cmd {
            Some(SessionCommand::Restart) => machine.restart(),
            Some(SessionCommand::SetToken(new)) => {
                let present = new.is_some();
                self.set_token(token, new);
                machine.set_token(present)
            }
            Some(SessionCommand::Shutdown) | None => machine.shutdown(),
        }
    }

    /// Register, then heartbeat and relay events until the connection ends or a command ends it.
    async fn connected(
        &self,
        machine: &mut SessionMachine,
        client: &Client,
        mut inbound: mpsc::Receiver<Inbound>,
        commands: &mut mpsc::Receiver<SessionCommand>,
        token: &mut Option<Token>,
    ) -> Next {
        let timeout = self.config.register_timeout;
        let registered = tokio::select! {
            r = client.call("device:register", register_payload(&self.identity), timeout) => r,
            cmd = commands.recv() => {
                client.disconnect().await;
                return self.on_command_offline(cmd, machine, token);
            }
        };
        let failure = match registered {
            Ok(args) => match read_ack(&args) {
                AckVerdict::Success => None,
                AckVerdict::Error(m) => Some(Failure::RegisterRejected(m)),
            },
            Err(CallError::Timeout(t)) => Some(Failure::RegisterTimeout(t)),
            Err(CallError::Closed) => Some(Failure::Closed(sio::CloseReason::Transport(
                "closed during registration".into(),
            ))),
            Err(CallError::Send(e)) => Some(Failure::RegisterRejected(e.to_string())),
        };
        if let Some(failure) = failure {
            tracing::warn!(reason = %failure.describe(), "registration failed");
            client.disconnect().await;
            return machine.failed(failure, Instant::now(), jitter());
        }
        machine.registered(Instant::now());
        self.publish(machine);
        tracing::info!(device_id = %self.identity.device_id, "registered");
        let _ = self.events.send(DeviceEvent::Registered);
        self.online(machine, client, &mut inbound, commands, token)
            .await
    }

    async fn online(
        &self,
        machine: &mut SessionMachine,
        client: &Client,
        inbound: &mut mpsc::Receiver<Inbound>,
        commands: &mut mpsc::Receiver<SessionCommand>,
        token: &mut Option<Token>,
    ) -> Next {
        let mut slots = self.tasks.slots();
        // What the server did not acknowledge on the last connection is written again.
        let mut acks = self.outbox.connection();
        let (beat_done, mut beat_results) = mpsc::channel::<Result<AckVerdict, CallError>>(4);
        let mut beats = Heartbeats::default();
        // The first tick fires at once: the server shows "0/∞" until the first heartbeat.
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv() => {
                    return match cmd {
                        Some(SessionCommand::Shutdown) | None => {
                            self.shut_down(client, &mut acks).await;
                            machine.shutdown()
                        }
                        other => {
                            client.disconnect().await;
                            self.on_command_offline(other, machine, token)
                        }
                    };
                }
                msg = inbound.recv() => match msg {
                    Some(Inbound::Event { name, args, ack }) => {
                        dispatch(self.tasks.as_ref(), &self.identity.device_id, &name, args, ack);
                    }
                    Some(Inbound::Closed(reason)) => {
                        tracing::warn!(?reason, "connection closed");
                        return machine.failed(Failure::Closed(reason), Instant::now(), jitter());
                    }
                    None => {
                        return machine.failed(
                            Failure::Closed(sio::CloseReason::Transport("connection task ended".into())),
                            Instant::now(),
                            jitter(),
                        );
                    }
                },
                Some(result) = beat_results.recv() => {
                    beats.in_flight = false;
                    let next = match result {
                        Ok(AckVerdict::Success) => machine.heartbeat_acked(Instant::now()),
                        Ok(AckVerdict::Error(m)) => {
                            tracing::error!(error = %m, "the server rejected a heartbeat");
                            machine.failed(Failure::HeartbeatRejected(m), Instant::now(), jitter())
                        }
                        Err(CallError::Timeout(_)) => {
                            tracing::warn!("heartbeat not acknowledged in time");
                            machine.heartbeat_missed(Instant::now(), jitter())
                        }
                        // The closed socket is reported on `inbound` too; handle it there.
                        Err(CallError::Closed) => Next::Stay,
                        Err(CallError::Send(e)) => {
                            tracing::error!(error = %e, "could not send a heartbeat");
                            Next::Stay
                        }
                    };
                    if next != Next::Stay {
                        client.disconnect().await;
                        return next;
                    }
                    if beats.wanted {
                        self.send_heartbeat(client, &slots, &beat_done, &mut beats);
                    }
                }
                _ = ticker.tick() => self.send_heartbeat(client, &slots, &beat_done, &mut beats),
                changed = slots.changed() => {
                    if changed.is_ok() {
                        // The server's slot view should follow task starts and ends at once.
                        self.send_heartbeat(client, &slots, &beat_done, &mut beats);
                    }
                }
                () = acks.next() => {}
                _ = self.outbox.ready() => {
                    if !self.flush_outbox(client, &mut acks, OUTBOX_BATCH).await {
                        // The socket is gone; `inbound` will say why. Events stay queued.
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
    }

    /// Send a heartbeat with an ack requested, unless one is still waiting for its ack (then send
    /// another as soon as it returns, so the server always gets the latest slots).
    fn send_heartbeat(
        &self,
        client: &Client,
        slots: &watch::Receiver<crate::status::Slots>,
        done: &mpsc::Sender<Result<AckVerdict, CallError>>,
        beats: &mut Heartbeats,
    ) {
        if beats.in_flight {
            beats.wanted = true;
            return;
        }
        beats.in_flight = true;
        beats.wanted = false;
        // Checked at every beat: the file appears once the backend pushed it (or the user
        // logged in), and the backend must learn that to stop pushing.
        let codex_auth = self.tasks.codex_auth_file();
        let payload = heartbeat_payload(&self.identity, &slots.borrow(), codex_auth.as_ref());
        let client = client.clone();
        let done = done.clone();
        let timeout = self.config.heartbeat_ack_timeout;
        tokio::spawn(async move {
            let result = client
                .call("device:heartbeat", payload, timeout)
                .await
                .map(|args| read_ack(&args));
            let _ = done.send(result).await;
        });
    }

    /// Write up to `max` queued events in order, each asking for an ack (they leave the outbox
    /// when acknowledged). Returns false if the socket is closed.
    async fn flush_outbox(&self, client: &Client, acks: &mut Acks, max: usize) -> bool {
        for _ in 0..max {
            let Some((seq, event)) = self.outbox.next_to_write() else {
                return true;
            };
            match client.emit_with_ack(&event.name, &event.payload).await {
                Ok(ack) => acks.push(seq, ack),
                Err(SendError::Closed) => return false,
                Err(e) => {
                    tracing::error!(event = %event.name, error = %e, "event not sent");
                    self.outbox.discard(seq);
                    if let Some(replacement) = too_large_replacement(&event, &e) {
                        self.outbox.push(replacement.name, replacement.payload);
                    }
                }
            }
        }
        true
    }

    /// Cancel running tasks, get their final events to the server (acknowledged), then
    /// disconnect politely.
    async fn shut_down(&self, client: &Client, acks: &mut Acks) {
        self.tasks.shutdown().await;
        let flush = async {
            while !self.outbox.is_empty() {
                if self.outbox.has_unwritten() {
                    if !self.flush_outbox(client, acks, OUTBOX_BATCH).await {
                        return;
                    }
                } else if acks.is_empty() {
                    return;
                } else {
                    acks.next().await;
                }
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_FLUSH, flush).await;
        if !self.outbox.is_empty() {
            tracing::warn!(
                pending = self.outbox.len(),
                "shutting down with task events not delivered"
            );
        }
        client.disconnect().await;
    }
}

#[derive(Default)]
struct Heartbeats {
    in_flight: bool,
    wanted: bool,
}

/// A terminal event that cannot be sent must not leave its task without one: replace an oversize
/// `response.completed` with an `error` that says why.
fn too_large_replacement(event: &OutboundEvent, error: &SendError) -> Option<OutboundEvent> {
    let SendError::TooLarge { size, limit } = error else {
        return None;
    };
    if event.name != "response.completed" {
        return None;
    }
    let p = &event.payload;
    let failure = TaskFailure::ResultTooLarge {
        size: *size,
        limit: *limit,
    };
    Some(OutboundEvent {
        name: "error".to_owned(),
        payload: json!({
            "event_type": "error",
            "task_id": p.get("task_id").cloned().unwrap_or(Value::Null),
            "subtask_id": p.get("subtask_id").cloned().unwrap_or(Value::Null),
            "message_id": p.get("message_id").cloned().unwrap_or(Value::Null),
            "data": {
                "type": "error",
                "code": failure.code(),
                "message": failure.to_string(),
            },
        }),
    })
}

/// At `at`, check whether the server is ready; never completes without a probe or an instant.
async fn check_readiness(probe: Option<&Probe>, at: Option<Instant>) -> ProbeOutcome {
    match (probe, at) {
        (Some(probe), Some(at)) => {
            tokio::time::sleep_until(at.into()).await;
            let outcome = probe.check().await;
            tracing::debug!(url = %probe.url(), ?outcome, "readiness check");
            outcome
        }
        _ => std::future::pending().await,
    }
}

fn jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_completion_becomes_an_error_for_the_same_task() {
        let event = OutboundEvent {
            name: "response.completed".into(),
            payload: json!({"task_id": 7, "subtask_id": 8, "message_id": 9, "data": {}}),
        };
        let err = SendError::TooLarge {
            size: 2_000_000,
            limit: 1_000_000,
        };
        let r = too_large_replacement(&event, &err).unwrap();
        assert_eq!(r.name, "error");
        assert_eq!(r.payload["task_id"], 7);
        assert_eq!(r.payload["data"]["code"], "result_too_large");
        let delta = OutboundEvent {
            name: "response.output_text.delta".into(),
            payload: json!({}),
        };
        assert!(too_large_replacement(&delta, &err).is_none());
    }
}
