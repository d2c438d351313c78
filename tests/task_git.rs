//! The git checkout of a task with real git: bare repositories served over `file://`, `git
//! daemon` and smart HTTP on loopback. Clone, reuse, and every failure a user can meet, each
//! with a message that says what to do.
#![cfg(target_os = "linux")]

#[path = "support/git_server.rs"]
mod git_server;
#[path = "support/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/task_harness.rs"]
mod task_harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use git_server::{bare_repo, free_port, git, GitDaemon, HttpGit, HTTP_PASSWORD, HTTP_USER};
use mock_anthropic::{MockAnthropic, Script};
use serde_json::Value;
use task_harness::{config, final_text, names, payload, Rig};
use tokio::sync::watch;
use wegent_executor::task::git::{prepare_checkout, CheckoutOutcome, GitError};
use wegent_executor::task::workdir::{GitIdentity, GitSource};

/// The clone timeout of these tests: long enough that hitting it means a hang, not slowness.
const CLONE_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on awaited outcomes: a clone that prompts or hangs would exceed it.
const WAIT: Duration = Duration::from_secs(60);

struct Fixture {
    root: tempfile::TempDir,
    bare: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let bare = bare_repo(root.path(), "demo", 0);
        Self { root, bare }
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// A checkout path under a parent that does not exist yet.
    fn target(&self, name: &str) -> PathBuf {
        self.root.path().join("workspace/projects").join(name)
    }
}

fn source(url: &str, branch: Option<&str>) -> GitSource {
    GitSource {
        url: url.into(),
        branch: branch.map(Into::into),
    }
}

async fn checkout(
    dir: &Path,
    source: &GitSource,
    identity: Option<&GitIdentity>,
) -> Result<CheckoutOutcome, GitError> {
    let (_tx, mut stop) = watch::channel(None);
    tokio::time::timeout(
        WAIT,
        prepare_checkout(dir, source, identity, CLONE_TIMEOUT, &mut stop),
    )
    .await
    .expect("the checkout hung")
}

fn assert_says(err: &GitError, words: &[&str]) {
    let text = err.to_string();
    for w in words {
        assert!(text.contains(w), "{w:?} missing in: {text}");
    }
}

fn identity() -> GitIdentity {
    GitIdentity {
        login: "octocat".into(),
        email: None,
        id: Some("583231".into()),
    }
}

#[tokio::test]
async fn file_clone_of_a_branch_is_single_branch_and_gets_the_identity() {
    let fx = Fixture::new();
    let dir = fx.target("demo");
    let outcome = checkout(
        &dir,
        &source(&fx.file_url(), Some("feature")),
        Some(&identity()),
    )
    .await
    .unwrap();
    assert_eq!(outcome, CheckoutOutcome::Cloned { created_dir: true });
    assert!(dir.join("feature.txt").is_file());
    assert_eq!(git(&dir, &["rev-parse", "--abbrev-ref", "HEAD"]), "feature");
    assert_eq!(
        git(
            &dir,
            &["for-each-ref", "--format=%(refname)", "refs/remotes/"]
        ),
        "refs/remotes/origin/feature",
        "single branch"
    );
    assert_eq!(git(&dir, &["config", "--local", "user.name"]), "octocat");
    assert_eq!(
        git(&dir, &["config", "--local", "user.email"]),
        "583231+octocat@users.noreply.github.com"
    );
}

