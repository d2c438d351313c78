//! Settings for the CLI and the tray: command-line flag > environment > `config.toml` in the
//! executor home > default. Resolution is a pure function of those inputs ([`resolve`]) so every
//! precedence rule is unit-tested; [`load`] adds the file system and the process environment.
//!
//! `config.toml` keys (all optional):
//!
//! ```toml
//! backend_url = "https://wegent.example.com"   # REST under /api, Socket.IO at /socket.io/
//! socket_url = "wss://wegent.example.com"      # only if Socket.IO lives elsewhere
//! web_url = "https://wegent.example.com"       # the web app, if not at backend_url (task links)
//! device_name = "My laptop"                    # 1..100 characters
//! max_slots = 5                                # concurrent tasks, 1..20
//! claude_path = "/usr/local/bin/claude"        # default: `claude` on PATH
//! codex_path = "/usr/local/bin/codex"          # default: `codex` on PATH
//! task_timeout_secs = 3600
//! pre_execute_hook = "~/bin/before-task.sh"    # non-zero exit fails the task
//! allow_remote_commands = true                 # may the server run device commands?
//! projects_dir = "~/code/wegent-projects"     # project checkouts and task folders
//! git_clone_timeout_secs = 600                 # limit of a task's `git clone`
//! allow_stdio_mcp = false                      # may tasks start their stdio MCP servers?
//! max_attachment_mb = 100                      # largest attachment a task downloads
//! log_level = "info"                           # or RUST_LOG-style directives
//! max_queued_tasks = 100                       # tasks waiting for a slot; more fail at once
//! task_retention_days = 7                      # a task's private state is removed after this
//! drain_grace_secs = 60                        # on SIGTERM, running tasks may finish this long
//! ```
//!
//! The token is never read from the config file: flag, environment, or the OS keychain only
//! ([`resolve_token`]).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{Config, SessionConfig, TaskConfig, MAX_SLOTS, MIN_SLOTS};
use crate::keychain::{KeychainError, SecretStore};
use crate::token::Token;

pub const CONFIG_FILE: &str = "config.toml";
/// Default executor home under the user's home directory.
pub const HOME_DIR_NAME: &str = ".wegent-executor";

/// Environment variables read by [`resolve`] and [`resolve_token`].
pub mod vars {
    pub const TOKEN: &str = "WEGENT_TOKEN";
    /// The name the Wegent executor uses; accepted too.
    pub const AUTH_TOKEN: &str = "WEGENT_AUTH_TOKEN";
    pub const BACKEND_URL: &str = "WEGENT_BACKEND_URL";
    pub const SOCKET_URL: &str = "WEGENT_SOCKET_URL";
    /// Where Wegent's web app is, when not at the backend URL (links to a task's page).
    pub const WEB_URL: &str = "WEGENT_WEB_URL";
    pub const HOME: &str = "WEGENT_EXECUTOR_HOME";
    pub const DEVICE_ID: &str = "DEVICE_ID";
    pub const DEVICE_NAME: &str = "DEVICE_NAME";
    /// `1`: never touch the OS keychain (servers without a desktop session).
    pub const NO_KEYCHAIN: &str = "WEGENT_NO_KEYCHAIN";
    /// The projects dir, under the name the backend's `project_workspace_root` command reads.
    pub const PROJECTS_DIR: &str = "WEGENT_EXECUTOR_PROJECTS_DIR";
    /// The Wecode home the backend's default projects dir lives in (default `~/.wecode`).
    pub const WECODE_HOME: &str = "WECODE_HOME";
    /// `1`: tasks may start the stdio MCP servers their bots name.
    pub const ALLOW_STDIO_MCP: &str = "WEGENT_ALLOW_STDIO_MCP";
    pub const RUST_LOG: &str = "RUST_LOG";
}

/// Read access to environment variables; empty values count as unset.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.to_string())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Where a setting's value came from (shown by `wegent-executor status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File => f.write_str(CONFIG_FILE),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// `config.toml`. Unknown keys are an error, so a typo does not go unnoticed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub backend_url: Option<String>,
    pub socket_url: Option<String>,
    pub web_url: Option<String>,
    pub device_name: Option<String>,
    pub max_slots: Option<i64>,
    pub claude_path: Option<PathBuf>,
    pub codex_path: Option<PathBuf>,
    pub task_timeout_secs: Option<u64>,
    pub pre_execute_hook: Option<PathBuf>,
    pub allow_remote_commands: Option<bool>,
    pub projects_dir: Option<PathBuf>,
    pub git_clone_timeout_secs: Option<u64>,
    pub allow_stdio_mcp: Option<bool>,
    pub max_attachment_mb: Option<u64>,
    pub log_level: Option<String>,
    pub max_queued_tasks: Option<usize>,
    pub task_retention_days: Option<u64>,
    pub drain_grace_secs: Option<u64>,
}

