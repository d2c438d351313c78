//! Runtime configuration of the core. Loading it (CLI flags, environment, config file) is the
//! shell's job; see `src/settings.rs` for the CLI's precedence rules.

use std::path::PathBuf;
use std::time::Duration;

/// The package version, sent to the server as `executor_version`.
pub const EXECUTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Slot limits accepted by the server's `runtime_capacity.limit` (1..=20).
pub const MIN_SLOTS: u8 = 1;
pub const MAX_SLOTS: u8 = 20;
pub const DEFAULT_SLOTS: u8 = 5;
pub const DEFAULT_MAX_ATTACHMENT_MB: u64 = 100;
/// Tasks waiting for a slot before new ones are refused.
pub const DEFAULT_MAX_QUEUED: usize = 100;
/// How long running tasks may finish after a stop signal before they are cancelled. Under
/// systemd's default stop timeout (90 s), with room for the cancel and the final events.
pub const DEFAULT_DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the Wegent backend (REST under `/api`), e.g. `https://wegent.example.com`.
    pub backend_url: String,
    /// Socket.IO base URL (`http(s)://` or `ws(s)://`); defaults to `backend_url`.
    pub socket_url: Option<String>,
    /// Wegent's web app (links to a task's page); defaults to `backend_url`. Wegent's own setup
    /// guide gives devices the backend's direct URL (`http://localhost:8000` by default) while
    /// the web app is elsewhere (`:3000`).
    pub web_url: Option<String>,
    /// The executor home: device id, config, logs, task workspaces.
    pub home: PathBuf,
    pub device_id: String,
    pub device_name: String,
    pub session: SessionConfig,
    pub tasks: TaskConfig,
}

impl Config {
    pub fn socket_url(&self) -> &str {
        self.socket_url.as_deref().unwrap_or(&self.backend_url)
    }

    pub fn web_url(&self) -> &str {
        self.web_url.as_deref().unwrap_or(&self.backend_url)
    }

    /// The token and task payloads (API keys) would cross the network unencrypted.
    pub fn insecure_transport(&self) -> bool {
        is_insecure_transport(&self.backend_url) || is_insecure_transport(self.socket_url())
    }
}

/// `http://` or `ws://` to a host other than this machine: anyone on the path reads the token
/// and every task's secrets. Loopback (the devserver, an SSH tunnel) is fine.
pub fn is_insecure_transport(url: &str) -> bool {
    let scheme = url
        .trim()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("http" | "ws")) && !crate::rest::is_loopback(url.trim())
}

/// Timings of the connection. Defaults follow protocol.md §10; tests shorten them.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub heartbeat_interval: Duration,
    pub register_timeout: Duration,
    pub heartbeat_ack_timeout: Duration,
    pub connect_timeout: Duration,
    pub backoff: BackoffConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(30),
            register_timeout: Duration::from_secs(10),
            heartbeat_ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
        }
    }
}

/// Reconnect backoff: exponential with full jitter, capped, reset after a stable period online.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
    /// Online this long without a drop resets the backoff to `initial`.
    pub stable_after: Duration,
    /// Floor after the server said "Too many device connection attempts" (its window is 30 s).
    pub rate_limited_floor: Duration,
    /// While the server is unreachable, its readiness (`GET /health`) is checked about this often
    /// (jittered between half and the whole of it), so the device is back within about a second
    /// of the server, however long the backoff has grown. A check does not count against the
    /// server's connect rate limit; only the full connect it triggers does.
    pub probe_interval: Duration,
    /// After a check found the server ready, the connect waits a uniform random part of this, so
    /// a fleet that lost the same server does not reconnect in the same instant.
    pub connect_spread: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            rate_limited_floor: Duration::from_secs(30),
            probe_interval: Duration::from_secs(1),
            connect_spread: Duration::from_millis(500),
        }
    }
}

