//! The git checkout of a task (protocol.md §16.4): clone into a missing or empty folder, reuse an
//! existing repository untouched, refuse anything else with a message the user can act on.
//!
//! The payload's `user.git_token` is encrypted by the server and unusable, so git runs with the
//! user's own setup (ssh agent, credential helper) and must never wait for a prompt nobody can
//! answer: every prompt path fails at once, the clone is time-limited, and a stop kills it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use tokio::process::Command;

use super::child_env;
use super::command_rpc::read_capped;
use super::process;
use super::runner::{stopped, StopSignal};
use super::workdir::{GitIdentity, GitSource};
use crate::redact::{redact, register_secret};

/// How much of git's stderr is kept for classification (clone prints little without a tty).
const STDERR_CAP: usize = 64 * 1024;
const DETAIL_MAX_CHARS: usize = 400;
/// `git config` of the identity is local and quick; this only bounds a wedged filesystem.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(10);
/// A program that fails at once without output: every askpass prompt ends immediately.
const NO_PROMPT_PROGRAM: &str = "false";
/// Where the password of a `user:password@` URL travels to git (see [`credential_args`]).
const PASSWORD_ENV: &str = "WEGENT_GIT_PASSWORD";

/// The commit identity for the checkout: `user.git_login`, and `user.git_email`, else GitHub's
/// no-reply address `<git_id>+<git_login>@users.noreply.github.com`; `None` without an email.
fn commit_identity(account: &GitIdentity) -> Option<(&str, String)> {
    let name = account.login.trim();
    let email = match account.email.as_deref().map(str::trim) {
        Some(email) if !email.is_empty() => email.to_owned(),
        _ => format!(
            "{}+{name}@users.noreply.github.com",
            account
                .id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())?
        ),
    };
    (!name.is_empty()).then_some((name, email))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutOutcome {
    /// Freshly cloned; `created_dir` says whether the device created the folder (it was missing).
    Cloned { created_dir: bool },
    /// The folder already held a repository (or a worktree): left as it was.
    Reused,
}

/// Why the checkout could not be prepared; `Display` is the task's error message.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "The project folder {} is not empty and is not a git repository, so {url} cannot be \
         cloned into it. Empty or move the folder, or point the project to an existing checkout.",
        path.display()
    )]
    NotARepository { path: PathBuf, url: String },
    #[error(
        "The project folder {} is a file, not a folder. Remove or rename the file, or choose \
         another project path.",
        path.display()
    )]
    IsAFile { path: PathBuf },
    #[error("Could not prepare the project folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "git is not installed (or not on the PATH of the Wegent device). Install git from \
         https://git-scm.com/downloads and restart the device."
    )]
    GitNotInstalled,
    #[error("Could not start git: {0}")]
    Spawn(std::io::Error),
    #[error("The git URL {url} cannot be used: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error(
        "Cloning {url} needs credentials, and this computer has none set up for it (the device \
         never prompts for a password). Set up access with an SSH key in your ssh agent or a git \
         credential helper (e.g. `gh auth login`), so that `git clone {url}` works in a terminal \
         without a prompt. git said: {detail}"
    )]
    AuthRequired { url: String, detail: String },
    #[error(
        "Authentication to {url} failed: the server rejected the credentials or the SSH key. \
         Check the SSH key in your ssh agent, the host's entry in known_hosts, or your git \
         credential helper, so that `git clone {url}` works in a terminal. git said: {detail}"
    )]
    AuthFailed { url: String, detail: String },
    #[error(
        "Could not reach the git server of {url} (host unreachable, connection refused or DNS \
         failure). Check the URL and this computer's network or VPN. git said: {detail}"
    )]
    Network { url: String, detail: String },
    #[error(
        "Remote branch {branch} not found in {url}. Check the project's branch name. \
         git said: {detail}"
    )]
    BranchMissing {
        url: String,
        branch: String,
        detail: String,
    },
    #[error(
        "The repository {url} was not found, or this computer has no access to it. Check the \
         URL. git said: {detail}"
    )]
    RepositoryNotFound { url: String, detail: String },
    #[error(
        "Cloning {url} did not finish within {} s and was stopped. A large repository may need \
         a higher git_clone_timeout_secs in the device's config.toml.",
        after.as_secs()
    )]
    TimedOut { url: String, after: Duration },
    #[error("Cloning {url} was cancelled: {message}")]
    Cancelled { url: String, message: String },
    #[error("git clone of {url} failed: {detail}")]
    CloneFailed { url: String, detail: String },
    #[error(
        "git stored a credential in {}; the checkout was removed. Use a URL without a password \
         and set up an ssh agent or a git credential helper instead.",
        config.display()
    )]
    CredentialStored { config: PathBuf },
}

