//! The `wegent-executor` command line: clap definitions ([`Cli`]), status text ([`render`]) and
//! the subcommands ([`commands`], `run`). `src/main.rs` only parses and hands over.

pub mod argv_token;
pub mod commands;
mod demo;
pub mod render;
mod run;
mod service;
pub mod service_units;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::Overrides;

const AFTER_HELP: &str = "\
Settings precedence (first wins):
  command-line flag > environment variable > config.toml > default

Environment:
  WEGENT_TOKEN (or WEGENT_AUTH_TOKEN)  login JWT or API key (wg-…)
  WEGENT_BACKEND_URL                   e.g. https://wegent.example.com
  WEGENT_SOCKET_URL                    Socket.IO URL, if not the backend URL
  WEGENT_WEB_URL                       the web app, if not at the backend URL
  WEGENT_EXECUTOR_HOME                 executor home (~/.wegent-executor)
  WEGENT_EXECUTOR_PROJECTS_DIR         projects dir (default
                                       ${WECODE_HOME:-~/.wecode}/wegent-executor/workspace/projects)
  DEVICE_ID, DEVICE_NAME               override the device id / name
  WEGENT_PASSWORD                      password for `login` (else prompted)
  WEGENT_NO_KEYCHAIN=1                 never use the OS keychain
  RUST_LOG                             log filter (overrides log_level)

Token (first wins):
  --token > WEGENT_TOKEN > WEGENT_AUTH_TOKEN > OS keychain
  The keychain holds what `login` or the tray app stored. --token is
  visible to other local users (ps): prefer the environment or keychain.

config.toml in the executor home; keys, all optional:
  backend_url, socket_url, device_name
  web_url (the web app, when not at backend_url: task links in the tray)
  max_slots (1..20, default 5)
  claude_path (default: `claude` on PATH)
  codex_path (default: `codex` on PATH)
  task_timeout_secs (default 3600)
  pre_execute_hook (script run before each task)
  allow_remote_commands (default true)
  projects_dir (project folders; tasks run in its parent when it ends in `projects`)
  git_clone_timeout_secs (default 600)
  log_level (default info)
  drain_grace_secs (default 60)
The token is never read from the config file.

Stopping `run` (SIGTERM or Ctrl-C):
  1st signal  drain: no new tasks (they fail saying the device is shutting
              down), queued ones end, running ones may finish for the drain
              grace, then are cancelled and reported
  2nd signal  cancel the running tasks now (reported as cancelled), exit
  3rd signal  kill the tasks' processes and exit at once (code 130)

Exit codes:
  0    done; `run` stopped cleanly (tasks finished, or cancelled and reported)
  1    failed (server or keychain error, …)
  2    usage or settings error (bad flag, config.toml, no server URL)
  3    no usable token, or the server refused it
  130  `run` stopped by a third signal without the clean shutdown

No server yet? Start `wegent-devserver` and use the URL and token it prints.";

/// Wegent Device: run AI coding tasks from a Wegent server on this machine.
#[derive(Debug, Parser)]
#[command(name = "wegent-executor", version, after_long_help = AFTER_HELP)]
#[command(after_help = "See --help for environment variables, config.toml keys and precedence.")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// `run`'s flags, also without the word `run` (`wegent-executor --demo`).
    #[command(flatten)]
    pub run: RunArgs,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Run as a local device connected to a Wegent server.
    Local,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Executor mode (only `local`; accepted for compatibility with the Wegent executor).
    #[arg(long, value_enum, default_value_t = Mode::Local, global = true)]
    pub mode: Mode,
    /// Device token (login JWT or wg- API key). Taken off the command line at start (Unix); prefer WEGENT_TOKEN.
    #[arg(long, value_name = "TOKEN", global = true)]
    pub token: Option<String>,
    /// Wegent server URL [env: WEGENT_BACKEND_URL].
    #[arg(long, value_name = "URL", global = true)]
    pub backend_url: Option<String>,
    /// Socket.IO URL when it differs from the backend URL [env: WEGENT_SOCKET_URL].
    #[arg(long, value_name = "URL", global = true)]
    pub socket_url: Option<String>,
    /// Executor home: device id, config.toml, logs [env: WEGENT_EXECUTOR_HOME].
    #[arg(long, value_name = "DIR", global = true)]
    pub home: Option<PathBuf>,
    /// Display name of this device (1..100 characters) [env: DEVICE_NAME].
    #[arg(long, value_name = "NAME", global = true)]
    pub device_name: Option<String>,
    /// Concurrent tasks, 1..20 (default 5).
    #[arg(long, value_name = "N", global = true)]
    pub max_slots: Option<i64>,
    /// The `claude` executable (default: found on PATH).
    #[arg(long, value_name = "PATH", global = true)]
    pub claude_path: Option<PathBuf>,
    /// The `codex` executable for Codex bots (default: found on PATH).
    #[arg(long, value_name = "PATH", global = true)]
    pub codex_path: Option<PathBuf>,
    /// Wall-clock limit of one task, in seconds (default 3600).
    #[arg(long, value_name = "SECS", global = true)]
    pub task_timeout_secs: Option<u64>,
    /// Script run before each task; a non-zero exit fails the task.
    #[arg(long, value_name = "PATH", global = true)]
    pub pre_execute_hook: Option<PathBuf>,
    /// Projects dir: project checkouts; tasks without a project folder run next to it
    /// [env: WEGENT_EXECUTOR_PROJECTS_DIR].
    #[arg(long, value_name = "DIR", global = true)]
    pub projects_dir: Option<PathBuf>,
    /// Refuse commands sent by the server (device:execute_command).
    #[arg(long, global = true)]
    pub no_remote_commands: bool,
    /// Let tasks start the stdio MCP servers their bots name (commands chosen by the server).
    #[arg(long, global = true)]
    pub allow_stdio_mcp: bool,
    /// Log filter: error, warn, info, debug, trace or RUST_LOG-style directives.
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<String>,
    /// More detail on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Try it without a Wegent server: start the demo server in this process, sign in to it and
    /// connect; its web console's URL and password are printed (nothing is saved).
    #[arg(long)]
    pub demo: bool,
    /// Pause new tasks before connecting (saved: the device stays paused until
    /// `wegent-executor resume`).
    #[arg(long)]
    pub paused: bool,
    /// On SIGTERM or Ctrl-C, how long running tasks may finish before they are cancelled
    /// (default 60).
    #[arg(long, value_name = "SECS")]
    pub drain_grace_secs: Option<u64>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Commands {
    /// Connect to the server and run tasks until stopped (the default).
    Run(RunArgs),
    /// Print the resolved settings, device id and name, and the token's kind and expiry.
    Status,
    /// Sign in with a user name and password and store the login token in the OS keychain.
    Login {
        /// Wegent user name.
        #[arg(long, short)]
        user: String,
    },
    /// Remove the stored token from the OS keychain.
    Logout,
    /// List your devices on the server (needs a login token).
    Devices,
    /// Make a device your default on the server (default: this device).
    SetDefault {
        /// Device id (default: this device).
        device_id: Option<String>,
    },
    /// Remove a device from your list on the server (it returns when it registers again).
    DeleteDevice {
        /// Device id.
        device_id: String,
    },
    /// Give this machine a new random device id (e.g. after cloning a machine or VM image).
    ResetDeviceId,
    /// Pause new tasks: the device stays online and finishes what runs, but refuses new tasks
    /// (saved; a running device follows within a second).
    Pause,
    /// Take new tasks again after `pause`.
    Resume,
    /// Stop one task running or waiting on this machine's device (a service, another terminal,
    /// the tray with the same home), as the tray's Stop does: the server records it cancelled,
    /// "Stopped on this device by its user". Task ids are in `status` and in the `run` output.
    Stop {
        /// The task's id.
        task_id: i64,
    },
    /// Run the device as a service at login: a systemd user unit (Linux) or a launchd agent
    /// (macOS); the token stays in the OS keychain.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum ServiceAction {
    /// Write the service file with the settings given now (flags, environment; never the token),
    /// enable and start it.
    Install,
    /// Stop and disable the service and remove its file.
    Uninstall,
    /// Whether it is installed, enabled and running.
    Status,
}

