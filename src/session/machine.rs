//! The session's decisions as a plain struct, testable without sockets (the rumqtt `state.rs`
//! pattern): the runner reports what happened, the machine says what to do next and what the user
//! should see.

use std::time::{Duration, Instant, SystemTime};

use crate::config::BackoffConfig;
use crate::session::backoff::Backoff;
use crate::session::probe::ProbeOutcome;
use crate::sio::{CloseReason, ConnectError};
use crate::status::Connection;

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    NoToken,
    Connecting,
    Registering,
    Online {
        since: Instant,
    },
    /// Offline until `until` (the backoff); if `probe_at` is set, the server's readiness is
    /// checked then, and a ready server brings the connect forward.
    Waiting {
        until: Instant,
        reason: String,
        probe_at: Option<Instant>,
    },
    TokenRejected {
        message: String,
    },
    Stopped,
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Connect,
    Register,
    /// Stay connected and keep heartbeating.
    Stay,
    /// Drop the connection (if any) and sleep until the instant, unless a command comes first.
    WaitUntil(Instant),
    /// Drop the connection (if any) and do nothing until a command arrives.
    WaitForCommand,
    Stop,
}

/// Why a connection attempt or an established session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Connect(ConnectError),
    RegisterRejected(String),
    RegisterTimeout(Duration),
    HeartbeatRejected(String),
    HeartbeatsUnanswered,
    Closed(CloseReason),
}

impl Failure {
    /// The reason in words, for the status line and the log.
    pub fn describe(&self) -> String {
        match self {
            Failure::Connect(e) => e.to_string(),
            Failure::RegisterRejected(m) => format!("the server refused the registration: {m}"),
            Failure::RegisterTimeout(t) => format!(
                "the server did not acknowledge the registration within {} s",
                t.as_secs()
            ),
            Failure::HeartbeatRejected(m) => format!("the server rejected a heartbeat: {m}"),
            Failure::HeartbeatsUnanswered => {
                "the server stopped acknowledging heartbeats".to_owned()
            }
            Failure::Closed(CloseReason::ServerDisconnect) => {
                "the server closed the connection".to_owned()
            }
            Failure::Closed(CloseReason::PingTimeout) => {
                "connection lost: no ping from the server".to_owned()
            }
            Failure::Closed(CloseReason::Transport(e)) => format!("connection lost: {e}"),
            Failure::Closed(CloseReason::ClientDisconnect) => "disconnected".to_owned(),
        }
    }

    /// The server (or the way to it) looks gone, as opposed to answering with a refusal: a
    /// readiness check can tell when it is back. Refusals (token, rate limit, "shutting down",
    /// register errors) come from a running server; checking it would only say "ready".
    fn server_unreachable(&self) -> bool {
        match self {
            Failure::Connect(e) => matches!(
                e,
                ConnectError::Unreachable(_) | ConnectError::Timeout | ConnectError::Handshake(_)
            ),
            Failure::Closed(reason) => !matches!(reason, CloseReason::ClientDisconnect),
            Failure::HeartbeatsUnanswered | Failure::RegisterTimeout(_) => true,
            Failure::RegisterRejected(_) | Failure::HeartbeatRejected(_) => false,
        }
    }
}

/// Consecutive unacknowledged heartbeats tolerated before reconnecting (protocol.md §10).
pub const MAX_MISSED_HEARTBEATS: u32 = 2;
/// Doublings of the connect spread after ready checks whose connect failed anyway.
const MAX_PROBE_MISS_DOUBLINGS: u32 = 6;

#[derive(Debug, Clone)]
pub struct SessionMachine {
    phase: Phase,
    backoff: Backoff,
    has_token: bool,
    missed_heartbeats: u32,
    /// Attempts since the device was last online, for "Connecting (attempt n)".
    attempts: u32,
    /// What the readiness checks have taught since the device was last online.
    probe: ProbeMemory,
}

/// Readiness checks only bring connects forward; these keep that from costing connects when the
/// check says "ready" but the connect fails anyway (a proxy answering `/health` itself).
#[derive(Debug, Clone, Default)]
struct ProbeMemory {
    /// The connect under way was brought forward by a ready check.
    connect_after_probe: bool,
    /// Connects brought forward by a ready check that failed, since last online: each doubles
    /// the spread of the next one, so a lying check costs a handful of connects, not one a second.
    misses: u32,
    /// The server answered the check with something else than a readiness answer.
    unsupported: bool,
}

impl SessionMachine {
    pub fn new(backoff: BackoffConfig, has_token: bool) -> Self {
        Self {
            phase: Phase::NoToken,
            backoff: Backoff::new(backoff),
            has_token,
            missed_heartbeats: 0,
            attempts: 0,
            probe: ProbeMemory::default(),
        }
    }

    /// When to check the server's readiness next, if the session is waiting and a check helps.
    pub fn probe_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { probe_at, .. } => probe_at,
            _ => None,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Begin (or begin again after a command): connect if there is a token.
    pub fn start(&mut self) -> Next {
        if self.has_token {
            self.phase = Phase::Connecting;
            self.attempts += 1;
            Next::Connect
        } else {
            self.phase = Phase::NoToken;
            Next::WaitForCommand
        }
    }

    /// A wait is over: try again.
    pub fn wait_elapsed(&mut self) -> Next {
        self.start()
    }

