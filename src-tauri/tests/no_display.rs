//! The tray binary started where there is no graphical session (a server, SSH): one line that
//! says so and points to the headless CLI, exit code 2, no panic or backtrace.
#![cfg(target_os = "linux")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wegent-device");

/// The tray with its own home and no keychain, `RUST_BACKTRACE=1` so a panic would show.
fn tray(home: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("WEGENT_EXECUTOR_HOME", home)
        .env("HOME", home)
        .env("WEGENT_NO_KEYCHAIN", "1")
        .env("RUST_BACKTRACE", "1");
    cmd
}

fn check_refusal(out: &std::process::Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(says), "{stderr}");
    assert!(lines[0].contains("`wegent-executor run`"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn without_display_or_wayland_the_tray_says_so_and_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let out = tray(home.path()).output().unwrap();
    check_refusal(&out, "neither DISPLAY nor WAYLAND_DISPLAY is set");
    // `--demo` is no different: the tray needs a session to show anything.
    let out = tray(home.path()).arg("--demo").output().unwrap();
    check_refusal(&out, "neither DISPLAY nor WAYLAND_DISPLAY is set");
}

#[test]
fn a_display_that_cannot_be_opened_is_said_so_and_exits_2() {
    let home = tempfile::tempdir().unwrap();
    // No X server listens on display 87 here (nor its socket file exists).
    assert!(!std::path::Path::new("/tmp/.X11-unix/X87").exists());
    let out = tray(home.path()).env("DISPLAY", ":87").output().unwrap();
    check_refusal(&out, "cannot open the display DISPLAY=:87");
}