/// How tasks run on this machine.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// Concurrent tasks (1..=20); more wait in a FIFO queue.
    pub max_slots: u8,
    /// The `claude` executable; `None` looks it up on `PATH`.
    pub claude_path: Option<PathBuf>,
    /// The `codex` executable (Codex bots); `None` looks it up on `PATH`.
    pub codex_path: Option<PathBuf>,
    /// Wall-clock limit of one task run.
    pub task_timeout: Duration,
    /// Optional script run before each task; non-zero exit fails the task.
    pub pre_execute_hook: Option<PathBuf>,
    /// Whether the server may run commands here (`device:execute_command`).
    pub allow_remote_commands: bool,
    /// Events kept while the connection is down before old text deltas are dropped.
    pub outbox_capacity: usize,
    /// The projects dir `P` (protocol.md §16.2): what this device answers to the backend's
    /// `project_workspace_root` command. `None` (embedders, tests that do not care) means
    /// `<executor home>/workspace/projects`, so nothing lands outside the executor home; the
    /// settings always fill it in.
    pub projects_dir: Option<PathBuf>,
    /// Wall-clock limit of a task's `git clone` (the backend allows its own clone 600 s).
    pub git_clone_timeout: Duration,
    /// Whether a task's stdio MCP servers may run: they start commands the server names on this
    /// machine, so they are off unless the user turns them on (protocol.md §16.6).
    pub allow_stdio_mcp: bool,
    /// Largest attachment a task may download.
    pub max_attachment_bytes: u64,
    /// Tasks that may wait for a slot; more fail at once with a "queue is full" message.
    pub max_queued: usize,
    /// How long a task's secrets stay masked in logs after the task ended (late log lines about
    /// it). The device token's stay for the life of the process.
    pub secret_forget_delay: Duration,
    /// A task's private state (and the scratch folder the device made for it) is removed when
    /// it was last used this long ago.
    pub task_retention: Duration,
}

impl TaskConfig {
    /// `P`, with `None` resolved against the executor home.
    pub fn projects_dir(&self, home: &std::path::Path) -> PathBuf {
        self.projects_dir
            .clone()
            .unwrap_or_else(|| home.join("workspace").join(PROJECTS))
    }
}

/// The last component of the backend's default projects dir (protocol.md §16.2).
pub const PROJECTS: &str = "projects";

/// The workspace root `W` for a projects dir `P`: `dirname(P)` when `P` ends in `projects`,
/// else `P` itself. The backend derives it the same way from the device's answer to
/// `project_workspace_root`, and sends project paths relative to it.
pub fn workspace_root(projects_dir: &std::path::Path) -> PathBuf {
    match (projects_dir.file_name(), projects_dir.parent()) {
        (Some(name), Some(parent)) if name == PROJECTS => parent.to_owned(),
        _ => projects_dir.to_owned(),
    }
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            max_slots: DEFAULT_SLOTS,
            claude_path: None,
            codex_path: None,
            task_timeout: Duration::from_secs(60 * 60),
            pre_execute_hook: None,
            allow_remote_commands: true,
            outbox_capacity: 10_000,
            projects_dir: None,
            git_clone_timeout: Duration::from_secs(600),
            allow_stdio_mcp: false,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_MB * 1_000_000,
            max_queued: DEFAULT_MAX_QUEUED,
            secret_forget_delay: Duration::from_secs(10 * 60),
            task_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_text_to_another_machine_is_insecure() {
        for url in [
            "http://wegent.example.com",
            "ws://10.0.0.5:8000/",
            "HTTP://192.168.1.2",
        ] {
            assert!(is_insecure_transport(url), "{url}");
        }
        for url in [
            "https://wegent.example.com",
            "wss://h",
            "http://127.0.0.1:8000",
            "ws://localhost:9",
            "http://[::1]:8000",
            "not a url",
        ] {
            assert!(!is_insecure_transport(url), "{url}");
        }
    }
}
