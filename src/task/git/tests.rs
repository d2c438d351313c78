use super::*;

const URL: &str = "git://127.0.0.1:9418/demo.git";

fn account(login: &str, email: Option<&str>, id: Option<&str>) -> GitIdentity {
    GitIdentity {
        login: login.into(),
        email: email.map(Into::into),
        id: id.map(Into::into),
    }
}

#[test]
fn identity_needs_a_login_and_an_email_or_an_id() {
    let a = account("octo", Some("o@example.com"), Some("7"));
    assert_eq!(commit_identity(&a), Some(("octo", "o@example.com".into())));
    let a = account("octo", Some(" "), Some("7"));
    assert_eq!(
        commit_identity(&a),
        Some(("octo", "7+octo@users.noreply.github.com".into()))
    );
    assert_eq!(commit_identity(&account("octo", None, None)), None);
    assert_eq!(
        commit_identity(&account(" ", Some("o@example.com"), None)),
        None
    );
}

#[test]
fn an_identity_already_in_the_config_is_recognised() {
    let set = "[core]\n\tbare = false\n[user]\n\tname = octo\n\temail = o@example.com\n";
    assert!(identity_is_set(set, "octo", "o@example.com"));
    assert!(!identity_is_set(set, "octo", "other@example.com"));
    assert!(!identity_is_set(
        "[user]\n\tname = octo\n",
        "octo",
        "o@example.com"
    ));
    // Keys of another section, and an older value overridden later, do not count.
    let elsewhere = "[other]\n\tname = octo\n\temail = o@example.com\n";
    assert!(!identity_is_set(elsewhere, "octo", "o@example.com"));
    let overridden = format!("{set}[user]\n\tname = someone\n");
    assert!(!identity_is_set(&overridden, "octo", "o@example.com"));
}

#[test]
fn inspect_tells_the_path_states_apart() {
    let root = tempfile::tempdir().unwrap();
    let p = |name: &str| root.path().join(name);
    std::fs::create_dir(p("empty")).unwrap();
    std::fs::create_dir_all(p("repo/.git")).unwrap();
    std::fs::create_dir(p("worktree")).unwrap();
    std::fs::write(p("worktree/.git"), "gitdir: /elsewhere/.git/worktrees/w\n").unwrap();
    std::fs::create_dir(p("other")).unwrap();
    std::fs::write(p("other/notes.txt"), "mine").unwrap();
    std::fs::write(p("file"), "a file").unwrap();
    assert_eq!(inspect(&p("missing")).unwrap(), PathState::Missing);
    assert_eq!(inspect(&p("missing/deeper")).unwrap(), PathState::Missing);
    assert_eq!(inspect(&p("empty")).unwrap(), PathState::EmptyDir);
    assert_eq!(inspect(&p("repo")).unwrap(), PathState::Repository);
    assert_eq!(inspect(&p("worktree")).unwrap(), PathState::Repository);
    assert_eq!(inspect(&p("other")).unwrap(), PathState::OtherDir);
    assert_eq!(inspect(&p("file")).unwrap(), PathState::File);
}

#[test]
fn action_follows_the_table_of_the_protocol() {
    let dir = Path::new("/w/projects/demo");
    assert_eq!(
        action_for(PathState::Missing, dir, URL).unwrap(),
        Action::Clone { created_dir: true }
    );
    assert_eq!(
        action_for(PathState::EmptyDir, dir, URL).unwrap(),
        Action::Clone { created_dir: false }
    );
    assert_eq!(
        action_for(PathState::Repository, dir, URL).unwrap(),
        Action::Reuse
    );
    let err = action_for(PathState::OtherDir, dir, URL).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }));
    assert!(err.to_string().starts_with(
        "The project folder /w/projects/demo is not empty and is not a git repository"
    ));
    let err = action_for(PathState::File, dir, URL).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("The project folder /w/projects/demo is a file"));
}

