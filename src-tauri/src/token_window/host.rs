//! The tray's end of the token window: starts the window process on demand, answers its calls,
//! and notices when it has gone. One task owns the process; `open` only sends it a section.
//!
//! Why a process of its own: a WebKit webview, once created, keeps WebKit's web and network
//! processes and ~150 MB of libraries and caches in the app for its whole life, even after the
//! window is destroyed. A window process that exits on close takes all of that with it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Manager, Runtime};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use wegent_executor::settings::vars;

use super::protocol::{self, Call, FromWindow, ToWindow};
use super::Section;
use crate::commands;
use crate::shell::Shell;

/// How long a window process may take to exit after it closed its end of the pipe.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// The hidden flag that makes `wegent-device` the token window process (see `process.rs`).
pub const WINDOW_FLAG: &str = "--token-window";

/// Managed by Tauri once the window was first asked for.
struct WindowHost {
    requests: UnboundedSender<Section>,
}

/// Show the window on `section`: start the window process, or bring its window to the front.
/// Failures are logged: the tray keeps working.
pub fn open<R: Runtime>(app: &AppHandle<R>, section: Section) {
    if app.try_state::<WindowHost>().is_none() {
        let (requests, rx) = mpsc::unbounded_channel();
        // `manage` refuses a second value, so only one owner task ever runs.
        if app.manage(WindowHost { requests }) {
            tauri::async_runtime::spawn(own_window(app.clone(), rx));
        }
    }
    let _ = app.state::<WindowHost>().requests.send(section);
}

/// A running window process.
struct WindowProcess {
    child: Child,
    output: BufReader<ChildStdout>,
    to_window: UnboundedSender<ToWindow>,
}

/// The owner task: at most one window process at a time.
async fn own_window<R: Runtime>(app: AppHandle<R>, mut requests: UnboundedReceiver<Section>) {
    let mut window: Option<WindowProcess> = None;
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(section) = request else { break };
                let shown = window
                    .as_ref()
                    .is_some_and(|w| w.to_window.send(ToWindow::Show { section }).is_ok());
                if !shown {
                    window = start(section)
                        .map_err(|e| tracing::warn!("could not open the token window: {e}"))
                        .ok();
                }
            }
            message = next_message(&mut window) => match message {
                Ok(Some(FromWindow::Call { id, call })) => {
                    let to_window = window.as_ref().map(|w| w.to_window.clone());
                    let app = app.clone();
                    tauri::async_runtime::spawn(async move {
                        let result = answer(&app, call).await;
                        if let Some(to_window) = to_window {
                            let _ = to_window.send(ToWindow::Reply { id, result });
                        }
                    });
                }
                Ok(None) => {
                    if let Some(w) = window.take() {
                        finish(w.child, "closed").await;
                    }
                }
                Err(e) => {
                    tracing::warn!("token window process: {e}; closing it");
                    if let Some(mut w) = window.take() {
                        let _ = w.child.start_kill();
                        finish(w.child, "stopped").await;
                    }
                }
            }
        }
    }
}

/// Starts the window process; its stdin and stdout are the pipe, its stderr is the tray's.
fn start(section: Section) -> std::io::Result<WindowProcess> {
    let mut child = window_command(own_binary()?, section).spawn()?;
    let stdin = child.stdin.take().expect("piped");
    let output = BufReader::new(child.stdout.take().expect("piped"));
    let (to_window, rx) = mpsc::unbounded_channel();
    tauri::async_runtime::spawn(write_messages(stdin, rx));
    tracing::info!(
        section = section.anchor(),
        pid = child.id(),
        "token window opened"
    );
    Ok(WindowProcess {
        child,
        output,
        to_window,
    })
}

/// `wegent-device --token-window=<section>` (this very binary). Nothing secret goes on its
/// command line or into its environment.
fn window_command(program: std::path::PathBuf, section: Section) -> Command {
    let mut command = Command::new(program);
    command
        .arg(format!("{WINDOW_FLAG}={}", section.anchor()))
        // A token given to the tray in its environment is the tray's: not the window's, nor
        // WebKit's processes' (they inherit the window process's environment).
        .env_remove(vars::TOKEN)
        .env_remove(vars::AUTH_TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// The running binary. If a package update replaced it on disk meanwhile, Linux still runs the
/// one in memory through `/proc/self/exe`.
fn own_binary() -> std::io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    if cfg!(target_os = "linux") && !exe.exists() {
        return Ok("/proc/self/exe".into());
    }
    Ok(exe)
}

async fn write_messages(
    mut stdin: tokio::process::ChildStdin,
    mut rx: UnboundedReceiver<ToWindow>,
) {
    while let Some(message) = rx.recv().await {
        let line = protocol::encode(&message);
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
}

async fn next_message(
    window: &mut Option<WindowProcess>,
) -> Result<Option<FromWindow>, protocol::ProtocolError> {
    match window {
        Some(w) => protocol::read_async(&mut w.output).await,
        None => std::future::pending().await,
    }
}

/// Reaps the window process, then gives what the tray used meanwhile back to the system.
async fn finish(mut child: Child, how: &str) {
    match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(Ok(status)) => tracing::info!(%status, "token window {how}"),
        Ok(Err(e)) => tracing::warn!("token window process: {e}"),
        Err(_) => {
            tracing::warn!("the token window process did not exit; killing it");
            let _ = child.kill().await;
        }
    }
    crate::memory::trim();
}

/// The tray's answer to one of the page's calls: a value for the page or its error sentence.
async fn answer<R: Runtime>(app: &AppHandle<R>, call: Call) -> Result<serde_json::Value, String> {
    tracing::debug!(?call, "token window call");
    let shell = app.state::<Arc<Shell>>().inner().clone();
    let answered = match call {
        Call::WindowState => Ok(to_json(commands::window_state(&shell))),
        Call::TestAndSave { token, server_url } => {
            commands::test_and_save(&shell, token, server_url)
                .await
                .map(to_json)
        }
        Call::SignIn {
            server_url,
            user,
            password,
        } => commands::sign_in(&shell, server_url, user, password)
            .await
            .map(to_json),
        Call::StartDemo => commands::start_demo(app, &shell).await.map(to_json),
    };
    answered.map_err(|e| e.to_string())
}

fn to_json(value: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).expect("the window's answers serialise to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_process_gets_its_section_and_no_token() {
        let command = window_command("/usr/bin/wegent-device".into(), Section::SignIn);
        let std = command.as_std();
        let args: Vec<_> = std.get_args().collect();
        assert_eq!(args, ["--token-window=signin"]);
        let mut removed: Vec<_> = std
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key)
            .collect();
        removed.sort();
        assert_eq!(removed, ["WEGENT_AUTH_TOKEN", "WEGENT_TOKEN"]);
        assert_eq!(std.get_envs().filter(|(_, v)| v.is_some()).count(), 0);
    }

    #[test]
    fn the_flag_it_gets_is_the_one_the_app_parses() {
        for section in Section::ALL {
            let command = window_command("x".into(), section);
            let args = crate::cli_args::parse(
                command
                    .as_std()
                    .get_args()
                    .map(|a| a.to_string_lossy().into_owned()),
            );
            assert_eq!(args.token_window, Some(section));
            assert!(args.unknown.is_empty());
        }
    }
}
