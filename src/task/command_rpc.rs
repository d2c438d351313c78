//! `device:execute_command` (protocol.md §6): run one command for the server and answer with the
//! exact ack object, always — a missing or malformed ack would leave the REST caller waiting.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::{child_env, fit, process};

const DEFAULT_TIMEOUT_SECS: u64 = 60;
const MAX_TIMEOUT_SECS: u64 = 600;
const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;
const MAX_OUTPUT: usize = 5 * 1024 * 1024;
/// After the command exits, how long its output pipes may stay open (a daemon it started).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// What to run, read leniently from the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    pub program: Program,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    Argv(Vec<String>),
    Shell(String),
}

/// The ack (§6). `exit_code` is `None` when the command never ran or was killed.
///
/// `*_truncated` is true when the output shown is not all the command wrote: cut at
/// `max_output_bytes`, cut to fit the server's packet limit, or still open when background
/// processes of the command were stopped (then `error` says so).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandOutcome {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration: f64,
    pub timed_out: bool,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub error: Option<String>,
}

impl CommandOutcome {
    fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }

    pub fn to_ack(&self) -> Value {
        let mut ack = json!({
            "success": self.error.is_none() && self.exit_code == Some(0),
            "exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr,
            "duration": self.duration, "timed_out": self.timed_out,
            "stdout_truncated": self.stdout_truncated, "stderr_truncated": self.stderr_truncated,
        });
        if let Some(e) = &self.error {
            ack["error"] = Value::from(e.as_str());
        }
        // Up to 5 MiB of output each, the server takes under 1 MB per packet: an ack it refused
        // would leave the REST caller waiting for a timeout.
        for cut in fit::fit(&mut ack, fit::PACKET_BUDGET, "") {
            match cut.as_str() {
                "/stdout" => ack["stdout_truncated"] = Value::Bool(true),
                "/stderr" => ack["stderr_truncated"] = Value::Bool(true),
                _ => {}
            }
        }
        ack
    }
}

