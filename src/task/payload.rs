//! Lenient reading of a `task:execute` payload (protocol.md §5.1, §15).
//!
//! The server sends ~100 keys, ids as ints or strings, and many nulls. We take what we need and
//! never fail on extra or missing optional keys: a task without ids is the only hard error, since
//! without them no event could be routed back.

use serde_json::Value;

use super::agent::AgentKind;
use super::extras::TaskExtras;
use super::workdir::{GitIdentity, GitSource, WorkspaceRequest};

/// Permission modes the CLI accepts from the payload; anything else becomes `bypassPermissions`.
const PERMISSION_MODES: [&str; 4] = ["acceptEdits", "plan", "auto", "bypassPermissions"];
const DEFAULT_PERMISSION_MODE: &str = "bypassPermissions";
/// Notification titles are short; longer titles are cut with an ellipsis.
const TITLE_MAX_CHARS: usize = 60;
/// Environment entries one payload may carry (agent, model and header entries together). Real
/// payloads carry a few dozen; the bound keeps a hostile one from costing the device time and
/// memory out of proportion.
pub const MAX_ENV_ENTRIES: usize = 1_000;

/// What the device needs from a `task:execute`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub task_id: i64,
    pub subtask_id: i64,
    pub message_id: Option<i64>,
    pub title: String,
    /// The user message: a string, or a list of content blocks (text, images).
    pub prompt: Value,
    pub system_prompt: Option<String>,
    pub permission_mode: String,
    pub model_id: Option<String>,
    /// Where the model is served (`model_config`): Codex is pointed at it; Claude reads the same
    /// values from `env`.
    pub model: ModelEndpoint,
    pub bot_name: Option<String>,
    /// Environment for the child, in order (later entries win).
    pub env: Vec<(String, String)>,
    /// Secret values from the payload (keys, tokens): registered for redaction on arrival.
    pub secrets: Vec<String>,
    /// The server asks for a fresh Claude session instead of resuming the task's last one.
    pub new_session: bool,
    /// Where the task runs (protocol.md §16.1).
    pub workspace: WorkspaceRequest,
    /// `bot[0].id`, when it is a safe file-name part: the saved session is per bot.
    pub bot_id: Option<String>,
    /// `bot[0].shell_type` (`bot.shell_type` when `bot` is an object), as sent: which agent runs
    /// the task ([`TaskRequest::agent`]).
    pub shell_type: Option<String>,
    /// The user's git account, for the checkout's commit identity.
    pub git_identity: Option<GitIdentity>,
    /// Attachments, required skills, MCP servers: filled in by the manager on arrival (they
    /// need the device's backend URL).
    pub extras: TaskExtras,
    /// Why this task cannot run although it has ids (it then fails at once).
    pub refusal: Option<PayloadRefusal>,
}

/// `model_config`'s endpoint fields.
#[derive(Clone, Default, PartialEq)]
pub struct ModelEndpoint {
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// `responses` or `chat/completions` (`api_format`).
    pub api_format: Option<String>,
    /// `default_headers`, in order, without line breaks.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for ModelEndpoint {
    // The key and header values are credentials: never in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEndpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_format", &self.api_format)
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl TaskRequest {
    /// The agent the task's bot runs on.
    pub fn agent(&self) -> AgentKind {
        AgentKind::for_shell_type(self.shell_type.as_deref())
    }
}

/// A payload with ids that the device refuses to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadRefusal {
    #[error("this task carries {count} environment entries (agent env, model config and headers); a device accepts at most {max}. Remove unused entries from the bot's or model's configuration and send the message again")]
    TooManyEnvEntries { count: usize, max: usize },
    #[error("this task carries a credential value of {len} bytes (an API key, token or header in the agent env or model config); a device accepts at most {max}. Check the bot's and the model's configuration and send the message again")]
    SecretTooLong { len: usize, max: usize },
}

/// Why a payload cannot become a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("task:execute without a usable `{0}`")]
    MissingId(&'static str),
}