/// Make `dir` hold a checkout of `source`: clone when missing or empty, reuse a repository.
pub async fn prepare_checkout(
    dir: &Path,
    source: &GitSource,
    identity: Option<&GitIdentity>,
    timeout: Duration,
    stop: &mut StopSignal,
) -> Result<CheckoutOutcome, GitError> {
    prepare_with(OsStr::new("git"), dir, source, identity, timeout, stop).await
}

async fn prepare_with(
    git: &OsStr,
    dir: &Path,
    source: &GitSource,
    identity: Option<&GitIdentity>,
    timeout: Duration,
    stop: &mut StopSignal,
) -> Result<CheckoutOutcome, GitError> {
    let state = inspect(dir).map_err(|source| GitError::Folder {
        path: dir.to_owned(),
        source,
    })?;
    let outcome = match action_for(state, dir, &source.url)? {
        Action::Reuse => CheckoutOutcome::Reused,
        Action::Clone { created_dir } => {
            clone(git, dir, source, state, timeout, stop).await?;
            CheckoutOutcome::Cloned { created_dir }
        }
    };
    if let Some(identity) = identity {
        configure_identity(git, dir, identity).await;
    }
    Ok(outcome)
}

/// What is at the checkout path before anything is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathState {
    Missing,
    EmptyDir,
    /// A directory with a `.git` entry: a repository, or a worktree (whose `.git` is a file).
    Repository,
    OtherDir,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Clone { created_dir: bool },
    Reuse,
}

fn inspect(dir: &Path) -> std::io::Result<PathState> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PathState::Missing),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(PathState::File);
    }
    if std::fs::symlink_metadata(dir.join(".git")).is_ok() {
        return Ok(PathState::Repository);
    }
    Ok(match std::fs::read_dir(dir)?.next() {
        None => PathState::EmptyDir,
        Some(_) => PathState::OtherDir,
    })
}

/// The decision of §16.4's table.
fn action_for(state: PathState, dir: &Path, url: &str) -> Result<Action, GitError> {
    match state {
        PathState::Missing => Ok(Action::Clone { created_dir: true }),
        PathState::EmptyDir => Ok(Action::Clone { created_dir: false }),
        PathState::Repository => Ok(Action::Reuse),
        PathState::OtherDir => Err(GitError::NotARepository {
            path: dir.to_owned(),
            url: display_url(url),
        }),
        PathState::File => Err(GitError::IsAFile {
            path: dir.to_owned(),
        }),
    }
}

async fn clone(
    git: &OsStr,
    dir: &Path,
    source: &GitSource,
    state: PathState,
    timeout: Duration,
    stop: &mut StopSignal,
) -> Result<(), GitError> {
    let remote = RemoteUrl::parse(&source.url)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| GitError::Folder {
            path: parent.to_owned(),
            source: e,
        })?;
    }
    let branch = source
        .branch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let mut cmd = git_command(git);
    cmd.args(credential_args(remote.password.is_some()))
        .arg("clone");
    if let Some(branch) = branch {
        cmd.args(["--branch", branch, "--single-branch"]);
    }
    cmd.arg("--").arg(&remote.for_git).arg(dir);
    if let Some(password) = &remote.password {
        cmd.env(PASSWORD_ENV, password);
    }
    if let Some(ssh) = ssh_command(&remote.for_git, git).await {
        cmd.env("GIT_SSH_COMMAND", ssh);
    }
    let result = run_clone(cmd, &remote.for_git, branch, timeout, stop).await;
    let result = result.and_then(|()| verify_no_credential(dir, remote.password.as_deref()));
    if result.is_err() {
        remove_partial(dir, state);
    }
    result
}

