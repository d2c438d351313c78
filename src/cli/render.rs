//! Words for what the CLI prints: the device's state, events, the token, device lists. Pure
//! functions of their inputs (and `now`), so every phrasing is unit-tested.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::DeviceId;
use crate::rest::DeviceInfo;
use crate::settings::{Settings, Source, Sourced};
use crate::status::{Connection, DeviceEvent, DeviceStatus, FinishedTask};
use crate::token::{Token, TokenKind};
use crate::token_expiry::{expiry, Expiry};

/// One line for the state, e.g. `Online · 0/5 slots` or `Offline — retrying in 8 s: refused`.
pub fn status_line(status: &DeviceStatus, now: SystemTime) -> String {
    match &status.connection {
        Connection::NoToken => {
            "No token — set WEGENT_TOKEN or run `wegent-executor login`".to_owned()
        }
        Connection::Connecting { attempt } if *attempt <= 1 => {
            format!("Connecting to {}…", status.server_url)
        }
        Connection::Connecting { attempt } => {
            format!("Connecting to {}… (attempt {attempt})", status.server_url)
        }
        Connection::Online => {
            let slots = &status.slots;
            let (used, max) = (slots.used(), usize::from(slots.max));
            let word = if status.draining {
                "Stopping"
            } else if status.paused {
                "Paused"
            } else if max > 0 && used >= max {
                "Busy"
            } else {
                "Online"
            };
            let queued = match slots.queued {
                0 => String::new(),
                n if slots.queue_full() => format!(" ({n} queued — queue full, new tasks fail)"),
                n => format!(" ({n} queued)"),
            };
            let projects: Vec<&str> = slots
                .running
                .iter()
                .filter_map(|t| t.project.as_deref())
                .collect();
            // The project folders being worked on; scratch dirs have no name worth showing.
            let projects = if projects.is_empty() {
                String::new()
            } else {
                format!(" — in {}", projects.join(", "))
            };
            let paused = if status.draining {
                " — no new tasks; the running ones may finish"
            } else if status.paused {
                " — new tasks are refused until `wegent-executor resume`"
            } else {
                ""
            };
            format!("{word} · {used}/{max} slots{queued}{projects}{paused}")
        }
        Connection::Offline { reason, retry_at } => match retry_at {
            Some(at) => {
                let wait = at.duration_since(now).unwrap_or_default();
                format!(
                    "Offline — retrying in {}: {}",
                    duration(round_up_secs(wait)),
                    terminal_safe(reason)
                )
            }
            None => format!("Offline: {}", terminal_safe(reason)),
        },
        Connection::TokenRejected { message } => format!(
            "Token rejected by the server: {} — get a new token (`wegent-executor login`, or a new API key) and start again",
            terminal_safe(message)
        ),
        Connection::Stopped => "Stopped".to_owned(),
    }
}

