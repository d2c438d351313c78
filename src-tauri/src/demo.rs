//! `--demo` (and the menu's "Try the demo"): a Wegent devserver in-process on 127.0.0.1, its demo
//! account signed in, the device connected to it, and the devserver console opened in the browser,
//! so a first-time user sees the whole flow without a Wegent server. The demo token lives in
//! memory only: it never replaces the user's real token in the keychain.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_opener::OpenerExt;
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer, Storage};
use wegent_executor::token::Token;

use crate::menu_actions::open_url;
use crate::shell::{DemoInfo, Shell};

/// The running demo server; kept for the life of the app.
static SERVER: Mutex<Option<RunningDevServer>> = Mutex::new(None);
/// Serialises starts (a double click must not start two servers).
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn start<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    let _one_at_a_time = STARTING.lock().await;
    let shell = app.state::<Arc<Shell>>().inner().clone();
    if let Some(demo) = shell.demo() {
        open_console(app, &demo.url);
        return Ok(());
    }
    let config = DevServerConfig::demo(SocketAddr::from(([127, 0, 0, 1], 0)), Storage::Memory);
    let server = DevServer::start(config)
        .await
        .map_err(|e| format!("could not start the demo server: {e}"))?;
    let url = server.url();
    let token = server
        .demo_token()
        .map(|t| Token::new(&t))
        .ok_or("the demo server has no demo account")?;
    let (user, password) = server.demo_credentials().unwrap_or_default();
    tracing::info!(%url, %user, "demo server running");
    // The password is random per run (`DevServerConfig::demo`): shown once, on the terminal that
    // started the demo, never in the log file. The console itself opens signed in (below).
    eprintln!("Wegent demo console: {url}  (user {user}, password {password})");
    *SERVER.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);

    shell.set_demo(DemoInfo { url: url.clone() });
    shell.set_server_url(Some(url.clone()));
    shell.set_token(Some(token.clone()));
    crate::app::restart_core(&shell, &url, Some(token)).await?;
    open_console(app, &url);
    Ok(())
}

/// Opens the demo console already signed in, through a one-time sign-in link (valid once, for
/// 10 minutes); the plain `url` if there is no demo server.
pub fn open_console<R: Runtime>(app: &AppHandle<R>, url: &str) {
    let link = SERVER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(RunningDevServer::console_sign_in_url);
    match link {
        // The link signs in: it is never logged, not even when no browser opens.
        Some(link) => {
            if let Err(e) = app.opener().open_url(link, None::<&str>) {
                tracing::warn!("could not open the demo console {url} in a browser: {e}");
            }
        }
        None => open_url(app, url),
    }
}
