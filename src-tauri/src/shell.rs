//! The app's one state object (managed by Tauri, created once in `app::setup_app`): the
//! executor setup, settings, the core link, the keychain, the demo server, and the few facts the
//! menu needs that the core does not know. Everything else reaches state through it; there are
//! no statics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Notify;
use wegent_devserver::RunningDevServer;
use wegent_executor::keychain::SecretStore;
use wegent_executor::token::Token;

use crate::app_settings::{self, AppSettings, SettingsError};
use crate::core_config::{self, DeviceSetup, SetupError};
use crate::core_link::{CoreLink, SHUTDOWN_GRACE};

/// The in-process demo server (`--demo`, "Try the demo"), kept for the life of the app.
#[derive(Default)]
pub struct DemoSlot {
    server: Mutex<Option<RunningDevServer>>,
    /// Serialises starts (a double click must not start two servers).
    pub starting: tokio::sync::Mutex<()>,
}

impl DemoSlot {
    /// The running demo server's URL.
    pub fn url(&self) -> Option<String> {
        lock(&self.server).as_ref().map(RunningDevServer::url)
    }

    /// A one-time link that opens the console signed in (never log it).
    pub fn sign_in_link(&self) -> Option<String> {
        lock(&self.server)
            .as_ref()
            .and_then(RunningDevServer::console_sign_in_url)
    }

    pub fn set(&self, server: RunningDevServer) {
        *lock(&self.server) = Some(server);
    }
}

pub struct Shell {
    /// The executor settings and this device's identity, read once at start.
    pub setup: DeviceSetup,
    pub core: CoreLink,
    pub keychain: Arc<dyn SecretStore>,
    /// The app config dir (settings.json).
    pub settings_dir: PathBuf,
    /// The executor home's log folder ("Open logs folder").
    pub logs_dir: PathBuf,
    settings: Mutex<AppSettings>,
    /// Why the keychain cannot be used, in words; shown in the menu and the token window.
    keychain_problem: Mutex<Option<String>>,
    server_url: Mutex<Option<String>>,
    /// A safe hint (`eyJhbG…`) of the token in use, for the window.
    token_hint: Mutex<Option<String>>,
    /// The token in use (memory only), for the default-device REST calls.
    token: Mutex<Option<Token>>,
    pub demo: DemoSlot,
    quit_pending: Mutex<Option<SystemTime>>,
    /// Set after a menu click: the host toggled a check mark by itself, so the next render must
    /// write every item again.
    menu_dirty: AtomicBool,
    /// Wakes the renderer after a change the core does not report (settings, keychain, …).
    pub refresh: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shell {
    pub fn new(
        setup: DeviceSetup,
        core: CoreLink,
        keychain: Arc<dyn SecretStore>,
        settings_dir: PathBuf,
        logs_dir: PathBuf,
        settings: AppSettings,
        server_url: Option<String>,
    ) -> Self {
        Self {
            setup,
            core,
            keychain,
            settings_dir,
            logs_dir,
            settings: Mutex::new(settings),
            keychain_problem: Mutex::new(None),
            server_url: Mutex::new(server_url),
            token_hint: Mutex::new(None),
            token: Mutex::new(None),
            demo: DemoSlot::default(),
            quit_pending: Mutex::new(None),
            menu_dirty: AtomicBool::new(false),
            refresh: Notify::new(),
        }
    }

    pub fn settings(&self) -> AppSettings {
        lock(&self.settings).clone()
    }

    /// Change and persist the settings. A failed write is returned (and the change kept in
    /// memory, so the menu still does what the user clicked).
    pub fn update_settings(
        &self,
        change: impl FnOnce(&mut AppSettings),
    ) -> Result<(), SettingsError> {
        let snapshot = {
            let mut s = lock(&self.settings);
            change(&mut s);
            s.clone()
        };
        self.refresh.notify_one();
        app_settings::save(&self.settings_dir, &snapshot)
    }

    pub fn keychain_problem(&self) -> Option<String> {
        lock(&self.keychain_problem).clone()
    }

    pub fn set_keychain_problem(&self, problem: Option<String>) {
        *lock(&self.keychain_problem) = problem;
        self.refresh.notify_one();
    }

    pub fn server_url(&self) -> Option<String> {
        lock(&self.server_url).clone()
    }

    pub fn set_server_url(&self, url: Option<String>) {
        *lock(&self.server_url) = url;
        self.refresh.notify_one();
    }

    /// Remember the token in use (and its hint for the window).
    pub fn set_token(&self, token: Option<Token>) {
        self.set_token_hint(token.as_ref().map(Token::hint));
        *lock(&self.token) = token;
    }

    pub fn token(&self) -> Option<Token> {
        lock(&self.token).clone()
    }

    pub fn token_hint(&self) -> Option<String> {
        lock(&self.token_hint).clone()
    }

    pub fn set_token_hint(&self, hint: Option<String>) {
        *lock(&self.token_hint) = hint;
    }

    /// Keep the demo server for the rest of the run.
    pub fn set_demo(&self, server: RunningDevServer) {
        self.demo.set(server);
        self.refresh.notify_one();
    }

    pub fn quit_pending(&self) -> Option<SystemTime> {
        *lock(&self.quit_pending)
    }

    pub fn set_quit_pending(&self, at: Option<SystemTime>) {
        *lock(&self.quit_pending) = at;
        self.refresh.notify_one();
    }

    /// A menu click happened: re-render every item.
    pub fn mark_menu_dirty(&self) {
        self.menu_dirty.store(true, Ordering::SeqCst);
    }

    /// Whether the menu must be written again in full (and clear the mark).
    pub fn take_menu_dirty(&self) -> bool {
        self.menu_dirty.swap(false, Ordering::SeqCst)
    }

    /// (Re)start the core for `url` with `token`.
    pub async fn restart_core(&self, url: &str, token: Option<Token>) -> Result<(), SetupError> {
        let config = core_config::config_for(&self.setup, url)?;
        self.core.stop(SHUTDOWN_GRACE).await;
        self.core.start(config, token);
        self.refresh.notify_one();
        Ok(())
    }
}
