//! The token window (`ui/`): opened on demand, destroyed on close. Paste a token and the server
//! URL, see the format and expiry checked on the spot, then `Test & save`: one real connection to
//! the server's device namespace shows the server's own answer before anything is stored. On
//! success the token goes to the OS keychain (never to a file) and the session restarts with it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State, WebviewUrl, WebviewWindowBuilder};
use wegent_executor::rest::RestClient;
use wegent_executor::sio::{self, ConnectOptions};
use wegent_executor::status::Command;
use wegent_executor::token::Token;

use crate::bridge::VERSION;
use crate::shell::Shell;
use crate::token_check::{self, TokenVerdict};

pub const WINDOW_LABEL: &str = "token";
/// The device namespace of the Wegent server (protocol.md §1).
pub const NAMESPACE: &str = "/local-executor";
const TEST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which part of the window to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Token,
    SignIn,
    About,
}

impl Section {
    fn anchor(self) -> &'static str {
        match self {
            Section::Token => "token",
            Section::SignIn => "signin",
            Section::About => "about",
        }
    }
}

/// Open (or focus) the window on `section`. Failures are logged: the tray keeps working.
pub fn open<R: Runtime>(app: &AppHandle<R>, section: Section) {
    if let Some(window) = app.get_webview_window(WINDOW_LABEL) {
        let _ = window.eval(format!(
            "window.showSection && showSection('{}')",
            section.anchor()
        ));
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let url = WebviewUrl::App(format!("index.html#{}", section.anchor()).into());
    let built = WebviewWindowBuilder::new(app, WINDOW_LABEL, url)
        .title("Wegent Device")
        .inner_size(480.0, 600.0)
        .min_inner_size(400.0, 480.0)
        .center()
        .focused(true)
        .build();
    match built {
        Ok(_) => tracing::info!(section = section.anchor(), "token window opened"),
        Err(e) => tracing::warn!("could not open the token window: {e}"),
    }
}

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

#[tauri::command]
pub fn window_state(shell: State<'_, Arc<Shell>>) -> WindowState {
    let status = shell.core.current();
    let now = SystemTime::now();
    let header = crate::bridge::model(&shell, &status, now).header;
    let token_expiry = match token_check::expiry(status.token_expires_at, now) {
        token_check::Expiry::Never => None,
        token_check::Expiry::Valid { remaining } | token_check::Expiry::Soon { remaining } => Some(
            format!("expires in {}", token_check::human_duration(remaining)),
        ),
        token_check::Expiry::Expired { ago } => {
            Some(format!("expired {} ago", token_check::human_duration(ago)))
        }
    };
    WindowState {
        version: VERSION,
        header,
        server_url: shell.server_url(),
        device_name: status.device_name,
        token_hint: shell.token_hint(),
        token_kind: status.token_kind,
        token_expiry,
        keychain_problem: shell.keychain_problem(),
        demo_url: shell.demo().map(|d| d.url),
    }
}

/// Close (destroy) the window; the app keeps running in the tray.
#[tauri::command]
pub fn close_window<R: Runtime>(window: tauri::WebviewWindow<R>) {
    if let Err(e) = window.destroy() {
        tracing::warn!("could not close the token window: {e}");
    }
}

#[tauri::command]
pub fn check_token(token: String) -> TokenVerdict {
    token_check::check_token(&token, SystemTime::now())
}

#[tauri::command]
pub fn check_server_url(url: String) -> Result<String, String> {
    token_check::check_server_url(&url)
}

#[tauri::command]
pub async fn test_and_save<R: Runtime>(
    app: AppHandle<R>,
    token: String,
    server_url: String,
) -> Result<String, String> {
    let url = token_check::check_server_url(&server_url)?;
    let verdict = token_check::check_token(&token, SystemTime::now());
    if !verdict.ok {
        return Err(verdict.message);
    }
    let token = Token::new(&token);
    test_connect(&url, &token).await?;
    store_and_use(&app, url, token).await?;
    Ok(format!(
        "The server accepted the token ({}). It is saved in the keychain and the device is reconnecting.",
        verdict.hint.unwrap_or_default()
    ))
}

#[tauri::command]
pub async fn sign_in<R: Runtime>(
    app: AppHandle<R>,
    server_url: String,
    user: String,
    password: String,
) -> Result<String, String> {
    let url = token_check::check_server_url(&server_url)?;
    if user.trim().is_empty() || password.is_empty() {
        return Err("Enter your user name and password.".into());
    }
    let client = RestClient::new(&url).map_err(|e| e.to_string())?;
    let token = client
        .login(user.trim(), &password)
        .await
        .map_err(|e| capitalise(&e.to_string()))?;
    test_connect(&url, &token).await?;
    store_and_use(&app, url, token).await?;
    Ok(format!(
        "Signed in as {}. The login token is saved in the keychain and the device is reconnecting.",
        user.trim()
    ))
}

#[tauri::command]
pub async fn start_demo<R: Runtime>(app: AppHandle<R>) -> Result<String, String> {
    crate::demo::start(&app).await?;
    Ok("Demo server started; the device is connecting to it.".into())
}

/// Connect once to the device namespace with this token and report the server's answer.
async fn test_connect(url: &str, token: &Token) -> Result<(), String> {
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
            Err(capitalise(&e.to_string()) + ". Nothing was saved.")
        }
    }
}

/// Keychain first (nothing else happens if that fails), then settings, then the core.
async fn store_and_use<R: Runtime>(
    app: &AppHandle<R>,
    url: String,
    token: Token,
) -> Result<(), String> {
    let shell = app.state::<Arc<Shell>>().inner().clone();
    let keychain = shell.keychain.clone();
    let stored = token.clone();
    let result = tokio::task::spawn_blocking(move || keychain.set(&stored))
        .await
        .map_err(|e| format!("the keychain call failed: {e}"))?;
    if let Err(e) = result {
        shell.set_keychain_problem(Some(e.to_string()));
        return Err(format!("{e}. The token was not saved anywhere."));
    }
    shell.set_keychain_problem(None);
    shell.set_token(Some(token.clone()));
    tracing::info!(kind = ?token.kind(), "token saved to the keychain");
    let same_server =
        shell.server_url().as_deref() == Some(url.as_str()) && shell.core.is_running();
    if shell.demo().is_none() {
        if let Err(e) = shell.update_settings(|s| s.server_url = Some(url.clone())) {
            tracing::warn!("{e}");
        }
    }
    shell.set_server_url(Some(url.clone()));
    if same_server {
        shell.core.send(Command::SetToken(token)).await
    } else {
        crate::app::restart_core(&shell, &url, Some(token)).await
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