#[tokio::test]
async fn reuse_leaves_a_checkout_and_a_worktree_untouched() {
    let fx = Fixture::new();
    let dir = fx.target("demo");
    checkout(&dir, &source(&fx.file_url(), Some("main")), None)
        .await
        .unwrap();
    // Local work in progress, and a new commit upstream the device must not fetch.
    std::fs::write(dir.join("README.md"), "# my uncommitted change\n").unwrap();
    std::fs::write(dir.join("scratch.txt"), "untracked\n").unwrap();
    let upstream_before = git(&dir, &["rev-parse", "origin/main"]);
    let other = fx.root.path().join("other");
    git(
        fx.root.path(),
        &["clone", "-q", &fx.file_url(), other.to_str().unwrap()],
    );
    std::fs::write(other.join("new.txt"), "upstream\n").unwrap();
    git(&other, &["add", "-A"]);
    git(&other, &["commit", "-q", "-m", "upstream change"]);
    git(&other, &["push", "-q", "origin", "main"]);

    let outcome = checkout(
        &dir,
        &source(&fx.file_url(), Some("feature")),
        Some(&identity()),
    )
    .await
    .unwrap();
    assert_eq!(outcome, CheckoutOutcome::Reused);
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "# my uncommitted change\n"
    );
    assert!(dir.join("scratch.txt").is_file());
    assert_eq!(git(&dir, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(git(&dir, &["rev-parse", "origin/main"]), upstream_before);
    assert!(!dir.join("new.txt").exists());
    assert_eq!(git(&dir, &["config", "--local", "user.name"]), "octocat");

    // A worktree's `.git` is a file: reused too.
    let worktree = fx.target("demo-worktree");
    git(
        &dir,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            worktree.to_str().unwrap(),
        ],
    );
    assert!(worktree.join(".git").is_file());
    let outcome = checkout(&worktree, &source(&fx.file_url(), None), None)
        .await
        .unwrap();
    assert_eq!(outcome, CheckoutOutcome::Reused);
}

#[tokio::test]
async fn git_daemon_clone_into_an_empty_folder_and_its_failures() {
    let fx = Fixture::new();
    let daemon = GitDaemon::start(fx.root.path()).await;
    let dir = fx.target("demo");
    std::fs::create_dir_all(&dir).unwrap();
    let outcome = checkout(
        &dir,
        &source(&daemon.url("demo.git"), Some("feature")),
        None,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CheckoutOutcome::Cloned { created_dir: false });
    assert!(dir.join("feature.txt").is_file());
    assert!(dir.join("only-in-repo.txt").is_file());

    let missing_branch = fx.target("no-branch");
    let err = checkout(
        &missing_branch,
        &source(&daemon.url("demo.git"), Some("nope")),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::BranchMissing { .. }), "{err}");
    assert_says(&err, &["Remote branch nope not found", "branch name"]);
    assert!(!missing_branch.exists(), "the partial clone is removed");

    let err = checkout(
        &fx.target("no-repo"),
        &source(&daemon.url("nothere.git"), None),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::RepositoryNotFound { .. }), "{err}");
    assert_says(&err, &["was not found", "Check the URL", "nothere.git"]);
}

#[tokio::test]
async fn an_unreachable_repository_is_a_network_error() {
    let fx = Fixture::new();
    let port = free_port();
    for url in [
        format!("git://127.0.0.1:{port}/demo.git"),
        format!("http://127.0.0.1:{port}/demo.git"),
    ] {
        let dir = fx.target("unreachable");
        let err = checkout(&dir, &source(&url, Some("main")), None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Network { .. }), "{err}");
        assert_says(&err, &["Could not reach the git server", &url, "network"]);
        assert!(!dir.exists());
    }
}

#[tokio::test]
async fn smart_http_clone_works() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let dir = fx.target("demo");
    let outcome = checkout(
        &dir,
        &source(&http.url("git", "demo.git"), Some("main")),
        None,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CheckoutOutcome::Cloned { created_dir: true });
    assert!(dir.join("only-in-repo.txt").is_file());
}

#[tokio::test]
async fn a_clone_that_would_prompt_fails_fast_with_an_auth_error() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let dir = fx.target("locked");
    let url = http.url("locked", "demo.git");
    // `checkout` bounds this by WAIT: a prompt nobody answers would hang until then.
    let err = checkout(&dir, &source(&url, None), None).await.unwrap_err();
    assert!(matches!(err, GitError::AuthRequired { .. }), "{err}");
    assert_says(
        &err,
        &["needs credentials", "ssh agent", "credential helper", &url],
    );
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_url_password_authenticates_but_never_lands_in_the_config() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let dir = fx.target("with-password");
    let host = http.base_url.trim_start_matches("http://");
    let url = format!("http://{HTTP_USER}:{HTTP_PASSWORD}@{host}/auth/demo.git");
    let outcome = checkout(&dir, &source(&url, Some("main")), None)
        .await
        .unwrap();
    assert_eq!(outcome, CheckoutOutcome::Cloned { created_dir: true });
    assert!(dir.join("only-in-repo.txt").is_file());
    let config = std::fs::read_to_string(dir.join(".git/config")).unwrap();
    assert!(!config.contains(HTTP_PASSWORD), "{config}");
    assert_eq!(
        git(&dir, &["config", "remote.origin.url"]),
        format!("http://{HTTP_USER}@{host}/auth/demo.git")
    );

    // The same route without the password is refused: the password above really was used.
    let err = checkout(
        &fx.target("without-password"),
        &source(&format!("http://{HTTP_USER}@{host}/auth/demo.git"), None),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::AuthRequired { .. }), "{err}");
    assert!(!err.to_string().contains(HTTP_PASSWORD));
}

