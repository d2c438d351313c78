//! What `wegent-executor service install` writes: a systemd user unit (Linux) or a launchd agent
//! (macOS) that runs `wegent-executor run` at login. Pure: the settings and the program's path
//! in, the file's text out (unit-tested; the tests of `service` check them with the real
//! `systemd-analyze` and a real plist parser).
//!
//! The token is never part of it: the service reads it from the OS keychain at run time. Only
//! settings given as flags or environment variables at install time are carried over (as flags);
//! `config.toml` is read by the service itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::settings::{Settings, Source, Sourced};

/// The systemd unit's name.
pub const SYSTEMD_UNIT: &str = "wegent-executor.service";
/// The launchd agent's label (and file name, with `.plist`).
pub const LAUNCHD_LABEL: &str = "com.wegent.executor";
/// Time the service manager allows for a stop beyond the drain grace: the cancel, the final
/// events to the server and the disconnect.
const STOP_MARGIN: Duration = Duration::from_secs(30);

/// How the service runs the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// `wegent-executor`, absolute.
    pub program: PathBuf,
    /// `run` and the settings given at install time, as flags.
    pub args: Vec<String>,
    /// Environment: the installing shell's `PATH` (a service's own is short: `claude` and Node.js
    /// would not be found) and `DEVICE_ID` if it was set. Nothing secret.
    pub env: Vec<(String, String)>,
    /// How long the service manager waits after SIGTERM before it kills: the drain grace plus a
    /// margin, so a drain is never cut short.
    pub stop_timeout: Duration,
    /// Where launchd writes the service's stdout and stderr (systemd has the journal).
    pub log_dir: PathBuf,
}

impl ServiceSpec {
    /// The spec for `settings` (as resolved by the installing command) and `program`.
    pub fn new(settings: &Settings, program: PathBuf, path_var: Option<String>) -> Self {
        let mut args = vec![
            "run".to_owned(),
            "--home".to_owned(),
            settings.home.value.display().to_string(),
        ];
        let mut flag = |name: &str, value: String| {
            args.push(name.to_owned());
            args.push(value);
        };
        if let Some(url) = given(&settings.backend_url) {
            flag("--backend-url", url.clone());
        }
        if let Some(url) = given(&settings.socket_url) {
            flag("--socket-url", url.clone());
        }
        if let Some(name) = given(&settings.device_name) {
            flag("--device-name", name.clone());
        }
        if is_given(&settings.max_slots) {
            flag("--max-slots", settings.max_slots.value.to_string());
        }
        if let Some(path) = given(&settings.claude_path) {
            flag("--claude-path", path.display().to_string());
        }
        if let Some(path) = given(&settings.codex_path) {
            flag("--codex-path", path.display().to_string());
        }
        if is_given(&settings.task_timeout) {
            flag(
                "--task-timeout-secs",
                settings.task_timeout.value.as_secs().to_string(),
            );
        }
        if let Some(path) = given(&settings.pre_execute_hook) {
            flag("--pre-execute-hook", path.display().to_string());
        }
        if is_given(&settings.projects_dir) {
            flag(
                "--projects-dir",
                settings.projects_dir.value.display().to_string(),
            );
        }
        if let Some(level) = given(&settings.log_level) {
            flag("--log-level", level.clone());
        }
        if is_given(&settings.drain_grace) {
            flag(
                "--drain-grace-secs",
                settings.drain_grace.value.as_secs().to_string(),
            );
        }
        if is_given(&settings.allow_remote_commands) && !settings.allow_remote_commands.value {
            args.push("--no-remote-commands".to_owned());
        }
        if is_given(&settings.allow_stdio_mcp) && settings.allow_stdio_mcp.value {
            args.push("--allow-stdio-mcp".to_owned());
        }
        let mut env = Vec::new();
        if let Some(path) = path_var.filter(|p| !p.is_empty()) {
            env.push(("PATH".to_owned(), path));
        }
        if let Some(id) = &settings.device_id_override {
            env.push(("DEVICE_ID".to_owned(), id.clone()));
        }
        Self {
            program,
            args,
            env,
            stop_timeout: settings.drain_grace.value + STOP_MARGIN,
            log_dir: settings.home.value.join(crate::logging::LOG_DIR),
        }
    }
}

/// Given on the command line or in the environment at install time (not `config.toml`, which
/// the service reads itself, and not a default).
fn is_given<T>(s: &Sourced<T>) -> bool {
    matches!(s.source, Source::Flag | Source::Env(_))
}

fn given<T>(s: &Option<Sourced<T>>) -> Option<&T> {
    s.as_ref().filter(|s| is_given(s)).map(|s| &s.value)
}

/// A setting that cannot be written into a service file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{value:?} contains a line break, which a service file cannot hold; change that setting and install again")]
pub struct UnwritableValue {
    pub value: String,
}

/// The systemd user unit.
///
/// - `KillMode=mixed`: SIGTERM goes to the device only, which drains and stops its tasks itself;
///   systemd's default would signal every task's processes at once and cut the drain short.
/// - `RestartPreventExitStatus=2 3`: a settings or token problem needs the user; restarting
///   would only repeat it.
pub fn systemd_unit(spec: &ServiceSpec) -> Result<String, UnwritableValue> {
    let program = spec.program.display().to_string();
    let exec = std::iter::once(&program)
        .chain(&spec.args)
        .map(|word| systemd_quote(word, true))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    let mut env = String::new();
    for (key, value) in &spec.env {
        env.push_str(&format!(
            "Environment={}\n",
            systemd_quote(&format!("{key}={value}"), false)?
        ));
    }
    Ok(format!(
        "# Written by `wegent-executor service install`; remove with `wegent-executor service uninstall`.\n\
         # The device token is not here: the service reads it from the OS keychain.\n\
         [Unit]\n\
         Description=Wegent Device: runs Wegent tasks on this machine\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         {env}\
         Restart=on-failure\n\
         RestartSec=10\n\
         RestartPreventExitStatus=2 3\n\
         KillMode=mixed\n\
         TimeoutStopSec={stop}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        stop = spec.stop_timeout.as_secs(),
    ))
}

