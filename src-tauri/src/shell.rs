//! The app's shared state (managed by Tauri): settings, the core link, the keychain, and the
//! few facts the menu needs that the core does not know.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Notify;
use wegent_executor::keychain::SecretStore;
use wegent_executor::token::Token;

use crate::app_settings::{self, AppSettings};
use crate::core_link::CoreLink;

/// What `--demo` started.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub url: String,
}

pub struct Shell {
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
    /// `is_default` as the shell last read it from the server, used while the core does not
    /// report it.
    demo: Mutex<Option<DemoInfo>>,
    quit_pending: Mutex<Option<SystemTime>>,
    /// Wakes the renderer after a change the core does not report (settings, keychain, …).
    pub refresh: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shell {
    pub fn new(
        core: CoreLink,
        keychain: Arc<dyn SecretStore>,
        settings_dir: PathBuf,
        logs_dir: PathBuf,
        settings: AppSettings,
        server_url: Option<String>,
    ) -> Self {
        Self {
            core,
            keychain,
            settings_dir,
            logs_dir,
            settings: Mutex::new(settings),
            keychain_problem: Mutex::new(None),
            server_url: Mutex::new(server_url),
            token_hint: Mutex::new(None),
            token: Mutex::new(None),
            demo: Mutex::new(None),
            quit_pending: Mutex::new(None),
            refresh: Notify::new(),
        }
    }

    pub fn settings(&self) -> AppSettings {
        lock(&self.settings).clone()
    }

    /// Change and persist the settings. A failed write is returned (and the change kept in
    /// memory, so the menu still does what the user clicked).
    pub fn update_settings(&self, change: impl FnOnce(&mut AppSettings)) -> Result<(), String> {
        let snapshot = {
            let mut s = lock(&self.settings);
            change(&mut s);
            s.clone()
        };
        self.refresh.notify_one();
        app_settings::save(&self.settings_dir, &snapshot).map_err(|e| e.to_string())
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

    pub fn demo(&self) -> Option<DemoInfo> {
        lock(&self.demo).clone()
    }

    pub fn set_demo(&self, demo: DemoInfo) {
        *lock(&self.demo) = Some(demo);
        self.refresh.notify_one();
    }

    pub fn quit_pending(&self) -> Option<SystemTime> {
        *lock(&self.quit_pending)
    }

    pub fn set_quit_pending(&self, at: Option<SystemTime>) {
        *lock(&self.quit_pending) = at;
        self.refresh.notify_one();
    }
}