async fn run_clone(
    mut cmd: Command,
    url: &str,
    branch: Option<&str>,
    timeout: Duration,
    stop: &mut StopSignal,
) -> Result<(), GitError> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let shown = display_url(url);
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let mut guard = process::GroupGuard::new(&child);
    tracing::info!(url = %shown, pid = ?child.id(), "git clone started");
    let stderr = tokio::spawn(read_capped(child.stderr.take(), STDERR_CAP));
    let interrupted = tokio::select! {
        status = child.wait() => Ok(status),
        message = stopped(stop) => Err(GitError::Cancelled { url: shown.clone(), message }),
        _ = tokio::time::sleep(timeout) => Err(GitError::TimedOut { url: shown.clone(), after: timeout }),
    };
    if interrupted.is_err() {
        // The whole group: git's helpers (remote-http, index-pack) hold the connection.
        process::kill(&mut child).await;
    }
    // Reaped now (git itself waits for its helpers on a normal exit).
    guard.disarm();
    let status = interrupted?.map_err(GitError::Spawn)?;
    let (stderr, _) = stderr.await.unwrap_or_default();
    tracing::info!(url = %shown, exit_code = ?status.code(), "git clone finished");
    if status.success() {
        return Ok(());
    }
    Err(classify_failure(
        &String::from_utf8_lossy(&stderr),
        &shown,
        branch,
    ))
}

fn spawn_error(e: std::io::Error) -> GitError {
    if e.kind() == std::io::ErrorKind::NotFound {
        GitError::GitNotInstalled
    } else {
        GitError::Spawn(e)
    }
}

/// git with nothing that could wait for an answer: no terminal prompt, askpass programs that
/// fail at once, no interactive credential helper UI, stdin closed, its own process group.
/// (`credential.interactive=never` alone covers askpass from git 2.46 on; older gits ignore it,
/// hence the failing askpass programs too.)
fn git_command(git: &OsStr) -> Command {
    let mut cmd = Command::new(git);
    child_env::prepare(&mut cmd)
        .envs(prompt_free_env())
        .args(["-c", "credential.interactive=never"])
        .stdin(Stdio::null());
    process::isolate(&mut cmd);
    cmd
}

fn prompt_free_env() -> [(&'static str, &'static str); 6] {
    [
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_ASKPASS", NO_PROMPT_PROGRAM),
        ("SSH_ASKPASS", NO_PROMPT_PROGRAM),
        // OpenSSH ≥ 8.4: every prompt (passphrase, unknown host key) goes to the failing
        // askpass instead of the terminal, even with a user-configured ssh command.
        ("SSH_ASKPASS_REQUIRE", "force"),
        // English messages, so that [`classify_failure`] can tell why a clone failed.
        ("LC_ALL", "C"),
        ("LANGUAGE", "C"),
    ]
}

/// Credential options for the clone. A password from the URL is handed over through a
/// credential helper that prints it from the child's environment: it is never on a command line
/// or in a file, git sees (and stores in `.git/config`) the URL without it, and the reset
/// `credential.helper=` keeps the user's helpers from storing it on success.
///
/// Why not refuse such URLs: the project URL is the user's choice and already stored by the
/// server; refusing would break self-hosted setups that work today, while this way the secret
/// stays out of every file on the device, which is what matters here.
fn credential_args(url_has_password: bool) -> Vec<String> {
    if !url_has_password {
        return Vec::new();
    }
    vec![
        "-c".into(),
        "credential.helper=".into(),
        "-c".into(),
        format!(
            "credential.helper=!f() {{ test \"$1\" = get && printf 'password=%s\\n' \"${PASSWORD_ENV}\"; }}; f"
        ),
    ]
}

/// A clone URL split into what git may see and the password it must not.
#[derive(Debug, PartialEq, Eq)]
struct RemoteUrl {
    for_git: String,
    password: Option<String>,
}