/// Values given as command-line flags.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub home: Option<PathBuf>,
    pub backend_url: Option<String>,
    pub socket_url: Option<String>,
    pub device_name: Option<String>,
    pub max_slots: Option<i64>,
    pub claude_path: Option<PathBuf>,
    pub codex_path: Option<PathBuf>,
    pub task_timeout_secs: Option<u64>,
    pub pre_execute_hook: Option<PathBuf>,
    pub no_remote_commands: bool,
    pub projects_dir: Option<PathBuf>,
    pub allow_stdio_mcp: bool,
    pub log_level: Option<String>,
    pub drain_grace_secs: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "cannot find your home directory: set {} to the folder the executor should use",
        vars::HOME
    )]
    NoHome,
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{key} = {value} ({origin}) is not valid: {reason}")]
    BadValue {
        key: &'static str,
        value: String,
        origin: Source,
        reason: String,
    },
    #[error("no Wegent server configured: pass --backend-url URL, set {} or add backend_url to {file}. To try it locally, start `wegent-devserver` and use the URL and token it prints.", vars::BACKEND_URL)]
    NoBackend { file: PathBuf },
}

/// Everything the executor reads at start, resolved, with sources.
#[derive(Debug, Clone)]
pub struct Settings {
    pub home: Sourced<PathBuf>,
    pub config_file: PathBuf,
    pub config_file_found: bool,
    pub backend_url: Option<Sourced<String>>,
    pub socket_url: Option<Sourced<String>>,
    /// Wegent's web app (task links), when not at the backend URL.
    pub web_url: Option<Sourced<String>>,
    /// The configured name; [`crate::identity::device_name`] fills in the default.
    pub device_name: Option<Sourced<String>>,
    pub device_id_override: Option<String>,
    pub max_slots: Sourced<u8>,
    pub claude_path: Option<Sourced<PathBuf>>,
    pub codex_path: Option<Sourced<PathBuf>>,
    pub task_timeout: Sourced<Duration>,
    pub pre_execute_hook: Option<Sourced<PathBuf>>,
    pub allow_remote_commands: Sourced<bool>,
    /// `P` of protocol.md §16.2; tasks run under `W` derived from it.
    pub projects_dir: Sourced<PathBuf>,
    /// Limit of a task's `git clone` (`config.toml` only).
    pub git_clone_timeout: Sourced<Duration>,
    pub allow_stdio_mcp: Sourced<bool>,
    pub max_attachment_bytes: Sourced<u64>,
    pub log_level: Option<Sourced<String>>,
    pub max_queued: Sourced<usize>,
    pub task_retention: Sourced<Duration>,
    /// On a stop signal, how long running tasks may finish before they are cancelled.
    pub drain_grace: Sourced<Duration>,
    pub keychain_enabled: bool,
}

/// Read the process environment and `config.toml`, then [`resolve`].
pub fn load(flags: &Overrides) -> Result<Settings, SettingsError> {
    let env = ProcessEnv;
    let home = resolve_home(flags.home.as_deref(), &env, std::env::home_dir())?;
    let config_file = home.value.join(CONFIG_FILE);
    let file = load_file(&config_file)?;
    resolve(flags, &env, file.as_ref(), home, config_file)
}

/// `--home` > `WEGENT_EXECUTOR_HOME` > `~/.wegent-executor`.
pub fn resolve_home(
    flag: Option<&Path>,
    env: &dyn Env,
    user_home: Option<PathBuf>,
) -> Result<Sourced<PathBuf>, SettingsError> {
    if let Some(path) = flag {
        return Ok(sourced(
            expand_tilde(path, user_home.as_deref()),
            Source::Flag,
        ));
    }
    if let Some(path) = env.var(vars::HOME) {
        let path = expand_tilde(Path::new(path.trim()), user_home.as_deref());
        return Ok(sourced(path, Source::Env(vars::HOME)));
    }
    let home = user_home.ok_or(SettingsError::NoHome)?;
    Ok(sourced(home.join(HOME_DIR_NAME), Source::Default))
}

