//! The app's few command-line flags. Kept tiny and dependency-free: the tray app is launched by
//! desktops, autostart entries and the single-instance forwarder, not typed by hand.

use crate::token_window::{Section, WINDOW_FLAG};

/// Flags understood by `wegent-device`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// Start the local devserver in-process and connect to it with a demo account.
    pub demo: bool,
    /// Started by the autostart entry: never open a window on start.
    pub minimized: bool,
    /// Open the status/token window right away.
    pub show: bool,
    pub version: bool,
    pub help: bool,
    /// `--token-window=<section>` (hidden): run as the token window process the tray starts.
    pub token_window: Option<Section>,
    /// Flags we do not know, reported once in the log (never fatal: old autostart entries).
    pub unknown: Vec<String>,
}

pub const USAGE: &str = "\
Wegent Device — runs Wegent AI coding tasks on this computer, from the system tray.

Usage: wegent-device [--demo] [--minimized] [--show]

  --demo        start a local Wegent devserver in-process, sign in with a demo account,
                connect, and open its web console (no Wegent server needed)
  --minimized   do not open any window at start (used by Start at login)
  --show        open the status / token window at start
  --version     print the version
  -h, --help    print this help

Configuration is shared with the `wegent-executor` CLI (executor home, config.toml,
WEGENT_BACKEND_URL); the token is kept in the OS keychain.";

/// What may be logged about unknown arguments: flag names only (`--token=abc` → `--token`), a
/// bare value as `<value>`. An argument may be a secret (a token pasted into an autostart entry).
pub fn loggable(unknown: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|arg| match arg.split_once('=') {
            _ if !arg.starts_with('-') => "<value>".to_owned(),
            Some((flag, _)) => format!("{flag}=<value>"),
            None => arg.clone(),
        })
        .collect()
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Args {
    let mut out = Args::default();
    for arg in args {
        match arg.as_str() {
            "--demo" => out.demo = true,
            "--minimized" | "--hidden" => out.minimized = true,
            "--show" => out.show = true,
            "--version" | "-V" => out.version = true,
            "--help" | "-h" => out.help = true,
            _ => match arg
                .strip_prefix(WINDOW_FLAG)
                .and_then(|rest| rest.strip_prefix('='))
                .and_then(Section::from_anchor)
            {
                Some(section) => out.token_window = Some(section),
                None => out.unknown.push(arg),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Args {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_are_recognised_and_unknown_ones_kept() {
        let a = p(&["--demo", "--minimized", "--bogus"]);
        assert!(a.demo && a.minimized && !a.show);
        assert_eq!(a.unknown, vec!["--bogus".to_string()]);
        assert!(p(&["-h"]).help);
        assert_eq!(p(&[]), Args::default());
    }

    #[test]
    fn the_window_process_flag_names_a_section() {
        assert_eq!(
            p(&["--token-window=signin"]).token_window,
            Some(Section::SignIn)
        );
        assert_eq!(
            p(&["--token-window=token"]).token_window,
            Some(Section::Token)
        );
        let bad = p(&["--token-window=nope", "--token-window"]);
        assert_eq!(bad.token_window, None);
        assert_eq!(bad.unknown.len(), 2);
    }

    #[test]
    fn unknown_arguments_are_logged_without_their_values() {
        let a = p(&[
            "--token=wg-secret-123",
            "wg-bare-secret-456",
            "--bogus",
            "-x",
        ]);
        assert_eq!(
            loggable(&a.unknown),
            ["--token=<value>", "<value>", "--bogus", "-x"]
        );
    }
}
