//! `wegent-executor login` / `status` / `devices` / `logout` with the REAL OS keychain (Secret
//! Service) and a real HTTP server answering like Wegent's REST API (`rest_support`).
//!
//! Needs a Secret Service on the session bus (CI: inside `/work/shared/ci/headless-session.sh`);
//! skipped without one unless `WEGENT_REQUIRE_KEYRING=1`, which makes that a failure. It uses the
//! real keychain item (`wegent-device`/`device-token`), so it refuses to run when that item already
//! holds a token: it never overwrites a user's credentials.

mod rest_support;

use std::process::{Command, Output};

use rest_support::{jwt, start_backend, PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_wegent-executor");

fn secret_service_running() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        && Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
}

fn stored_token() -> Option<String> {
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "wegent-device",
            "username",
            "device-token",
        ])
        .output()
        .expect("secret-tool (libsecret-tools) is needed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        .filter(|s| !s.is_empty())
}

async fn cli(home: &std::path::Path, url: &str, args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    for var in [
        "WEGENT_TOKEN",
        "WEGENT_AUTH_TOKEN",
        "WEGENT_NO_KEYCHAIN",
        "DEVICE_ID",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("WEGENT_EXECUTOR_HOME", home)
        .env("WEGENT_BACKEND_URL", url)
        .args(args);
    match password {
        Some(p) => cmd.env("WEGENT_PASSWORD", p),
        None => cmd.env_remove("WEGENT_PASSWORD"),
    };
    cmd.output().await.unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn login_stores_the_token_in_the_keychain_and_logout_removes_it() {
    if !secret_service_running() {
        if std::env::var("WEGENT_REQUIRE_KEYRING").as_deref() == Ok("1") {
            panic!(
                "WEGENT_REQUIRE_KEYRING=1 but no Secret Service is reachable on the session bus"
            );
        }
        eprintln!("SKIPPED: no Secret Service on the session bus (set WEGENT_REQUIRE_KEYRING=1 to fail instead)");
        return;
    }
    if stored_token().is_some() {
        eprintln!("SKIPPED: a device token is already stored in this keychain; not touching it");
        return;
    }
    let (url, _backend) = start_backend().await;
    let home = tempfile::tempdir().unwrap();

    let refused = cli(
        home.path(),
        &url,
        &["login", "--user", "admin"],
        Some("wrong"),
    )
    .await;
    assert_eq!(refused.status.code(), Some(3), "{}", out(&refused));
    assert!(out(&refused).contains("sign-in refused by the server: Invalid username or password"));
    assert_eq!(stored_token(), None);

    let login = cli(
        home.path(),
        &url,
        &["login", "--user", "admin"],
        Some(PASSWORD),
    )
    .await;
    assert!(login.status.success(), "{}", out(&login));
    assert!(out(&login).contains("Signed in as admin; token stored in the OS keychain"));
    let expected = jwt("admin");
    assert_eq!(
        stored_token().as_deref(),
        Some(expected.as_str()),
        "the keychain holds the JWT"
    );
    assert!(
        !out(&login).contains(&expected),
        "the token is never printed"
    );

    let status = cli(home.path(), &url, &["status"], None).await;
    let text = out(&status);
    assert!(
        text.contains("login token for admin") && text.contains("(from OS keychain)"),
        "{text}"
    );
    assert!(!text.contains(&expected));

    let devices = cli(home.path(), &url, &["devices"], None).await;
    assert!(devices.status.success(), "{}", out(&devices));
    assert!(out(&devices).contains("⭐ 🟢 online") && out(&devices).contains("(device-a)"));

    let logout = cli(home.path(), &url, &["logout"], None).await;
    assert!(logout.status.success(), "{}", out(&logout));
    assert_eq!(stored_token(), None);
    let after = cli(home.path(), &url, &["devices"], None).await;
    assert_eq!(after.status.code(), Some(3), "{}", out(&after));

    // Nothing under the executor home holds the token.
    for entry in walk(home.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&expected),
            "token found in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