#[tokio::test]
async fn a_non_empty_folder_without_git_is_refused_and_kept() {
    let fx = Fixture::new();
    let dir = fx.target("mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "my notes\n").unwrap();
    let err = checkout(&dir, &source(&fx.file_url(), None), None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    assert_says(
        &err,
        &[
            &format!("The project folder {}", dir.display()),
            "is not empty and is not a git repository",
            "Empty or move the folder",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "my notes\n"
    );
    assert!(!dir.join(".git").exists());
}

#[tokio::test]
async fn a_file_path_is_refused_and_kept() {
    let fx = Fixture::new();
    let file = fx.root.path().join("a-file");
    std::fs::write(&file, "content\n").unwrap();
    let err = checkout(&file, &source(&fx.file_url(), None), None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::IsAFile { .. }), "{err}");
    assert_says(
        &err,
        &[&file.display().to_string(), "is a file", "choose another"],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "content\n");
}

#[tokio::test]
async fn cancel_stops_a_stalled_clone_at_once_and_leaves_nothing() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let dir = fx.target("stalled");
    let arg = dir.to_str().unwrap().to_owned();
    let source = source(&http.url("stall", "demo.git"), None);
    let (tx, mut stop) = watch::channel(None);
    let clone = prepare_checkout(&dir, &source, None, CLONE_TIMEOUT, &mut stop);
    tokio::pin!(clone);
    tokio::select! {
        result = &mut clone => panic!("a stalled clone finished: {result:?}"),
        _ = http.stalled.notified() => {}
    }
    // The server holds git's request: git runs, in its own process group.
    let pids = procs::processes_with_arg(&arg);
    assert_eq!(pids.len(), 1, "one `git clone` with the target: {pids:?}");
    let pgid = procs::process_group(pids[0]).unwrap();
    assert_eq!(pgid, pids[0] as i32, "git leads its own process group");

    tx.send(Some("Cancelled by the user".into())).unwrap();
    let err = tokio::time::timeout(WAIT, clone)
        .await
        .expect("cancel did not stop the clone")
        .unwrap_err();
    assert!(matches!(err, GitError::Cancelled { .. }), "{err}");
    assert_says(&err, &["was cancelled", "Cancelled by the user"]);
    procs::await_group_gone(pgid).await;
    assert!(procs::processes_with_arg(&arg).is_empty());
    assert!(!dir.exists(), "the partial clone is removed");
}

#[tokio::test]
async fn a_clone_past_its_time_limit_is_stopped() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let dir = fx.target("slow");
    let (_tx, mut stop) = watch::channel(None);
    let err = tokio::time::timeout(
        WAIT,
        prepare_checkout(
            &dir,
            &source(&http.url("stall", "demo.git"), None),
            None,
            Duration::from_secs(1),
            &mut stop,
        ),
    )
    .await
    .expect("the time limit did not stop the clone")
    .unwrap_err();
    assert!(matches!(err, GitError::TimedOut { .. }), "{err}");
    assert_says(
        &err,
        &["did not finish within 1 s", "git_clone_timeout_secs"],
    );
    assert!(!dir.exists());
    assert!(procs::processes_with_arg(dir.to_str().unwrap()).is_empty());
}

