//! What a task leaves on disk: created for the user only (0700, whatever the umask), removed on
//! `task:close-session` and after the retention period, and never the user's own folders (a
//! project folder, or a folder a link inside a scratch dir points at). Real CLI runs against the
//! mock Anthropic API, real files. Its own test binary: it sets the process umask.
#![cfg(unix)]

#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_anthropic::{MockAnthropic, Script};
use serde_json::json;
use task_harness::{config, payload, Rig, WAIT};
use tokio::sync::broadcast;
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::Outbox;
use wegent_executor::task::cleanup;
use wegent_executor::task::record::TaskRecord;
use wegent_executor::task::TaskManager;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A folder of the user's, with a file in it.
fn user_folder(parent: &Path, name: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "the user's work").unwrap();
    dir
}

fn intact(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("precious.txt")).is_ok_and(|t| t == "the user's work")
}

/// Waits until `path` no longer exists (removal runs off the runtime's threads).
async fn gone(path: &Path) {
    tokio::time::timeout(WAIT, async {
        while std::fs::symlink_metadata(path).is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} was not removed", path.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_removes_the_tasks_state_and_scratch_dir_but_never_user_folders() {
    // A permissive umask: the device's folders must not depend on the user's.
    // SAFETY: umask only sets the process's file creation mask.
    unsafe { libc::umask(0) };
    let mock = MockAnthropic::start(Script::Text("done".into())).await;
    let rig = Rig::new(config());
    let outside = tempfile::tempdir().unwrap();

    // A plain task: the device's scratch dir W/1.
    rig.manager
        .execute(payload(1, 11, "scratch task", &mock.url));
    rig.until_terminal(11).await;
    let scratch = rig.workspace(1);
    let private = rig.home.path().join("tasks/1");
    assert_eq!(mode(&scratch), 0o700, "the scratch dir is the user's only");
    assert_eq!(
        mode(&private),
        0o700,
        "the private state is the user's only"
    );
    assert_eq!(mode(&private.join("claude")), 0o700);
    // Something in the scratch dir links to the user's own folder (an agent may do that).
    let linked = user_folder(outside.path(), "linked");
    std::os::unix::fs::symlink(&linked, scratch.join("link-to-user-folder")).unwrap();

    // A project task: the user's folder, named in the payload.
    let project = user_folder(outside.path(), "myproject");
    let mut p = payload(2, 21, "project task", &mock.url);
    p["project_workspace_path"] = project.display().to_string().into();
    rig.manager.execute(p);
    rig.until_terminal(21).await;
    assert!(rig.home.path().join("tasks/2/task.json").is_file());

    rig.manager.close_session(&json!({"task_id": 1}));
    rig.manager.close_session(&json!({"task_id": 2}));
    gone(&private).await;
    gone(&scratch).await;
    gone(&rig.home.path().join("tasks/2")).await;
    assert!(intact(&linked), "the link was removed, not followed");
    assert!(intact(&project), "a project folder survives its task");
    let names: Vec<_> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["precious.txt"], "nothing of the device's in it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_during_a_turn_removes_the_folders_once_the_turn_has_stopped() {
    let mock = MockAnthropic::start(Script::Slow {
        chunks: 100,
        interval: Duration::from_millis(100),
    })
    .await;
    let rig = Rig::new(config());
    rig.manager.execute(payload(3, 31, "long task", &mock.url));
    // Wait for the first delta: the CLI runs in the scratch dir.
    loop {
        let e = rig.next().await;
        if e.name == "response.output_text.delta" {
            break;
        }
    }
    rig.manager.close_session(&json!({"task_id": 3}));
    rig.until_terminal(31).await;
    gone(&rig.home.path().join("tasks/3")).await;
    gone(&rig.workspace(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_unused_for_the_retention_period_are_swept_at_start_except_project_folders() {
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = home.path().join("workspace");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let week = 7 * 86_400;
    let record = |task_id: i64, cwd: &Path, by_device: bool, last_used: u64| {
        let private = home.path().join("tasks").join(task_id.to_string());
        std::fs::create_dir_all(private.join("claude")).unwrap();
        TaskRecord {
            cwd: cwd.to_owned(),
            created_by_device: by_device,
            last_used,
        }
        .save(&private)
        .unwrap();
        private
    };
    // Expired scratch task (with a link to a user folder inside), expired project task, and a
    // scratch task used yesterday.
    let old_scratch = user_folder(&root, "10");
    let linked = user_folder(outside.path(), "linked");
    std::os::unix::fs::symlink(&linked, old_scratch.join("link")).unwrap();
    let old_private = record(10, &old_scratch, true, now - week - 3600);
    let project = user_folder(outside.path(), "project");
    let project_private = record(11, &project, false, now - 30 * 86_400);
    let recent_scratch = user_folder(&root, "12");
    let recent_private = record(12, &recent_scratch, true, now - 86_400);

    let (tx, _) = broadcast::channel(8);
    let manager = TaskManager::new(
        TaskConfig {
            task_retention: Duration::from_secs(week),
            ..TaskConfig::default()
        },
        home.path().to_owned(),
        "http://127.0.0.1:9".into(),
        Outbox::new(10),
        tx,
    );
    manager.start_retention_sweeper();
    gone(&old_private).await;
    gone(&old_scratch).await;
    gone(&project_private).await;
    assert!(intact(&linked), "the link was removed, not followed");
    assert!(intact(&project), "a project folder outlives any retention");
    // The sweep has run; one more finds nothing else expired.
    let left = cleanup::sweep(
        home.path(),
        &root,
        Duration::from_secs(week),
        SystemTime::now(),
        &Default::default(),
    );
    assert_eq!(left, Vec::<i64>::new());
    assert!(recent_private.is_dir() && intact(&recent_scratch));
}
