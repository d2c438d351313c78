//! The session's decisions as a plain struct, testable without sockets (the rumqtt `state.rs`
//! pattern): the runner reports what happened, the machine says what to do next and what the user
//! should see.

use std::time::{Duration, Instant, SystemTime};

use crate::config::BackoffConfig;
use crate::session::backoff::Backoff;
use crate::sio::{CloseReason, ConnectError};
use crate::status::Connection;

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    NoToken,
    Connecting,
    Registering,
    Online { since: Instant },
    Waiting { until: Instant, reason: String },
    TokenRejected { message: String },
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
}

/// Consecutive unacknowledged heartbeats tolerated before reconnecting (protocol.md §10).
pub const MAX_MISSED_HEARTBEATS: u32 = 2;

#[derive(Debug, Clone)]
pub struct SessionMachine {
    phase: Phase,
    backoff: Backoff,
    has_token: bool,
    missed_heartbeats: u32,
    /// Attempts since the device was last online, for "Connecting (attempt n)".
    attempts: u32,
}

impl SessionMachine {
    pub fn new(backoff: BackoffConfig, has_token: bool) -> Self {
        Self {
            phase: Phase::NoToken,
            backoff: Backoff::new(backoff),
            has_token,
            missed_heartbeats: 0,
            attempts: 0,
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
        self.phase = Phase::Waiting {
            until,
            reason: failure.describe(),
        };
        Next::WaitUntil(until)
    }

    /// The user asked to reconnect now.
    pub fn restart(&mut self) -> Next {
        self.backoff.reset();
        self.attempts = 0;
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
            Phase::Waiting { until, reason } => Connection::Offline {
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
mod tests {
    use super::*;

    fn machine() -> SessionMachine {
        SessionMachine::new(BackoffConfig::default(), true)
    }

    #[test]
    fn happy_path_connect_register_online() {
        let mut m = machine();
        let now = Instant::now();
        assert_eq!(m.start(), Next::Connect);
        assert_eq!(m.connected(), Next::Register);
        assert_eq!(m.registered(now), Next::Stay);
        assert_eq!(
            m.connection(now, SystemTime::UNIX_EPOCH),
            Connection::Online
        );
    }

    #[test]
    fn without_a_token_waits_for_one() {
        let mut m = SessionMachine::new(BackoffConfig::default(), false);
        assert_eq!(m.start(), Next::WaitForCommand);
        assert_eq!(
            m.connection(Instant::now(), SystemTime::now()),
            Connection::NoToken
        );
        assert_eq!(m.set_token(true), Next::Connect);
    }

    #[test]
    fn token_refusal_stops_retrying_until_a_new_token() {
        let mut m = machine();
        m.start();
        let next = m.failed(
            Failure::Connect(ConnectError::TokenRejected(
                "Invalid or expired token".into(),
            )),
            Instant::now(),
            0.5,
        );
        assert_eq!(next, Next::WaitForCommand);
        assert_eq!(
            m.connection(Instant::now(), SystemTime::now()),
            Connection::TokenRejected {
                message: "Invalid or expired token".into()
            }
        );
        assert_eq!(m.set_token(true), Next::Connect);
    }

    #[test]
    fn rate_limit_backs_off_at_least_thirty_seconds() {
        let mut m = machine();
        m.start();
        let now = Instant::now();
        let Next::WaitUntil(until) = m.failed(
            Failure::Connect(ConnectError::RateLimited(
                "Too many device connection attempts".into(),
            )),
            now,
            0.0,
        ) else {
            panic!("expected a wait")
        };
        assert!(until - now >= Duration::from_secs(30));
    }

    #[test]
    fn unreachable_server_backs_off_with_growing_ceiling_and_reports_retry_time() {
        let mut m = machine();
        let now = Instant::now();
        let mut waits = vec![];
        for _ in 0..4 {
            m.start();
            let Next::WaitUntil(until) = m.failed(
                Failure::Connect(ConnectError::Unreachable("connection refused".into())),
                now,
                0.999,
            ) else {
                panic!("expected a wait")
            };
            waits.push((until - now).as_millis() / 100);
        }
        assert_eq!(waits, [9, 19, 39, 79]);
        let sys = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        match m.connection(now, sys) {
            Connection::Offline { reason, retry_at } => {
                assert!(reason.contains("connection refused"), "{reason}");
                assert!(retry_at.unwrap() > sys);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stable_minute_online_resets_the_backoff() {
        let mut m = machine();
        let t0 = Instant::now();
        for _ in 0..5 {
            m.start();
            m.failed(Failure::Connect(ConnectError::Timeout), t0, 1.0);
        }
        m.start();
        m.connected();
        m.registered(t0);
        let later = t0 + Duration::from_secs(61);
        let Next::WaitUntil(until) =
            m.failed(Failure::Closed(CloseReason::PingTimeout), later, 0.999)
        else {
            panic!()
        };
        assert!(until - later < Duration::from_secs(1), "backoff was reset");
    }

    #[test]
    fn a_short_blip_keeps_the_backoff() {
        let mut m = machine();
        let t0 = Instant::now();
        for _ in 0..3 {
            m.start();
            m.failed(Failure::Connect(ConnectError::Timeout), t0, 1.0);
        }
        m.start();
        m.connected();
        m.registered(t0);
        let Next::WaitUntil(until) = m.failed(
            Failure::Closed(CloseReason::ServerDisconnect),
            t0 + Duration::from_secs(5),
            0.999,
        ) else {
            panic!()
        };
        assert!(until - (t0 + Duration::from_secs(5)) > Duration::from_secs(7));
    }

    #[test]
    fn one_missed_heartbeat_is_tolerated_two_reconnect() {
        let mut m = machine();
        let now = Instant::now();
        m.start();
        m.connected();
        m.registered(now);
        assert_eq!(m.heartbeat_missed(now, 0.5), Next::Stay);
        assert_eq!(m.heartbeat_acked(now), Next::Stay);
        assert_eq!(m.heartbeat_missed(now, 0.5), Next::Stay);
        assert!(matches!(m.heartbeat_missed(now, 0.5), Next::WaitUntil(_)));
    }

    #[test]
    fn heartbeat_error_ack_is_surfaced_as_offline_with_the_servers_words() {
        let mut m = machine();
        let now = Instant::now();
        m.start();
        m.connected();
        m.registered(now);
        let next = m.failed(
            Failure::HeartbeatRejected("Device ID mismatch".into()),
            now,
            0.0,
        );
        assert!(matches!(next, Next::WaitUntil(_)));
        match m.connection(now, SystemTime::now()) {
            Connection::Offline { reason, .. } => assert!(reason.contains("Device ID mismatch")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn restart_connects_at_once_and_resets() {
        let mut m = machine();
        let now = Instant::now();
        for _ in 0..6 {
            m.start();
            m.failed(Failure::Connect(ConnectError::Timeout), now, 1.0);
        }
        assert_eq!(m.restart(), Next::Connect);
        m.failed(Failure::Connect(ConnectError::Timeout), now, 0.999);
        match m.phase() {
            Phase::Waiting { until, .. } => assert!(*until - now < Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
    }
}
