//! The real `wegent-executor run` binary as a child process logging at `RUST_LOG=trace`, for the
//! tests that check a secret reaches none of what the device writes (stderr, logs, its home).

#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;
use wegent_devserver::RunningDevServer;

/// Upper bound for coming online and for shutting down.
const WAIT: Duration = Duration::from_secs(60);

/// A running device binary, online at the server it was started against.
pub struct TracedDevice {
    child: Child,
    stderr: JoinHandle<String>,
    /// Kept open while the device runs: it prints its state changes, and a closed stdout would
    /// end it.
    _stdout: Lines<BufReader<ChildStdout>>,
    /// The id the device saved in its home (the server knows it by this id).
    pub device_id: String,
}

impl TracedDevice {
    /// Starts the binary in local mode with `home` as its executor home, signed in to `server` as
    /// its demo user, with its agent CLI given by `cli_flag` (`--claude-path`, `--codex-path`)
    /// = `cli`; returns once it prints that it is online.
    pub async fn start(
        server: &RunningDevServer,
        home: &Path,
        name: &str,
        cli_flag: &str,
        cli: &Path,
    ) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wegent-executor"));
        for var in ["WEGENT_AUTH_TOKEN", "WEGENT_SOCKET_URL", "DEVICE_ID"] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .env("RUST_LOG", "trace")
            .env("WEGENT_EXECUTOR_HOME", home)
            .env("WEGENT_NO_KEYCHAIN", "1")
            .env("WEGENT_BACKEND_URL", server.url())
            .env("WEGENT_TOKEN", server.demo_token().unwrap())
            .env("DEVICE_NAME", name)
            .args(["--mode", "local", cli_flag])
            .arg(cli)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Drain stderr all along: at trace it outgrows a pipe buffer.
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("Online") {
                    return;
                }
            }
            panic!("the device exited before it came online");
        })
        .await
        .expect("the device comes online");
        let device_id = std::fs::read_to_string(home.join("device_id"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            child,
            stderr,
            _stdout: lines,
            device_id,
        }
    }

    /// Stops the device as a service manager does (SIGTERM), waits for it to exit and returns
    /// everything it wrote to stderr.
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        self.stderr.await.unwrap()
    }
}

/// What [`assert_no_file_holds`] read.
pub struct Scanned {
    pub files: usize,
    pub bytes: usize,
}

/// Asserts that no file under `dir` (recursively, symlinks not followed) contains `secret`.
pub fn assert_no_file_holds(dir: &Path, secret: &str) -> Scanned {
    let mut scanned = Scanned { files: 0, bytes: 0 };
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                scanned.files += 1;
                scanned.bytes += bytes.len();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the secret is in {}",
                    path.display()
                );
            }
        }
    }
    scanned
}
