//! The OS keychain against a REAL Secret Service (gnome-keyring) on the session bus.
//!
//! Runs when `DBUS_SESSION_BUS_ADDRESS` is set and `org.freedesktop.secrets` is owned on that bus
//! (CI: inside `/work/shared/ci/headless-session.sh`). Without one it is skipped with a message,
//! unless `WEGENT_REQUIRE_KEYRING=1`: then it fails, so CI cannot pass without really testing.
//! It uses its own account name under the real service, so it never touches a user's token.

use std::process::Command;
use std::time::Duration;

use wegent_executor::keychain::{OsKeychain, SecretStore, ACCOUNT, SERVICE};
use wegent_executor::token::Token;

fn secret_service_running() -> Result<(), String> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Err("DBUS_SESSION_BUS_ADDRESS is not set".into());
    }
    let out = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ])
        .output()
        .map_err(|e| format!("cannot run dbus-send: {e}"))?;
    if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
        Ok(())
    } else {
        Err("no Secret Service (org.freedesktop.secrets) owns a name on the session bus".into())
    }
}

/// `secret-tool lookup service … username …`: what another program sees in the keyring.
fn secret_tool_lookup(account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", SERVICE, "username", account])
        .output()
        .expect("secret-tool (libsecret-tools) is needed to check the keyring from outside");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

fn secret_tool_count(account: &str) -> usize {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", SERVICE, "username", account])
        .output()
        .expect("secret-tool");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().filter(|l| l.starts_with("[/")).count()
}

#[test]
fn token_round_trips_through_the_real_secret_service() {
    if let Err(why) = secret_service_running() {
        if std::env::var("WEGENT_REQUIRE_KEYRING").as_deref() == Ok("1") {
            panic!("WEGENT_REQUIRE_KEYRING=1 but the Secret Service is not reachable: {why}");
        }
        eprintln!("SKIPPED: {why} (set WEGENT_REQUIRE_KEYRING=1 to make this a failure)");
        return;
    }
    assert_eq!((SERVICE, ACCOUNT), ("wegent-device", "device-token"));

    let account = format!("device-token-test-{}", std::process::id());
    let store = OsKeychain::for_account(SERVICE, &account).with_timeout(Duration::from_secs(10));
    store.delete().unwrap();
    assert_eq!(store.get().unwrap(), None);

    let first = Token::new("wg-keychain-test-token-one");
    store.set(&first).unwrap();
    assert_eq!(store.get().unwrap().unwrap().expose(), first.expose());
    assert_eq!(
        secret_tool_lookup(&account).as_deref(),
        Some(first.expose())
    );

    let second = Token::new("wg-keychain-test-token-two");
    store.set(&second).unwrap();
    assert_eq!(store.get().unwrap().unwrap().expose(), second.expose());
    assert_eq!(
        secret_tool_count(&account),
        1,
        "one keychain item, replaced in place"
    );

    // A fresh handle (as after a restart) reads what was stored.
    let again = OsKeychain::for_account(SERVICE, &account);
    assert_eq!(again.get().unwrap().unwrap().expose(), second.expose());

    store.delete().unwrap();
    assert_eq!(store.get().unwrap(), None);
    assert_eq!(secret_tool_lookup(&account), None);
    store.delete().unwrap();
}