/// Parse `config.toml`; a missing file is not an error.
pub fn load_file(path: &Path) -> Result<Option<FileConfig>, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SettingsError::ReadFile {
                path: path.to_owned(),
                source,
            })
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| SettingsError::BadFile {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })
}

/// Apply precedence and check every value.
pub fn resolve(
    flags: &Overrides,
    env: &dyn Env,
    file: Option<&FileConfig>,
    home: Sourced<PathBuf>,
    config_file: PathBuf,
) -> Result<Settings, SettingsError> {
    let empty = FileConfig::default();
    let f = file.unwrap_or(&empty);
    let pick_str = |flag: &Option<String>, var: Option<&'static str>, file: &Option<String>| {
        pick(
            flag.clone(),
            var.and_then(|v| env.var(v).map(|x| (x, v))),
            file.clone(),
        )
        .filter(|s| !s.value.trim().is_empty())
    };

    let backend_url = pick_str(&flags.backend_url, Some(vars::BACKEND_URL), &f.backend_url)
        .map(|s| check_url("backend_url", s, &["http", "https"]))
        .transpose()?;
    let socket_url = pick_str(&flags.socket_url, Some(vars::SOCKET_URL), &f.socket_url)
        .map(|s| check_url("socket_url", s, &["http", "https", "ws", "wss"]))
        .transpose()?;
    let web_url = pick_str(&None, Some(vars::WEB_URL), &f.web_url)
        .map(|s| check_url("web_url", s, &["http", "https"]))
        .transpose()?;
    let device_name = pick_str(&flags.device_name, Some(vars::DEVICE_NAME), &f.device_name);
    let max_slots = match pick(flags.max_slots, None, f.max_slots) {
        Some(s) => check_slots(s)?,
        None => sourced(crate::config::DEFAULT_SLOTS, Source::Default),
    };
    let task_timeout = seconds(
        "task_timeout_secs",
        pick(flags.task_timeout_secs, None, f.task_timeout_secs),
        TaskConfig::default().task_timeout,
    )?;
    let drain_grace = seconds(
        "drain_grace_secs",
        pick(flags.drain_grace_secs, None, f.drain_grace_secs),
        crate::config::DEFAULT_DRAIN_GRACE,
    )?;
    let git_clone_timeout = seconds(
        "git_clone_timeout_secs",
        pick(None, None, f.git_clone_timeout_secs),
        TaskConfig::default().git_clone_timeout,
    )?;
    let user_home = std::env::home_dir();
    let path = |flag: &Option<PathBuf>, file: &Option<PathBuf>| {
        pick(flag.clone(), None, file.clone()).map(|s| Sourced {
            value: expand_tilde(&s.value, user_home.as_deref()),
            source: s.source,
        })
    };
    let allow_remote_commands = if flags.no_remote_commands {
        sourced(false, Source::Flag)
    } else {
        match f.allow_remote_commands {
            Some(v) => sourced(v, Source::File),
            None => sourced(TaskConfig::default().allow_remote_commands, Source::Default),
        }
    };
    let projects_dir = match pick(
        flags.projects_dir.clone(),
        env.var(vars::PROJECTS_DIR)
            .map(|v| (PathBuf::from(v.trim()), vars::PROJECTS_DIR)),
        f.projects_dir.clone(),
    ) {
        Some(s) => Sourced {
            value: expand_tilde(&s.value, user_home.as_deref()),
            source: s.source,
        },
        None => sourced(
            default_projects_dir(env, user_home.as_deref(), &home.value),
            Source::Default,
        ),
    };
    let keychain_enabled = !env.var(vars::NO_KEYCHAIN).is_some_and(|v| is_yes(&v));
    let allow_stdio_mcp = pick(
        flags.allow_stdio_mcp.then_some(true),
        env.var(vars::ALLOW_STDIO_MCP)
            .map(|v| (is_yes(&v), vars::ALLOW_STDIO_MCP)),
        f.allow_stdio_mcp,
    )
    .unwrap_or(sourced(
        TaskConfig::default().allow_stdio_mcp,
        Source::Default,
    ));
    let max_attachment_bytes = match f.max_attachment_mb {
        Some(0) => {
            return Err(bad(
                "max_attachment_mb",
                "0",
                Source::File,
                "must be at least 1",
            ))
        }
        Some(mb) => sourced(mb.saturating_mul(1_000_000), Source::File),
        None => sourced(TaskConfig::default().max_attachment_bytes, Source::Default),
    };
    let max_queued = match f.max_queued_tasks {
        Some(n) => sourced(n, Source::File),
        None => sourced(TaskConfig::default().max_queued, Source::Default),
    };
    let task_retention = match f.task_retention_days {
        Some(0) => {
            return Err(bad(
                "task_retention_days",
                "0",
                Source::File,
                "must be at least 1 day",
            ))
        }
        Some(days) => sourced(Duration::from_secs(days * 86_400), Source::File),
        None => sourced(TaskConfig::default().task_retention, Source::Default),
    };

    Ok(Settings {
        config_file_found: file.is_some(),
        config_file,
        home,
        backend_url,
        socket_url,
        web_url,
        device_name,
        device_id_override: env.var(vars::DEVICE_ID),
        max_slots,
        claude_path: path(&flags.claude_path, &f.claude_path),
        codex_path: path(&flags.codex_path, &f.codex_path),
        task_timeout,
        pre_execute_hook: path(&flags.pre_execute_hook, &f.pre_execute_hook),
        allow_remote_commands,
        projects_dir,
        git_clone_timeout,
        allow_stdio_mcp,
        max_attachment_bytes,
        log_level: pick_str(&flags.log_level, None, &f.log_level),
        max_queued,
        task_retention,
        drain_grace,
        keychain_enabled,
    })
}

