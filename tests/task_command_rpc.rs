//! `device:execute_command` through TaskManager, with real processes (protocol.md §6).
#![cfg(unix)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::Outbox;
use wegent_executor::task::TaskManager;

fn manager(allow: bool) -> TaskManager {
    let config = TaskConfig {
        allow_remote_commands: allow,
        ..TaskConfig::default()
    };
    let (tx, _) = broadcast::channel(4);
    TaskManager::new(
        config,
        std::env::temp_dir(),
        "http://127.0.0.1:9".into(),
        Outbox::new(10),
        tx,
    )
}

fn assert_ack_shape(ack: &Value) {
    for key in [
        "success",
        "timed_out",
        "stdout_truncated",
        "stderr_truncated",
    ] {
        assert!(ack[key].is_boolean(), "{key} in {ack}");
    }
    for key in ["stdout", "stderr"] {
        assert!(ack[key].is_string(), "{key} in {ack}");
    }
    assert!(ack["duration"].is_f64(), "{ack}");
    assert!(
        ack["exit_code"].is_i64() || ack["exit_code"].is_null(),
        "{ack}"
    );
}

#[tokio::test]
async fn argv_runs_in_cwd_with_merged_env_and_closed_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let ack = manager(true)
        .execute_command(json!({
            "command": "ignored because argv wins",
            "argv": ["sh", "-c", "pwd; echo \"$GREETING\"; cat; echo err >&2; exit 3"],
            "cwd": dir.path(), "env": {"GREETING": "hi there"}, "timeout_seconds": 10,
        }))
        .await;
    assert_ack_shape(&ack);
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(ack["stdout"], format!("{}\nhi there\n", cwd.display()));
    assert_eq!(ack["stderr"], "err\n");
    assert_eq!(ack["exit_code"], 3);
    assert_eq!(ack["success"], false);
    assert!(ack.get("error").is_none());
}

#[tokio::test]
async fn the_shell_is_used_without_argv_and_success_means_exit_zero() {
    let ack = manager(true)
        .execute_command(json!({"command": "echo", "args": ["a b", "$HOME"]}))
        .await;
    assert_ack_shape(&ack);
    assert_eq!(ack["success"], true);
    assert_eq!(
        ack["stdout"], "a b $HOME\n",
        "args are quoted, not expanded"
    );
}

#[tokio::test]
async fn output_is_capped_with_flags() {
    let ack = manager(true)
        .execute_command(
            json!({"argv": ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo e >&2"],
                                "max_output_bytes": 1000}),
        )
        .await;
    assert_eq!(ack["stdout"].as_str().unwrap().len(), 1000);
    assert_eq!(ack["stdout_truncated"], true);
    assert_eq!(ack["stderr_truncated"], false);
    assert_eq!(ack["success"], true);
}

#[tokio::test]
async fn a_timeout_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let started = Instant::now();
    let ack = manager(true)
        .execute_command(json!({
            // The background child would write the marker after 2 s if it outlived the timeout.
            "argv": ["sh", "-c", format!("(sleep 2; touch {}) & sleep 30", marker.display())],
            "timeout_seconds": 1,
        }))
        .await;
    assert_ack_shape(&ack);
    assert_eq!(ack["timed_out"], true);
    assert_eq!(ack["success"], false);
    assert_eq!(ack["error"], "Command timed out after 1 seconds");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Wait past the point the background child would have written, bounded by a timeout on a
    // process we can observe: a fresh `sleep 2` run to completion, not a bare sleep of ours.
    let ack = manager(true)
        .execute_command(json!({"argv": ["sleep", "2"]}))
        .await;
    assert_eq!(ack["success"], true);
    assert!(
        !marker.exists(),
        "a child of the timed-out command kept running"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let m = manager(true);
    let ack = m
        .execute_command(json!({"argv": ["true"], "cwd": "/no/such/dir"}))
        .await;
    assert_ack_shape(&ack);
    assert_eq!(
        ack["error"],
        "Working directory does not exist: /no/such/dir"
    );
    let ack = m
        .execute_command(json!({"argv": ["no-such-program-xyz"]}))
        .await;
    assert_eq!(ack["error"], "Command not found: no-such-program-xyz");
    assert!(ack["exit_code"].is_null());
    let ack = m.execute_command(json!({"cwd": "/"})).await;
    assert!(ack["error"]
        .as_str()
        .unwrap()
        .contains("neither `argv` nor `command`"));
}

#[tokio::test]
async fn disabled_remote_commands_are_refused_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let ack = manager(false)
        .execute_command(json!({"argv": ["touch", marker]}))
        .await;
    assert_ack_shape(&ack);
    assert_eq!(ack["success"], false);
    assert!(ack["error"]
        .as_str()
        .unwrap()
        .contains("Remote commands are disabled"));
    assert!(!marker.exists());
}

/// A background process holding the output pipe: the answer carries what was read, says the
/// output may be incomplete, and the background process is ended.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_background_process_holding_the_pipe_does_not_hide_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("bg.pid");
    let ack = manager(true)
        .execute_command(json!({
            "command": format!("echo hi; sleep 100 & echo $! > '{}'", pid_file.display()),
            "timeout_seconds": 30,
        }))
        .await;
    assert_ack_shape(&ack);
    assert_eq!(ack["stdout"], "hi\n", "{ack}");
    assert_eq!(ack["stdout_truncated"], true, "{ack}");
    assert_eq!(ack["exit_code"], 0, "{ack}");
    let error = ack["error"].as_str().unwrap_or_default();
    assert!(error.contains("background"), "{ack}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        // Gone, or a zombie waiting for init.
        while std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        }) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the background sleep outlived the answer");
}

/// The backend learns the device's projects dir `P` from its `project_workspace_root` command
/// (protocol.md §16.2) and resolves project paths against the root derived from it; the answer
/// must be the dir this device's tasks use, whatever the device's own environment says.
#[tokio::test]
async fn project_workspace_root_answers_the_configured_projects_dir() {
    // The backend sends `argv = shlex.split(command)` of its registry entry, verbatim.
    let payload = json!({
        "command": r#"sh -c 'printf %s "${WEGENT_EXECUTOR_PROJECTS_DIR:-${WECODE_HOME:-$HOME/.wecode}/wegent-executor/workspace/projects}"'"#,
        "argv": ["sh", "-c", r#"printf %s "${WEGENT_EXECUTOR_PROJECTS_DIR:-${WECODE_HOME:-$HOME/.wecode}/wegent-executor/workspace/projects}""#],
        "args": [],
    });
    let home = tempfile::tempdir().unwrap();
    let configured = home.path().join("code").join("projects");
    let (tx, _) = broadcast::channel(4);
    let config = TaskConfig {
        projects_dir: Some(configured.clone()),
        ..TaskConfig::default()
    };
    let manager = TaskManager::new(
        config,
        home.path().to_owned(),
        "http://127.0.0.1:9".into(),
        Outbox::new(10),
        tx.clone(),
    );
    let ack = manager.execute_command(payload.clone()).await;
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["stdout"], configured.to_str().unwrap());

    // Without a configured dir the device uses `<home>/workspace/projects`, and says so.
    let manager = TaskManager::new(
        TaskConfig::default(),
        home.path().to_owned(),
        "http://127.0.0.1:9".into(),
        Outbox::new(10),
        tx,
    );
    let ack = manager.execute_command(payload).await;
    assert_eq!(
        ack["stdout"],
        home.path().join("workspace/projects").to_str().unwrap()
    );
}