/// Real stderr of git 2.47 / OpenSSH 9.2 / curl, captured for these cases (ssh auth lines are
/// OpenSSH's and GitHub's well-known texts: no ssh server runs here).
const CAPTURED: &[(&str, &str)] = &[
    (
        "branch",
        "Cloning into 'c1'...\nwarning: Could not find remote branch nope to clone.\n\
         fatal: Remote branch nope not found in upstream origin\n",
    ),
    (
        "auth_required",
        "Cloning into 'd1'...\nfatal: unable to get password from user\n",
    ),
    (
        "auth_required",
        "Cloning into 'd2'...\nfatal: could not read Username for 'http://127.0.0.1:18931': \
         terminal prompts disabled\n",
    ),
    (
        "auth_failed",
        "Cloning into 'd3'...\nfatal: Authentication failed for 'http://127.0.0.1:18931/bad/demo.git/'\n",
    ),
    (
        "auth_failed",
        "Cloning into 'd4'...\nfatal: unable to access 'http://127.0.0.1:18931/demo.git/': \
         The requested URL returned error: 403\n",
    ),
    (
        "auth_failed",
        "Cloning into 'x'...\ngit@github.com: Permission denied (publickey).\n\
         fatal: Could not read from remote repository.\n\n\
         Please make sure you have the correct access rights\nand the repository exists.\n",
    ),
    (
        "auth_failed",
        "Cloning into 'x'...\nHost key verification failed.\n\
         fatal: Could not read from remote repository.\n\n\
         Please make sure you have the correct access rights\nand the repository exists.\n",
    ),
    (
        "network",
        "Cloning into 'c3'...\nfatal: unable to connect to 127.0.0.1:\n\
         127.0.0.1[0: 127.0.0.1]: errno=Connection refused\n\n",
    ),
    (
        "network",
        "Cloning into 'c4'...\nfatal: unable to access 'http://127.0.0.1:1/demo.git/': Failed \
         to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server\n",
    ),
    (
        "network",
        "Cloning into 'c5'...\nfatal: unable to access 'http://nonexistent.invalid/demo.git/': \
         Could not resolve host: nonexistent.invalid\n",
    ),
    (
        "network",
        "Cloning into 'c6'...\nfatal: unable to look up nonexistent.invalid (port 9418) (Name \
         or service not known)\n",
    ),
    (
        "network",
        "Cloning into 'c7'...\nssh: connect to host 127.0.0.1 port 1: Connection refused\n\
         fatal: Could not read from remote repository.\n\n\
         Please make sure you have the correct access rights\nand the repository exists.\n",
    ),
    (
        "network",
        "Cloning into 'c8'...\nssh: Could not resolve hostname nonexistent.invalid: Name or \
         service not known\nfatal: Could not read from remote repository.\n\n\
         Please make sure you have the correct access rights\nand the repository exists.\n",
    ),
    (
        "not_found",
        "Cloning into 'c2'...\nfatal: '/tmp/pgit/nothere.git' does not appear to be a git \
         repository\nfatal: Could not read from remote repository.\n\n\
         Please make sure you have the correct access rights\nand the repository exists.\n",
    ),
    (
        "not_found",
        "Cloning into 'e1'...\nfatal: remote error: access denied or repository not exported: \
         /nothere.git\n",
    ),
    (
        "not_found",
        "Cloning into 'd5'...\nfatal: repository 'http://127.0.0.1:18931/gone/demo.git/' not found\n",
    ),
    (
        "other",
        "Cloning into 'c10'...\ngit: 'remote-foo' is not a git command. See 'git --help'.\n\n\
         The most similar command is\n\tremote-ftp\nfatal: remote helper 'foo' aborted session\n",
    ),
];

fn kind_name(e: &GitError) -> &'static str {
    match e {
        GitError::BranchMissing { .. } => "branch",
        GitError::AuthRequired { .. } => "auth_required",
        GitError::AuthFailed { .. } => "auth_failed",
        GitError::Network { .. } => "network",
        GitError::RepositoryNotFound { .. } => "not_found",
        GitError::CloneFailed { .. } => "other",
        _ => "unexpected",
    }
}

#[test]
fn captured_git_stderr_is_classified() {
    for (expected, stderr) in CAPTURED {
        let err = classify_failure(stderr, URL, Some("nope"));
        assert_eq!(kind_name(&err), *expected, "{stderr}\n→ {err}");
        // The detail is a real line of git's, never the generic closing words.
        let text = err.to_string();
        assert!(!text.ends_with("and the repository exists."), "{text}");
        assert!(text.contains(URL), "{text}");
    }
}

#[test]
fn details_are_the_telling_line() {
    let err = classify_failure(CAPTURED[11].1, URL, None);
    assert!(err
        .to_string()
        .ends_with("git said: ssh: connect to host 127.0.0.1 port 1: Connection refused"));
    let err = classify_failure(CAPTURED[0].1, URL, Some("nope"));
    assert!(err.to_string().starts_with(&format!(
        "Remote branch nope not found in {URL}. Check the project's branch name."
    )));
    let err = classify_failure(CAPTURED.last().unwrap().1, URL, None);
    assert_eq!(
        err.to_string(),
        format!("git clone of {URL} failed: fatal: remote helper 'foo' aborted session")
    );
    let err = classify_failure("", URL, None);
    assert!(err.to_string().ends_with("no error output"));
}