impl Settings {
    /// The backend URL, or an error that says how to get one.
    pub fn require_backend(&self) -> Result<&str, SettingsError> {
        self.backend_url
            .as_ref()
            .map(|s| s.value.as_str())
            .ok_or_else(|| SettingsError::NoBackend {
                file: self.config_file.clone(),
            })
    }

    /// This device's id (`DEVICE_ID`, else saved, else created and saved) and display name.
    pub fn device_identity(
        &self,
    ) -> Result<(crate::identity::DeviceId, String), crate::identity::IdentityError> {
        let id = crate::identity::device_id(&self.home.value, self.device_id_override.as_deref())?;
        let configured = self.device_name.as_ref().map(|s| s.value.as_str());
        Ok((id, crate::identity::device_name(configured)))
    }

    /// The core's [`Config`] for this device.
    pub fn to_config(
        &self,
        device_id: String,
        device_name: String,
    ) -> Result<Config, SettingsError> {
        let backend_url = self.require_backend()?.to_owned();
        Ok(Config {
            backend_url,
            socket_url: self.socket_url.as_ref().map(|s| s.value.clone()),
            web_url: self.web_url.as_ref().map(|s| s.value.clone()),
            home: self.home.value.clone(),
            device_id,
            device_name,
            session: SessionConfig::default(),
            tasks: TaskConfig {
                max_slots: self.max_slots.value,
                claude_path: self.claude_path.as_ref().map(|s| s.value.clone()),
                codex_path: self.codex_path.as_ref().map(|s| s.value.clone()),
                task_timeout: self.task_timeout.value,
                pre_execute_hook: self.pre_execute_hook.as_ref().map(|s| s.value.clone()),
                allow_remote_commands: self.allow_remote_commands.value,
                projects_dir: Some(self.projects_dir.value.clone()),
                git_clone_timeout: self.git_clone_timeout.value,
                allow_stdio_mcp: self.allow_stdio_mcp.value,
                max_attachment_bytes: self.max_attachment_bytes.value,
                max_queued: self.max_queued.value,
                task_retention: self.task_retention.value,
                ..TaskConfig::default()
            },
        })
    }
}

/// Where the token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Flag,
    Env(&'static str),
    Keychain,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Flag => f.write_str("--token"),
            TokenSource::Env(name) => f.write_str(name),
            TokenSource::Keychain => f.write_str("OS keychain"),
        }
    }
}