/// An id that may arrive as a number or a numeric string.
pub fn id_field(payload: &Value, key: &str) -> Option<i64> {
    match payload.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn parse(payload: &Value) -> Result<TaskRequest, PayloadError> {
    let task_id = id_field(payload, "task_id").ok_or(PayloadError::MissingId("task_id"))?;
    let subtask_id =
        id_field(payload, "subtask_id").ok_or(PayloadError::MissingId("subtask_id"))?;
    let bot = payload
        .get("bot")
        .and_then(Value::as_array)
        .and_then(|b| b.first());
    let prompt = match payload.get("prompt") {
        Some(p @ (Value::String(_) | Value::Array(_))) => p.clone(),
        _ => Value::String(String::new()),
    };
    let system_prompt = non_empty_str(payload.get("system_prompt"))
        .or_else(|| non_empty_str(bot.and_then(|b| b.get("system_prompt"))));
    let permission_mode = payload
        .get("claude_permission_mode")
        .and_then(Value::as_str)
        .filter(|m| PERMISSION_MODES.contains(m))
        .unwrap_or(DEFAULT_PERMISSION_MODE)
        .to_owned();
    let model_config = payload.get("model_config");
    let model_id = non_empty_str(model_config.and_then(|m| m.get("model_id")));
    let count = env_entry_count(payload);
    let (env, secrets, refusal) = if count > MAX_ENV_ENTRIES {
        let refusal = PayloadRefusal::TooManyEnvEntries {
            count,
            max: MAX_ENV_ENTRIES,
        };
        (Vec::new(), Vec::new(), Some(refusal))
    } else {
        let (env, secrets) = child_env(payload, task_id);
        let longest = secrets.iter().map(String::len).max().unwrap_or(0);
        if longest > crate::redact::MAX_SECRET_LEN {
            let refusal = PayloadRefusal::SecretTooLong {
                len: longest,
                max: crate::redact::MAX_SECRET_LEN,
            };
            (Vec::new(), Vec::new(), Some(refusal))
        } else {
            (env, secrets, None)
        }
    };
    Ok(TaskRequest {
        task_id,
        subtask_id,
        message_id: id_field(payload, "message_id"),
        title: title(payload, &prompt),
        prompt,
        system_prompt,
        permission_mode,
        model_id,
        model: model_endpoint(model_config),
        bot_name: non_empty_str(payload.get("bot_name"))
            .or_else(|| non_empty_str(bot.and_then(|b| b.get("name")))),
        env,
        secrets,
        new_session: payload.get("new_session").and_then(Value::as_bool) == Some(true),
        workspace: workspace(payload),
        bot_id: bot.and_then(|b| scalar_str(b.get("id"))).filter(|id| {
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }),
        shell_type: shell_type(payload.get("bot")),
        git_identity: git_identity(payload.get("user")),
        extras: TaskExtras::default(),
        refusal,
    })
}

fn model_endpoint(model_config: Option<&Value>) -> ModelEndpoint {
    let field = |k: &str| non_empty_str(model_config.and_then(|m| m.get(k)));
    let clean = |s: &str| !s.contains(['\r', '\n', '\0']);
    let headers = model_config
        .and_then(|m| m.get("default_headers"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .filter(|(k, v)| !k.is_empty() && clean(k) && clean(v))
        .collect();
    ModelEndpoint {
        base_url: field("base_url"),
        api_key: field("api_key"),
        api_format: field("api_format"),
        headers,
    }
}

/// The entries [`child_env`] would read, counted without reading them.
fn env_entry_count(payload: &Value) -> usize {
    let len = |v: Option<&Value>| v.and_then(Value::as_object).map_or(0, |o| o.len());
    let bots = payload
        .get("bot")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| len(b.get("agent_config").and_then(|a| a.get("env"))))
        .sum::<usize>();
    let model = payload.get("model_config");
    let model_strings = model
        .and_then(Value::as_object)
        .map_or(0, |m| m.values().filter(|v| v.is_string()).count());
    bots + model_strings
        + len(model.and_then(|m| m.get("env")))
        + len(model.and_then(|m| m.get("default_headers")))
}

/// Wegent's executor reads `bot[0].shell_type`, or `bot.shell_type` when `bot` is an object
/// (codex-cli.md §A.1).
fn shell_type(bot: Option<&Value>) -> Option<String> {
    let bot = match bot? {
        Value::Array(bots) => bots.first()?,
        bot => bot,
    };
    non_empty_str(bot.get("shell_type"))
}

/// The workspace keys of §16.1. `""`, `null` and `0` all mean "none"; the git URL and branch
/// fall back to the copy in `workspace.repository` (and `workspace.branch`).
fn workspace(payload: &Value) -> WorkspaceRequest {
    let repository = payload.get("workspace").and_then(|w| w.get("repository"));
    let first = |keys: &[Option<&Value>]| keys.iter().find_map(|v| non_empty_str(*v));
    let git = first(&[
        payload.get("git_url"),
        repository.and_then(|r| r.get("gitUrl")),
    ])
    .map(|url| GitSource {
        url,
        branch: first(&[
            payload.get("branch_name"),
            repository.and_then(|r| r.get("branchName")),
            payload.get("workspace").and_then(|w| w.get("branch")),
        ]),
    });
    WorkspaceRequest {
        project_id: id_field(payload, "project_id").filter(|id| *id != 0),
        project_workspace_path: non_empty_str(payload.get("project_workspace_path")),
        workspace_source: non_empty_str(payload.get("workspace_source")),
        git,
        standalone_chat_workspace: payload
            .get("standalone_chat_workspace")
            .and_then(Value::as_bool)
            == Some(true),
    }
}

fn git_identity(user: Option<&Value>) -> Option<GitIdentity> {
    let user = user?;
    Some(GitIdentity {
        login: non_empty_str(user.get("git_login"))?,
        email: non_empty_str(user.get("git_email")),
        id: scalar_str(user.get("git_id")),
    })
}

/// A non-empty string or number as text (ids arrive as either).
fn scalar_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        other => non_empty_str(Some(other)),
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The text of the prompt, whether a string or content blocks.
pub fn prompt_text(prompt: &Value) -> String {
    match prompt {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Notification title: `subtask_title`, else `task_title`, else the prompt's first line.
fn title(payload: &Value, prompt: &Value) -> String {
    let raw = non_empty_str(payload.get("subtask_title"))
        .or_else(|| non_empty_str(payload.get("task_title")))
        .or_else(|| {
            prompt_text(prompt)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Untitled task".to_owned());
    truncate_chars(&raw, TITLE_MAX_CHARS)
}

pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Names that look like credentials: their values are registered as secrets.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let contains = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "COOKIE"];
    let suffixes = ["_PASS", "_PWD", "_CREDENTIALS", "_CREDENTIAL"];
    contains.iter().any(|w| upper.contains(w))
        || suffixes.iter().any(|s| upper.ends_with(s))
        || upper == "PASS"
        || is_auth_name(&upper)
}

/// `AUTH`, `OAUTH_…`, `AUTHORIZATION`, `PROXY_AUTH`, but not `GIT_AUTHOR_NAME`.
fn is_auth_name(upper: &str) -> bool {
    upper.match_indices("AUTH").any(|(i, _)| {
        let rest = &upper[i + 4..];
        !rest.starts_with("OR") || rest.starts_with("ORIZ")
    })
}

/// Credentials written into URLs in `value` (`scheme://user:PASSWORD@host`, or a token given as
/// the user, `https://TOKEN@host`), wherever they appear in it.
pub fn url_credentials(value: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for (start, _) in value.match_indices("://") {
        let rest = &value[start + 3..];
        let end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let userinfo = &authority[..at];
        match userinfo.split_once(':') {
            Some((_, password)) => found.push(password),
            None => found.push(userinfo),
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

fn is_upper_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A name the OS accepts as an environment variable.
fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['=', '\0'])
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[derive(Default)]
struct EnvBuilder {
    vars: Vec<(String, String)>,
    secrets: Vec<String>,
}

impl EnvBuilder {
    fn set(&mut self, name: &str, value: &str) {
        if !is_valid_env_name(name) || value.contains('\0') {
            return;
        }
        if is_secret_name(name) && !value.trim().is_empty() {
            self.secrets.push(value.to_owned());
        }
        self.secrets
            .extend(url_credentials(value).into_iter().map(str::to_owned));
        if super::child_env::is_dangerous_name(name) {
            // Name only: the value may be a secret or an attack, and neither belongs in a log.
            tracing::warn!(
                name,
                "refused a dangerous environment variable from the task payload"
            );
            return;
        }
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    fn set_if_unset(&mut self, name: &str, value: &str) {
        if !self.is_set(name) {
            self.set(name, value);
        }
    }

    fn is_set(&self, name: &str) -> bool {
        self.vars.iter().any(|(n, _)| n == name)
    }

    /// Every string field of `obj`, optionally only upper-case names.
    fn set_strings_of(&mut self, obj: Option<&Value>, upper_only: bool) {
        let Some(map) = obj.and_then(Value::as_object) else {
            return;
        };
        for (k, v) in map {
            if let Some(s) = v.as_str() {
                if !upper_only || is_upper_env_name(k) {
                    self.set(k, s);
                }
            }
        }
    }
}

/// The child's environment as protocol.md §15 describes it, and the secrets it carries.
fn child_env(payload: &Value, task_id: i64) -> (Vec<(String, String)>, Vec<String>) {
    let mut env = EnvBuilder::default();
    for bot in payload
        .get("bot")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        env.set_strings_of(bot.get("agent_config").and_then(|a| a.get("env")), false);
    }
    let model = payload.get("model_config");
    env.set_strings_of(model, false);
    env.set_strings_of(model.and_then(|m| m.get("env")), true);
    let model_str = |k: &str| non_empty_str(model.and_then(|m| m.get(k)));
    if let Some(key) = model_str("api_key") {
        env.set_if_unset("ANTHROPIC_API_KEY", &key);
    }
    if let Some(url) = model_str("base_url") {
        env.set_if_unset("ANTHROPIC_BASE_URL", &anthropic_base_url(&url));
    }
    if let Some(model_id) = model_str("model_id") {
        for tier in ["HAIKU", "SONNET", "OPUS"] {
            env.set_if_unset(&format!("ANTHROPIC_DEFAULT_{tier}_MODEL"), &model_id);
        }
    }
    let default_headers = model.and_then(|m| m.get("default_headers"));
    if let Some(headers) = custom_headers(default_headers) {
        env.set_if_unset("ANTHROPIC_CUSTOM_HEADERS", &headers);
    }
    // Header values often hold `Authorization: Bearer …`: the value and its credential alone.
    for value in header_values(default_headers) {
        env.secrets.push(value.to_owned());
        if let Some((_scheme, credential)) = value.trim().rsplit_once(' ') {
            env.secrets.push(credential.to_owned());
        }
    }
    env.set("WEGENT_TASK_ID", &task_id.to_string());
    if let Some(token) = non_empty_str(payload.get("auth_token")) {
        env.set("AUTH_TOKEN", &token);
    }
    let user = payload.get("user");
    let git = [
        ("GIT_URL", payload.get("git_url")),
        (
            "GIT_DOMAIN",
            payload.get("git_domain").filter(|v| !v.is_null()),
        ),
        ("BRANCH_NAME", payload.get("branch_name")),
        ("GIT_TOKEN", user.and_then(|u| u.get("git_token"))),
    ];
    for (name, value) in git {
        if let Some(v) = non_empty_str(value) {
            env.set(name, &v);
        }
    }
    let mut secrets = env.secrets;
    // Tokens that never reach the child still must never reach a log.
    for key in ["auth_token", "skill_identity_token"] {
        secrets.extend(non_empty_str(payload.get(key)));
    }
    secrets.extend(non_empty_str(user.and_then(|u| u.get("git_token"))));
    if let Some(git_url) = payload.get("git_url").and_then(Value::as_str) {
        secrets.extend(url_credentials(git_url).into_iter().map(str::to_owned));
    }
    secrets.sort();
    secrets.dedup();
    (env.vars, secrets)
}

/// The CLI appends `/v1/messages` itself, so a base URL ending in `/v1` (as Wegent model configs
/// often do, for OpenAI-style clients) would double it.
pub fn anthropic_base_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_owned()
}

fn header_values(headers: Option<&Value>) -> impl Iterator<Item = &str> {
    headers
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// `default_headers` as the CLI's `ANTHROPIC_CUSTOM_HEADERS` ("Name: value" lines).
fn custom_headers(headers: Option<&Value>) -> Option<String> {
    let map = headers?.as_object()?;
    let lines: Vec<String> = map
        .iter()
        .filter_map(|(k, v)| {
            let v = v.as_str()?;
            let clean = |s: &str| !s.contains(['\r', '\n']);
            (clean(k) && clean(v)).then(|| format!("{k}: {v}"))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
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
        let raw = include_str!("../../tests/fixtures/task-execute.sample.json");
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
        let r = parse(&json!({"task_id": 1, "subtask_id": 2, "task_title": long, "prompt": "p"}))
            .unwrap();
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
        let r =
            parse(&json!({"task_id": 5, "subtask_id": 6, "model_config": {"env": env}})).unwrap();
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
}
