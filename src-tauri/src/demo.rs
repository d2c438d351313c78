//! `--demo` (and the menu's "Try the demo"): a Wegent devserver in-process on 127.0.0.1, its demo
//! account signed in, the device connected to it, and the devserver console opened in the browser,
//! so a first-time user sees the whole flow without a Wegent server. The demo token lives in
//! memory only: it never replaces the user's real token in the keychain.

use std::net::SocketAddr;

use tauri::{AppHandle, Runtime};
use wegent_devserver::{DevServer, DevServerConfig, Storage};
use wegent_executor::token::Token;

use crate::desktop;
use crate::error::TrayError;
use crate::shell::Shell;

/// Start the demo server and connect to it; only open its console when one already runs.
pub async fn start<R: Runtime>(app: &AppHandle<R>, shell: &Shell) -> Result<(), TrayError> {
    let _one_at_a_time = shell.demo.starting.lock().await;
    if shell.demo.url().is_some() {
        open_console(app, shell);
        return Ok(());
    }
    let config = DevServerConfig::demo(SocketAddr::from(([127, 0, 0, 1], 0)), Storage::Memory);
    let server = DevServer::start(config).await?;
    let url = server.url();
    let token = server
        .demo_token()
        .map(|t| Token::new(&t))
        .ok_or(TrayError::DemoNoAccount)?;
    let (user, password) = server.demo_credentials().unwrap_or_default();
    tracing::info!(%url, %user, "demo server running");
    // The password is random per run (`DevServerConfig::demo`): shown once, on the terminal that
    // started the demo, never in the log file. The console itself opens signed in (below).
    eprintln!("Wegent demo console: {url}  (user {user}, password {password})");
    shell.set_demo(server);
    shell.set_server_url(Some(url.clone()));
    shell.set_token(Some(token.clone()));
    shell.restart_core(&url, Some(token)).await?;
    open_console(app, shell);
    Ok(())
}

/// Opens the demo console already signed in, through a one-time sign-in link (valid once, for
/// 10 minutes); the plain URL when no link can be made.
pub fn open_console<R: Runtime>(app: &AppHandle<R>, shell: &Shell) {
    match (shell.demo.sign_in_link(), shell.demo.url()) {
        // The link signs in: it is never logged, not even when no browser opens.
        (Some(link), url) => desktop::open_secret_url(app, &link, url.as_deref().unwrap_or("")),
        (None, Some(url)) => desktop::open_url(app, &url),
        (None, None) => tracing::warn!("no demo server runs"),
    }
}