impl RemoteUrl {
    fn parse(raw: &str) -> Result<Self, GitError> {
        let raw = raw.trim();
        let plain = || Self {
            for_git: raw.to_owned(),
            password: None,
        };
        // scp-like `git@host:path` and local paths are no URLs and carry no password.
        let Ok(mut url) = url::Url::parse(raw) else {
            return Ok(plain());
        };
        let Some(encoded) = url.password().map(str::to_owned) else {
            return Ok(plain());
        };
        let password = percent_decode_str(&encoded)
            .decode_utf8_lossy()
            .into_owned();
        if password.contains(['\n', '\r', '\0']) {
            return Err(GitError::BadUrl {
                url: display_url(raw),
                reason: "its password contains a line break",
            });
        }
        register_secret(&password);
        let _ = url.set_password(None);
        Ok(Self {
            for_git: url.into(),
            password: (!password.is_empty()).then_some(password),
        })
    }
}

/// `url` as shown in messages and logs: without a password.
fn display_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(None);
            parsed.into()
        }
        _ => redact(url.trim()).into_owned(),
    }
}

fn is_ssh_url(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return matches!(scheme, "ssh" | "git+ssh" | "ssh+git");
    }
    // scp-like syntax: `[user@]host:path`, with no slash before the first colon.
    url.split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// `ssh -o BatchMode=yes` for an ssh URL, unless the user chose an ssh command (env or
/// `core.sshCommand`): theirs is kept, and `SSH_ASKPASS_REQUIRE=force` still stops prompts.
async fn ssh_command(url: &str, git: &OsStr) -> Option<&'static str> {
    if !is_ssh_url(url) || std::env::var_os("GIT_SSH_COMMAND").is_some() {
        return None;
    }
    if std::env::var_os("GIT_SSH").is_some() {
        return None;
    }
    let mut cmd = git_command(git);
    cmd.args(["config", "--get", "core.sshCommand"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let configured = matches!(
        tokio::time::timeout(CONFIG_TIMEOUT, cmd.status()).await,
        Ok(Ok(status)) if status.success()
    );
    (!configured).then_some("ssh -o BatchMode=yes")
}

/// Belt and braces: the clone must not have left a password in `.git/config`.
fn verify_no_credential(dir: &Path, password: Option<&str>) -> Result<(), GitError> {
    let config = dir.join(".git").join("config");
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    if config_holds_credential(&text, password) {
        return Err(GitError::CredentialStored { config });
    }
    Ok(())
}

fn config_holds_credential(config: &str, password: Option<&str>) -> bool {
    if password.is_some_and(|p| config.contains(p)) {
        return true;
    }
    config.lines().any(|line| {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        key.trim().eq_ignore_ascii_case("url")
            && url::Url::parse(value.trim()).is_ok_and(|u| u.password().is_some())
    })
}

/// Undo a failed clone: remove the folder the clone created, or empty the one that was empty.
fn remove_partial(dir: &Path, state: PathState) {
    let result = match state {
        PathState::Missing => std::fs::remove_dir_all(dir),
        _ => std::fs::read_dir(dir).and_then(|entries| {
            entries.flatten().try_for_each(|entry| {
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                }
            })
        }),
    };
    if let Err(e) = result.or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    }) {
        tracing::warn!(path = %dir.display(), error = %e, "could not remove a partial clone");
    }
}

/// Repo-local `user.name`/`user.email`; failures only cost the identity, so they are logged.
async fn configure_identity(git: &OsStr, dir: &Path, account: &GitIdentity) {
    let Some((name, email)) = commit_identity(account) else {
        return;
    };
    // Every turn of a task reuses its checkout: once set, the identity costs no process.
    let local = std::fs::read_to_string(dir.join(".git").join("config")).unwrap_or_default();
    if identity_is_set(&local, name, &email) {
        return;
    }
    for (key, value) in [("user.name", name), ("user.email", email.as_str())] {
        let mut cmd = git_command(git);
        cmd.arg("-C")
            .arg(dir)
            .args(["config", "--local", key, value])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let ok = match cmd.spawn() {
            Ok(mut child) => match tokio::time::timeout(CONFIG_TIMEOUT, child.wait()).await {
                Ok(status) => status.is_ok_and(|s| s.success()),
                Err(_) => {
                    process::kill(&mut child).await;
                    false
                }
            },
            Err(_) => false,
        };
        if !ok {
            tracing::warn!(path = %dir.display(), key, "could not set the git identity");
        }
    }
}