#[tokio::test]
async fn a_dropped_checkout_leaves_no_git_process() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let dir = fx.target("dropped");
    let arg = dir.to_str().unwrap().to_owned();
    let source = source(&http.url("stall", "demo.git"), None);
    let (_tx, mut stop) = watch::channel(None);
    let pgid = {
        let clone = prepare_checkout(&dir, &source, None, CLONE_TIMEOUT, &mut stop);
        tokio::pin!(clone);
        tokio::select! {
            result = &mut clone => panic!("a stalled clone finished: {result:?}"),
            _ = http.stalled.notified() => {}
        }
        let pids = procs::processes_with_arg(&arg);
        assert_eq!(pids.len(), 1, "{pids:?}");
        procs::process_group(pids[0]).unwrap()
        // The task is aborted: its future is dropped mid-clone.
    };
    procs::await_group_gone(pgid).await;
}

// Through the task runner: the real Claude CLI against the mock model, in the checkout.

/// A `task:execute` for a git project at `projects/demo` (relative to the workspace root, as
/// the backend sends it), with the user's git account.
fn git_project_payload(task_id: i64, url: &str, mock: &MockAnthropic) -> Value {
    let mut p = payload(
        task_id,
        task_id + 1,
        "show the repository marker",
        &mock.url,
    );
    p["git_url"] = url.into();
    p["branch_name"] = "main".into();
    p["workspace_source"] = "git".into();
    p["project_workspace_path"] = "projects/demo".into();
    p["project_id"] = 2.into();
    p["user"]["git_login"] = "octocat".into();
    p["user"]["git_id"] = 583231.into();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_task_clones_before_the_agent_runs_in_the_checkout() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.root.path()).await;
    let seen = fx.root.path().join("seen.txt");
    // The agent's tool reads a file that exists only in the cloned repository.
    let mock = MockAnthropic::start(Script::RunCommand {
        command: format!("cp only-in-repo.txt {}", seen.display()),
        then: "Copied.".into(),
    })
    .await;
    let host = http.base_url.trim_start_matches("http://");
    let url = format!("http://{HTTP_USER}:{HTTP_PASSWORD}@{host}/auth/demo.git");
    let rig = Rig::new(config());
    rig.manager.execute(git_project_payload(20, &url, &mock));
    let events = rig.until_terminal(21).await;
    assert_eq!(
        names(&events).last(),
        Some(&"response.completed"),
        "{events:#?}"
    );
    assert!(final_text(events.last().unwrap()).ends_with("Copied."));
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "marker-7f3e91 from the cloned repository\n"
    );
    let checkout = rig.home.path().join("workspace/projects/demo");
    let config = std::fs::read_to_string(checkout.join(".git/config")).unwrap();
    assert!(!config.contains(HTTP_PASSWORD), "{config}");
    assert_eq!(
        git(&checkout, &["config", "--local", "user.name"]),
        "octocat"
    );
    assert_eq!(
        git(&checkout, &["config", "--local", "user.email"]),
        "583231+octocat@users.noreply.github.com"
    );
    // No payload secret and no device state in the user's checkout.
    assert_eq!(git(&checkout, &["status", "--porcelain"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_failure_ends_the_task_with_its_message_and_the_next_task_runs() {
    let fx = Fixture::new();
    let mock = MockAnthropic::start(Script::Text("still here".into())).await;
    let rig = Rig::new(config());
    let folder = rig.home.path().join("workspace/projects/demo");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "mine\n").unwrap();
    rig.manager
        .execute(git_project_payload(30, &fx.file_url(), &mock));
    let events = rig.until_terminal(31).await;
    let last = events.last().unwrap();
    assert_eq!(last.name, "error", "{events:#?}");
    let message = last.payload["data"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "The project folder {} is not empty and is not a git repository",
            folder.display()
        )),
        "{message}"
    );
    assert!(mock.requests().is_empty(), "the agent must not start");
    assert_eq!(
        std::fs::read_to_string(folder.join("notes.txt")).unwrap(),
        "mine\n"
    );

    // The same device goes on: the next task (no git) completes.
    rig.manager.execute(payload(32, 33, "hello", &mock.url));
    let events = rig.until_terminal(33).await;
    assert_eq!(names(&events).last(), Some(&"response.completed"));
}
