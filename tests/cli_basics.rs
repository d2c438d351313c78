//! The `wegent-executor` binary, run as a user would: help, status, errors, device id reset.
//! No server is needed here; `cli_run.rs` runs the device against the devserver.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;

const BIN: &str = env!("CARGO_BIN_EXE_wegent-executor");

/// The binary with a clean environment: its own home, no keychain, no inherited Wegent settings.
fn cli(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "WEGENT_TOKEN",
        "WEGENT_AUTH_TOKEN",
        "WEGENT_BACKEND_URL",
        "WEGENT_SOCKET_URL",
        "DEVICE_ID",
        "DEVICE_NAME",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("WEGENT_EXECUTOR_HOME", home)
        .env("HOME", home.join("user-home"))
        .env("WEGENT_NO_KEYCHAIN", "1");
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn jwt(exp: u64) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = format!(r#"{{"sub":"admin","user_id":1,"exp":{exp}}}"#);
    format!(
        "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
        e.encode(r#"{"alg":"HS256"}"#),
        e.encode(claims)
    )
}

#[test]
fn help_documents_precedence_env_and_config_keys() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let (stdout, _) = text(&out);
    for needle in [
        "command-line flag > environment variable > config.toml > default",
        "WEGENT_TOKEN (or WEGENT_AUTH_TOKEN)",
        "WEGENT_EXECUTOR_HOME",
        "OS keychain",
        "visible to other local users (ps)",
        "config.toml in the executor home",
        "max_slots (1..20, default 5)",
        "reset-device-id",
        "set-default",
    ] {
        assert!(
            stdout.contains(needle),
            "--help lacks {needle:?}:\n{stdout}"
        );
    }
}

#[test]
fn status_prints_settings_and_token_facts_but_never_the_token() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "max_slots = 7\ndevice_name = \"Build box\"\n",
    )
    .unwrap();
    let token = jwt(4_102_444_800);
    let out = cli(home.path())
        .arg("status")
        .env("WEGENT_TOKEN", &token)
        .env("WEGENT_BACKEND_URL", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Server:          http://127.0.0.1:9 (env WEGENT_BACKEND_URL)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Slots:           7 (config.toml)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Device name:     Build box (config.toml)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("login token for admin, expires in")
            && stdout.contains("2100-01-01 00:00 UTC"),
        "{stdout}"
    );
    assert!(stdout.contains("(from WEGENT_TOKEN)"), "{stdout}");
    assert!(
        stdout.contains("On the server:   cannot reach the Wegent server"),
        "{stdout}"
    );
    let saved = std::fs::read_to_string(home.path().join("device_id")).unwrap();
    assert!(
        stdout.contains(&format!("Device id:       {}", saved.trim())),
        "{stdout}"
    );
    for output in [&stdout, &stderr] {
        assert!(
            !output.contains(&token) && !output.contains("c2lnbmF0dXJlLWJ5dGVz"),
            "token leaked:\n{output}"
        );
    }
    let logs = std::fs::read_dir(home.path().join("logs")).unwrap().count();
    assert_eq!(logs, 1, "one log file in <home>/logs");
}

#[test]
fn token_on_the_command_line_is_warned_about() {
    let home = tempfile::tempdir().unwrap();
    let out = cli(home.path())
        .args(["status", "--token", "wg-flag-token-value"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        stderr.contains("other local users can read it") && stderr.contains("WEGENT_TOKEN"),
        "{stderr}"
    );
    assert!(
        stdout.contains("API key wg-fla… ") || stdout.contains("API key wg-fla…,"),
        "{stdout}"
    );
    assert!(!stdout.contains("wg-flag-token-value"));
}

#[test]
fn run_without_a_server_says_how_to_get_one() {
    let home = tempfile::tempdir().unwrap();
    let out = cli(home.path())
        .env("WEGENT_TOKEN", "wg-some-key-123")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no Wegent server configured") && stderr.contains("wegent-devserver"),
        "{stderr}"
    );
}

#[test]
fn run_without_a_token_says_how_to_give_one() {
    let home = tempfile::tempdir().unwrap();
    let out = cli(home.path())
        .args(["run", "--backend-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no token")
            && stderr.contains("WEGENT_TOKEN=")
            && stderr.contains("wegent-executor login"),
        "{stderr}"
    );
}

#[test]
fn expired_or_malformed_tokens_are_refused_before_connecting() {
    let home = tempfile::tempdir().unwrap();
    let expired = jwt(1_000_000);
    let out = cli(home.path())
        .env("WEGENT_TOKEN", &expired)
        .env("WEGENT_BACKEND_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("has expired") && !stderr.contains(&expired),
        "{stderr}"
    );
    let out = cli(home.path())
        .env("WEGENT_TOKEN", "not-a-token")
        .env("WEGENT_BACKEND_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr.contains("not usable"), "{stderr}");
}

#[test]
fn bad_config_values_are_named() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "max_slots = 50\n").unwrap();
    let out = cli(home.path()).arg("status").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("max_slots = 50 (config.toml)") && stderr.contains("between 1 and 20"),
        "{stderr}"
    );
    std::fs::write(home.path().join("config.toml"), "backend = \"http://x\"\n").unwrap();
    let out = cli(home.path()).arg("status").output().unwrap();
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("config.toml is not valid") && stderr.contains("unknown field"),
        "{stderr}"
    );
}

#[test]
fn reset_device_id_gives_a_new_persisted_id() {
    let home = tempfile::tempdir().unwrap();
    let status = |home: &Path| text(&cli(home).arg("status").output().unwrap()).0;
    let before = std::fs::read_to_string(home.path().join("device_id")).ok();
    assert!(before.is_none());
    let first = status(home.path());
    let id1 = std::fs::read_to_string(home.path().join("device_id")).unwrap();
    assert!(first.contains(id1.trim()));
    let out = cli(home.path()).arg("reset-device-id").output().unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    let id2 = std::fs::read_to_string(home.path().join("device_id")).unwrap();
    assert_ne!(id1, id2);
    assert!(
        stdout.contains(&format!("{} → {}", id1.trim(), id2.trim())),
        "{stdout}"
    );
    assert!(status(home.path()).contains(&format!("Device id:       {} (saved)", id2.trim())));
    let out = cli(home.path())
        .arg("status")
        .env("DEVICE_ID", "pinned-id")
        .output()
        .unwrap();
    assert!(text(&out)
        .0
        .contains("Device id:       pinned-id (from DEVICE_ID)"));
}

#[test]
fn device_commands_need_a_login_token() {
    let home = tempfile::tempdir().unwrap();
    let out = cli(home.path())
        .args(["devices", "--backend-url", "http://127.0.0.1:9"])
        .env("WEGENT_TOKEN", "wg-api-key-value-1")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("this needs a login token") && stderr.contains("API keys (wg-…)"),
        "{stderr}"
    );
}