/// Whether a repo-local config text already holds exactly this identity (the last value of a
/// key wins, as in git). Quoted or escaped values count as different: git then sets them again.
fn identity_is_set(config: &str, name: &str, email: &str) -> bool {
    let mut in_user = false;
    let (mut has_name, mut has_email) = (false, false);
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_user = line.eq_ignore_ascii_case("[user]");
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| in_user) else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("name") {
            has_name = value == name;
        } else if key.eq_ignore_ascii_case("email") {
            has_email = value == email;
        }
    }
    has_name && has_email
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    BranchMissing,
    AuthRequired,
    AuthFailed,
    Network,
    NotFound,
}

/// Substrings of git's (and ssh's, curl's) stderr, lower-cased, checked in this order: the
/// first kind with a matching line wins, and that line is the detail shown to the user (git's
/// last line is often generic, e.g. "and the repository exists.").
const FAILURE_PATTERNS: &[(FailureKind, &[&str])] = &[
    (
        FailureKind::BranchMissing,
        &["not found in upstream", "could not find remote branch"],
    ),
    (
        FailureKind::AuthRequired,
        &[
            "terminal prompts disabled",
            "could not read username",
            "could not read password",
            "unable to get password",
            "unable to read askpass response",
        ],
    ),
    (
        FailureKind::AuthFailed,
        &[
            "authentication failed",
            "permission denied (",
            "permission denied, please try again",
            "host key verification failed",
            "returned error: 401",
            "returned error: 403",
            "invalid username or password",
        ],
    ),
    (
        FailureKind::Network,
        &[
            "could not resolve host",
            "unable to look up",
            "name or service not known",
            "temporary failure in name resolution",
            "connection refused",
            "failed to connect",
            "couldn't connect to server",
            "unable to connect to",
            "connection timed out",
            "operation timed out",
            "network is unreachable",
            "no route to host",
            "connection reset",
        ],
    ),
    (
        FailureKind::NotFound,
        &[
            "does not appear to be a git repository",
            "repository not found",
            "not exported",
            "returned error: 404",
        ],
    ),
];

/// Why a clone failed, from git's stderr.
fn classify_failure(stderr: &str, url: &str, branch: Option<&str>) -> GitError {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let matched = FAILURE_PATTERNS.iter().find_map(|(kind, needles)| {
        lines
            .iter()
            .find(|line| {
                let line = line.to_lowercase();
                needles.iter().any(|n| line.contains(n))
                    || (*kind == FailureKind::NotFound && is_http_not_found(&line))
            })
            .map(|line| (*kind, *line))
    });
    let url = url.to_owned();
    let Some((kind, line)) = matched else {
        // Unknown: the last `fatal:`/`error:` line says most, else the last line.
        let line = lines
            .iter()
            .rev()
            .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
            .or(lines.last())
            .copied()
            .unwrap_or("no error output");
        return GitError::CloneFailed {
            url,
            detail: detail(line),
        };
    };
    let detail = detail(line);
    match kind {
        FailureKind::BranchMissing => GitError::BranchMissing {
            url,
            branch: branch.unwrap_or_default().to_owned(),
            detail,
        },
        FailureKind::AuthRequired => GitError::AuthRequired { url, detail },
        FailureKind::AuthFailed => GitError::AuthFailed { url, detail },
        FailureKind::Network => GitError::Network { url, detail },
        FailureKind::NotFound => GitError::RepositoryNotFound { url, detail },
    }
}

/// Smart HTTP's "fatal: repository 'http://…/' not found" (lower-cased).
fn is_http_not_found(line: &str) -> bool {
    line.starts_with("fatal: repository '") && line.ends_with("' not found")
}

fn detail(line: &str) -> String {
    super::payload::truncate_chars(&redact(line), DETAIL_MAX_CHARS)
}

#[cfg(test)]
mod tests;
