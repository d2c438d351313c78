use super::*;
use crate::keychain::InMemoryStore;

fn home() -> Sourced<PathBuf> {
    sourced(PathBuf::from("/h/.wegent-executor"), Source::Default)
}

fn run(
    flags: &Overrides,
    env: &[(&'static str, &'static str)],
    file: Option<&FileConfig>,
) -> Result<Settings, SettingsError> {
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    resolve(
        flags,
        &env,
        file,
        home(),
        PathBuf::from("/h/.wegent-executor/config.toml"),
    )
}

fn file(text: &str) -> FileConfig {
    toml::from_str(text).unwrap()
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let f = file(
        r#"backend_url = "http://file:1"
device_name = "from file""#,
    );
    let env = [
        (vars::BACKEND_URL, "http://env:2/"),
        (vars::DEVICE_NAME, "from env"),
    ];
    let flags = Overrides {
        backend_url: Some("http://flag:3".into()),
        ..Overrides::default()
    };
    let s = run(&flags, &env, Some(&f)).unwrap();
    assert_eq!(
        s.backend_url.unwrap(),
        sourced("http://flag:3".to_owned(), Source::Flag)
    );
    assert_eq!(
        s.device_name.unwrap().source,
        Source::Env(vars::DEVICE_NAME)
    );

    let s = run(&Overrides::default(), &env, Some(&f)).unwrap();
    let url = s.backend_url.unwrap();
    assert_eq!(
        (url.value.as_str(), url.source),
        ("http://env:2", Source::Env(vars::BACKEND_URL))
    );

    let s = run(&Overrides::default(), &[], Some(&f)).unwrap();
    assert_eq!(s.backend_url.unwrap().source, Source::File);
    assert!(s.config_file_found);
    assert_eq!(s.max_slots, sourced(5, Source::Default));
    assert_eq!(s.task_timeout.value, Duration::from_secs(3600));
    assert!(s.allow_remote_commands.value);
    assert!(s.keychain_enabled);

    let s = run(&Overrides::default(), &[], None).unwrap();
    assert!(s.backend_url.is_none() && !s.config_file_found);
    let err = s.require_backend().unwrap_err().to_string();
    assert!(
        err.contains("wegent-devserver") && err.contains(vars::BACKEND_URL),
        "{err}"
    );
}

#[test]
fn all_documented_file_keys_are_read() {
    let f = file(
        r#"
backend_url = "https://w.example"
socket_url = "wss://ws.example"
web_url = "https://app.example"
device_name = "Laptop"
max_slots = 20
claude_path = "/opt/claude"
task_timeout_secs = 60
pre_execute_hook = "/opt/hook.sh"
allow_remote_commands = false
projects_dir = "/srv/projects"
git_clone_timeout_secs = 120
log_level = "debug"
max_queued_tasks = 7
task_retention_days = 2
"#,
    );
    let s = run(&Overrides::default(), &[], Some(&f)).unwrap();
    let c = s.to_config("dev-1".into(), "Laptop".into()).unwrap();
    assert_eq!(c.backend_url, "https://w.example");
    assert_eq!(c.socket_url(), "wss://ws.example");
    assert_eq!(c.web_url(), "https://app.example");
    assert_eq!(c.tasks.max_slots, 20);
    assert_eq!(c.tasks.claude_path, Some(PathBuf::from("/opt/claude")));
    assert_eq!(c.tasks.task_timeout, Duration::from_secs(60));
    assert_eq!(
        c.tasks.pre_execute_hook,
        Some(PathBuf::from("/opt/hook.sh"))
    );
    assert!(!c.tasks.allow_remote_commands);
    assert_eq!(c.tasks.projects_dir, Some(PathBuf::from("/srv/projects")));
    assert_eq!(c.tasks.git_clone_timeout, Duration::from_secs(120));
    assert_eq!(c.tasks.max_queued, 7);
    assert_eq!(c.tasks.task_retention, Duration::from_secs(2 * 86_400));
    assert_eq!(c.home, PathBuf::from("/h/.wegent-executor"));
    assert_eq!(s.log_level.unwrap().value, "debug");
}