/// The `status` report of the settings: one line per setting, with where it came from.
pub fn settings_report(settings: &Settings, id: &DeviceId, name: &str) -> Vec<String> {
    fn shown<T>(v: &Option<Sourced<T>>, show: impl Fn(&T) -> String, none: &str) -> String {
        v.as_ref().map_or(none.to_owned(), |s| {
            format!("{} ({})", show(&s.value), s.source)
        })
    }
    let path = |p: &std::path::PathBuf| p.display().to_string();
    let found = if settings.config_file_found {
        "found"
    } else {
        "not found"
    };
    let name_from = settings
        .device_name
        .as_ref()
        .map_or(Source::Default, |s| s.source);
    let remote = &settings.allow_remote_commands;
    let rows = [
        (
            "Home",
            format!(
                "{} ({})",
                settings.home.value.display(),
                settings.home.source
            ),
        ),
        (
            "Config file",
            format!("{} ({found})", settings.config_file.display()),
        ),
        (
            "Server",
            shown(
                &settings.backend_url,
                String::clone,
                "not configured — set WEGENT_BACKEND_URL or backend_url (try `wegent-devserver`)",
            ),
        ),
        (
            "Socket.IO URL",
            shown(&settings.socket_url, String::clone, "same as the server"),
        ),
        ("Device id", format!("{} ({})", id.id, id.source.describe())),
        ("Device name", format!("{name} ({name_from})")),
        (
            "Slots",
            format!(
                "{} ({})",
                settings.max_slots.value, settings.max_slots.source
            ),
        ),
        (
            "Task queue",
            format!(
                "up to {} waiting ({}); more fail at once",
                settings.max_queued.value, settings.max_queued.source
            ),
        ),
        (
            "Claude CLI",
            shown(&settings.claude_path, path, "`claude` on PATH"),
        ),
        (
            "Codex CLI",
            shown(&settings.codex_path, path, "`codex` on PATH"),
        ),
        (
            "Task timeout",
            format!(
                "{} ({})",
                duration(settings.task_timeout.value),
                settings.task_timeout.source
            ),
        ),
        (
            "Drain on stop",
            format!(
                "running tasks may finish for {} ({}), then are cancelled",
                duration(settings.drain_grace.value),
                settings.drain_grace.source
            ),
        ),
        (
            "Pre-task hook",
            shown(&settings.pre_execute_hook, path, "none"),
        ),
        (
            "Projects dir",
            format!(
                "{} ({})",
                settings.projects_dir.value.display(),
                settings.projects_dir.source
            ),
        ),
        (
            "Remote commands",
            format!(
                "{} ({})",
                if remote.value { "allowed" } else { "refused" },
                remote.source
            ),
        ),
        (
            "stdio MCP servers",
            format!(
                "{} ({})",
                if settings.allow_stdio_mcp.value {
                    "allowed"
                } else {
                    "skipped"
                },
                settings.allow_stdio_mcp.source
            ),
        ),
        (
            "Logs",
            settings
                .home
                .value
                .join(crate::logging::LOG_DIR)
                .display()
                .to_string(),
        ),
    ];
    let mut lines = vec![format!(
        "Wegent Device — wegent-executor {}",
        crate::config::EXECUTOR_VERSION
    )];
    lines.extend(rows.iter().map(|(label, value)| labelled(label, value)));
    lines
}

/// `  Label:           value`, aligned like the rest of the `status` report.
/// The tasks that finished here lately (what the tray's *Recent* shows), each with its page:
/// `Cancelled · Fix the build · 5 min ago — https://…/devices/chat?taskId=7`.
pub fn recent_tasks(tasks: &[FinishedTask], web_url: &str, now: SystemTime) -> Vec<String> {
    if tasks.is_empty() {
        return vec![labelled("Recent tasks", "none yet")];
    }
    let mut lines = vec![labelled("Recent tasks", "").trim_end().to_owned()];
    lines.extend(tasks.iter().map(|t| {
        format!(
            "    {} · {} · {} — {}",
            t.end.label(),
            terminal_safe(&t.title),
            crate::recent::ended_ago(t, now),
            crate::web_links::task_page_url(web_url, t.task_id)
        )
    }));
    lines
}

pub fn labelled(label: &str, value: &str) -> String {
    format!("  {:<17}{value}", format!("{label}:"))
}

