//! Tasks in the user's project folders (protocol.md §16.2–16.5): the real Claude Code CLI
//! against the mock model, run by the TaskManager with a configured projects dir. The mock makes
//! the CLI run real shell commands in the task's directory, and the tests check what they saw.
#![cfg(unix)]

#[path = "support/git_server.rs"]
mod git_server;
#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::{Path, PathBuf};

use mock_anthropic::{MockAnthropic, Script, TOOL_RESULT};
use serde_json::Value;
use task_harness::{config, final_text, payload, Rig};
use wegent_executor::config::TaskConfig;
use wegent_executor::outbox::OutboundEvent;
use wegent_executor::task::record::TaskRecord;

/// A TaskManager whose projects dir is `<work>/projects`, so `W = <work>`.
struct ProjectsRig {
    rig: Rig,
    work: tempfile::TempDir,
}

impl ProjectsRig {
    fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        let rig = Rig::new(TaskConfig {
            projects_dir: Some(work.path().join("projects")),
            ..config()
        });
        Self { rig, work }
    }

    /// Run one turn to its terminal event.
    async fn turn(&self, payload: Value) -> OutboundEvent {
        let subtask_id = payload["subtask_id"].as_i64().unwrap();
        self.rig.manager.execute(payload);
        self.rig
            .until_terminal(subtask_id)
            .await
            .pop()
            .expect("a terminal event")
    }

    fn private_dir(&self, task_id: i64) -> PathBuf {
        self.rig.home.path().join("tasks").join(task_id.to_string())
    }
}