#[test]
fn bad_values_name_the_key_value_and_source() {
    let too_many = Overrides {
        max_slots: Some(21),
        ..Overrides::default()
    };
    let err = run(&too_many, &[], None).unwrap_err().to_string();
    assert!(
        err.contains("max_slots = 21 (command line)") && err.contains("between 1 and 20"),
        "{err}"
    );
    let err = run(&Overrides::default(), &[], Some(&file("max_slots = 0")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("(config.toml)"), "{err}");
    let err = run(
        &Overrides::default(),
        &[(vars::BACKEND_URL, "localhost:8000")],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("env WEGENT_BACKEND_URL"), "{err}");
    let err = run(
        &Overrides::default(),
        &[],
        Some(&file("task_timeout_secs = 0")),
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least 1 second"), "{err}");
    let err = run(
        &Overrides::default(),
        &[],
        Some(&file("git_clone_timeout_secs = 0")),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("git_clone_timeout_secs = 0 (config.toml)"),
        "{err}"
    );
}

#[test]
fn config_file_typos_and_syntax_errors_are_reported_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CONFIG_FILE);
    assert_eq!(load_file(&path).unwrap(), None);
    std::fs::write(&path, "backend_ur = \"http://x\"\n").unwrap();
    let err = load_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("config.toml") && err.contains("backend_ur"),
        "{err}"
    );
    std::fs::write(&path, "max_slots = \n").unwrap();
    assert!(matches!(
        load_file(&path),
        Err(SettingsError::BadFile { .. })
    ));
}

#[test]
fn home_comes_from_flag_env_or_user_home() {
    let env: HashMap<&str, &str> = [(vars::HOME, "/srv/wegent")].into_iter().collect();
    let none: HashMap<&str, &str> = HashMap::new();
    let user = Some(PathBuf::from("/home/u"));
    let flag = resolve_home(Some(Path::new("~/x")), &env, user.clone()).unwrap();
    assert_eq!(flag, sourced(PathBuf::from("/home/u/x"), Source::Flag));
    let from_env = resolve_home(None, &env, user.clone()).unwrap();
    assert_eq!(from_env.value, PathBuf::from("/srv/wegent"));
    let default = resolve_home(None, &none, user).unwrap();
    assert_eq!(default.value, PathBuf::from("/home/u/.wegent-executor"));
    assert!(matches!(
        resolve_home(None, &none, None),
        Err(SettingsError::NoHome)
    ));
}

#[test]
fn token_precedence_flag_env_keychain() {
    let store = InMemoryStore::with_token(Token::new("wg-from-keychain"));
    let env: HashMap<&str, &str> = [(vars::AUTH_TOKEN, "wg-from-auth-env")]
        .into_iter()
        .collect();
    let (t, src) = resolve_token(Some("wg-from-flag"), &env, Some(&store))
        .unwrap()
        .unwrap();
    assert_eq!((t.expose(), src), ("wg-from-flag", TokenSource::Flag));
    let (t, src) = resolve_token(None, &env, Some(&store)).unwrap().unwrap();
    assert_eq!(
        (t.expose(), src),
        ("wg-from-auth-env", TokenSource::Env(vars::AUTH_TOKEN))
    );
    let both: HashMap<&str, &str> = [(vars::AUTH_TOKEN, "wg-b"), (vars::TOKEN, "wg-a")]
        .into_iter()
        .collect();
    let (t, _) = resolve_token(None, &both, None).unwrap().unwrap();
    assert_eq!(t.expose(), "wg-a");
    let none: HashMap<&str, &str> = HashMap::new();
    let (t, src) = resolve_token(None, &none, Some(&store)).unwrap().unwrap();
    assert_eq!(
        (t.expose(), src),
        ("wg-from-keychain", TokenSource::Keychain)
    );
    assert_eq!(resolve_token(None, &none, None).unwrap(), None);
    store.fail_with(Some(KeychainError::NoService("x".into())));
    assert!(resolve_token(None, &none, Some(&store)).is_err());
    // A failing keychain does not matter when the environment has the token.
    assert!(resolve_token(None, &env, Some(&store)).unwrap().is_some());
}

