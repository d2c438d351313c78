use super::*;
use serde_json::json;

fn env_of<'a>(r: &'a TaskRequest, name: &str) -> Option<&'a str> {
    r.env
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn shell_type_comes_from_the_first_bot_or_a_bot_object() {
    let of = |payload: Value| parse(&payload).unwrap().shell_type;
    let ids = json!({"task_id": 1, "subtask_id": 2});
    let with = |bot: Value| {
        let mut p = ids.clone();
        p["bot"] = bot;
        p
    };
    assert_eq!(
        of(with(
            json!([{"shell_type": " Codex "}, {"shell_type": "ClaudeCode"}])
        ))
        .as_deref(),
        Some("Codex")
    );
    assert_eq!(
        of(with(json!({"shell_type": "ClaudeCode"}))).as_deref(),
        Some("ClaudeCode")
    );
    assert_eq!(of(with(json!([{"shell_type": ""}]))), None);
    assert_eq!(of(ids), None);
}

#[test]
fn ids_may_be_strings_and_missing_ids_are_an_error() {
    let r = parse(&json!({"task_id": "12", "subtask_id": 13, "message_id": null})).unwrap();
    assert_eq!((r.task_id, r.subtask_id, r.message_id), (12, 13, None));
    assert_eq!(
        parse(&json!({"subtask_id": 1})),
        Err(PayloadError::MissingId("task_id"))
    );
}

#[test]
fn the_sample_payload_parses_with_credentials_only_in_env() {
    let raw = include_str!("../../../tests/fixtures/task-execute.sample.json");
    let payload: Value = serde_json::from_str(raw).unwrap();
    let r = parse(&payload).unwrap();
    assert_eq!((r.task_id, r.subtask_id, r.message_id), (3, 4, Some(2)));
    assert_eq!(r.title, "say hello");
    assert_eq!(r.permission_mode, "bypassPermissions");
    assert_eq!(r.model_id.as_deref(), Some("fake-model"));
    assert!(r
        .system_prompt
        .as_deref()
        .unwrap()
        .starts_with("<base_prompt>"));
    // The decrypted key from model_config wins over the encrypted one in the bot config.
    assert_eq!(env_of(&r, "api_key"), Some("sk-fake"));
    assert_eq!(env_of(&r, "ANTHROPIC_API_KEY"), Some("sk-fake"));
    assert_eq!(env_of(&r, "ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:9"));
    assert_eq!(
        env_of(&r, "ANTHROPIC_DEFAULT_OPUS_MODEL"),
        Some("fake-model")
    );
    assert_eq!(env_of(&r, "WEGENT_TASK_ID"), Some("3"));
    assert!(env_of(&r, "AUTH_TOKEN").unwrap().starts_with("eyJ"));
    assert!(env_of(&r, "ANTHROPIC_CUSTOM_HEADERS")
        .unwrap()
        .contains("wegent-agent-name: wegent-wework"));
    assert!(r.secrets.iter().any(|s| s == "sk-fake"));
    assert!(r.secrets.iter().any(|s| s.starts_with("eyJ")));
}

#[test]
fn model_env_takes_only_upper_case_names_and_explicit_values_win() {
    let r = parse(&json!({
        "task_id": 1, "subtask_id": 2,
        "model_config": {"api_key": "k-123456", "env": {"ANTHROPIC_API_KEY": "explicit-key", "lower": "x"}},
        "claude_permission_mode": "rm-rf",
        "user": {"git_token": "ghp_abcdef"},
    }))
    .unwrap();
    assert_eq!(env_of(&r, "ANTHROPIC_API_KEY"), Some("explicit-key"));
    assert_eq!(env_of(&r, "lower"), None);
    assert_eq!(env_of(&r, "GIT_TOKEN"), Some("ghp_abcdef"));
    assert_eq!(r.permission_mode, "bypassPermissions");
    assert!(r.secrets.contains(&"ghp_abcdef".to_owned()));
    assert!(r.secrets.contains(&"explicit-key".to_owned()));
}

#[test]
fn dangerous_env_names_from_any_part_of_the_payload_are_dropped() {
    let r = parse(&json!({
        "task_id": 1, "subtask_id": 2,
        "bot": [{"agent_config": {"env": {"LD_PRELOAD": "/tmp/evil.so", "KEEP_ME": "1"}}}],
        "model_config": {"NODE_OPTIONS": "--require /tmp/x.js", "api_key": "k-1",
            "env": {"BASH_ENV": "/tmp/rc", "GIT_CONFIG_COUNT": "1", "PATH": "/tmp", "ANTHROPIC_MODEL": "m"}},
    }))
    .unwrap();
    for name in [
        "LD_PRELOAD",
        "NODE_OPTIONS",
        "BASH_ENV",
        "GIT_CONFIG_COUNT",
        "PATH",
    ] {
        assert_eq!(env_of(&r, name), None, "{name}");
    }
    assert_eq!(env_of(&r, "KEEP_ME"), Some("1"));
    assert_eq!(env_of(&r, "ANTHROPIC_MODEL"), Some("m"));
    assert_eq!(env_of(&r, "ANTHROPIC_API_KEY"), Some("k-1"));
}