/// `--token` > `WEGENT_TOKEN` > `WEGENT_AUTH_TOKEN` > the keychain (`store`, skipped when
/// `None`). The keychain is asked only when nothing else gave a token; its failure is returned
/// so the caller can explain it.
pub fn resolve_token(
    flag: Option<&str>,
    env: &dyn Env,
    store: Option<&dyn SecretStore>,
) -> Result<Option<(Token, TokenSource)>, KeychainError> {
    if let Some(raw) = flag.filter(|t| !t.trim().is_empty()) {
        return Ok(Some((Token::new(raw), TokenSource::Flag)));
    }
    for name in [vars::TOKEN, vars::AUTH_TOKEN] {
        if let Some(raw) = env.var(name) {
            return Ok(Some((Token::new(&raw), TokenSource::Env(name))));
        }
    }
    match store {
        Some(store) => Ok(store.get()?.map(|t| (t, TokenSource::Keychain))),
        None => Ok(None),
    }
}

/// The warning printed when the token was given with `--token`.
pub const TOKEN_FLAG_WARNING: &str = "warning: --token puts the token on the command line, where other local users can read it (e.g. with `ps`). Prefer the WEGENT_TOKEN environment variable, or store it in the OS keychain with `wegent-executor login` (or the tray app).";

fn sourced<T>(value: T, source: Source) -> Sourced<T> {
    Sourced { value, source }
}

/// First of flag, env (value, variable name), file.
fn pick<T>(flag: Option<T>, env: Option<(T, &'static str)>, file: Option<T>) -> Option<Sourced<T>> {
    flag.map(|v| sourced(v, Source::Flag))
        .or_else(|| env.map(|(v, name)| sourced(v, Source::Env(name))))
        .or_else(|| file.map(|v| sourced(v, Source::File)))
}

/// A duration setting in whole seconds, at least 1.
fn seconds(
    key: &'static str,
    value: Option<Sourced<u64>>,
    default: Duration,
) -> Result<Sourced<Duration>, SettingsError> {
    match value {
        Some(s) if s.value == 0 => Err(bad(key, "0", s.source, "must be at least 1 second")),
        Some(s) => Ok(sourced(Duration::from_secs(s.value), s.source)),
        None => Ok(sourced(default, Source::Default)),
    }
}

fn is_yes(v: &str) -> bool {
    matches!(v.trim(), "1" | "true" | "yes")
}

fn bad(key: &'static str, value: &str, origin: Source, reason: &str) -> SettingsError {
    SettingsError::BadValue {
        key,
        value: value.to_owned(),
        origin,
        reason: reason.to_owned(),
    }
}

fn check_slots(s: Sourced<i64>) -> Result<Sourced<u8>, SettingsError> {
    let range = i64::from(MIN_SLOTS)..=i64::from(MAX_SLOTS);
    if range.contains(&s.value) {
        Ok(sourced(s.value as u8, s.source))
    } else {
        let reason = format!("must be between {MIN_SLOTS} and {MAX_SLOTS}");
        Err(bad("max_slots", &s.value.to_string(), s.source, &reason))
    }
}

/// Trim, drop a trailing `/`, and require one of `schemes` and a host.
fn check_url(
    key: &'static str,
    s: Sourced<String>,
    schemes: &[&str],
) -> Result<Sourced<String>, SettingsError> {
    let value = s.value.trim().trim_end_matches('/').to_owned();
    let parsed = url::Url::parse(&value).map_err(|e| bad(key, &value, s.source, &e.to_string()))?;
    if !schemes.contains(&parsed.scheme()) {
        let reason = format!("the URL must start with {}", schemes.join("://, ") + "://");
        return Err(bad(key, &value, s.source, &reason));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(key, &value, s.source, "the URL has no host"));
    }
    Ok(sourced(value, s.source))
}

/// The backend's own default (protocol.md §16.2):
/// `${WECODE_HOME:-$HOME/.wecode}/wegent-executor/workspace/projects`. Without a user home, the
/// executor home stands in for it.
fn default_projects_dir(env: &dyn Env, user_home: Option<&Path>, executor_home: &Path) -> PathBuf {
    let wecode_home = env
        .var(vars::WECODE_HOME)
        .map(|v| expand_tilde(Path::new(v.trim()), user_home))
        .or_else(|| user_home.map(|h| h.join(".wecode")))
        .unwrap_or_else(|| executor_home.to_owned());
    wecode_home
        .join("wegent-executor")
        .join("workspace")
        .join(crate::config::PROJECTS)
}

/// `~/x` → `<user home>/x`; other paths unchanged.
fn expand_tilde(path: &Path, user_home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), user_home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests;
