//! Whether a tray can start here: without a graphical session GTK would panic deep inside Tauri
//! with a backtrace. Instead the app says so in one line, points to the headless CLI, and exits
//! with [`EXIT_NO_DISPLAY`] (2, as a usage error: run it somewhere else).

use std::fmt;

/// Exit code when there is no graphical session.
pub const EXIT_NO_DISPLAY: i32 = 2;

/// Why there is no graphical session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDisplay {
    /// Neither `DISPLAY` nor `WAYLAND_DISPLAY` is set (a server, an SSH session, a service).
    Unset,
    /// A display is named but GTK cannot open it.
    CannotOpen { display: String, error: String },
}

const HEADLESS_HINT: &str = "on a server or over SSH use the headless CLI: `wegent-executor run` \
(`wegent-executor --demo` to try it without a Wegent server)";

impl fmt::Display for NoDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset => write!(
                f,
                "wegent-device needs a graphical session for its tray icon, and there is none \
                 (neither DISPLAY nor WAYLAND_DISPLAY is set); {HEADLESS_HINT}"
            ),
            Self::CannotOpen { display, error } => write!(
                f,
                "wegent-device cannot open the display {display} for its tray icon ({error}); \
                 {HEADLESS_HINT}"
            ),
        }
    }
}

/// The decision from the environment alone (pure): a display or Wayland socket must be named.
/// Empty values count as unset. Returns the name of the session to open.
pub fn named_session(display: Option<&str>, wayland: Option<&str>) -> Result<String, NoDisplay> {
    fn named(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    match (named(wayland), named(display)) {
        (Some(w), _) => Ok(format!("WAYLAND_DISPLAY={w}")),
        (None, Some(d)) => Ok(format!("DISPLAY={d}")),
        (None, None) => Err(NoDisplay::Unset),
    }
}

/// Linux: a session must be named, and GTK must open it (it is initialised here, on the main
/// thread, before Tauri; Tauri's own initialisation then finds it done). Elsewhere the desktop is
/// always there.
pub fn check() -> Result<(), NoDisplay> {
    #[cfg(target_os = "linux")]
    {
        let var = |name| std::env::var(name).ok();
        let session = named_session(var("DISPLAY").as_deref(), var("WAYLAND_DISPLAY").as_deref())?;
        gtk::init().map_err(|e| NoDisplay::CannotOpen {
            display: session,
            error: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_display_or_wayland_socket_is_a_session() {
        assert_eq!(named_session(Some(":0"), None).unwrap(), "DISPLAY=:0");
        assert_eq!(
            named_session(Some(":0"), Some("wayland-0")).unwrap(),
            "WAYLAND_DISPLAY=wayland-0"
        );
        assert_eq!(named_session(Some(" "), None), Err(NoDisplay::Unset));
        assert_eq!(named_session(None, None), Err(NoDisplay::Unset));
    }

    #[test]
    fn the_message_is_one_line_that_points_to_the_headless_cli() {
        for reason in [
            NoDisplay::Unset,
            NoDisplay::CannotOpen {
                display: "DISPLAY=:99".into(),
                error: "Failed to initialize GTK".into(),
            },
        ] {
            let text = reason.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.contains("`wegent-executor run`"), "{text}");
        }
    }
}
