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
    /// The API base URL (Anthropic Messages for Claude Code, OpenAI Responses for Codex), or
    /// [`ModelSettings::BUILT_IN`] for the devserver's own demo model (`{server}/demo-model`,
    /// which speaks both, see `model_mock`).
    pub base_url: String,
    pub api_key: String,
    pub model_id: String,
}

impl ModelSettings {
    pub const BUILT_IN: &'static str = "builtin";
    pub const BUILT_IN_PATH: &'static str = "/demo-model";

    /// The model id of Codex bots unless configured: one codex 0.171 knows (an unknown id only
    /// adds a warning item).
    pub const CODEX_MODEL_ID: &'static str = "gpt-5.5";

    /// The devserver's own demo model, served by this server.
    pub fn built_in() -> Self {
        Self {
            base_url: Self::BUILT_IN.into(),
            ..Self::default()
        }
    }

    /// The model of Codex bots: an unreachable placeholder (tests point it at a mock).
    pub fn codex() -> Self {
        Self {
            base_url: "http://127.0.0.1:9/v1".into(),
            model_id: Self::CODEX_MODEL_ID.into(),
            ..Self::default()
        }
    }

    /// The demo model for Codex bots (its Responses API).
    pub fn built_in_codex() -> Self {
        Self {
            base_url: Self::BUILT_IN.into(),
            ..Self::codex()
        }
    }

    /// The `base_url` to send, given the URL the device reaches this server at.
    pub fn base_url_for(&self, server_url: &str) -> String {
        if self.base_url == Self::BUILT_IN {
            // With `/v1`, like the model configs Wegent sends; the device strips it for the CLI.
            format!(
                "{}{}/v1",
                server_url.trim_end_matches('/'),
                Self::BUILT_IN_PATH
            )
        } else {
            self.base_url.clone()
        }
    }
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
    /// The model of Claude Code bots.
    pub model: ModelSettings,
    /// The model of Codex bots (an OpenAI Responses API).
    pub codex_model: ModelSettings,
    /// Command keys accepted by `POST /api/devices/{id}/commands` → shell command line.
    pub commands: BTreeMap<String, String>,
    /// The URL devices reach this server at. Every URL the devserver writes into a payload
    /// (`backend_url`, the demo model's `base_url`) is built from it, never from a request's
    /// `Host` header. `None`: `http://<bound address>` (an unspecified address → 127.0.0.1).
    pub public_url: Option<String>,
    /// `Host` header names accepted besides loopback ones (DNS-rebinding guard, `host_guard`);
    /// `"*"` accepts any. The host of `public_url` is always accepted.
    pub allowed_hosts: Vec<String>,
}

impl DevServerConfig {
    /// A test server: 127.0.0.1 on a free port, in memory, fast timings, user `admin`/`admin-pass`
    /// (a fixed password for tests only; [`DevServerConfig::demo`] picks a random one).
    pub fn for_tests() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage: Storage::Memory,
            timings: Timings::fast(),
            jwt_secret: random_secret(),
            demo_user: Some(("admin".into(), "admin-pass".into())),
            model: ModelSettings::default(),
            codex_model: ModelSettings::codex(),
            commands: default_commands(),
            public_url: None,
            allowed_hosts: Vec::new(),
        }
    }

    /// A demo server with the real Wegent timings, answering the tasks of both bots (Claude Code,
    /// Codex) with its own demo model. The
    /// demo account `admin` gets a random password per run ([`demo_password`]): a fixed one would
    /// let any local process or web page that guesses it drive the user's device.
    pub fn demo(bind: SocketAddr, storage: Storage) -> Self {
        Self {
            bind,
            storage,
            timings: Timings::wegent(),
            model: ModelSettings::built_in(),
            codex_model: ModelSettings::built_in_codex(),
            demo_user: Some(("admin".into(), demo_password())),
            ..Self::for_tests()
        }
    }

    /// The URL for payloads and printing, given the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }
}

/// A fresh random password for the demo account (16 random bytes, URL-safe).
pub fn demo_password() -> String {
    crate::random_token(16)
}

/// A subset of the server's built-in command keys (`command_registry.py`). The project keys are
/// the backend's exact command lines (§16.4, §16.8): "Clone from Git" and "New worktree" run them.
pub fn default_commands() -> BTreeMap<String, String> {
    [
        ("pwd", "pwd"),
        ("home_dir", "printenv HOME"),
        ("ls_a", "ls -a"),
        // `ls -d */` would need a shell to expand `*/`; devices run argv without one. The console
        // keeps the lines ending in `/` (the backend's `directory_list` post-processing).
        ("ls_dirs", "ls -a -p"),
        ("git_status", "git status --short"),
        ("git_branch", "git branch --show-current"),
        (
            "project_workspace_root",
            r#"sh -c 'printf %s "${WEGENT_EXECUTOR_PROJECTS_DIR:-${WECODE_HOME:-$HOME/.wecode}/wegent-executor/workspace/projects}"'"#,
        ),
        ("mkdir_p", "mkdir -p"),
        ("path_exists", "test -e"),
        ("git_clone", "git clone"),
        ("git_config", "git config"),
        (
            "git_is_worktree",
            r#"sh -c 'git -C "$1" rev-parse --is-inside-work-tree' --"#,
        ),
        (
            "git_worktree_add",
            concat!(
                r#"sh -c 'source=$1; target=$2; ref=$3; mkdir -p "$(dirname "$target")"; "#,
                r#"if git -C "$target" rev-parse --is-inside-work-tree >/dev/null 2>&1; then "#,
                r#"if [ -n "$ref" ]; then git -C "$target" checkout --force --detach "$ref"; fi; "#,
                r#"else if [ -e "$target" ]; then echo "target exists and is not a Git worktree" >&2; exit 64; fi; "#,
                r#"if [ -n "$ref" ]; then git -C "$source" worktree add --detach "$target" "$ref"; "#,
                r#"else git -C "$source" worktree add --detach "$target"; fi; fi' --"#,
            ),
        ),
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