impl Cli {
    /// The subcommand, `run` when none is given.
    pub fn selected(&self) -> Commands {
        self.command
            .clone()
            .unwrap_or_else(|| Commands::Run(self.run.clone()))
    }

    /// The settings given as flags.
    pub fn overrides(&self) -> Overrides {
        let g = &self.global;
        Overrides {
            home: g.home.clone(),
            backend_url: g.backend_url.clone(),
            socket_url: g.socket_url.clone(),
            device_name: g.device_name.clone(),
            max_slots: g.max_slots,
            claude_path: g.claude_path.clone(),
            codex_path: g.codex_path.clone(),
            task_timeout_secs: g.task_timeout_secs,
            pre_execute_hook: g.pre_execute_hook.clone(),
            no_remote_commands: g.no_remote_commands,
            projects_dir: g.projects_dir.clone(),
            allow_stdio_mcp: g.allow_stdio_mcp,
            log_level: g.log_level.clone(),
            drain_grace_secs: match self.selected() {
                Commands::Run(run) => run.drain_grace_secs,
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_the_default_and_globals_work_after_subcommands() {
        let cli = Cli::parse_from([
            "wegent-executor",
            "--mode",
            "local",
            "--backend-url",
            "http://x",
        ]);
        assert!(matches!(
            cli.selected(),
            Commands::Run(RunArgs { paused: false, .. })
        ));
        assert_eq!(cli.overrides().backend_url.as_deref(), Some("http://x"));
        let cli = Cli::parse_from([
            "wegent-executor",
            "run",
            "--paused",
            "--drain-grace-secs",
            "5",
        ]);
        assert!(matches!(
            cli.selected(),
            Commands::Run(RunArgs { paused: true, .. })
        ));
        assert_eq!(cli.overrides().drain_grace_secs, Some(5));
        let cli = Cli::parse_from(["wegent-executor", "--demo", "--max-slots", "2"]);
        assert!(matches!(
            cli.selected(),
            Commands::Run(RunArgs { demo: true, .. })
        ));
        assert!(Cli::try_parse_from(["wegent-executor", "--demo", "status"]).is_err());
        let cli = Cli::parse_from(["wegent-executor", "status", "--home", "/tmp/h", "-vv"]);
        assert!(matches!(cli.selected(), Commands::Status));
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.overrides().home, Some(PathBuf::from("/tmp/h")));
        let cli = Cli::parse_from(["wegent-executor", "login", "--user", "admin"]);
        assert!(matches!(cli.selected(), Commands::Login { user } if user == "admin"));
        assert!(Cli::try_parse_from(["wegent-executor", "--mode", "cloud"]).is_err());
    }

    #[test]
    fn long_help_documents_precedence_and_sources() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("command-line flag > environment variable > config.toml > default"));
        assert!(help.contains("WEGENT_TOKEN") && help.contains("keychain"));
        assert!(help.contains("max_slots (1..20, default 5)"));
        assert!(help.contains("wegent-devserver"));
    }
}
