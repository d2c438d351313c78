//! Paths the real CLI cannot be made to take on demand (a crash with stderr, a stray invalid
//! UTF-8 byte on stdout): a small shell script stands in for `claude` here, and says so.

#![cfg(unix)]

#[path = "support/task_harness.rs"]
mod task_harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use task_harness::{names, payload, Rig};
use wegent_executor::config::TaskConfig;

/// A stand-in `claude` (not the real CLI) running `body`.
fn fake_claude(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("claude");
    std::fs::write(&path, format!("#!/bin/sh\ncat > /dev/null\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn rig_with(claude: PathBuf) -> Rig {
    Rig::new(TaskConfig {
        claude_path: Some(claude),
        ..TaskConfig::default()
    })
}

#[tokio::test]
async fn a_crash_without_a_result_reports_the_exit_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let claude = fake_claude(
        dir.path(),
        "echo 'starting' >&2\necho 'Error: segmentation fault in worker' >&2\nexit 139",
    );
    let rig = rig_with(claude);
    rig.manager
        .execute(payload(1, 2, "hi", "http://127.0.0.1:9"));
    let events = rig.until_terminal(2).await;
    let data = &events.last().unwrap().payload["data"];
    assert_eq!(data["code"], "process_exited");
    assert_eq!(
        data["message"],
        "Claude Code exited with status 139 before finishing the task: starting\nError: segmentation fault in worker"
    );
}

#[tokio::test]
async fn an_invalid_utf8_line_does_not_stop_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"type":"system","subtype":"init","session_id":"s1"}"#,
        r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"after the bad byte"}]}}"#,
        r#"{"type":"result","subtype":"success","is_error":false,"result":"after the bad byte"}"#,
    ];
    let body = format!(
        "printf '\\377\\376 not json\\n'\n{}",
        lines.map(|l| format!("echo '{l}'")).join("\n")
    );
    let rig = rig_with(fake_claude(dir.path(), &body));
    rig.manager
        .execute(payload(3, 4, "hi", "http://127.0.0.1:9"));
    let events = rig.until_terminal(4).await;
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.output_text.delta",
            "response.completed"
        ]
    );
    assert_eq!(
        task_harness::final_text(events.last().unwrap()),
        "after the bad byte"
    );
}
