//! The one place that builds every child's environment (Claude, the pre-execute hook, command
//! RPC, git).
//!
//! A child starts from an empty environment ([`prepare`] calls `env_clear`), gets a scrubbed copy
//! of the device's own ([`base`]: everything except the device's token and configuration, which
//! any tool the agent runs could otherwise print into the task's output), then its own variables.
//!
//! Variables a *payload* asks for (task env, command RPC `env`) pass [`is_dangerous_name`]
//! first: names that make a shell, the dynamic loader, git, Node, Python, Perl or Ruby run code
//! of the sender's choosing are refused.
//!
//! The decisions are pure functions of names; only [`base`] and [`prepare`] read the process.

use std::ffi::OsString;

use crate::settings::vars;

/// Whether `name` is the device's own configuration or secret: never inherited by a child.
///
/// Every `WEGENT_*` name is the device's (token, backend URL, home, …; children get the few
/// they need, like `WEGENT_TASK_ID`, set explicitly), and so is anything naming Wegent that
/// looks like a credential (`MY_WEGENT_API_KEY`). `DEVICE_ID` / `DEVICE_NAME` configure the
/// device too.
pub fn is_device_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("WEGENT_")
        || [
            vars::TOKEN,
            vars::AUTH_TOKEN,
            vars::DEVICE_ID,
            vars::DEVICE_NAME,
        ]
        .contains(&upper.as_str())
        || (upper.contains("WEGENT") && looks_like_credential(&upper))
}

fn looks_like_credential(upper: &str) -> bool {
    [
        "TOKEN",
        "KEY",
        "SECRET",
        "PASSWORD",
        "PASS",
        "PWD",
        "CREDENTIAL",
        "AUTH",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// Exact names a payload may not set: each makes some interpreter or tool run code, or load
/// configuration, chosen by whoever sets it.
const DANGEROUS_NAMES: &[&str] = &[
    // Shells: startup files, option injection, code run at every prompt or trace line.
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "ZDOTDIR",
    // git: helpers and hooks that run commands.
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_EXEC_PATH",
    "GIT_TEMPLATE_DIR",
    "GIT_PROXY_COMMAND",
    "GIT_EXTERNAL_DIFF",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_PAGER",
    // Node, Python, Perl, Ruby, Java: code loaded at interpreter start.
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    // Where programs and per-user configuration are found. Wegent payloads do not set them; a
    // payload that could would pick which `git` or `sh` runs, or which `~/.gitconfig` is read.
    "PATH",
    "HOME",
];

/// Name prefixes a payload may not set.
const DANGEROUS_PREFIXES: &[&str] = &[
    // The dynamic loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT; DYLD_INSERT_LIBRARIES on macOS.
    "LD_",
    "DYLD_",
    // GIT_CONFIG, GIT_CONFIG_GLOBAL, GIT_CONFIG_COUNT / KEY_n / VALUE_n, GIT_CONFIG_PARAMETERS:
    // any git setting, including `core.sshCommand` or `core.fsmonitor`, which run commands.
    "GIT_CONFIG",
    // GIT_SSH, GIT_SSH_COMMAND, GIT_SSH_VARIANT.
    "GIT_SSH",
    // Exported bash functions (`BASH_FUNC_ls%%`) replace commands in every bash child.
    "BASH_FUNC_",
];

/// Whether a payload-supplied variable `name` must be refused. Compared case-insensitively:
/// Windows treats names so, and refusing `ld_preload` on Linux costs nothing.
pub fn is_dangerous_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DANGEROUS_NAMES.contains(&upper.as_str())
        || DANGEROUS_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// The names among `names` that [`is_dangerous_name`] refuses, in order, each once.
pub fn refused_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut refused: Vec<String> = Vec::new();
    for name in names {
        if is_dangerous_name(name) && !refused.iter().any(|r| r == name) {
            refused.push(name.to_owned());
        }
    }
    refused
}

/// `vars` without the device's own variables ([`is_device_variable`]). Names that are not valid
/// Unicode are kept: they cannot be ours.
pub fn scrub(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(name, _)| !name.to_str().is_some_and(is_device_variable))
        .collect()
}

