//! The tray menu as data: a pure function from the device's state to the items to show. The
//! renderer (`tray.rs`) updates kept items in place when only texts/checks change and rebuilds the
//! menu only when [`MenuModel::shape`] changes.

use std::time::{Duration, SystemTime};

use wegent_executor::status::{Connection, DeviceStatus};
use wegent_executor::token::TokenKind;

use crate::app_settings::{AppSettings, NotifyKind};
use crate::menu_action::MenuAction;
use crate::menu_ids as id;
use crate::menu_tasks;
use crate::token_check::{expiry, human_duration, Expiry};

/// One menu entry. Ids are stable; see [`crate::menu_ids`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Item {
        id: String,
        text: String,
        enabled: bool,
    },
    Check {
        id: String,
        text: String,
        enabled: bool,
        checked: bool,
    },
    Separator,
    Submenu {
        id: String,
        text: String,
        enabled: bool,
        children: Vec<Entry>,
    },
}

impl Entry {
    pub(crate) fn item(id: &str, text: impl Into<String>, enabled: bool) -> Self {
        Entry::Item {
            id: id.to_owned(),
            text: text.into(),
            enabled,
        }
    }

    pub(crate) fn check(id: &str, text: impl Into<String>, enabled: bool, checked: bool) -> Self {
        Entry::Check {
            id: id.to_owned(),
            text: text.into(),
            enabled,
            checked,
        }
    }