#[test]
fn keychain_can_be_switched_off_and_remote_commands_refused() {
    let flags = Overrides {
        no_remote_commands: true,
        ..Overrides::default()
    };
    let s = run(
        &flags,
        &[(vars::NO_KEYCHAIN, "1")],
        Some(&file("allow_remote_commands = true")),
    )
    .unwrap();
    assert!(!s.keychain_enabled);
    assert_eq!(s.allow_remote_commands, sourced(false, Source::Flag));
}

#[test]
fn projects_dir_flag_env_file_or_the_backends_default() {
    let f = file(r#"projects_dir = "/file/projects""#);
    let flags = Overrides {
        projects_dir: Some("/flag/p".into()),
        ..Overrides::default()
    };
    let env = [(vars::PROJECTS_DIR, "/env/p"), (vars::WECODE_HOME, "/wc")];
    let s = run(&flags, &env, Some(&f)).unwrap();
    assert_eq!(s.projects_dir, sourced("/flag/p".into(), Source::Flag));
    let s = run(&Overrides::default(), &env, Some(&f)).unwrap();
    assert_eq!(
        s.projects_dir,
        sourced("/env/p".into(), Source::Env(vars::PROJECTS_DIR))
    );
    let s = run(&Overrides::default(), &env[1..], Some(&f)).unwrap();
    assert_eq!(
        s.projects_dir,
        sourced("/file/projects".into(), Source::File)
    );
    // The default is the one the backend's `project_workspace_root` command prints.
    let s = run(&Overrides::default(), &env[1..], None).unwrap();
    assert_eq!(
        s.projects_dir,
        sourced(
            "/wc/wegent-executor/workspace/projects".into(),
            Source::Default
        )
    );
    if let Some(user_home) = std::env::home_dir() {
        let s = run(&Overrides::default(), &[], None).unwrap();
        assert_eq!(
            s.projects_dir.value,
            user_home.join(".wecode/wegent-executor/workspace/projects")
        );
    }
}

#[test]
fn stdio_mcp_is_off_by_default_and_enabled_by_flag_env_or_file() {
    let s = run(&Overrides::default(), &[], None).unwrap();
    assert_eq!(s.allow_stdio_mcp, sourced(false, Source::Default));
    assert_eq!(
        s.max_attachment_bytes.value,
        crate::config::DEFAULT_MAX_ATTACHMENT_MB * 1_000_000
    );
    let on_file = file("allow_stdio_mcp = true\nmax_attachment_mb = 5");
    let s = run(&Overrides::default(), &[], Some(&on_file)).unwrap();
    assert_eq!(s.allow_stdio_mcp, sourced(true, Source::File));
    assert_eq!(s.max_attachment_bytes, sourced(5_000_000, Source::File));
    let s = run(
        &Overrides::default(),
        &[(vars::ALLOW_STDIO_MCP, "0")],
        Some(&on_file),
    )
    .unwrap();
    assert_eq!(
        s.allow_stdio_mcp,
        sourced(false, Source::Env(vars::ALLOW_STDIO_MCP))
    );
    let flags = Overrides {
        allow_stdio_mcp: true,
        ..Overrides::default()
    };
    let s = run(&flags, &[(vars::ALLOW_STDIO_MCP, "0")], None).unwrap();
    assert_eq!(s.allow_stdio_mcp, sourced(true, Source::Flag));
    assert!(run(
        &Overrides::default(),
        &[],
        Some(&file("max_attachment_mb = 0"))
    )
    .is_err());
}

#[test]
fn the_web_app_is_at_the_backend_unless_configured_and_must_be_http() {
    let s = run(
        &Overrides::default(),
        &[(vars::BACKEND_URL, "http://localhost:8000")],
        None,
    )
    .unwrap();
    let c = s.to_config("d".into(), "n".into()).unwrap();
    assert_eq!(c.web_url(), "http://localhost:8000");
    let s = run(
        &Overrides::default(),
        &[
            (vars::BACKEND_URL, "http://localhost:8000"),
            (vars::WEB_URL, "http://localhost:3000"),
        ],
        None,
    )
    .unwrap();
    let c = s.to_config("d".into(), "n".into()).unwrap();
    assert_eq!(c.web_url(), "http://localhost:3000");
    let err = run(
        &Overrides::default(),
        &[(vars::WEB_URL, "ftp://files.example")],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("web_url"), "{err}");
}
