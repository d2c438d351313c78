//! The tray app's own settings (never secrets): start at login, notification switches, the server
//! URL chosen in the token window, tray icon theme. A JSON file in the app config dir.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The kinds of notification a user can switch off one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    TaskFinished,
    TaskFailed,
    Connection,
    TokenExpiry,
}

impl NotifyKind {
    pub const ALL: [NotifyKind; 4] = [
        NotifyKind::TaskFinished,
        NotifyKind::TaskFailed,
        NotifyKind::Connection,
        NotifyKind::TokenExpiry,
    ];

    /// Stable key, used in menu ids (`notify.<key>`) and the settings file.
    pub fn key(self) -> &'static str {
        match self {
            NotifyKind::TaskFinished => "task_finished",
            NotifyKind::TaskFailed => "task_failed",
            NotifyKind::Connection => "connection",
            NotifyKind::TokenExpiry => "token_expiry",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Label of the switch in the Notifications submenu.
    pub fn label(self) -> &'static str {
        match self {
            NotifyKind::TaskFinished => "Task finished",
            NotifyKind::TaskFailed => "Task failed",
            NotifyKind::Connection => "Connection lost / restored",
            NotifyKind::TokenExpiry => "Token expiring or expired",
        }
    }
}

/// Which tray icon variant to draw; panels differ and cannot always be detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayTheme {
    /// Light glyph (most Linux and Windows panels are dark); template image on macOS.
    #[default]
    Auto,
    /// Dark glyph for a light panel.
    Light,
    /// Light glyph for a dark panel.
    Dark,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationSwitches {
    pub task_finished: bool,
    pub task_failed: bool,
    pub connection: bool,
    pub token_expiry: bool,
}

impl Default for NotificationSwitches {
    fn default() -> Self {
        Self {
            task_finished: true,
            task_failed: true,
            connection: true,
            token_expiry: true,
        }
    }
}

impl NotificationSwitches {
    pub fn enabled(&self, kind: NotifyKind) -> bool {
        match kind {
            NotifyKind::TaskFinished => self.task_finished,
            NotifyKind::TaskFailed => self.task_failed,
            NotifyKind::Connection => self.connection,
            NotifyKind::TokenExpiry => self.token_expiry,
        }
    }

    pub fn set(&mut self, kind: NotifyKind, on: bool) {
        match kind {
            NotifyKind::TaskFinished => self.task_finished = on,
            NotifyKind::TaskFailed => self.task_failed = on,
            NotifyKind::Connection => self.connection = on,
            NotifyKind::TokenExpiry => self.token_expiry = on,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    pub start_at_login: bool,
    pub notifications: NotificationSwitches,
    /// Server chosen in the token window; overrides the executor config's `backend_url`.
    pub server_url: Option<String>,
    pub tray_theme: TrayTheme,
}

pub const FILE_NAME: &str = "settings.json";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("could not read the settings file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("could not write the settings file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Load settings. A missing file gives the defaults; an unreadable JSON file is set aside as
/// `settings.json.bad` (so the user's file is not lost) and the defaults are used.
pub fn load(dir: &Path) -> Result<AppSettings, SettingsError> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AppSettings::default()),
        Err(source) => return Err(SettingsError::Read { path, source }),
    };
    match serde_json::from_str(&text) {
        Ok(s) => Ok(s),
        Err(e) => {
            let bad = dir.join(format!("{FILE_NAME}.bad"));
            tracing::warn!(
                "settings file {} is not valid JSON ({e}); kept as {} and using defaults",
                path.display(),
                bad.display()
            );
            let _ = std::fs::rename(&path, &bad);
            Ok(AppSettings::default())
        }
    }
}

/// Save atomically (write a temporary file, then rename), so a crash never leaves half a file.
pub fn save(dir: &Path, settings: &AppSettings) -> Result<(), SettingsError> {
    let path = dir.join(FILE_NAME);
    let write = || -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let json = serde_json::to_string_pretty(settings).map_err(io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| SettingsError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wegent-tray-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn missing_file_gives_defaults_and_save_round_trips() {
        let dir = temp_dir("roundtrip");
        assert_eq!(load(&dir).unwrap(), AppSettings::default());
        let mut s = AppSettings {
            start_at_login: true,
            server_url: Some("http://127.0.0.1:8000".into()),
            ..Default::default()
        };
        s.notifications.set(NotifyKind::TaskFinished, false);
        save(&dir, &s).unwrap();
        assert_eq!(load(&dir).unwrap(), s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_kept_aside_and_defaults_used() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE_NAME), "{not json").unwrap();
        assert_eq!(load(&dir).unwrap(), AppSettings::default());
        assert!(dir.join("settings.json.bad").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn partial_file_fills_in_defaults() {
        let dir = temp_dir("partial");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(FILE_NAME),
            r#"{"notifications":{"connection":false}}"#,
        )
        .unwrap();
        let s = load(&dir).unwrap();
        assert!(!s.notifications.enabled(NotifyKind::Connection));
        assert!(s.notifications.enabled(NotifyKind::TaskFailed));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kind_keys_round_trip() {
        for k in NotifyKind::ALL {
            assert_eq!(NotifyKind::from_key(k.key()), Some(k));
        }
        assert_eq!(NotifyKind::from_key("nope"), None);
    }
}
