//! The session's decisions on a simulated clock: a [`SimDevice`] does what the runner does with
//! the [`SessionMachine`] (wait, check readiness, connect), but asks a [`SimServer`] instead of a
//! network and takes "now" from its caller. Used by the machine's unit tests and by the fleet
//! simulation of the outage benchmark (1,000 devices against one server, minutes in milliseconds).
//! Connects and checks take no simulated time; the network's latency is not what this studies.

use std::time::Instant;

use crate::config::BackoffConfig;
use crate::session::machine::{Failure, Next, Phase, SessionMachine};
use crate::session::probe::ProbeOutcome;

/// The server side of a simulation.
pub trait SimServer {
    /// A readiness check by `device` at `at`.
    fn probe(&mut self, device: usize, at: Instant) -> ProbeOutcome;
    /// A full connect + register by `device` at `at`.
    fn connect(&mut self, device: usize, at: Instant) -> Result<(), Failure>;
}

/// What a device did in one [`SimDevice::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimAction {
    Probed(ProbeOutcome),
    Connected,
    ConnectFailed,
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    id: usize,
    machine: SessionMachine,
    next: Next,
    /// Whether the runner would check readiness (false: the plain backoff, for comparisons).
    probing: bool,
}

impl SimDevice {
    /// A device that is online at `now`.
    pub fn online(id: usize, config: BackoffConfig, probing: bool, now: Instant) -> Self {
        let mut machine = SessionMachine::new(config, true);
        machine.start();
        machine.connected();
        let next = machine.registered(now);
        Self {
            id,
            machine,
            next,
            probing,
        }
    }

    pub fn is_online(&self) -> bool {
        matches!(self.machine.phase(), Phase::Online { .. })
    }

    /// The connection broke at `now` (the server went away).
    pub fn lose_connection(&mut self, now: Instant, jitter: f64) {
        let failure = Failure::Closed(crate::sio::CloseReason::Transport(
            "connection reset".into(),
        ));
        self.next = self.machine.failed(failure, now, jitter);
    }

    /// When the device acts next, `None` while online or waiting for a command.
    pub fn next_action_at(&self) -> Option<Instant> {
        match self.next {
            Next::WaitUntil(until) => Some(match self.probe_at() {
                Some(probe) if probe < until => probe,
                _ => until,
            }),
            _ => None,
        }
    }

    fn probe_at(&self) -> Option<Instant> {
        self.machine.probe_at().filter(|_| self.probing)
    }

    /// Do what is due at `now` (the instant from [`next_action_at`](Self::next_action_at)).
    pub fn step(
        &mut self,
        now: Instant,
        server: &mut impl SimServer,
        mut jitter: impl FnMut() -> f64,
    ) -> Option<SimAction> {
        let Next::WaitUntil(until) = self.next else {
            return None;
        };
        if let Some(probe_at) = self.probe_at().filter(|p| *p < until && *p <= now) {
            let outcome = server.probe(self.id, probe_at);
            self.next = self.machine.probed(outcome, now, jitter());
            return Some(SimAction::Probed(outcome));
        }
        if until > now {
            return None;
        }
        self.machine.wait_elapsed();
        Some(match server.connect(self.id, now) {
            Ok(()) => {
                self.machine.connected();
                self.next = self.machine.registered(now);
                SimAction::Connected
            }
            Err(failure) => {
                self.next = self.machine.failed(failure, now, jitter());
                SimAction::ConnectFailed
            }
        })
    }
}
