//! `wegent-executor run`: start the core, print its state in words, stop on SIGINT/SIGTERM: the
//! first signal drains (no new tasks, running ones may finish for the drain grace), the second
//! cancels what runs, the third kills it and exits at once.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast::error::RecvError;

use super::commands::{device_identity, require_token, CliError};
use super::render;
use super::{Cli, RunArgs};
use crate::settings::Settings;
use crate::status::{Command, Connection, DeviceEvent};
use crate::token::Token;

pub(super) async fn run(cli: &Cli, args: &RunArgs, settings: &Settings) -> Result<(), CliError> {
    if args.demo {
        return super::demo::run(args, settings).await;
    }
    settings.require_backend().map_err(CliError::config)?;
    let (token, source) = require_token(cli, settings).await?;
    run_device(args, settings, token, &source.to_string()).await
}

/// Run the device with `token` (from `source`, in words) against the configured server until it
/// stops.
pub(super) async fn run_device(
    args: &RunArgs,
    settings: &Settings,
    token: Token,
    source: &str,
) -> Result<(), CliError> {
    let backend = settings
        .require_backend()
        .map_err(CliError::config)?
        .to_owned();
    if let Err(e) = token.check_format() {
        return Err(CliError::auth(format!(
            "the token from {source} is not usable: {e}"
        )));
    }
    if render::token_expired(&token, SystemTime::now()) {
        return Err(CliError::auth(format!(
            "the login token from {source} has expired ({}): sign in again with `wegent-executor login --user NAME`",
            render::token_summary(&token, SystemTime::now())
        )));
    }
    let (device_id, device_name) = device_identity(settings)?;
    let config = settings
        .to_config(device_id.id.clone(), device_name.clone())
        .map_err(CliError::config)?;
    println!(
        "Wegent device \"{device_name}\" ({}) → {backend}",
        device_id.id
    );
    println!(
        "Token: {} (from {source}); up to {} tasks at once; logs in {}",
        render::token_summary(&token, SystemTime::now()),
        config.tasks.max_slots,
        settings.home.value.join(crate::logging::LOG_DIR).display()
    );
    if let Some(warning) = render::expiry_warning(&token, SystemTime::now()) {
        eprintln!("{warning}");
    }
    let warn_at = token
        .expires_at()
        .and_then(|exp| exp.checked_sub(crate::token_expiry::EXPIRY_WARNING));
    if args.paused {
        let home = &settings.home.value;
        crate::pause::set_paused(home, true)
            .map_err(|e| CliError::failed(crate::pause::save_error(home, true, &e)))?;
    }
    let handle = crate::device::start(config, Some(token.clone()));
    let signals = StopSignals::new().map_err(CliError::failed)?;
    supervise(
        handle,
        signals,
        settings.drain_grace.value,
        expiry_timer(warn_at, token),
    )
    .await
}

/// Resolves with the expiry warning once the token is within a day of expiring (never for API
/// keys, or when the warning was already due at start).
async fn expiry_timer(warn_at: Option<SystemTime>, token: Token) -> String {
    let wait = warn_at.and_then(|at| at.duration_since(SystemTime::now()).ok());
    match wait {
        Some(wait) => {
            tokio::time::sleep(wait).await;
            render::expiry_warning(&token, SystemTime::now()).unwrap_or_default()
        }
        None => std::future::pending().await,
    }
}

/// How far a stop has gone: each stop signal takes it one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    No,
    /// No new tasks; running ones may finish for the grace.
    Draining,
    /// Running tasks are being cancelled and reported.
    Cancelling,
}

/// Print status changes and task events until the core stops; stop signals drain, then cancel,
/// then kill (see the module doc).
async fn supervise(
    handle: crate::device::DeviceHandle,
    mut signals: StopSignals,
    grace: Duration,
    expiry: impl Future<Output = String>,
) -> Result<(), CliError> {
    let mut status = handle.status.clone();
    let mut events = Some(handle.events());
    let commands = handle.commands.clone();
    let stopped = handle.stopped();
    tokio::pin!(stopped, expiry);
    let mut expiry_due = true;
    let mut last_line = String::new();
    let mut rejected: Option<String> = None;
    let mut stopping = Stopping::No;
    let mut status_open = true;
    let mut show = |line: String| {
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
    };
    show(render::status_line(
        &status.borrow_and_update(),
        SystemTime::now(),
    ));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            changed = status.changed(), if status_open => {
                if changed.is_err() {
                    status_open = false; // the core dropped its status: `stopped` resolves next
                    continue;
                }
                let now = status.borrow_and_update().clone();
                show(render::status_line(&now, SystemTime::now()));
                if let Connection::TokenRejected { message } = &now.connection {
                    rejected = Some(message.clone());
                    if stopping != Stopping::Cancelling {
                        stopping = Stopping::Cancelling;
                        let _ = commands.send(Command::Shutdown).await;
                    }
                }
            }
            event = recv_event(&mut events) => match event {
                Ok(event) => println!("{}", render::event_line(&event)),
                Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "status printer lagged"),
                Err(RecvError::Closed) => events = None,
            },
            warning = &mut expiry, if expiry_due => {
                expiry_due = false;
                eprintln!("{warning}");
            }
            () = signals.next() => match stopping {
                Stopping::No => {
                    stopping = Stopping::Draining;
                    let running = status.borrow().slots.running.len();
                    println!("{}", render::drain_line(running, grace));
                    let _ = commands.send(Command::Drain { grace }).await;
                }
                Stopping::Draining => {
                    stopping = Stopping::Cancelling;
                    println!("Cancelling the running tasks (each is reported as cancelled)… a third signal quits at once");
                    let _ = commands.send(Command::Shutdown).await;
                }
                Stopping::Cancelling => {
                    // No more waiting for tasks to stop politely, but nothing they started
                    // outlives the device: kill every child now, then exit.
                    let killed = crate::task::orphans::kill_own_children();
                    tracing::warn!(killed, "third stop signal: killed the running tasks' processes");
                    return Err(CliError { message: "stopped without waiting for the clean shutdown; running tasks were killed".into(), code: 130 });
                }
            },
        }
    }
    match rejected {
        Some(message) => Err(CliError::auth(format!(
            "the server refused the token: {message}. Get a new token (`wegent-executor login`, or a new API key) and start again."
        ))),
        None => {
            println!("Stopped.");
            Ok(())
        }
    }
}

async fn recv_event(
    events: &mut Option<tokio::sync::broadcast::Receiver<DeviceEvent>>,
) -> Result<DeviceEvent, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// SIGINT and SIGTERM (Ctrl-C only on Windows), listened to for the whole run, so no signal
/// between two waits is lost.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> Result<Self, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind| {
                signal(kind).map_err(|e| format!("cannot listen for stop signals: {e}"))
            };
            Ok(Self {
                interrupt: listen(SignalKind::interrupt())?,
                terminate: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
