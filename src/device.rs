//! Starting the core: wires the session, task execution and the shell-facing channels.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::account::Account;
use crate::config::Config;
use crate::outbox::Outbox;
use crate::session::{self, Identity, Session, SessionCommand, TaskPort};
use crate::status::{Command, Connection, DeviceEvent, DeviceStatus, Slots};
use crate::token::Token;

/// The shell's side of a running core.
pub struct DeviceHandle {
    /// Latest status; render it.
    pub status: watch::Receiver<DeviceStatus>,
    /// Requests to the core.
    pub commands: mpsc::Sender<Command>,
    events: broadcast::Sender<DeviceEvent>,
    task: JoinHandle<()>,
    /// Ends this process's children if it dies before the handle is dropped (see
    /// [`crate::task::orphans::Sentinel`]).
    _sentinel: Option<crate::task::orphans::Sentinel>,
}

impl DeviceHandle {
    /// One-off events (task finished, …) from now on.
    pub fn events(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// Wait until the core has stopped (after [`Command::Shutdown`]).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// A fresh per-process id: the server requires every heartbeat to repeat the registered one, and a
/// new process must not be mistaken for the old one.
pub fn new_runtime_instance_id() -> String {
    let bytes: [u8; 12] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("runtime-{hex}")
}

/// Start the core with the given task executor on the current tokio runtime.
pub fn start_with_tasks(
    config: Config,
    token: Option<Token>,
    tasks: Arc<dyn TaskPort>,
    outbox: Outbox,
    events: broadcast::Sender<DeviceEvent>,
) -> DeviceHandle {
    let identity = Identity {
        device_id: config.device_id.clone(),
        device_name: config.device_name.clone(),
        runtime_instance_id: new_runtime_instance_id(),
    };
    let slots_rx = tasks.slots();
    let paused = crate::pause::is_paused(&config.home).unwrap_or_else(|e| {
        tracing::warn!(path = %crate::pause::marker_path(&config.home).display(), error = %e, "cannot read the pause switch; taking new tasks");
        false
    });
    tasks.set_paused(paused);
    let initial = DeviceStatus {
        connection: if token.is_some() {
            Connection::Connecting { attempt: 1 }
        } else {
            Connection::NoToken
        },
        device_id: identity.device_id.clone(),
        device_name: identity.device_name.clone(),
        server_url: config.backend_url.clone(),
        web_url: config.web_url().to_owned(),
        slots: slots_rx.borrow().clone(),
        token_kind: token.as_ref().map(Token::kind),
        token_expires_at: token.as_ref().and_then(Token::expires_at),
        is_default: None,
        last_error: None,
        insecure_transport: config.insecure_transport(),
        paused,
        draining: false,
        recent: crate::recent::load(&config.home, &config.backend_url),
    };
    if initial.insecure_transport {
        tracing::warn!(
            server = %config.backend_url,
            socket = %config.socket_url(),
            "the server is reached without encryption (http:// or ws:// to another machine): the token and task secrets can be read on the network; use https://"
        );
    }
    let (status_tx, status_rx) = watch::channel(initial);
    let status_tx = Arc::new(status_tx);
    let (command_tx, command_rx) = mpsc::channel(16);
    let (session_tx, session_rx) = mpsc::channel(16);

    let admission = Admission {
        marker_seen: Some(paused),
        home: config.home.clone(),
        tasks: tasks.clone(),
        status: status_tx.clone(),
    };
    let session = Session {
        socket_url: config.socket_url().to_owned(),
        config: config.session.clone(),
        identity,
        tasks: tasks.clone(),
        outbox,
        status: status_tx.clone(),
        events: events.clone(),
    };
    let account = Account {
        backend_url: config.backend_url.clone(),
        device_id: config.device_id.clone(),
        token: Arc::new(Mutex::new(token.clone())),
        status: status_tx.clone(),
    };
    let slots_forward = tokio::spawn(forward_slots(slots_rx, status_tx.clone()));
    let recent = tokio::spawn(keep_recent(
        events.subscribe(),
        status_tx.clone(),
        (config.home.clone(), config.backend_url.clone()),
    ));
    let commands = tokio::spawn(route_commands(
        command_rx,
        events.subscribe(),
        session_tx,
        account,
        admission,
        tasks,
    ));
    let task = tokio::spawn(async move {
        session::run(session, token, session_rx).await;
        slots_forward.abort();
        recent.abort();
        commands.abort();
    });
    DeviceHandle {
        status: status_rx,
        commands: command_tx,
        events,
        task,
        _sentinel: None,
    }
}

async fn forward_slots(
    mut slots: watch::Receiver<Slots>,
    status: Arc<watch::Sender<DeviceStatus>>,
) {
    while slots.changed().await.is_ok() {
        let current = slots.borrow_and_update().clone();
        status.send_modify(|s| s.slots = current);
    }
}

/// Keep [`DeviceStatus::recent`] from the task events, and saved in the home for
/// `(home, server)`.
async fn keep_recent(
    mut events: broadcast::Receiver<DeviceEvent>,
    status: Arc<watch::Sender<DeviceStatus>>,
    (home, server): (PathBuf, String),
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                let now = std::time::SystemTime::now();
                let mut changed = None;
                status.send_if_modified(|s| {
                    let modified = crate::recent::record(&mut s.recent, &event, now);
                    changed = modified.then(|| s.recent.clone());
                    modified
                });
                // A write of about a kilobyte, once per finished task: not worth a thread hop.
                if let Some(recent) = changed {
                    if let Err(e) = crate::recent::save(&home, &server, &recent) {
                        tracing::warn!(path = %crate::recent::file(&home).display(), error = %e, "cannot save the recent tasks; they will not survive a restart");
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("{n} task events missed: the recent tasks list may lack some")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Whether the core takes new tasks: the user's pause switch (its saved marker, the task
/// manager and the status agree) and the drain before a stop. Only [`route_commands`] uses it,
/// so a command and a marker change never interleave.
struct Admission {
    /// What the saved marker said when last read or written: only a change of the file is
    /// followed (a switch that could not be saved must not be undone by the old file).
    marker_seen: Option<bool>,
    home: PathBuf,
    tasks: Arc<dyn TaskPort>,
    status: Arc<watch::Sender<DeviceStatus>>,
}

impl Admission {
    /// The user flipped the switch here: save it, then apply it (also when saving failed: the
    /// user asked for it; the error says it will not outlive the process).
    async fn set_paused(&mut self, paused: bool) {
        let home = self.home.clone();
        let saved = tokio::task::spawn_blocking(move || crate::pause::set_paused(&home, paused))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if saved.is_ok() {
            self.marker_seen = Some(paused);
        }
        if let Err(e) = &saved {
            let message = format!(
                "{}; it applies until the device stops",
                crate::pause::save_error(&self.home, paused, e)
            );
            tracing::warn!("{message}");
            self.status.send_modify(|s| s.last_error = Some(message));
        }
        self.apply(paused);
    }

    /// Follow the saved marker (another process — `wegent-executor pause`, the tray — may have
    /// changed it).
    fn follow_marker(&mut self) {
        let read = crate::pause::is_paused(&self.home);
        if let Some(paused) = crate::pause::changed(self.marker_seen, read) {
            tracing::info!(paused, "the saved pause switch changed");
            self.marker_seen = Some(paused);
            self.apply(paused);
        }
    }

    /// Stop the tasks `wegent-executor stop` asked for (`crate::stop_requests`), as the tray's
    /// Stop does, answering whether each ran or waited here.
    fn serve_stop_requests(&self) {
        use crate::stop_requests::Reply;
        crate::stop_requests::serve(&self.home, |task_id| {
            let here = {
                let slots = self.tasks.slots();
                let slots = slots.borrow();
                slots.running.iter().any(|t| t.task_id == task_id)
                    || slots.waiting.iter().any(|t| t.task_id == task_id)
            };
            if !here {
                return Reply::NotHere;
            }
            self.tasks.stop_task(task_id);
            Reply::Stopping
        });
    }

    /// Take no new task from now on, end the queued ones, and stop the session once the running
    /// ones have finished or `grace` has passed.
    fn drain(&self, grace: std::time::Duration, session: mpsc::Sender<SessionCommand>) {
        self.tasks.drain();
        self.status.send_modify(|s| s.draining = true);
        tokio::spawn(stop_when_idle(self.tasks.slots(), grace, session));
    }

    fn apply(&self, paused: bool) {
        self.tasks.set_paused(paused);
        self.status.send_if_modified(|s| {
            let changed = s.paused != paused;
            s.paused = paused;
            changed
        });
    }
}

/// Shell commands: connection commands go to the session; account actions (default device) run
/// beside it, so a slow REST call never delays a restart. After every registration the default
/// flag is read again: the device list is where the server keeps it. The pause switch is handled
/// here, and its saved marker looked at every [`crate::pause::MARKER_POLL`].
async fn route_commands(
    mut commands: mpsc::Receiver<Command>,
    mut events: broadcast::Receiver<DeviceEvent>,
    session: mpsc::Sender<SessionCommand>,
    account: Account,
    mut admission: Admission,
    tasks: Arc<dyn TaskPort>,
) {
    let mut marker_poll = tokio::time::interval(crate::pause::MARKER_POLL);
    marker_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let command = tokio::select! {
            _ = marker_poll.tick() => {
                admission.follow_marker();
                admission.serve_stop_requests();
                continue;
            }
            command = commands.recv() => match command {
                Some(command) => command,
                // The shell dropped its sender: treat it as a request to stop.
                None => {
                    let _ = session.send(SessionCommand::Shutdown).await;
                    return;
                }
            },
            event = events.recv() => {
                if let Ok(DeviceEvent::Registered) = event {
                    let account = account.clone();
                    tokio::spawn(async move { account.refresh_default().await });
                }
                continue;
            }
        };
        let forward = match command {
            Command::Restart => SessionCommand::Restart,
            Command::SetToken(t) => {
                *account.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
                SessionCommand::SetToken(Some(t))
            }
            Command::ClearToken => {
                *account.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
                SessionCommand::SetToken(None)
            }
            Command::Shutdown => SessionCommand::Shutdown,
            Command::SetDefault => {
                let account = account.clone();
                tokio::spawn(async move { account.set_default().await });
                continue;
            }
            Command::RefreshDefault => {
                let account = account.clone();
                tokio::spawn(async move { account.refresh_default().await });
                continue;
            }
            Command::SetPaused(paused) => {
                admission.set_paused(paused).await;
                continue;
            }
            Command::Drain { grace } => {
                admission.drain(grace, session.clone());
                continue;
            }
            Command::StopTask { task_id } => {
                tasks.stop_task(task_id);
                continue;
            }
        };
        let stop = matches!(forward, SessionCommand::Shutdown);
        if session.send(forward).await.is_err() || stop {
            return;
        }
    }
}

/// The end of a drain: once no task runs, or `grace` has passed, shut the session down (which
/// cancels what still runs and reports it).
async fn stop_when_idle(
    mut slots: watch::Receiver<Slots>,
    grace: std::time::Duration,
    session: mpsc::Sender<SessionCommand>,
) {
    let running = slots.borrow().running.len();
    tracing::info!(
        running,
        grace_secs = grace.as_secs(),
        "draining: no new tasks; waiting for the running ones"
    );
    let idle = tokio::time::timeout(grace, slots.wait_for(|s| s.running.is_empty()))
        .await
        .is_ok();
    if idle {
        tracing::info!("drained: no task runs");
    } else {
        tracing::warn!(
            running = slots.borrow().running.len(),
            "the drain's grace is over; cancelling the tasks still running"
        );
    }
    let _ = session.send(SessionCommand::Shutdown).await;
}

/// Start the core with Claude Code task execution (`crate::task::TaskManager`).
pub fn start(config: Config, token: Option<Token>) -> DeviceHandle {
    // Before any task runs: what a crashed previous run left behind still holds API keys.
    crate::task::orphans::reap_previous_run(&config.home);
    // Before any task runs too: if this process is killed, its tools end with it, not at the
    // next start.
    let sentinel = crate::task::orphans::Sentinel::start();
    let outbox = Outbox::new(config.tasks.outbox_capacity);
    let (events, _) = broadcast::channel(64);
    let tasks = crate::task::TaskManager::new(
        config.tasks.clone(),
        config.home.clone(),
        config.backend_url.clone(),
        outbox.clone(),
        events.clone(),
    );
    tasks.start_retention_sweeper();
    DeviceHandle {
        _sentinel: sentinel,
        ..start_with_tasks(config, token, Arc::new(tasks), outbox, events)
    }
}