#[test]
fn details_are_redacted() {
    crate::redact::register_secret("tok-3c1a9f-secret");
    let err = classify_failure(
        "fatal: Authentication failed for 'https://x:tok-3c1a9f-secret@h/r.git'",
        URL,
        None,
    );
    let text = err.to_string();
    assert!(!text.contains("tok-3c1a9f-secret"), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
}

#[test]
fn errors_say_what_to_do() {
    let auth = classify_failure(CAPTURED[1].1, URL, None).to_string();
    for words in ["needs credentials", "ssh agent", "credential helper"] {
        assert!(auth.contains(words), "{auth}");
    }
    let failed = classify_failure(CAPTURED[5].1, URL, None).to_string();
    for words in ["Authentication", "ssh agent", "credential helper"] {
        assert!(failed.contains(words), "{failed}");
    }
    let net = classify_failure(CAPTURED[7].1, URL, None).to_string();
    assert!(net.contains("Could not reach the git server"), "{net}");
    assert!(GitError::GitNotInstalled
        .to_string()
        .contains("Install git"));
}

#[test]
fn a_url_password_is_taken_out_of_what_git_sees() {
    let remote =
        RemoteUrl::parse(" https://alice:p%40ss-w0rd-xyz@git.example.com/team/repo.git ").unwrap();
    assert_eq!(
        remote.for_git,
        "https://alice@git.example.com/team/repo.git"
    );
    assert_eq!(remote.password.as_deref(), Some("p@ss-w0rd-xyz"));
    assert_eq!(
        display_url("https://alice:p%40ss-w0rd-xyz@git.example.com/team/repo.git"),
        "https://alice@git.example.com/team/repo.git"
    );
    for verbatim in [
        "git@github.com:team/repo.git",
        "https://alice@git.example.com/team/repo.git",
        "/srv/git/repo.git",
        "git://127.0.0.1:9418/demo.git",
    ] {
        assert_eq!(
            RemoteUrl::parse(verbatim).unwrap(),
            RemoteUrl {
                for_git: verbatim.into(),
                password: None
            }
        );
    }
    assert!(matches!(
        RemoteUrl::parse("https://a:x%0Ay@h/r.git"),
        Err(GitError::BadUrl { .. })
    ));
}

#[test]
fn credential_helper_only_with_a_url_password_and_without_the_secret() {
    assert!(credential_args(false).is_empty());
    let args = credential_args(true);
    assert_eq!(args[..2], ["-c", "credential.helper="]);
    assert!(args[3].contains("$WEGENT_GIT_PASSWORD"), "{args:?}");
}

#[test]
fn a_credential_in_the_config_is_found() {
    let clean = "[remote \"origin\"]\n\turl = https://alice@h/r.git\n";
    assert!(!config_holds_credential(clean, Some("p@ss-w0rd-xyz")));
    assert!(!config_holds_credential(clean, None));
    let leaked = "[remote \"origin\"]\n\turl = https://alice:other@h/r.git\n";
    assert!(config_holds_credential(leaked, None));
    let raw = "[http]\n\textraHeader = Authorization: Basic p@ss-w0rd-xyz\n";
    assert!(config_holds_credential(raw, Some("p@ss-w0rd-xyz")));
}

#[test]
fn ssh_urls_are_recognised() {
    for ssh in [
        "git@github.com:team/repo.git",
        "ssh://git@h:22/r.git",
        "git+ssh://h/r.git",
        "h:r.git",
    ] {
        assert!(is_ssh_url(ssh), "{ssh}");
    }
    for other in [
        "https://h/r.git",
        "git://h/r.git",
        "file:///srv/r.git",
        "/srv/r.git",
        "./r.git",
    ] {
        assert!(!is_ssh_url(other), "{other}");
    }
}

#[tokio::test]
async fn a_missing_git_says_to_install_it() {
    let root = tempfile::tempdir().unwrap();
    let (_tx, mut stop) = tokio::sync::watch::channel(None);
    let source = GitSource {
        url: URL.into(),
        branch: None,
    };
    let dir = root.path().join("demo");
    let err = prepare_with(
        OsStr::new("/nonexistent/bin/git"),
        &dir,
        &source,
        None,
        Duration::from_secs(5),
        &mut stop,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::GitNotInstalled), "{err}");
    assert!(!dir.exists());
}
