//! *Pause new tasks*: the user's switch that keeps the device online (heartbeating, running what
//! it runs) while every new `task:execute` is refused at once.
//!
//! The switch is persisted as a marker file, `<executor home>/paused`: present means paused. A
//! file (not a `config.toml` key) because three writers share it — the tray, `wegent-executor
//! pause|resume` and a running device — and creating or removing a file is atomic on every
//! platform, needs no parser and cannot lose the user's other settings. A running core looks at
//! the marker every [`MARKER_POLL`], so `wegent-executor pause` reaches a device started
//! elsewhere (a service, the tray) without a control socket.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The marker's file name in the executor home.
pub const MARKER: &str = "paused";

/// How often a running core looks at the marker (one `stat`): a `pause` from another process
/// takes effect within this time.
pub const MARKER_POLL: Duration = Duration::from_secs(1);

/// What the marker says to whoever opens it.
const MARKER_TEXT: &str = "This Wegent device is paused: it stays online but takes no new tasks.\n\
Resume it with `wegent-executor resume` or the tray's \"Pause new tasks\" item (or delete this file).\n";

pub fn marker_path(home: &Path) -> PathBuf {
    home.join(MARKER)
}

/// Whether the device in `home` is paused.
pub fn is_paused(home: &Path) -> io::Result<bool> {
    marker_path(home).try_exists()
}

/// Persist the switch. Idempotent: pausing a paused device (or resuming a running one) is fine.
pub fn set_paused(home: &Path, paused: bool) -> io::Result<()> {
    let path = marker_path(home);
    if paused {
        std::fs::create_dir_all(home)?;
        std::fs::write(&path, MARKER_TEXT)
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// What a running core follows: the marker's new state when it differs from what was last seen
/// (an unreadable marker changes nothing).
pub fn changed(seen: Option<bool>, read: io::Result<bool>) -> Option<bool> {
    read.ok().filter(|now| seen != Some(*now))
}

/// The error a user reads when the switch could not be saved: which file, and what it means.
pub fn save_error(home: &Path, paused: bool, e: &io::Error) -> String {
    let what = if paused { "pause" } else { "resume" };
    format!(
        "could not save the {what} in {}: {e}",
        marker_path(home).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_and_both_directions_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home-not-yet-made");
        assert!(!is_paused(&home).unwrap());
        set_paused(&home, false).unwrap();
        set_paused(&home, true).unwrap();
        set_paused(&home, true).unwrap();
        assert!(is_paused(&home).unwrap());
        assert!(std::fs::read_to_string(marker_path(&home))
            .unwrap()
            .contains("wegent-executor resume"));
        set_paused(&home, false).unwrap();
        set_paused(&home, false).unwrap();
        assert!(!is_paused(&home).unwrap());
    }

    #[test]
    fn only_a_change_of_the_marker_is_followed() {
        assert_eq!(changed(Some(false), Ok(true)), Some(true));
        assert_eq!(changed(Some(true), Ok(true)), None);
        assert_eq!(changed(None, Ok(false)), Some(false));
        assert_eq!(
            changed(Some(false), Err(io::ErrorKind::PermissionDenied.into())),
            None
        );
    }

    #[test]
    fn a_save_error_names_the_file() {
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        let text = save_error(Path::new("/h"), true, &e);
        assert!(
            text.starts_with("could not save the pause in /h/paused"),
            "{text}"
        );
    }
}