/// `text` (from the server: titles, names, error messages) without what a terminal would
/// interpret: escape sequences (CSI, OSC, …) and control characters other than newline and tab.
/// A title like `\x1b]52;c;…\x07` could otherwise set the clipboard, retitle the window or
/// rewrite earlier lines.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ … final byte (CSI); ESC ] … BEL or ESC \ (OSC, and DCS/APC/PM/SOS alike);
            // ESC and one more character otherwise.
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']' | 'P' | '_' | '^' | 'X') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\u{9d}' | '\u{90}' | '\u{9f}' | '\u{9e}' | '\u{98}' => skip_string(&mut chars),
            c if unsafe_char(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Skips an escape string up to its terminator (BEL, ST, or ESC \\).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// One line for a task event.
pub fn event_line(event: &DeviceEvent) -> String {
    terminal_safe(&event_text(event)).into_owned()
}

fn event_text(event: &DeviceEvent) -> String {
    match event {
        DeviceEvent::TaskStarted {
            task_id,
            title,
            agent,
        } => format!("Task {task_id} started ({agent}): {title}"),
        DeviceEvent::TaskCompleted { task_id, title } => {
            format!("Task {task_id} completed: {title}")
        }
        DeviceEvent::TaskFailed {
            task_id,
            title,
            reason,
        } => format!("Task {task_id} failed: {title} — {reason}"),
        DeviceEvent::TaskCancelled { task_id, title } => {
            format!("Task {task_id} cancelled: {title}")
        }
        DeviceEvent::Registered => "Registered with the server".to_owned(),
    }
}

/// What `run` prints on the first stop signal.
pub fn drain_line(running: usize, grace: Duration) -> String {
    match running {
        0 => "Stopping (no task runs)…".to_owned(),
        n => format!(
            "Stopping: no new tasks; {n} running {} may finish within {}, then {} cancelled. Press Ctrl-C (or send SIGTERM) again to cancel now.",
            if n == 1 { "task" } else { "tasks" },
            duration(grace),
            if n == 1 { "it is" } else { "they are" },
        ),
    }
}

/// The `status` line of the pause switch (`wegent-executor pause|resume`).
pub fn pause_state(paused: &std::io::Result<bool>) -> String {
    match paused {
        Ok(true) => "paused — the device stays online but refuses new tasks; `wegent-executor resume` takes them again".to_owned(),
        Ok(false) => "taken (pause with `wegent-executor pause`)".to_owned(),
        Err(e) => format!("unknown: cannot read the pause switch ({e})"),
    }
}

/// What `pause` / `resume` print: what changed and what it means for a running device.
pub fn pause_changed(was: bool, now: bool) -> String {
    let state = if now {
        "Paused: this device stays online and finishes what runs, but refuses new tasks. Take them again with `wegent-executor resume`."
    } else {
        "Resumed: this device takes new tasks."
    };
    let note = match (was == now, now) {
        (true, true) => " (it was already paused)",
        (true, false) => " (it was not paused)",
        // A running device looks at the saved switch every second.
        (false, _) => " A running device follows within a second.",
    };
    format!("{state}{note}")
}

/// What a token is, never the token: `login token for admin, expires in 7 days (…)`.
pub fn token_summary(token: &Token, now: SystemTime) -> String {
    let kind = match token.kind() {
        TokenKind::ApiKey => format!("API key {}", token.hint()),
        TokenKind::Jwt => match token.user_name() {
            Some(user) => format!("login token for {user}"),
            None => "login token".to_owned(),
        },
    };
    let expiry = match (token.kind(), token.expires_at()) {
        (TokenKind::ApiKey, _) => "expiry managed by the server".to_owned(),
        (TokenKind::Jwt, None) => "no expiry".to_owned(),
        (TokenKind::Jwt, Some(at)) => {
            let phrase = expiry(Some(at), now).phrase().unwrap_or_default();
            format!("{phrase} ({})", utc(at))
        }
    };
    format!("{kind}, {expiry}")
}

/// A warning when a login token expires within [`crate::token_expiry::EXPIRY_WARNING`]: the open
/// connection outlives `exp`, but any reconnect after it is refused.
pub fn expiry_warning(token: &Token, now: SystemTime) -> Option<String> {
    let soon = expiry(token.expires_at(), now);
    matches!(soon, Expiry::Soon { .. }).then(|| {
        format!(
            "warning: the login token {}; the device stays connected, but cannot reconnect after that. Sign in again with `wegent-executor login --user NAME`.",
            soon.phrase().unwrap_or_default()
        )
    })
}

/// Whether a JWT has expired by the local clock (API keys never do here).
pub fn token_expired(token: &Token, now: SystemTime) -> bool {
    matches!(expiry(token.expires_at(), now), Expiry::Expired { .. })
}

/// A row of `wegent-executor devices`.
pub fn device_row(d: &DeviceInfo, this_device: Option<&str>) -> String {
    let state = match d.status.as_str() {
        "online" => "🟢 online ",
        "busy" => "🟡 busy   ",
        _ => "🔴 offline",
    };
    let star = if d.is_default { "⭐" } else { "  " };
    let slots = if d.slot_max > 0 {
        format!("{}/{} slots", d.slot_used, d.slot_max)
    } else {
        "   -     ".to_owned()
    };
    let this = if this_device == Some(d.device_id.as_str()) {
        "  ← this device"
    } else {
        ""
    };
    format!(
        "{star} {state}  {slots:<10}  {}  ({}){this}",
        terminal_safe(&d.name),
        terminal_safe(&d.device_id)
    )
}

/// `6 d 23 h`, `3 h 5 min`, `4 min 10 s`, `8 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match () {
        _ if days > 0 => format!("{days} d {hours} h"),
        _ if hours > 0 => format!("{hours} h {mins} min"),
        _ if mins > 0 => format!("{mins} min {secs} s"),
        _ => format!("{secs} s"),
    }
}

/// `2026-11-29 06:30 UTC`.
pub fn utc(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600 % 24,
        secs / 60 % 60
    )
}

fn round_up_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests;