pub fn parse(payload: &Value) -> Result<CommandRequest, String> {
    let argv: Vec<String> = payload["argv"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let program = if argv.first().is_some_and(|p| !p.is_empty()) {
        Program::Argv(argv)
    } else if let Some(cmd) = payload["command"].as_str().filter(|c| !c.trim().is_empty()) {
        let args: Vec<String> = payload["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(shell_quote))
            .collect();
        Program::Shell(
            std::iter::once(cmd.to_owned())
                .chain(args)
                .collect::<Vec<_>>()
                .join(" "),
        )
    } else {
        return Err("No command to run: the request has neither `argv` nor `command`".into());
    };
    let cwd = [&payload["cwd"], &payload["path"]]
        .into_iter()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
        .map(PathBuf::from);
    let env: Vec<(String, String)> = payload["env"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .filter(|(k, v)| !k.is_empty() && !k.contains(['=', '\0']) && !v.contains('\0'))
        .collect();
    let refused = child_env::refused_names(env.iter().map(|(k, _): &(String, String)| k.as_str()));
    if !refused.is_empty() {
        tracing::warn!(names = ?refused, "refused a command with dangerous environment variables");
        return Err(format!(
            "Refused environment variable(s) {} in `env`: they can make the command run other code. Remove them and send the command again.",
            refused.join(", ")
        ));
    }
    let timeout = payload["timeout_seconds"]
        .as_f64()
        .filter(|t| *t > 0.0)
        .map_or(DEFAULT_TIMEOUT_SECS as f64, |t| {
            t.min(MAX_TIMEOUT_SECS as f64)
        });
    let max_output_bytes = payload["max_output_bytes"]
        .as_u64()
        .map_or(DEFAULT_MAX_OUTPUT, |n| (n as usize).clamp(1, MAX_OUTPUT));
    Ok(CommandRequest {
        program,
        cwd,
        env,
        timeout: Duration::from_secs_f64(timeout),
        max_output_bytes,
    })
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Handle one `device:execute_command`: the ack object. `projects_dir` is the device's `P`
/// (protocol.md §16.2), which every command sees as `WEGENT_EXECUTOR_PROJECTS_DIR`.
pub async fn execute(allowed: bool, projects_dir: &Path, payload: Value) -> Value {
    if !allowed {
        return CommandOutcome::failed(
            "Remote commands are disabled on this device (allow_remote_commands is off in its settings)".into(),
        )
        .to_ack();
    }
    let outcome = match parse(&payload) {
        Ok(req) => run(&req, projects_dir).await,
        Err(e) => CommandOutcome::failed(e),
    };
    outcome.to_ack()
}

pub async fn run(req: &CommandRequest, projects_dir: &Path) -> CommandOutcome {
    let started = Instant::now();
    let mut cmd = match &req.program {
        Program::Argv(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Program::Shell(line) if cfg!(windows) => {
            let mut c = Command::new("cmd");
            c.args(["/C", line]);
            c
        }
        Program::Shell(line) => {
            let mut c = Command::new("sh");
            c.args(["-c", line]);
            c
        }
    };
    if let Some(cwd) = &req.cwd {
        if !cwd.is_dir() {
            return CommandOutcome::failed(format!(
                "Working directory does not exist: {}",
                cwd.display()
            ));
        }
        cmd.current_dir(cwd);
    }
    child_env::prepare(&mut cmd)
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        // The backend's `project_workspace_root` command prints this, and derives from it the
        // root it sends project paths relative to; it must be the root tasks resolve against.
        .env(crate::settings::vars::PROJECTS_DIR, projects_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    process::isolate(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let what = match &req.program {
                Program::Argv(argv) => argv[0].clone(),
                Program::Shell(_) => "the shell".to_owned(),
            };
            return CommandOutcome::failed(if e.kind() == std::io::ErrorKind::NotFound {
                format!("Command not found: {what}")
            } else {
                format!("Could not start {what}: {e}")
            });
        }
    };
    #[cfg(unix)]
    let group = child.id();
    let cap = req.max_output_bytes;
    let mut stdout = tokio::spawn(read_capped(child.stdout.take(), cap));
    let mut stderr = tokio::spawn(read_capped(child.stderr.take(), cap));
    let (exit_code, timed_out) = match tokio::time::timeout(req.timeout, child.wait()).await {
        Ok(status) => (status.ok().and_then(|s| s.code()), false),
        Err(_) => {
            process::kill(&mut child).await;
            (None, true)
        }
    };
    // A process the command left in the background may hold the pipes open: give it a moment to
    // finish writing, then end the group, which closes them and lets the readers return what they
    // read. Nothing the command started outlives its answer.
    let (out, err) = tokio::join!(
        tokio::time::timeout(DRAIN_AFTER_EXIT, &mut stdout),
        tokio::time::timeout(DRAIN_AFTER_EXIT, &mut stderr)
    );
    let (stdout_open, stderr_open) = (out.is_err(), err.is_err());
    #[cfg(unix)]
    if let Some(pgid) = group {
        process::signal_group(pgid, process::Signal::Kill);
    }
    let text = |read: Result<(Vec<u8>, bool), tokio::task::JoinError>| match read {
        Ok((bytes, cut)) => (String::from_utf8_lossy(&bytes).into_owned(), cut),
        Err(_) => (String::new(), true),
    };
    let (stdout, stdout_cut) = text(match out {
        Ok(read) => read,
        Err(_) => stdout.await,
    });
    let (stderr, stderr_cut) = text(match err {
        Ok(read) => read,
        Err(_) => stderr.await,
    });
    let drained = !(stdout_open || stderr_open);
    let secs = req.timeout.as_secs_f64();
    let error = if timed_out {
        Some(format!("Command timed out after {secs} seconds"))
    } else if !drained {
        Some(format!(
            "The command exited but processes it started in the background kept its output open; they were stopped after {} s, and the output may be incomplete",
            DRAIN_AFTER_EXIT.as_secs()
        ))
    } else {
        None
    };
    CommandOutcome {
        exit_code,
        stdout,
        stderr,
        duration: started.elapsed().as_secs_f64(),
        timed_out,
        stdout_truncated: stdout_cut || stdout_open,
        stderr_truncated: stderr_cut || stderr_open,
        error,
    }
}

/// Up to `cap` bytes of a stream (cut at a character boundary), then keep draining so the child
/// never blocks on a full pipe. Returns the bytes and whether anything was cut.
pub async fn read_capped<R: AsyncRead + Unpin>(stream: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    if truncated {
        // Do not end in the middle of a UTF-8 sequence.
        let valid = match std::str::from_utf8(&kept) {
            Ok(_) => kept.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => kept.len(),
        };
        kept.truncate(valid);
    }
    (kept, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_argv_and_quotes_args_for_the_shell() {
        let r = parse(&json!({"command": "git status", "argv": ["git", "status"]})).unwrap();
        assert_eq!(
            r.program,
            Program::Argv(vec!["git".into(), "status".into()])
        );
        let r = parse(&json!({"command": "ls", "args": ["a b", "-l"], "timeout_seconds": 9999}))
            .unwrap();
        assert_eq!(r.program, Program::Shell("ls 'a b' -l".into()));
        assert_eq!(r.timeout, Duration::from_secs(600));
        assert_eq!(r.max_output_bytes, DEFAULT_MAX_OUTPUT);
        assert!(parse(&json!({})).is_err());
    }

    #[test]
    fn dangerous_env_names_refuse_the_command_naming_them() {
        let err = parse(&json!({"argv": ["true"], "env": {"OK": "1", "LD_PRELOAD": "/tmp/x.so", "BASH_ENV": "/tmp/rc"}}))
            .unwrap_err();
        assert!(
            err.contains("LD_PRELOAD") && err.contains("BASH_ENV"),
            "{err}"
        );
        assert!(!err.contains("/tmp/x.so"), "values are not echoed: {err}");
        assert!(parse(&json!({"argv": ["true"], "env": {"GIT_TOKEN": "t"}})).is_ok());
    }

    #[test]
    fn an_ack_with_5_mib_of_output_fits_the_packet_limit_and_says_it_was_cut() {
        let outcome = CommandOutcome {
            exit_code: Some(0),
            // Quotes double when JSON-encoded.
            stdout: "\"".repeat(MAX_OUTPUT),
            stderr: "warning\n".to_owned(),
            ..CommandOutcome::default()
        };
        let ack = outcome.to_ack();
        let size = serde_json::to_string(&ack).unwrap().len();
        assert!(size <= fit::PACKET_BUDGET, "{size}");
        assert_eq!(ack["stdout_truncated"], true);
        assert_eq!(ack["stderr_truncated"], false);
        assert_eq!(ack["stderr"], "warning\n");
        assert_eq!(ack["success"], true);
    }

    #[tokio::test]
    async fn read_capped_cuts_at_a_char_boundary_and_flags_it() {
        let data = "aé".repeat(10);
        let (bytes, truncated) = read_capped(Some(data.as_bytes()), 4).await;
        assert!(truncated);
        assert_eq!(String::from_utf8(bytes).unwrap(), "aéa");
    }

    #[tokio::test]
    async fn disabled_commands_get_a_clear_refusal() {
        let ack = execute(false, Path::new("/p"), json!({"argv": ["true"]})).await;
        assert_eq!(ack["success"], false);
        assert!(ack["error"].as_str().unwrap().contains("disabled"));
        assert_eq!(ack["timed_out"], false);
        assert!(ack["exit_code"].is_null());
    }
}
