//! `wegent-executor service install|uninstall|status`: the device as a user service that starts
//! at login — a systemd user unit on Linux, a launchd agent on macOS ([`super::service_units`]
//! writes them). The service manager's own commands (`systemctl --user`, `launchctl`) may be
//! missing or unreachable (a container, no user session): the file is still written or removed,
//! and what could not be done is reported with the command to run by hand.

use std::path::{Path, PathBuf};

use super::commands::{keychain_has_token, CliError};
use super::service_units::{self, ServiceSpec};
use super::ServiceAction;
use crate::settings::Settings;

/// What to use on Windows, where there is no user-service manager this command drives.
pub const WINDOWS_HINT: &str = "`wegent-executor service` manages a systemd user unit (Linux) or a launchd agent (macOS). On Windows, start `wegent-executor run` at logon with Task Scheduler (trigger \"At log on\", \"Run only when user is logged on\", so the token can be read from Credential Manager); a Windows service running as another account cannot read your token.";

pub(super) async fn execute(settings: &Settings, action: ServiceAction) -> Result<(), CliError> {
    let platform = Platform::current()?;
    match action {
        ServiceAction::Install => install(settings, &platform).await,
        ServiceAction::Uninstall => uninstall(&platform).await,
        ServiceAction::Status => status(&platform).await,
    }
}

/// The service manager of this system and where its file lives.
struct Platform {
    kind: Kind,
    file: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Systemd,
    Launchd,
}

impl Platform {
    fn current() -> Result<Self, CliError> {
        let home = std::env::home_dir().ok_or_else(|| {
            CliError::config("cannot find your home directory (HOME), where the service file goes")
        })?;
        if cfg!(target_os = "linux") {
            let xdg = std::env::var("XDG_CONFIG_HOME").ok();
            Ok(Self {
                kind: Kind::Systemd,
                file: service_units::systemd_unit_path(xdg.as_deref(), &home),
            })
        } else if cfg!(target_os = "macos") {
            Ok(Self {
                kind: Kind::Launchd,
                file: service_units::launchd_plist_path(&home),
            })
        } else {
            Err(CliError::config(WINDOWS_HINT))
        }
    }

    fn render(&self, spec: &ServiceSpec) -> Result<String, CliError> {
        match self.kind {
            Kind::Systemd => service_units::systemd_unit(spec).map_err(CliError::config),
            Kind::Launchd => Ok(service_units::launchd_plist(spec)),
        }
    }

    /// The manager's commands that load and start the installed file.
    fn enable(&self) -> Vec<Vec<String>> {
        match self.kind {
            Kind::Systemd => vec![
                systemctl(&["daemon-reload"]),
                systemctl(&["enable", "--now", service_units::SYSTEMD_UNIT]),
            ],
            Kind::Launchd => vec![
                // A previous version may be loaded: unload it first (failing when none is).
                launchctl_bootout(&self.file),
                vec![
                    "launchctl".into(),
                    "bootstrap".into(),
                    gui_domain(),
                    self.file.display().to_string(),
                ],
            ],
        }
    }

    /// The manager's commands that stop and unload it (before the file goes).
    fn disable(&self) -> Vec<Vec<String>> {
        match self.kind {
            Kind::Systemd => vec![systemctl(&[
                "disable",
                "--now",
                service_units::SYSTEMD_UNIT,
            ])],
            Kind::Launchd => vec![launchctl_bootout(&self.file)],
        }
    }

    /// The manager's commands that tell whether it is enabled and running.
    fn queries(&self) -> Vec<Vec<String>> {
        match self.kind {
            Kind::Systemd => vec![
                systemctl(&["is-enabled", service_units::SYSTEMD_UNIT]),
                systemctl(&["is-active", service_units::SYSTEMD_UNIT]),
            ],
            Kind::Launchd => vec![vec![
                "launchctl".into(),
                "print".into(),
                format!("{}/{}", gui_domain(), service_units::LAUNCHD_LABEL),
            ]],
        }
    }

    fn logs(&self, settings_logs: &Path) -> String {
        match self.kind {
            Kind::Systemd => format!(
                "journalctl --user -u {} (and {})",
                service_units::SYSTEMD_UNIT,
                settings_logs.display()
            ),
            Kind::Launchd => settings_logs.display().to_string(),
        }
    }
}

fn systemctl(args: &[&str]) -> Vec<String> {
    ["systemctl", "--user"]
        .iter()
        .chain(args)
        .map(|s| (*s).to_owned())
        .collect()
}

fn launchctl_bootout(file: &Path) -> Vec<String> {
    vec![
        "launchctl".into(),
        "bootout".into(),
        gui_domain(),
        file.display().to_string(),
    ]
}

/// launchd's domain of this user's login session.
fn gui_domain() -> String {
    #[cfg(unix)]
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    #[cfg(not(unix))]
    let uid = 0;
    format!("gui/{uid}")
}