    pub fn connected(&mut self) -> Next {
        self.phase = Phase::Registering;
        Next::Register
    }

    pub fn registered(&mut self, now: Instant) -> Next {
        self.phase = Phase::Online { since: now };
        self.missed_heartbeats = 0;
        self.attempts = 0;
        self.probe = ProbeMemory::default();
        Next::Stay
    }

    pub fn heartbeat_acked(&mut self, now: Instant) -> Next {
        self.missed_heartbeats = 0;
        if let Phase::Online { since } = self.phase {
            if now.duration_since(since) >= self.backoff.stable_after() {
                self.backoff.reset();
            }
        }
        Next::Stay
    }

    /// A heartbeat got no acknowledgement in time. Tolerate one, reconnect on the second.
    pub fn heartbeat_missed(&mut self, now: Instant, jitter: f64) -> Next {
        self.missed_heartbeats += 1;
        if self.missed_heartbeats < MAX_MISSED_HEARTBEATS {
            Next::Stay
        } else {
            self.failed(Failure::HeartbeatsUnanswered, now, jitter)
        }
    }

    /// Something ended the attempt or the session. `jitter` is uniform in `[0, 1)`.
    pub fn failed(&mut self, failure: Failure, now: Instant, jitter: f64) -> Next {
        self.missed_heartbeats = 0;
        if std::mem::take(&mut self.probe.connect_after_probe) {
            self.probe.misses += 1;
        }
        if let Phase::Online { since } = self.phase {
            if now.duration_since(since) >= self.backoff.stable_after() {
                self.backoff.reset();
            }
        }
        if let Failure::Connect(ConnectError::TokenRejected(message)) = &failure {
            // Retrying a refused token only burns the server's rate limit; wait for a new one.
            self.phase = Phase::TokenRejected {
                message: message.clone(),
            };
            return Next::WaitForCommand;
        }
        let rate_limited = matches!(failure, Failure::Connect(ConnectError::RateLimited(_)));
        let until = now + self.backoff.next_delay(jitter, rate_limited);
        let probe_at = (failure.server_unreachable() && !self.probe.unsupported)
            .then(|| now + self.probe_delay(jitter));
        self.phase = Phase::Waiting {
            until,
            reason: failure.describe(),
            probe_at,
        };
        Next::WaitUntil(until)
    }

    /// A readiness check ended. `jitter` is uniform in `[0, 1)`.
    ///
    /// Ready: connect within a random part of the connect spread (the backoff keeps growing in
    /// the background, so a check that lies cannot make the device hammer the server). Down: check
    /// again in about a probe interval. Unsupported: stop checking until next online.
    pub fn probed(&mut self, outcome: ProbeOutcome, now: Instant, jitter: f64) -> Next {
        let next_probe = now + self.probe_delay(jitter);
        let spread = self.connect_spread().mul_f64(jitter.clamp(0.0, 1.0));
        let Phase::Waiting {
            until, probe_at, ..
        } = &mut self.phase
        else {
            // The runner checks only while waiting; anything else: wait no longer.
            return Next::WaitUntil(now);
        };
        match outcome {
            ProbeOutcome::Ready => {
                *probe_at = None;
                if now + spread < *until {
                    *until = now + spread;
                    self.probe.connect_after_probe = true;
                }
            }
            ProbeOutcome::Down => *probe_at = Some(next_probe),
            ProbeOutcome::Unsupported => {
                *probe_at = None;
                self.probe.unsupported = true;
            }
        }
        Next::WaitUntil(*until)
    }

    /// Between half and all of the probe interval, so a fleet's checks do not line up.
    fn probe_delay(&self, jitter: f64) -> Duration {
        self.backoff
            .config()
            .probe_interval
            .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The connect spread, doubled per ready check whose connect failed, capped at the backoff's.
    fn connect_spread(&self) -> Duration {
        let config = self.backoff.config();
        let doublings = self.probe.misses.min(MAX_PROBE_MISS_DOUBLINGS);
        config
            .connect_spread
            .saturating_mul(1 << doublings)
            .min(config.max)
    }

    /// The user asked to reconnect now.
    pub fn restart(&mut self) -> Next {
        self.backoff.reset();
        self.attempts = 0;
        self.probe = ProbeMemory::default();
        self.start()
    }

    /// A new token (or none) from the user.
    pub fn set_token(&mut self, present: bool) -> Next {
        self.has_token = present;
        self.restart()
    }

    pub fn shutdown(&mut self) -> Next {
        self.phase = Phase::Stopped;
        Next::Stop
    }

    /// The phase as the user-facing [`Connection`]. `now`/`now_sys` convert the retry instant.
    pub fn connection(&self, now: Instant, now_sys: SystemTime) -> Connection {
        match &self.phase {
            Phase::NoToken => Connection::NoToken,
            Phase::Connecting | Phase::Registering => Connection::Connecting {
                attempt: self.attempts.max(1),
            },
            Phase::Online { .. } => Connection::Online,
            Phase::Waiting { until, reason, .. } => Connection::Offline {
                reason: reason.clone(),
                retry_at: Some(now_sys + until.saturating_duration_since(now)),
            },
            Phase::TokenRejected { message } => Connection::TokenRejected {
                message: message.clone(),
            },
            Phase::Stopped => Connection::Stopped,
        }
    }
}

#[cfg(test)]
mod tests;
