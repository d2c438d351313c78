//! What the token window's page (`ui/app.js`) asks of the app. The page runs in the window
//! process (`token_window/process.rs`), which registers the commands listed in
//! `window_commands.rs`: the checks that need nothing (`check_token`, `check_server_url`) run
//! there; the calls that need the tray's state, keychain or core reach the tray over the pipe and
//! are answered by the functions here (dispatched by `token_window/host.rs`).
//! Paste a token and the server URL, see the format and expiry checked on the spot, then
//! `Test & save`: one real connection to the server's device namespace shows the server's own
//! answer before anything is stored. On success the token goes to the OS keychain (never to a
//! file) and the session restarts with it.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tauri::{AppHandle, Runtime};
use wegent_executor::rest::RestClient;
use wegent_executor::sio::{self, ConnectOptions};
use wegent_executor::status::Command;
use wegent_executor::token::Token;

use crate::bridge::VERSION;
use crate::error::TrayError;
use crate::shell::Shell;
use crate::token_check::{self, capitalise, TokenVerdict};

/// The device namespace of the Wegent server (protocol.md §1).
pub const NAMESPACE: &str = "/local-executor";
const TEST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the window shows on load. Never the token itself.
#[derive(Debug, Serialize)]
pub struct WindowState {
    pub version: &'static str,
    pub header: String,
    pub server_url: Option<String>,
    pub device_name: String,
    pub token_hint: Option<String>,
    pub token_kind: Option<wegent_executor::token::TokenKind>,
    pub token_expiry: Option<String>,
    pub keychain_problem: Option<String>,
    pub demo_url: Option<String>,
}

pub fn window_state(shell: &Shell) -> WindowState {
    let status = shell.core.current();
    let now = SystemTime::now();
    let header = crate::bridge::model(shell, &status, now).header;
    let token_expiry = token_check::expiry(status.token_expires_at, now).phrase();
    WindowState {
        version: VERSION,
        header,
        server_url: shell.server_url(),
        device_name: status.device_name,
        token_hint: shell.token_hint(),
        token_kind: status.token_kind,
        token_expiry,
        keychain_problem: shell.keychain_problem(),
        demo_url: shell.demo.url(),
    }
}

#[tauri::command]
pub fn check_token(token: String) -> TokenVerdict {
    token_check::check_token(&token, SystemTime::now())
}

#[tauri::command]
pub fn check_server_url(url: String) -> Result<String, TrayError> {
    Ok(token_check::check_server_url(&url)?)
}

pub async fn test_and_save(
    shell: &Shell,
    token: String,
    server_url: String,
) -> Result<String, TrayError> {
    let url = token_check::check_server_url(&server_url)?;
    let verdict = token_check::check_token(&token, SystemTime::now());
    if !verdict.ok {
        return Err(TrayError::TokenFormat(verdict.message));
    }
    let token = Token::new(&token);
    test_connect(&url, &token).await?;
    store_and_use(shell, url, token).await?;
    Ok(format!(
        "The server accepted the token ({}). It is saved in the keychain and the device is reconnecting.",
        verdict.hint.unwrap_or_default()
    ))
}

pub async fn sign_in(
    shell: &Shell,
    server_url: String,
    user: String,
    password: String,
) -> Result<String, TrayError> {
    let url = token_check::check_server_url(&server_url)?;
    if user.trim().is_empty() || password.is_empty() {
        return Err(TrayError::MissingCredentials);
    }
    let refused = |e: &dyn std::fmt::Display| TrayError::SignInRefused(capitalise(&e.to_string()));
    let client = RestClient::new(&url).map_err(|e| refused(&e))?;
    let token = client
        .login(user.trim(), &password)
        .await
        .map_err(|e| refused(&e))?;
    test_connect(&url, &token).await?;
    store_and_use(shell, url, token).await?;
    Ok(format!(
        "Signed in as {}. The login token is saved in the keychain and the device is reconnecting.",
        user.trim()
    ))
}

pub async fn start_demo<R: Runtime>(
    app: &AppHandle<R>,
    shell: &Shell,
) -> Result<String, TrayError> {
    crate::demo::start(app, shell).await?;
    Ok("Demo server started; the device is connecting to it.".into())
}

/// Connect once to the device namespace with this token and report the server's answer.
async fn test_connect(url: &str, token: &Token) -> Result<(), TrayError> {
    let mut opts = ConnectOptions::new(
        url,
        NAMESPACE,
        serde_json::json!({ "token": token.expose() }),
    );
    opts.connect_timeout = TEST_CONNECT_TIMEOUT;
    match sio::connect(opts).await {
        Ok((client, _inbound)) => {
            client.disconnect().await;
            tracing::info!("token test: the server accepted the token");
            Ok(())
        }
        Err(e) => {
            tracing::info!("token test: {e}");
            Err(TrayError::TokenRefused(capitalise(&e.to_string())))
        }
    }
}

/// Keychain first (nothing else happens if that fails), then settings, then the core.
async fn store_and_use(shell: &Shell, url: String, token: Token) -> Result<(), TrayError> {
    let keychain = shell.keychain.clone();
    let stored = token.clone();
    let result = tokio::task::spawn_blocking(move || keychain.set(&stored))
        .await
        .map_err(|e| TrayError::KeychainCall(e.to_string()))?;
    if let Err(e) = result {
        shell.set_keychain_problem(Some(e.to_string()));
        return Err(e.into());
    }
    shell.set_keychain_problem(None);
    shell.set_token(Some(token.clone()));
    tracing::info!(kind = ?token.kind(), "token saved to the keychain");
    let same_server =
        shell.server_url().as_deref() == Some(url.as_str()) && shell.core.is_running();
    if shell.demo.url().is_none() {
        if let Err(e) = shell.update_settings(|s| s.server_url = Some(url.clone())) {
            tracing::warn!("{e}");
        }
    }
    shell.set_server_url(Some(url.clone()));
    if same_server {
        Ok(shell.core.send(Command::SetToken(token)).await?)
    } else {
        Ok(shell.restart_core(&url, Some(token)).await?)
    }
}
