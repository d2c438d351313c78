//! `wegent-executor run`: start the core, print its state in words, shut down cleanly on
//! SIGINT/SIGTERM.

use std::future::Future;
use std::time::SystemTime;

use tokio::sync::broadcast::error::RecvError;

use super::commands::{device_identity, require_token, CliError};
use super::render;
use super::Cli;
use crate::settings::Settings;
use crate::status::{Command, Connection, DeviceEvent};
use crate::token::Token;

pub(super) async fn run(cli: &Cli, settings: &Settings) -> Result<(), CliError> {
    let backend = settings
        .require_backend()
        .map_err(CliError::config)?
        .to_owned();
    let (token, source) = require_token(cli, settings).await?;
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
        .and_then(|exp| exp.checked_sub(render::EXPIRY_WARNING));
    let handle = crate::device::start(config, Some(token.clone()));
    supervise(handle, shutdown_signal(), expiry_timer(warn_at, token)).await
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

/// Print status changes and task events until the core stops; on the first signal ask the core
/// to shut down cleanly, on a second one give up waiting.
async fn supervise(
    handle: crate::device::DeviceHandle,
    signal: impl Future<Output = ()>,
    expiry: impl Future<Output = String>,
) -> Result<(), CliError> {
    let mut status = handle.status.clone();
    let mut events = Some(handle.events());
    let commands = handle.commands.clone();
    let stopped = handle.stopped();
    tokio::pin!(stopped, signal, expiry);
    let mut expiry_due = true;
    let mut last_line = String::new();
    let mut rejected: Option<String> = None;
    let mut stopping = false;
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
                    if !stopping {
                        stopping = true;
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
            _ = &mut signal, if !stopping => {
                stopping = true;
                println!("Shutting down (running tasks are cancelled and reported)… press Ctrl-C again to quit at once");
                let _ = commands.send(Command::Shutdown).await;
            }
            _ = shutdown_signal(), if stopping => {
                // No more waiting for tasks to stop politely, but nothing they started outlives
                // the device: kill every child now, then exit.
                let killed = crate::task::orphans::kill_own_children();
                tracing::warn!(killed, "second stop signal: killed the running tasks' processes");
                return Err(CliError { message: "stopped without waiting for the clean shutdown; running tasks were killed".into(), code: 130 });
            }
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

/// SIGINT or SIGTERM (Ctrl-C only on Windows).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