/// One word of a unit file line, quoted. In `ExecStart=` `$` starts a variable (`dollar`);
/// everywhere `%` starts a specifier.
fn systemd_quote(word: &str, dollar: bool) -> Result<String, UnwritableValue> {
    if word.contains(['\n', '\r']) {
        return Err(UnwritableValue {
            value: word.to_owned(),
        });
    }
    let mut escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    if dollar {
        escaped = escaped.replace('$', "$$");
    }
    Ok(format!("\"{escaped}\""))
}

/// The launchd agent (`~/Library/LaunchAgents/<label>.plist`). `KeepAlive` restarts it after a
/// failure, not after a clean stop; `ExitTimeOut` gives the drain its time (launchd's default is
/// 20 s).
pub fn launchd_plist(spec: &ServiceSpec) -> String {
    let mut args = format!(
        "    <string>{}</string>\n",
        xml(&spec.program.display().to_string())
    );
    for arg in &spec.args {
        args.push_str(&format!("    <string>{}</string>\n", xml(arg)));
    }
    let mut env = String::new();
    for (key, value) in &spec.env {
        env.push_str(&format!(
            "    <key>{}</key>\n    <string>{}</string>\n",
            xml(key),
            xml(value)
        ));
    }
    let log = |name: &str| xml(&spec.log_dir.join(name).display().to_string());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `wegent-executor service install`; the device token is not here: the service
     reads it from the OS keychain. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
{args}  </array>
  <key>EnvironmentVariables</key>
  <dict>
{env}  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ExitTimeOut</key>
  <integer>{stop}</integer>
  <key>ProcessType</key>
  <string>Background</string>
  <key>StandardOutPath</key>
  <string>{out}</string>
  <key>StandardErrorPath</key>
  <string>{err}</string>
</dict>
</plist>
"#,
        stop = spec.stop_timeout.as_secs(),
        out = log("service.out.log"),
        err = log("service.err.log"),
    )
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the unit goes: `$XDG_CONFIG_HOME/systemd/user` (absolute only, as the spec says), else
/// `~/.config/systemd/user`.
pub fn systemd_unit_path(xdg_config_home: Option<&str>, home: &Path) -> PathBuf {
    let config = xdg_config_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home.join(".config"));
    config.join("systemd").join("user").join(SYSTEMD_UNIT)
}

pub fn launchd_plist_path(home: &Path) -> PathBuf {
    home.join("Library")
        .join("LaunchAgents")
        .join(format!("{LAUNCHD_LABEL}.plist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            program: PathBuf::from("/opt/wegent/bin/wegent-executor"),
            args: vec![
                "run".into(),
                "--home".into(),
                "/home/a b/.wegent-executor".into(),
                "--device-name".into(),
                "50% \"fast\" $box".into(),
            ],
            env: vec![("PATH".into(), "/usr/bin:/home/a b/bin".into())],
            stop_timeout: Duration::from_secs(90),
            log_dir: PathBuf::from("/home/a/.wegent-executor/logs"),
        }
    }

    #[test]
    fn the_unit_quotes_every_word_and_gives_the_drain_its_time() {
        let unit = systemd_unit(&spec()).unwrap();
        assert!(unit.contains(
            "ExecStart=\"/opt/wegent/bin/wegent-executor\" \"run\" \"--home\" \"/home/a b/.wegent-executor\" \"--device-name\" \"50%% \\\"fast\\\" $$box\"\n"
        ), "{unit}");
        assert!(
            unit.contains("Environment=\"PATH=/usr/bin:/home/a b/bin\"\n"),
            "{unit}"
        );
        assert!(unit.contains("KillMode=mixed\n") && unit.contains("TimeoutStopSec=90\n"));
        assert!(unit.contains("RestartPreventExitStatus=2 3\n"));
    }

    #[test]
    fn a_line_break_cannot_reach_a_unit() {
        let mut bad = spec();
        bad.args.push("x\nExecStartPre=/bin/evil".into());
        assert!(systemd_unit(&bad).is_err());
    }

    #[test]
    fn the_plist_escapes_xml() {
        let mut s = spec();
        s.args.push("<a&b>".into());
        let plist = launchd_plist(&s);
        assert!(
            plist.contains("<string>&lt;a&amp;b&gt;</string>"),
            "{plist}"
        );
        assert!(plist.contains("<integer>90</integer>"));
    }

    #[test]
    fn the_unit_path_follows_xdg_config_home_when_absolute() {
        let home = Path::new("/home/a");
        assert_eq!(
            systemd_unit_path(None, home),
            Path::new("/home/a/.config/systemd/user/wegent-executor.service")
        );
        assert_eq!(
            systemd_unit_path(Some("/x/cfg"), home),
            Path::new("/x/cfg/systemd/user/wegent-executor.service")
        );
        assert_eq!(
            systemd_unit_path(Some("relative"), home),
            Path::new("/home/a/.config/systemd/user/wegent-executor.service")
        );
    }
}