/// The environment every child starts from: the device's own, scrubbed.
pub fn base() -> Vec<(OsString, OsString)> {
    let mut vars = scrub(std::env::vars_os());
    // Names this device process, so children left behind by a crash can be found at the next
    // start (see `orphans`).
    vars.push((
        super::orphans::MARKER.into(),
        super::orphans::current_run().into(),
    ));
    vars
}

/// Clear `cmd`'s environment and give it [`base`]; the caller then adds the child's own
/// variables (they win over the base).
pub fn prepare(cmd: &mut tokio::process::Command) -> &mut tokio::process::Command {
    cmd.env_clear().envs(base())
}

/// [`prepare`] for a blocking `std::process::Command`.
pub fn prepare_std(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env_clear().envs(base())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn the_devices_token_and_configuration_are_scrubbed() {
        let kept = scrub(os(&[
            ("WEGENT_TOKEN", "wg-canary"),
            ("WEGENT_AUTH_TOKEN", "eyJcanary"),
            ("WEGENT_BACKEND_URL", "http://w"),
            ("WEGENT_SOCKET_URL", "ws://w"),
            ("WEGENT_EXECUTOR_HOME", "/h"),
            ("WEGENT_NO_KEYCHAIN", "1"),
            ("WEGENT_PASSWORD", "hunter2"),
            ("DEVICE_ID", "d"),
            ("DEVICE_NAME", "n"),
            ("MY_WEGENT_API_KEY", "k"),
            ("PATH", "/usr/bin"),
            ("HOME", "/home/me"),
            ("GITHUB_TOKEN", "the user's own"),
            ("LANG", "C.UTF-8"),
        ]));
        assert_eq!(
            kept,
            os(&[
                ("PATH", "/usr/bin"),
                ("HOME", "/home/me"),
                ("GITHUB_TOKEN", "the user's own"),
                ("LANG", "C.UTF-8"),
            ])
        );
    }

    #[test]
    fn every_setting_the_device_reads_from_the_environment_is_scrubbed() {
        for name in [
            vars::TOKEN,
            vars::AUTH_TOKEN,
            vars::BACKEND_URL,
            vars::SOCKET_URL,
            vars::HOME,
            vars::DEVICE_ID,
            vars::DEVICE_NAME,
            vars::NO_KEYCHAIN,
        ] {
            assert!(is_device_variable(name), "{name}");
        }
        assert!(!is_device_variable("WEGENTISH"));
        assert!(!is_device_variable("ANTHROPIC_API_KEY"));
    }

    #[test]
    fn dangerous_payload_names_are_refused() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "ld_preload",
            "DYLD_INSERT_LIBRARIES",
            "BASH_ENV",
            "ENV",
            "SHELLOPTS",
            "BASHOPTS",
            "PS4",
            "PROMPT_COMMAND",
            "IFS",
            "GIT_CONFIG",
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_CONFIG_VALUE_0",
            "GIT_CONFIG_PARAMETERS",
            "GIT_SSH",
            "GIT_SSH_COMMAND",
            "GIT_ASKPASS",
            "GIT_EXEC_PATH",
            "GIT_TEMPLATE_DIR",
            "NODE_OPTIONS",
            "NODE_PATH",
            "PYTHONSTARTUP",
            "PYTHONPATH",
            "PERL5OPT",
            "RUBYOPT",
            "BASH_FUNC_ls%%",
            "PATH",
            "HOME",
        ] {
            assert!(is_dangerous_name(name), "{name}");
        }
        for name in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "GIT_TOKEN",
            "GIT_URL",
            "GIT_DOMAIN",
            "WEGENT_TASK_ID",
            "LDFLAGS",
            "ENVIRONMENT",
            "api_key",
        ] {
            assert!(!is_dangerous_name(name), "{name}");
        }
    }

    #[test]
    fn refused_names_are_listed_once_in_order() {
        assert_eq!(
            refused_names(["A", "NODE_OPTIONS", "LD_PRELOAD", "B", "NODE_OPTIONS"]),
            ["NODE_OPTIONS", "LD_PRELOAD"]
        );
        assert!(refused_names(["GIT_TOKEN"]).is_empty());
    }
}
