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

    // ---- readiness checks ---------------------------------------------------------------------

    use crate::session::sim::{SimAction, SimDevice, SimServer};

    /// A server that is gone until `up_at`; `probe_lies`: a proxy answers "healthy" throughout.
    struct Outage {
        up_at: Instant,
        probe_lies: bool,
        connects: Vec<Instant>,
    }

    impl SimServer for Outage {
        fn probe(&mut self, _: usize, at: Instant) -> ProbeOutcome {
            if self.probe_lies || at >= self.up_at {
                ProbeOutcome::Ready
            } else {
                ProbeOutcome::Down
            }
        }
        fn connect(&mut self, _: usize, at: Instant) -> Result<(), Failure> {
            self.connects.push(at);
            if at >= self.up_at {
                Ok(())
            } else {
                Err(Failure::Connect(ConnectError::Unreachable(
                    "connection refused".into(),
                )))
            }
        }
    }

    /// Drop a device at t0, run until it is online again (or `limit`): when, and the server.
    /// `jitter` gives the uniform samples (constant, or a seeded generator).
    fn run_outage(
        outage: Duration,
        probing: bool,
        probe_lies: bool,
        mut jitter: impl FnMut() -> f64,
        limit: Duration,
    ) -> (Option<Duration>, Outage) {
        let t0 = Instant::now();
        let mut server = Outage {
            up_at: t0 + outage,
            probe_lies,
            connects: vec![],
        };
        let mut device = SimDevice::online(0, BackoffConfig::default(), probing, t0);
        device.lose_connection(t0, jitter());
        while let Some(at) = device.next_action_at().filter(|at| *at < t0 + limit) {
            if device.step(at, &mut server, &mut jitter) == Some(SimAction::Connected) {
                return (Some(at - server.up_at), server);
            }
        }
        (None, server)
    }

    fn seeded(seed: u64) -> impl FnMut() -> f64 {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        move || rng.random()
    }

    #[test]
    fn after_a_long_outage_the_device_is_back_within_a_check_interval_and_the_spread() {
        let config = BackoffConfig::default();
        let bound = config.probe_interval + config.connect_spread;
        for outage in [10, 60, 600] {
            for seed in 0..20 {
                let (back, _) = run_outage(
                    Duration::from_secs(outage),
                    true,
                    false,
                    seeded(seed),
                    Duration::from_secs(3600),
                );
                let back = back.expect("back online");
                assert!(back <= bound, "{outage} s outage, seed {seed}: {back:?}");
            }
        }
        // Without the checks, the grown backoff is slept out (the defect measured against the
        // real backend: 22 s after a 33 s outage).
        let (back, _) = run_outage(
            Duration::from_secs(33),
            false,
            false,
            || 0.999,
            Duration::from_secs(3600),
        );
        assert!(back.unwrap() > Duration::from_secs(10), "{back:?}");
    }

    #[test]
    fn checks_add_no_connects_while_the_server_is_down() {
        let outage = Duration::from_secs(600);
        let connects_while_down = |probing| {
            // The same samples with and without checks: a "down" check leaves the backoff alone.
            let (_, server) = run_outage(outage, probing, false, || 0.7, Duration::from_secs(3600));
            server
                .connects
                .iter()
                .filter(|at| **at < server.up_at)
                .count()
        };
        assert_eq!(connects_while_down(true), connects_while_down(false));
    }

    #[test]
    fn a_check_that_says_ready_while_connects_fail_costs_few_connects() {
        for seed in 0..20 {
            let (back, server) = run_outage(
                Duration::from_secs(3600),
                true,
                true,
                seeded(seed),
                Duration::from_secs(600),
            );
            assert_eq!(back, None);
            let window = Duration::from_secs(30);
            let busiest = server
                .connects
                .iter()
                .map(|start| {
                    server
                        .connects
                        .iter()
                        .filter(|at| **at >= *start && **at < *start + window)
                        .count()
                })
                .max()
                .unwrap();
            // The server refuses the 31st connect from one IP within 30 s (protocol.md §1.1).
            assert!(busiest <= 20, "seed {seed}: {busiest} connects in 30 s");
        }
    }

    #[test]
    fn refusals_from_a_running_server_are_not_checked() {
        let now = Instant::now();
        for error in [
            ConnectError::Refused("Authentication service unavailable".into()),
            ConnectError::RateLimited("Too many device connection attempts".into()),
            ConnectError::ServerShuttingDown,
        ] {
            let mut m = machine();
            m.start();
            m.failed(Failure::Connect(error.clone()), now, 0.5);
            assert_eq!(m.probe_at(), None, "{error:?}");
        }
        let mut m = machine();
        m.start();
        m.failed(Failure::Connect(ConnectError::Timeout), now, 0.5);
        assert!(m.probe_at().is_some());
    }

    #[test]
    fn an_unanswerable_check_falls_back_to_the_backoff_until_next_online() {
        let now = Instant::now();
        let mut m = machine();
        m.start();
        let unreachable = || Failure::Connect(ConnectError::Unreachable("refused".into()));
        let Next::WaitUntil(until) = m.failed(unreachable(), now, 0.5) else {
            panic!()
        };
        assert_eq!(
            m.probed(ProbeOutcome::Unsupported, now, 0.5),
            Next::WaitUntil(until)
        );
        assert_eq!(m.probe_at(), None);
        m.wait_elapsed();
        m.failed(unreachable(), now, 0.5);
        assert_eq!(m.probe_at(), None, "not checked again while offline");
        m.wait_elapsed();
        m.connected();
        m.registered(now);
        m.failed(unreachable(), now, 0.5);
        assert!(m.probe_at().is_some(), "checked again after being online");
    }

    #[test]
    fn a_down_check_keeps_the_backoff_and_checks_again_within_an_interval() {
        let now = Instant::now();
        let mut m = machine();
        m.start();
        let Next::WaitUntil(until) = m.failed(Failure::HeartbeatsUnanswered, now, 0.9) else {
            panic!()
        };
        let later = now + Duration::from_millis(900);
        assert_eq!(
            m.probed(ProbeOutcome::Down, later, 0.999),
            Next::WaitUntil(until)
        );
        let again = m.probe_at().unwrap() - later;
        assert!(
            again <= BackoffConfig::default().probe_interval,
            "{again:?}"
        );
    }
}
