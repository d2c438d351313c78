//! With a session bus on which no Secret Service exists (and none can be activated), the keychain
//! answers at once with advice instead of hanging or silently keeping the token in memory.
//!
//! Starts a private `dbus-daemon` whose config has no service directories (desktop-ci.md §4), and
//! points this test process at it. This file holds one test, so changing the environment of the
//! process is safe. Skipped when `dbus-daemon` is not installed, unless WEGENT_REQUIRE_KEYRING=1.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wegent_executor::keychain::{KeychainError, OsKeychain, SecretStore};
use wegent_executor::token::Token;

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

#[test]
fn no_secret_service_is_reported_plainly_and_fast() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bus.conf");
    std::fs::write(&config, BUS_CONFIG).unwrap();
    let spawned = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .spawn();
    let mut daemon = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var("WEGENT_REQUIRE_KEYRING").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: cannot start dbus-daemon: {e}");
            return;
        }
        Err(e) => panic!("cannot start dbus-daemon: {e}"),
    };
    let mut address = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", address.trim());

    let store = OsKeychain::for_account("wegent-device", "device-token-test-nobus")
        .with_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let get = store.get();
    let set = store.set(&Token::new("wg-never-stored-anywhere"));
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let err = get.unwrap_err();
    assert!(matches!(err, KeychainError::NoService(_)), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("No keychain service is running: install and start gnome-keyring"));
    assert!(
        matches!(set.unwrap_err(), KeychainError::NoService(_)),
        "no silent fallback"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered quickly, not by timeout"
    );
}
