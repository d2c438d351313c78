//! Configuration of a devserver instance: where it listens, what it stores, its timings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every timing the real Wegent backend hard-codes, made configurable so tests can run fast.
/// [`Timings::wegent`] holds the real values (protocol.md §10).
#[derive(Debug, Clone)]
pub struct Timings {
    /// Engine.IO ping interval (real: 25 s).
    pub ping_interval: Duration,
    /// Engine.IO ping timeout (real: 20 s).
    pub ping_timeout: Duration,
    /// Online TTL refreshed by register and heartbeats (real Redis TTL: 90 s).
    pub online_ttl: Duration,
    /// How often the monitor fails RUNNING tasks of devices that are no longer online (real: 60 s).
    pub monitor_interval: Duration,
    /// Wait after a socket disconnect before the device's tasks fail (real: 2 s).
    pub disconnect_grace: Duration,
    /// A re-register of the same (user, device) within this window skips the upsert (real: 10 s).
    pub register_debounce: Duration,
    /// Connect rate-limit window per client address (real: 30 s).
    pub rate_limit_window: Duration,
    /// Connects allowed per window per client address (real: 30).
    pub rate_limit_max: u32,
    /// How long the server waits for the `device:sync_capabilities` ack (real: 120 s).
    pub capability_sync_timeout: Duration,
    /// Added to a command's `timeout_seconds` while waiting for its ack (real: 5 s).
    pub command_ack_grace: Duration,
    /// How long `POST /api/tasks/{id}/cancel` waits for the device's `response.incomplete`.
    pub cancel_wait: Duration,
    /// Lifetime of login JWTs (real: 7 days).
    pub jwt_lifetime: Duration,
}

impl Timings {
    /// The values of the real Wegent backend.
    pub fn wegent() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            online_ttl: Duration::from_secs(90),
            monitor_interval: Duration::from_secs(60),
            disconnect_grace: Duration::from_secs(2),
            register_debounce: Duration::from_secs(10),
            rate_limit_window: Duration::from_secs(30),
            rate_limit_max: 30,
            capability_sync_timeout: Duration::from_secs(120),
            command_ack_grace: Duration::from_secs(5),
            cancel_wait: Duration::from_secs(30),
            jwt_lifetime: Duration::from_secs(7 * 24 * 3600),
        }
    }

    /// Short timings for tests: same ordering of events, a fraction of the waiting.
    pub fn fast() -> Self {
        Self {
            // Pings stay slow enough that a loaded 2-core CI machine does not drop healthy sockets.
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(3),
            online_ttl: Duration::from_millis(1500),
            monitor_interval: Duration::from_millis(250),
            disconnect_grace: Duration::from_millis(200),
            register_debounce: Duration::from_millis(600),
            rate_limit_window: Duration::from_secs(30),
            rate_limit_max: 30,
            capability_sync_timeout: Duration::from_secs(2),
            command_ack_grace: Duration::from_millis(0),
            cancel_wait: Duration::from_secs(3),
            jwt_lifetime: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Where users, API keys, devices and tasks live.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A private in-memory SQLite database (tests).
    Memory,
    /// An SQLite file, created if missing.
    File(PathBuf),
}

/// The model the devserver writes into `task:execute` `model_config` (point it at a mock API).
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub base_url: String,
    pub api_key: String,
    pub model_id: String,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:9".into(),
            api_key: "sk-devserver-fake".into(),
            model_id: "claude-sonnet-4-5".into(),
        }
    }
}

/// Everything needed to start a devserver.
#[derive(Debug, Clone)]
pub struct DevServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    pub storage: Storage,
    pub timings: Timings,
    /// HS256 secret for login and task JWTs.
    pub jwt_secret: String,
    /// The demo account created at start (user name, password).
    pub demo_user: Option<(String, String)>,
    pub model: ModelSettings,
    /// Command keys accepted by `POST /api/devices/{id}/commands` → shell command line.
    pub commands: BTreeMap<String, String>,
}

impl DevServerConfig {
    /// A test server: 127.0.0.1 on a free port, in memory, fast timings, demo user `admin`/`admin-pass`.
    pub fn for_tests() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage: Storage::Memory,
            timings: Timings::fast(),
            jwt_secret: random_secret(),
            demo_user: Some(("admin".into(), "admin-pass".into())),
            model: ModelSettings::default(),
            commands: default_commands(),
        }
    }

    /// A demo server with the real Wegent timings.
    pub fn demo(bind: SocketAddr, storage: Storage) -> Self {
        Self {
            bind,
            storage,
            timings: Timings::wegent(),
            ..Self::for_tests()
        }
    }
}

/// A subset of the server's built-in command keys (`command_registry.py`).
pub fn default_commands() -> BTreeMap<String, String> {
    [
        ("pwd", "pwd"),
        ("home_dir", "sh -c 'echo $HOME'"),
        ("ls_a", "ls -a"),
        ("ls_dirs", "ls -d */"),
        ("git_status", "git status --short"),
        ("git_branch", "git branch --show-current"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