#[test]
fn title_prefers_subtask_title_and_truncates() {
    let long = "x".repeat(100);
    let r =
        parse(&json!({"task_id": 1, "subtask_id": 2, "task_title": long, "prompt": "p"})).unwrap();
    assert_eq!(r.title.chars().count(), TITLE_MAX_CHARS);
    assert!(r.title.ends_with('…'));
    let r = parse(&json!({"task_id": 1, "subtask_id": 2,
        "prompt": [{"type": "input_text", "text": "\n  fix the build\nmore"}]}))
    .unwrap();
    assert_eq!(r.title, "fix the build");
}

#[test]
fn credential_like_names_are_secret_and_look_alikes_are_not() {
    for name in [
        "DB_PASS",
        "SMTP_PWD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "JAR_COOKIE",
        "cookie_jar",
        "OAUTH_CLIENT",
        "PROXY_AUTH",
        "AUTHORIZATION",
        "Auth",
        "api_key",
        "GITHUB_TOKEN",
        "MYSQL_PASSWORD",
        "PASS",
    ] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in [
        "GIT_AUTHOR_NAME",
        "PWD",
        "OLDPWD",
        "PASSENGER",
        "PATH",
        "HOME",
    ] {
        assert!(!is_secret_name(name), "{name}");
    }
}

#[test]
fn default_header_values_are_secret() {
    let r = parse(&json!({"task_id": 1, "subtask_id": 2, "model_config": {
        "default_headers": {"Authorization": "Bearer hdr-bearer-token-123", "x-api": "hdr-plain-value"}}}))
    .unwrap();
    for s in [
        "Bearer hdr-bearer-token-123",
        "hdr-bearer-token-123",
        "hdr-plain-value",
    ] {
        assert!(r.secrets.iter().any(|x| x == s), "{s} in {:?}", r.secrets);
    }
}

#[test]
fn passwords_in_url_userinfo_are_secret_anywhere_in_a_value() {
    assert_eq!(
        url_credentials("mirror=https://bob:url-pass-123@git.example.com/x.git, other"),
        vec!["url-pass-123"]
    );
    assert_eq!(
        url_credentials("https://ghp_tokenAsUser@github.com/a/b"),
        vec!["ghp_tokenAsUser"]
    );
    assert!(url_credentials("https://example.com/a@b").is_empty());
    let r = parse(&json!({"task_id": 1, "subtask_id": 2,
        "git_url": "https://x-access-token:git-url-token-9@github.com/o/r.git",
        "model_config": {"env": {"PIP_INDEX_URL": "https://me:pip-pass-456@pypi.example/simple"}}}))
    .unwrap();
    for s in ["git-url-token-9", "pip-pass-456"] {
        assert!(r.secrets.iter().any(|x| x == s), "{s} in {:?}", r.secrets);
    }
}

#[test]
fn a_payload_with_too_many_env_entries_is_refused_with_its_ids() {
    let env: serde_json::Map<String, Value> = (0..=MAX_ENV_ENTRIES)
        .map(|i| (format!("X{i}_KEY"), json!(format!("value-{i:06}"))))
        .collect();
    let r = parse(&json!({"task_id": 5, "subtask_id": 6, "model_config": {"env": env}})).unwrap();
    assert_eq!((r.task_id, r.subtask_id), (5, 6));
    assert_eq!(
        r.refusal,
        Some(PayloadRefusal::TooManyEnvEntries {
            count: MAX_ENV_ENTRIES + 1,
            max: MAX_ENV_ENTRIES
        })
    );
    assert!(r.env.is_empty() && r.secrets.is_empty());
    let message = r.refusal.unwrap().to_string();
    assert!(
        message.contains("1001") && message.contains("at most 1000"),
        "{message}"
    );
}

#[test]
fn a_payload_with_a_huge_credential_is_refused_before_anything_holds_it() {
    let huge = "h".repeat(1_000_000);
    let r = parse(&json!({"task_id": 5, "subtask_id": 6,
        "model_config": {"default_headers": {"X-Huge": huge}}}))
    .unwrap();
    assert_eq!(
        r.refusal,
        Some(PayloadRefusal::SecretTooLong {
            len: 1_000_000,
            max: crate::redact::MAX_SECRET_LEN
        })
    );
    assert!(r.env.is_empty() && r.secrets.is_empty());
}

#[test]
fn base_url_loses_a_trailing_v1() {
    assert_eq!(anthropic_base_url("http://h:1/v1/"), "http://h:1");
    assert_eq!(
        anthropic_base_url("https://api.example.com"),
        "https://api.example.com"
    );
}