async fn install(settings: &Settings, platform: &Platform) -> Result<(), CliError> {
    let program = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| CliError::failed(format!("cannot tell where this program is: {e}")))?;
    let spec = ServiceSpec::new(settings, program, std::env::var("PATH").ok());
    let text = platform.render(&spec)?;
    write_file(&platform.file, &text)?;
    println!("Wrote {}", platform.file.display());
    println!(
        "It runs: {} {}",
        spec.program.display(),
        spec.args.join(" ")
    );
    let mut all_done = true;
    for command in platform.enable() {
        // launchd's bootout of an agent that is not loaded fails; that is expected.
        let expected_to_fail = command.get(1).is_some_and(|c| c == "bootout");
        match run_manager(&command).await {
            Ok(_) => {}
            Err(_) if expected_to_fail => {}
            Err(e) => {
                all_done = false;
                eprintln!("warning: {e}");
            }
        }
    }
    let last = platform.enable().pop().unwrap_or_default().join(" ");
    if all_done {
        println!("Enabled and started: it starts at every login (`{last}`).");
    } else {
        eprintln!(
            "The service file is in place but not enabled; run `{last}` in your login session."
        );
    }
    if platform.kind == Kind::Systemd {
        println!(
            "To run it without a login session (a server), also run `loginctl enable-linger $USER` once."
        );
    }
    if settings.backend_url.is_none() {
        eprintln!("warning: no Wegent server configured: the service will stop with exit code 2 until `backend_url` is in {} (or install again with --backend-url)", settings.config_file.display());
    }
    match keychain_has_token(settings).await {
        _ if !settings.keychain_enabled => eprintln!("warning: the OS keychain is switched off here (WEGENT_NO_KEYCHAIN), but the service reads the token from it: sign in with `wegent-executor login --user NAME` without it."),
        Ok(true) => println!("Token: the service reads it from the OS keychain at start (it is not in the service file)."),
        Ok(false) => eprintln!("warning: no token in the OS keychain yet: sign in with `wegent-executor login --user NAME`; until then the service stops with exit code 3. The service never reads WEGENT_TOKEN from here."),
        Err(e) => eprintln!("warning: the OS keychain cannot be read ({e}); the service needs it for the token."),
    }
    println!(
        "Logs: {}",
        platform.logs(&settings.home.value.join(crate::logging::LOG_DIR))
    );
    Ok(())
}

async fn uninstall(platform: &Platform) -> Result<(), CliError> {
    if !platform.file.exists() {
        println!(
            "Not installed (no {}); nothing to remove.",
            platform.file.display()
        );
        return Ok(());
    }
    for command in platform.disable() {
        if let Err(e) = run_manager(&command).await {
            eprintln!("warning: {e}; if it is still running, stop it by hand");
        }
    }
    std::fs::remove_file(&platform.file)
        .map_err(|e| CliError::failed(format!("cannot remove {}: {e}", platform.file.display())))?;
    if platform.kind == Kind::Systemd {
        // Let systemd forget the unit; harmless when it is not running.
        let _ = run_manager(&systemctl(&["daemon-reload"])).await;
    }
    println!("Removed {}", platform.file.display());
    Ok(())
}

async fn status(platform: &Platform) -> Result<(), CliError> {
    let text = match std::fs::read_to_string(&platform.file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "Not installed (no {}); install it with `wegent-executor service install`.",
                platform.file.display()
            );
            return Ok(());
        }
        Err(e) => {
            return Err(CliError::failed(format!(
                "cannot read {}: {e}",
                platform.file.display()
            )))
        }
    };
    println!("Installed: {}", platform.file.display());
    if let Some(exec) = text.lines().find(|l| l.starts_with("ExecStart=")) {
        println!("{exec}");
    }
    for command in platform.queries() {
        let what = command[command.len() - 2..].join(" ");
        match run_manager(&command).await {
            Ok(out) => println!("{what}: {}", first_line(&out)),
            // `is-active` answers "inactive" with a failing status: the answer is still its words.
            Err(ManagerError::Failed { stdout, .. }) if !first_line(&stdout).is_empty() => {
                println!("{what}: {}", first_line(&stdout))
            }
            Err(e) => println!("{what}: unknown ({e})"),
        }
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(path, text))
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}

/// A service manager command that did not succeed.
#[derive(Debug, thiserror::Error)]
enum ManagerError {
    #[error("`{command}` could not run: {error}")]
    NotRun {
        command: String,
        error: std::io::Error,
    },
    // The last line: systemctl says what it did first and why it failed last.
    #[error("`{command}` failed ({status}): {}", last_line(if stderr.trim().is_empty() { stdout } else { stderr }))]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stdout: String,
        stderr: String,
    },
}

/// Run a service manager command; its stdout.
async fn run_manager(command: &[String]) -> Result<String, ManagerError> {
    let shown = command.join(" ");
    let out = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .output()
        .await
        .map_err(|error| ManagerError::NotRun {
            command: shown.clone(),
            error,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(ManagerError::Failed {
        command: shown,
        status: out.status,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn last_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}