    /// The entry's id and kind, without what changes in place.
    fn shape(&self) -> String {
        match self {
            Entry::Item { id, .. } => format!("i:{id}"),
            Entry::Check { id, .. } => format!("c:{id}"),
            Entry::Separator => "-".to_owned(),
            Entry::Submenu { id, children, .. } => {
                let inner: Vec<String> = children.iter().map(Entry::shape).collect();
                format!("s:{id}[{}]", inner.join(","))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuModel {
    /// The state in words; also the tooltip.
    pub header: String,
    pub entries: Vec<Entry>,
}

impl MenuModel {
    /// Two models with the same shape differ only in texts, enabled flags and checks, which the
    /// renderer can update in place.
    pub fn shape(&self) -> String {
        let parts: Vec<String> = self.entries.iter().map(Entry::shape).collect();
        parts.join("|")
    }

    pub fn find(&self, wanted: &str) -> Option<&Entry> {
        fn walk<'a>(entries: &'a [Entry], wanted: &str) -> Option<&'a Entry> {
            entries.iter().find_map(|e| match e {
                Entry::Item { id, .. } | Entry::Check { id, .. } if id == wanted => Some(e),
                Entry::Submenu { id, children, .. } => {
                    if id == wanted {
                        Some(e)
                    } else {
                        walk(children, wanted)
                    }
                }
                _ => None,
            })
        }
        walk(&self.entries, wanted)
    }
}

/// Everything the menu depends on besides the core's status.
#[derive(Debug, Clone)]
pub struct ShellState<'a> {
    pub settings: &'a AppSettings,
    /// Why tokens cannot be stored or read (no Secret Service, locked keychain…), in words.
    pub keychain_problem: Option<&'a str>,
    /// A server URL is known (from settings, env or config file).
    pub server_configured: bool,
    /// Running in `--demo` mode (the menu then offers the console instead of the demo).
    pub demo_running: bool,
    /// Quit was clicked with tasks running; the next click confirms.
    pub quit_pending: bool,
    pub version: &'a str,
}

/// The header line in words, e.g. `🟢 Online · 2/5 slots`.
pub fn header(status: &DeviceStatus, shell: &ShellState, now: SystemTime) -> String {
    let slots = &status.slots;
    match &status.connection {
        Connection::Online => {
            let used = slots.used();
            let queued = match slots.queued {
                0 => String::new(),
                n if slots.queue_full() => format!(" ({n} queued, full)"),
                n => format!(" ({n} queued)"),
            };
            if status.paused {
                // Said first: new tasks are refused, whatever the slots.
                format!("⏸️ Paused · {used}/{} slots{queued}", slots.max)
            } else if used >= usize::from(slots.max) {
                format!("🟡 Busy · {used}/{} slots{queued}", slots.max)
            } else {
                format!("🟢 Online · {used}/{} slots{queued}", slots.max)
            }
        }
        Connection::Connecting { attempt: 1 } => "🟠 Connecting…".to_owned(),
        Connection::Connecting { attempt } => format!("🟠 Connecting… (attempt {attempt})"),
        Connection::Offline {
            retry_at: Some(at), ..
        } => match at.duration_since(now) {
            Ok(wait) if wait >= Duration::from_secs(1) => {
                // Round up so the countdown never shows "0 s" while still waiting.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                format!("🔴 Offline — retrying in {secs} s")
            }
            _ => "🔴 Offline — retrying now".to_owned(),
        },
        Connection::Offline { retry_at: None, .. } => "🔴 Offline — not retrying".to_owned(),
        Connection::TokenRejected { .. } => {
            if matches!(expiry(status.token_expires_at, now), Expiry::Expired { .. }) {
                "Token expired — paste a new one".to_owned()
            } else {
                "Token rejected — paste a new one".to_owned()
            }
        }
        Connection::NoToken if shell.keychain_problem.is_some() => {
            "⚠️ Keychain unavailable — token can't be read or stored".to_owned()
        }
        Connection::NoToken if !shell.server_configured => {
            "Not set up — try the demo or paste a token".to_owned()
        }
        Connection::NoToken => "No token — paste one or sign in".to_owned(),
        Connection::Stopped => "⚪ Stopped".to_owned(),
    }
}

/// A second, disabled line explaining the header when there is more to say.
fn detail(status: &DeviceStatus, shell: &ShellState, now: SystemTime) -> Option<String> {
    if let Some(problem) = shell.keychain_problem {
        return Some(problem.to_owned());
    }
    match &status.connection {
        Connection::Offline { reason, .. } => Some(reason.clone()),
        Connection::TokenRejected { message } => Some(format!("Server said: {message}")),
        // The answer to the user's last action (⭐ Default device) comes first.
        Connection::Online if status.last_error.is_some() => status.last_error.clone(),
        Connection::Online => match expiry(status.token_expires_at, now) {
            Expiry::Soon { remaining } => {
                Some(format!("Token expires in {}", human_duration(remaining)))
            }
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        one_line.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// Label and enabled flag of the `⭐ Default device` item: disabled with the reason in words.
fn default_item(status: &DeviceStatus) -> (String, bool) {
    const LABEL: &str = "⭐ Default device";
    match (&status.connection, status.token_kind) {
        (_, Some(TokenKind::ApiKey)) => (
            format!("{LABEL} (needs Sign in: API keys can't set it)"),
            false,
        ),
        (Connection::Online, Some(TokenKind::Jwt)) => (LABEL.to_owned(), true),
        (Connection::Online, None) | (_, None) => (format!("{LABEL} (no token)"), false),
        _ => (format!("{LABEL} (server unreachable)"), false),
    }
}

/// Build the whole menu.
pub fn build(status: &DeviceStatus, shell: &ShellState, now: SystemTime) -> MenuModel {
    let header = header(status, shell, now);
    let mut entries = vec![Entry::item(id::HEADER, header.clone(), false)];
    let device = match status.is_default {
        Some(true) => format!("{} ⭐", status.device_name),
        _ => status.device_name.clone(),
    };
    entries.push(Entry::item(id::DEVICE, device, false));
    if let Some(text) = detail(status, shell, now) {
        entries.push(Entry::item(id::DETAIL, truncate(&text, 90), false));
    }
    if status.connection == Connection::Online && status.slots.queue_full() {
        let text = format!(
            "Queue full ({} waiting): new tasks fail until some finish",
            status.slots.queued
        );
        entries.push(Entry::item(id::QUEUE_FULL, text, false));
    }
    if status.insecure_transport {
        entries.push(Entry::item(
            id::INSECURE,
            "⚠️ Unencrypted connection (http://) to the server: use https://",
            false,
        ));
    }
    entries.push(Entry::Separator);

    entries.push(menu_tasks::tasks_submenu(status, now));
    entries.push(menu_tasks::recent_submenu(status, now));
    // The switch only asks the core; the check mark shows what the core says.
    entries.push(Entry::check(
        &MenuAction::TogglePause.id(),
        "Pause new tasks",
        shell.server_configured,
        status.paused,
    ));
    let (default_text, default_enabled) = default_item(status);
    entries.push(Entry::check(
        &MenuAction::ToggleDefaultDevice.id(),
        default_text,
        default_enabled,
        status.is_default == Some(true),
    ));
    entries.push(Entry::Separator);

    entries.push(Entry::item(
        &MenuAction::RestartConnection.id(),
        "Restart connection",
        shell.server_configured,
    ));
    entries.push(Entry::item(
        &MenuAction::PasteToken.id(),
        "Paste token…",
        true,
    ));
    entries.push(Entry::item(&MenuAction::SignIn.id(), "Sign in…", true));
    if shell.demo_running {
        entries.push(Entry::item(
            &MenuAction::Demo.id(),
            "Open demo console",
            true,
        ));
    } else if !shell.server_configured || status.connection == Connection::NoToken {
        entries.push(Entry::item(
            &MenuAction::Demo.id(),
            "Try the demo (local server)",
            true,
        ));
    }
    entries.push(Entry::Separator);

    entries.push(Entry::check(
        &MenuAction::ToggleStartAtLogin.id(),
        "Start at login",
        true,
        shell.settings.start_at_login,
    ));
    entries.push(Entry::Submenu {
        id: id::NOTIFICATIONS.to_owned(),
        text: "Notifications".to_owned(),
        enabled: true,
        children: NotifyKind::ALL
            .into_iter()
            .map(|k| {
                Entry::check(
                    &MenuAction::ToggleNotification(k).id(),
                    k.label(),
                    true,
                    shell.settings.notifications.enabled(k),
                )
            })
            .collect(),
    });
    entries.push(Entry::item(
        &MenuAction::OpenLogs.id(),
        "Open logs folder",
        true,
    ));
    entries.push(Entry::item(
        &MenuAction::About.id(),
        format!("About Wegent Device {}", shell.version),
        true,
    ));
    entries.push(Entry::Separator);
    entries.push(Entry::item(
        &MenuAction::Quit.id(),
        quit_label(status, shell),
        true,
    ));
    MenuModel { header, entries }
}

fn quit_label(status: &DeviceStatus, shell: &ShellState) -> String {
    let n = status.slots.used();
    if shell.quit_pending && n > 0 {
        let tasks = if n == 1 {
            "1 running task".to_owned()
        } else {
            format!("{n} running tasks")
        };
        format!("Quit and cancel {tasks}? Click again to confirm")
    } else {
        "Quit".to_owned()
    }
}

/// What a click on Quit should do: quitting with tasks running needs a second click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitDecision {
    QuitNow,
    AskToConfirm,
}

/// `pending_since`: when the first click asked for confirmation; it lapses after `window`.
pub fn on_quit_click(
    running_tasks: usize,
    pending_since: Option<SystemTime>,
    now: SystemTime,
    window: Duration,
) -> QuitDecision {
    let confirmed = pending_since
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|d| d <= window);
    if running_tasks == 0 || confirmed {
        QuitDecision::QuitNow
    } else {
        QuitDecision::AskToConfirm
    }
}

#[cfg(test)]
#[path = "menu_model_tests.rs"]
mod tests;
