//! The optional pre-execute hook: a user script run before each task (e.g. to pull a repo or
//! warm a cache). A non-zero exit fails the task with the script's own stderr.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::child_env;
use super::command_rpc::read_capped;
use super::process;

/// Enough stderr for a useful error, bounded so a noisy script cannot bloat the event.
const STDERR_CAP: usize = 16 * 1024;
const STDERR_SHOWN_CHARS: usize = 2_000;

#[derive(Debug, Clone, Copy)]
pub struct HookIds<'a> {
    pub task_id: i64,
    pub subtask_id: i64,
    pub cwd: &'a Path,
}

/// Run `hook` in the task's working directory. `Err` is the message for the user.
pub async fn run(hook: &Path, ids: HookIds<'_>, timeout: Duration) -> Result<(), String> {
    let mut cmd = Command::new(hook);
    child_env::prepare(&mut cmd)
        .current_dir(ids.cwd)
        .env("WEGENT_TASK_ID", ids.task_id.to_string())
        .env("WEGENT_SUBTASK_ID", ids.subtask_id.to_string())
        .env("WEGENT_WORKSPACE", ids.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    process::isolate(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "The pre-execute hook {} could not be started: {e}",
            hook.display()
        )
    })?;
    // A cancel drops this future: the hook's whole group goes with it, not only its pid.
    let mut guard = process::GroupGuard::new(&child);
    let stdout = tokio::spawn(read_capped(child.stdout.take(), STDERR_CAP));
    let stderr = tokio::spawn(read_capped(child.stderr.take(), STDERR_CAP));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(|e| format!("The pre-execute hook failed: {e}"))?,
        Err(_) => {
            process::kill(&mut child).await;
            return Err(format!(
                "The pre-execute hook {} did not finish within {} s",
                hook.display(),
                timeout.as_secs()
            ));
        }
    };
    guard.disarm();
    let out_len = stdout.await.map(|(b, _)| b.len()).unwrap_or(0);
    let (err_bytes, _) = stderr.await.unwrap_or_default();
    tracing::info!(
        task_id = ids.task_id,
        exit_code = ?status.code(),
        stdout_bytes = out_len,
        stderr_bytes = err_bytes.len(),
        "pre-execute hook finished"
    );
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&err_bytes);
    let tail = tail_chars(stderr.trim(), STDERR_SHOWN_CHARS);
    let code = status.code().map_or_else(
        || "was killed by a signal".to_owned(),
        |c| format!("exited with status {c}"),
    );
    Err(if tail.is_empty() {
        format!("The pre-execute hook {code}")
    } else {
        format!("The pre-execute hook {code}: {tail}")
    })
}

fn tail_chars(s: &str, max: usize) -> &str {
    let count = s.chars().count();
    if count <= max {
        return s;
    }
    let skip = s.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    &s[skip..]
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("hook.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn hook_sees_ids_and_a_failure_carries_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let ids = HookIds {
            task_id: 7,
            subtask_id: 8,
            cwd: dir.path(),
        };
        let ok = script(
            dir.path(),
            r#"echo "$WEGENT_TASK_ID/$WEGENT_SUBTASK_ID/$WEGENT_WORKSPACE" > seen"#,
        );
        run(&ok, ids, Duration::from_secs(10)).await.unwrap();
        let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
        assert_eq!(seen.trim(), format!("7/8/{}", dir.path().display()));

        let bad = script(dir.path(), "echo 'repo not reachable' >&2; exit 3");
        let err = run(&bad, ids, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(
            err,
            "The pre-execute hook exited with status 3: repo not reachable"
        );
    }

    /// Is any process of group `pgid` alive (not a zombie)?
    fn group_has_members(pgid: i32) -> bool {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    let fields: Vec<&str> = stat
                        .rsplit_once(')')
                        .map_or("", |(_, r)| r)
                        .split_whitespace()
                        .collect();
                    fields.first() != Some(&"Z")
                        && fields.get(2) == Some(&pgid.to_string().as_str())
                })
            })
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_cancel_during_the_hook_ends_its_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let ids = HookIds {
            task_id: 7,
            subtask_id: 8,
            cwd: dir.path(),
        };
        let pid_file = dir.path().join("hook.pid");
        // The hook's own child would outlive a kill of the hook's pid alone.
        let hook = script(
            dir.path(),
            &format!("sleep 300 & echo $$ > '{}'; wait", pid_file.display()),
        );
        let mut run = Box::pin(run(&hook, ids, Duration::from_secs(600)));
        let pgid: i32 = tokio::select! {
            _ = &mut run => panic!("the hook ended by itself"),
            pgid = async {
                loop {
                    if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok()) {
                        if group_has_members(pid) { return pid; }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } => pgid,
        };
        // The runner drops the hook's future on a cancel.
        drop(run);
        let gone = tokio::time::timeout(Duration::from_secs(10), async {
            while group_has_members(pgid) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "the hook's group {pgid} survived the cancel");
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail_chars("abcdef", 3), "def");
        assert_eq!(tail_chars("ab", 3), "ab");
    }
}
