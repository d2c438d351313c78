//! A desktop session often sets `GIT_ASKPASS`/`SSH_ASKPASS` to a GUI that waits for the user
//! (ksshaskpass, a credential manager). The device must never reach it: its clone fails at
//! once instead. A binary of its own, because the test sets this process's environment.
#![cfg(target_os = "linux")]

#[path = "support/git_server.rs"]
mod git_server;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use git_server::{bare_repo, HttpGit};
use tokio::sync::watch;
use wegent_executor::task::git::{prepare_checkout, GitError};
use wegent_executor::task::workdir::GitSource;

#[tokio::test]
async fn a_waiting_askpass_of_the_user_is_never_started() {
    let root = tempfile::tempdir().unwrap();
    bare_repo(root.path(), "demo", 0);
    let marker = root.path().join("askpass-was-started");
    let askpass = root.path().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 600\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Set before any other thread of this binary reads the environment.
    std::env::set_var("GIT_ASKPASS", &askpass);
    std::env::set_var("SSH_ASKPASS", &askpass);

    let http = HttpGit::start(root.path()).await;
    let source = GitSource {
        url: http.url("locked", "demo.git"),
        branch: None,
    };
    let (_tx, mut stop) = watch::channel(None);
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        prepare_checkout(
            &root.path().join("checkout"),
            &source,
            None,
            Duration::from_secs(600),
            &mut stop,
        ),
    )
    .await
    .expect("the clone waited for the user's askpass");
    let err = result.unwrap_err();
    assert!(matches!(err, GitError::AuthRequired { .. }), "{err}");
    assert!(!marker.exists(), "the user's askpass program was started");
}
