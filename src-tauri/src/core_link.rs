//! The tray's connection to the executor core. The core can be replaced (a new server URL needs a
//! new session), so the shell does not hold the core's channels directly: the current core's
//! status and events are relayed into channels that live as long as the app.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use wegent_executor::config::Config;
use wegent_executor::device::{self, DeviceHandle};
use wegent_executor::status::{Command, Connection, DeviceEvent, DeviceStatus, Slots};
use wegent_executor::token::Token;

/// Running tasks get this long to be cancelled and reported when the core stops (quit, a new
/// server) before it is left behind anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Why a command could not reach the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("not connected to a server yet: paste a token and the server address")]
    NotStarted,
    #[error("the device core has stopped; restart the app")]
    Stopped,
}

pub struct CoreLink {
    running: Mutex<Option<Running>>,
    status: watch::Sender<DeviceStatus>,
    events: broadcast::Sender<DeviceEvent>,
}

struct Running {
    handle: DeviceHandle,
    commands: mpsc::Sender<Command>,
    relays: [JoinHandle<()>; 2],
}

/// The status shown while no core runs (no server configured yet).
pub fn idle_status(config: &Config) -> DeviceStatus {
    DeviceStatus {
        connection: Connection::NoToken,
        device_id: config.device_id.clone(),
        device_name: config.device_name.clone(),
        server_url: config.backend_url.clone(),
        web_url: config.web_url().to_owned(),
        slots: Slots {
            max: config.tasks.max_slots,
            running: Vec::new(),
            queued: 0,
            waiting: Vec::new(),
            max_queued: config.tasks.max_queued,
        },
        token_kind: None,
        token_expires_at: None,
        is_default: None,
        last_error: None,
        insecure_transport: config.insecure_transport(),
        paused: wegent_executor::pause::is_paused(&config.home).unwrap_or(false),
        draining: false,
        recent: Vec::new(),
    }
}

impl CoreLink {
    pub fn new(initial: DeviceStatus) -> Self {
        Self {
            running: Mutex::new(None),
            status: watch::channel(initial).0,
            events: broadcast::channel(64).0,
        }
    }

    pub fn status(&self) -> watch::Receiver<DeviceStatus> {
        self.status.subscribe()
    }

    pub fn current(&self) -> DeviceStatus {
        self.status.borrow().clone()
    }

    pub fn events(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    /// Start a core (on the current tokio runtime). Call [`Self::stop`] first if one runs.
    pub fn start(&self, config: Config, token: Option<Token>) {
        tracing::info!(
            server = %config.backend_url,
            device_id = %config.device_id,
            has_token = token.is_some(),
            "starting the device core"
        );
        let handle = device::start(config, token);
        let commands = handle.commands.clone();
        let mut status_rx = handle.status.clone();
        let status_tx = self.status.clone();
        let status_relay = tokio::spawn(async move {
            loop {
                let current = status_rx.borrow_and_update().clone();
                status_tx.send_replace(current);
                if status_rx.changed().await.is_err() {
                    return;
                }
            }
        });
        let mut events_rx = handle.events();
        let events_tx = self.events.clone();
        let events_relay = tokio::spawn(async move {
            loop {
                match events_rx.recv().await {
                    Ok(event) => {
                        let _ = events_tx.send(event);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("missed {n} device events (the tray was busy)")
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let previous = self.lock().replace(Running {
            handle,
            commands,
            relays: [status_relay, events_relay],
        });
        debug_assert!(previous.is_none(), "start() while a core runs");
    }

    /// Send a command to the running core.
    pub async fn send(&self, command: Command) -> Result<(), CoreError> {
        let commands = self.lock().as_ref().map(|r| r.commands.clone());
        let tx = commands.ok_or(CoreError::NotStarted)?;
        tx.send(command).await.map_err(|_| CoreError::Stopped)
    }

    /// Shut the core down: running tasks are cancelled and get their terminal event, then the
    /// connection closes. Waits up to `grace` for that.
    pub async fn stop(&self, grace: Duration) {
        let Some(running) = self.lock().take() else {
            return;
        };
        let _ = running.commands.send(Command::Shutdown).await;
        if tokio::time::timeout(grace, running.handle.stopped())
            .await
            .is_err()
        {
            tracing::warn!("the device core did not stop within {grace:?}; quitting anyway");
        }
        // Let the last status (Stopped) through, then stop relaying.
        tokio::task::yield_now().await;
        for relay in running.relays {
            relay.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}
