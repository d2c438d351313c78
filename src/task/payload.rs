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
mod tests;