/// A `local_path` project turn, as the backend sends it (§16.3 a).
fn project_payload(task_id: i64, subtask_id: i64, prompt: &str, url: &str, path: &str) -> Value {
    let mut p = payload(task_id, subtask_id, prompt, url);
    p["project_id"] = 1.into();
    p["workspace_source"] = "local_path".into();
    p["project_workspace_path"] = path.into();
    p
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn canonical(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_path_task_reads_a_file_that_only_the_project_folder_has() {
    let mock = MockAnthropic::start(Script::RunCommand {
        command: "cat only-in-this-project.txt".into(),
        then: format!("The file says: {TOOL_RESULT}"),
    })
    .await;
    let rig = ProjectsRig::new();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("only-in-this-project.txt"),
        "kiwi-4711 lives here",
    )
    .unwrap();
    let path = project.path().to_str().unwrap();

    let done = rig
        .turn(project_payload(
            20,
            21,
            "what does the file say?",
            &mock.url,
            path,
        ))
        .await;
    assert_eq!(done.name, "response.completed", "{:?}", done.payload);
    assert!(
        final_text(&done).contains("kiwi-4711 lives here"),
        "the tool ran in the project folder: {}",
        final_text(&done)
    );
    let seen = mock.requests();
    assert_eq!(seen[0].cwd, canonical(project.path()), "the CLI's cwd");

    // The user's folder holds exactly what it held: no config dir, transcripts, temp files,
    // session id or system prompt of the device.
    assert_eq!(entries(project.path()), ["only-in-this-project.txt"]);
    let private = rig.private_dir(20);
    for name in ["claude", "session-34", "task.json"] {
        assert!(
            private.join(name).exists(),
            "{name} in {}",
            private.display()
        );
    }
    let record = TaskRecord::load(&private).unwrap().unwrap();
    assert_eq!(record.cwd, project.path());
    assert!(
        !record.created_by_device,
        "a project folder is never the device's"
    );
    // No task folder appeared under the workspace root either.
    assert!(!rig.work.path().join("20").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_project_path_resolves_under_the_workspace_root() {
    let mock = MockAnthropic::start(Script::RunCommand {
        command: "pwd".into(),
        then: format!("cwd={TOOL_RESULT}"),
    })
    .await;
    let rig = ProjectsRig::new();
    let done = rig
        .turn(project_payload(
            22,
            23,
            "where am I?",
            &mock.url,
            "projects/x",
        ))
        .await;
    assert_eq!(done.name, "response.completed", "{:?}", done.payload);
    let expected = rig.work.path().join("projects").join("x");
    assert!(expected.is_dir(), "the missing project folder was created");
    let answer = final_text(&done);
    assert!(
        answer.contains(&format!("cwd={}\n", canonical(&expected))),
        "{answer}"
    );
    let record = TaskRecord::load(&rig.private_dir(22)).unwrap().unwrap();
    assert_eq!((record.cwd, record.created_by_device), (expected, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_resumes_in_the_same_folder_and_new_session_starts_fresh() {
    let mock = MockAnthropic::start(Script::Text("noted".into())).await;
    let rig = ProjectsRig::new();
    let project = tempfile::tempdir().unwrap();
    let path = project.path().to_str().unwrap();

    let first = project_payload(60, 61, "remember the word kiwi", &mock.url, path);
    assert_eq!(rig.turn(first).await.name, "response.completed");
    let second = project_payload(60, 62, "which word?", &mock.url, path);
    assert_eq!(rig.turn(second).await.name, "response.completed");
    let mut fresh = project_payload(60, 63, "start over", &mock.url, path);
    fresh["new_session"] = true.into();
    assert_eq!(rig.turn(fresh).await.name, "response.completed");

    let seen = mock.requests();
    assert_eq!(seen.len(), 3);
    // The follow-up's conversation starts with the first turn: the session was resumed.
    assert_eq!(seen[1].prompt, "remember the word kiwi");
    // `new_session:true`: a conversation that starts with its own message.
    assert_eq!(seen[2].prompt, "start over");
    let cwd = canonical(project.path());
    assert!(seen.iter().all(|r| r.cwd == cwd), "same cwd every turn");
    assert!(entries(project.path()).is_empty(), "nothing of ours in it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_chat_reports_the_folder_it_used() {
    let mock = MockAnthropic::start(Script::Text("hi".into())).await;
    let rig = ProjectsRig::new();
    let mut p = payload(30, 31, "hello", &mock.url);
    p["standalone_chat_workspace"] = true.into();
    let done = rig.turn(p).await;
    assert_eq!(done.name, "response.completed");
    // First turn without a path: the device's scratch dir `W/<task_id>`, which the backend
    // pins and sends back as `project_workspace_path` on later turns (§16.5).
    let scratch = rig.work.path().join("30");
    assert_eq!(
        done.payload["data"]["response"]["standalone_chat_workspace_path"],
        scratch.to_str().unwrap()
    );
    let record = TaskRecord::load(&rig.private_dir(30)).unwrap().unwrap();
    assert!(record.created_by_device);

    // A plain task does not carry the key.
    let done = rig.turn(payload(32, 33, "hello", &mock.url)).await;
    assert!(done.payload["data"]["response"]
        .get("standalone_chat_workspace_path")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_path_that_is_a_file_fails_with_its_name_and_the_next_task_runs() {
    let mock = MockAnthropic::start(Script::Text("fine".into())).await;
    let rig = ProjectsRig::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not a folder").unwrap();

    let done = rig
        .turn(project_payload(
            40,
            41,
            "hi",
            &mock.url,
            file.to_str().unwrap(),
        ))
        .await;
    assert_eq!(done.name, "error");
    let message = done.payload["data"]["message"].as_str().unwrap();
    assert!(
        message.contains(file.to_str().unwrap()) && message.contains("is a file"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");

    let done = rig
        .turn(project_payload(42, 43, "hi", &mock.url, "../outside"))
        .await;
    assert_eq!(done.name, "error");
    assert!(done.payload["data"]["message"]
        .as_str()
        .unwrap()
        .contains("`../outside`"));
    assert!(mock.requests().is_empty(), "no CLI ran for bad folders");

    let done = rig.turn(payload(44, 45, "hi", &mock.url)).await;
    assert_eq!(done.name, "response.completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_for_a_running_task_stops_the_older_turn_first() {
    let mock = MockAnthropic::start(Script::Slow {
        chunks: 30,
        interval: std::time::Duration::from_millis(100),
    })
    .await;
    let rig = ProjectsRig::new();
    rig.rig
        .manager
        .execute(payload(50, 51, "long job", &mock.url));
    loop {
        let event = rig.rig.next().await;
        if event.name == "response.output_text.delta" {
            break;
        }
    }
    rig.rig
        .manager
        .execute(payload(50, 52, "never mind", &mock.url));
    let older = rig.rig.until_terminal(51).await;
    let older = older.last().unwrap();
    assert_eq!(older.name, "response.incomplete");
    assert!(older.payload["data"]["response"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("newer message"));
    let newer = rig.rig.until_terminal(52).await;
    assert_eq!(newer.last().unwrap().name, "response.completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_the_cli_cannot_resume_is_replaced_by_a_fresh_one() {
    let mock = MockAnthropic::start(Script::Text("fresh answer".into())).await;
    let rig = ProjectsRig::new();
    let project = tempfile::tempdir().unwrap();
    let path = project.path().to_str().unwrap();
    // A session id the CLI has no transcript for (config dir wiped, another machine's id).
    let private = rig.private_dir(70);
    std::fs::create_dir_all(&private).unwrap();
    let lost = "5f0c9a8e-0000-4000-8000-000000000000";
    std::fs::write(private.join("session-34"), lost).unwrap();

    let done = rig
        .turn(project_payload(70, 71, "hello again", &mock.url, path))
        .await;
    assert_eq!(done.name, "response.completed", "{:?}", done.payload);
    assert_eq!(final_text(&done), "fresh answer");
    let seen = mock.requests();
    assert_eq!(seen.len(), 1, "one fresh conversation");
    assert_eq!(seen[0].prompt, "hello again");
    let saved = std::fs::read_to_string(private.join("session-34")).unwrap();
    assert!(
        !saved.is_empty() && saved != lost,
        "the new session is saved"
    );
}

/// The git token exactly as the backend sends it: AES-encrypted, unusable by the device
/// (protocol.md §16.4), and never to be written anywhere.
const ENCRYPTED_GIT_TOKEN: &str = "jy/6c8Sd43RgUqCXTOcmLkIEaY2jxhoHNZIaMMmb3l8=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_project_is_cloned_and_the_cli_reads_a_file_only_the_repository_has() {
    let repos = tempfile::tempdir().unwrap();
    git_server::bare_repo(repos.path(), "demo", 0);
    let daemon = git_server::GitDaemon::start(repos.path()).await;
    let mock = MockAnthropic::start(Script::RunCommand {
        command: "cat only-in-repo.txt".into(),
        then: format!("The repository says: {TOOL_RESULT}"),
    })
    .await;
    let rig = ProjectsRig::new();
    let url = daemon.url("demo.git");
    // §16.3 b: a `git` project, relative to W, with the user's git account.
    let mut p = payload(50, 51, "what does the repository say?", &mock.url);
    p["project_id"] = 2.into();
    p["workspace_source"] = "git".into();
    p["project_workspace_path"] = "projects/demo".into();
    p["git_url"] = url.as_str().into();
    p["branch_name"] = "main".into();
    p["user"]["git_login"] = "research-bot".into();
    p["user"]["git_email"] = "research-bot@example.invalid".into();
    p["user"]["git_token"] = ENCRYPTED_GIT_TOKEN.into();

    let done = rig.turn(p).await;
    assert_eq!(done.name, "response.completed", "{:?}", done.payload);
    assert!(
        final_text(&done).contains("marker-7f3e91 from the cloned repository"),
        "the tool ran in the clone: {}",
        final_text(&done)
    );
    let checkout = rig.work.path().join("projects/demo");
    assert_eq!(
        mock.requests()[0].cwd,
        canonical(&checkout),
        "the CLI's cwd"
    );
    let config = std::fs::read_to_string(checkout.join(".git/config")).unwrap();
    assert!(config.contains(&format!("url = {url}")), "{config}");
    assert!(!config.contains(ENCRYPTED_GIT_TOKEN), "{config}");
    assert_eq!(
        git_server::git(&checkout, &["config", "--local", "user.email"]),
        "research-bot@example.invalid"
    );
    // The checkout holds the repository and nothing of the device's.
    assert_eq!(git_server::git(&checkout, &["status", "--porcelain"]), "");
    let record = TaskRecord::load(&rig.private_dir(50)).unwrap().unwrap();
    assert_eq!(record.cwd, checkout);
    assert!(!record.created_by_device, "a project's clone is the user's");
}
