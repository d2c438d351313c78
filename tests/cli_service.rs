//! `wegent-executor service install|status|uninstall` on Linux, run as a user would, under a
//! temporary HOME: the unit it writes passes the real `systemd-analyze --user verify`, holds no
//! secret, and `uninstall` removes it. The launchd agent is checked with a real plist parser.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wegent-executor");
/// Given as the token at install time: it must not reach any file.
const CANARY: &str = "wg-canary-token-5b1f0c9e-never-in-a-unit";

struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Self {
        let rig = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        // A stand-in for `systemctl`: the real one would enable the unit in the user's real
        // session where one runs (a developer's machine), and has no user manager to talk to in
        // CI. It records its arguments and fails as the real one does without a user bus.
        let stub = rig.stub_dir();
        std::fs::create_dir_all(&stub).unwrap();
        let script = stub.join("systemctl");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
                rig.calls_file().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        rig
    }

    fn user_home(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    fn stub_dir(&self) -> PathBuf {
        self.dir.path().join("stub-bin")
    }

    fn calls_file(&self) -> PathBuf {
        self.dir.path().join("systemctl-calls")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.calls_file()).unwrap_or_default()
    }

    fn unit(&self) -> PathBuf {
        self.user_home()
            .join(".config/systemd/user/wegent-executor.service")
    }

    /// The binary with this HOME, the stub first on PATH and the canary as the token.
    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        for var in [
            "WEGENT_BACKEND_URL",
            "WEGENT_SOCKET_URL",
            "DEVICE_ID",
            "DEVICE_NAME",
            "XDG_CONFIG_HOME",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        let path = format!(
            "{}:{}",
            self.stub_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("HOME", self.user_home())
            .env(
                "WEGENT_EXECUTOR_HOME",
                self.dir.path().join("executor-home"),
            )
            .env("WEGENT_NO_KEYCHAIN", "1")
            .env("WEGENT_TOKEN", CANARY)
            .env("PATH", path)
            .args(args)
            .output()
            .unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `systemd-analyze --user verify` on `unit`: it needs a private runtime dir, not a running
/// systemd, so it works as root in CI. Returns (success, everything it printed).
fn verify(unit: &Path, home: &Path) -> (bool, String) {
    let runtime = home.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(unit)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("systemd-analyze is installed (scripts/install-deps.sh installs systemd)");
    (out.status.success(), text(&out))
}

#[test]
fn install_writes_a_valid_unit_without_the_token_and_uninstall_removes_it() {
    let rig = Rig::new();
    let out = rig.cli(&["service", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Not installed"), "{}", text(&out));

    let out = rig.cli(&[
        "service",
        "install",
        "--backend-url",
        "http://127.0.0.1:9",
        "--device-name",
        "Build box 100% \"ready\"",
        "--max-slots",
        "3",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("Wrote {}", rig.unit().display())),
        "{said}"
    );
    // systemctl could not be reached: reported with what to run, not a failure.
    assert!(
        said.contains("Failed to connect to bus")
            && said.contains("run `systemctl --user enable --now wegent-executor.service`"),
        "{said}"
    );
    assert!(!said.contains(CANARY), "{said}");
    let calls = rig.calls();
    assert!(
        calls.contains("--user daemon-reload")
            && calls.contains("--user enable --now wegent-executor.service"),
        "{calls}"
    );

    let unit = std::fs::read_to_string(rig.unit()).unwrap();
    assert!(!unit.contains(CANARY), "the token is never written: {unit}");
    assert!(
        !unit.contains("WEGENT_TOKEN") && !unit.contains("--token"),
        "{unit}"
    );
    let exe = std::fs::canonicalize(BIN).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart=\"{}\" \"run\" \"--home\"",
            exe.display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains("\"--backend-url\" \"http://127.0.0.1:9\"")
            && unit.contains("\"--device-name\" \"Build box 100%% \\\"ready\\\"\"")
            && unit.contains("\"--max-slots\" \"3\""),
        "{unit}"
    );
    let (ok, said) = verify(&rig.unit(), &rig.user_home());
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze: {said}\n{unit}"
    );

    let out = rig.cli(&["service", "status"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("Installed: {}", rig.unit().display()))
            && said.contains("ExecStart=")
            && said.contains("is-active wegent-executor.service: unknown"),
        "{said}"
    );

    let out = rig.cli(&["service", "uninstall"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!rig.unit().exists(), "{said}");
    assert!(
        rig.calls()
            .contains("--user disable --now wegent-executor.service"),
        "{}",
        rig.calls()
    );
    let out = rig.cli(&["service", "status"]);
    assert!(text(&out).contains("Not installed"), "{}", text(&out));
}

#[test]
fn systemd_analyze_catches_a_broken_unit() {
    // The check above is only worth something if the verifier fails on a bad unit.
    let rig = Rig::new();
    let out = rig.cli(&["service", "install", "--backend-url", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let unit = std::fs::read_to_string(rig.unit()).unwrap();
    let exe = std::fs::canonicalize(BIN).unwrap().display().to_string();
    std::fs::write(
        rig.unit(),
        unit.replace(&exe, "/nonexistent/wegent-executor"),
    )
    .unwrap();
    let (ok, said) = verify(&rig.unit(), &rig.user_home());
    assert!(!ok, "{said}");
}

#[test]
fn a_setting_with_a_line_break_is_refused_and_nothing_is_written() {
    let rig = Rig::new();
    let out = rig.cli(&[
        "service",
        "install",
        "--backend-url",
        "http://127.0.0.1:9",
        "--device-name",
        "box\nExecStartPre=/bin/sh -c evil",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("line break"), "{said}");
    assert!(!rig.unit().exists());
}

/// The launchd agent, as `service install` writes it on macOS, read by Python's plistlib (the
/// format launchd reads).
#[test]
fn the_launchd_agent_is_a_valid_plist_without_the_token() {
    use wegent_executor::cli::service_units::{launchd_plist, ServiceSpec};
    let spec = ServiceSpec {
        program: PathBuf::from("/Applications/Wegent/wegent-executor"),
        args: vec![
            "run".into(),
            "--device-name".into(),
            "Mac <mini> & co".into(),
        ],
        env: vec![("PATH".into(), "/opt/homebrew/bin:/usr/bin".into())],
        stop_timeout: std::time::Duration::from_secs(90),
        log_dir: PathBuf::from("/Users/a/.wegent-executor/logs"),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("com.wegent.executor.plist");
    std::fs::write(&file, launchd_plist(&spec)).unwrap();
    let python = std::env::var("WEGENT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["Label"], "com.wegent.executor");
    assert_eq!(
        parsed["ProgramArguments"],
        serde_json::json!([
            "/Applications/Wegent/wegent-executor",
            "run",
            "--device-name",
            "Mac <mini> & co"
        ])
    );
    assert_eq!(
        parsed["EnvironmentVariables"]["PATH"],
        "/opt/homebrew/bin:/usr/bin"
    );
    assert_eq!(parsed["ExitTimeOut"], 90);
    assert_eq!(parsed["KeepAlive"]["SuccessfulExit"], false);
}
