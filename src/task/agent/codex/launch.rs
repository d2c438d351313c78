//! How `codex app-server` is launched for a task (codex-cli.md §2.2, §2.6, §2.11, §2.12).
//!
//! Pure functions of the task, tested without a process. The model is reached through a custom
//! provider (`wegent`, Responses wire API); its key and header values travel in `WEGENT_CODEX_*`
//! environment variables only, never in argv or a config file, and those variables are hidden
//! from the commands the model runs. The system prompt and the user's message go over stdin
//! (JSON-RPC), not argv.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::task::agent::locate::Cli;
use crate::task::payload::{ModelEndpoint, TaskRequest};
use crate::task::workspace::TaskDirs;

pub const INSTALL_HINT: &str = "Install it with `npm install -g @openai/codex@0.171.0` (needs \
Node.js), or set `codex_path` in config.toml (or `--codex-path`) to the `codex` executable";

/// The provider id Codex is pointed at (`openai` is reserved by Codex itself).
const PROVIDER: &str = "wegent";
/// The model's API key (Codex sends it as `Authorization: Bearer …`).
pub const API_KEY_ENV: &str = "WEGENT_CODEX_API_KEY";
/// `default_headers` values, one variable each (`WEGENT_CODEX_HEADER_0`, …).
const HEADER_ENV_PREFIX: &str = "WEGENT_CODEX_HEADER_";
/// Every variable of ours that carries a secret for Codex itself starts with this.
const PRIVATE_ENV_PREFIX: &str = "WEGENT_CODEX_";

/// The `codex` executable: the configured path, else the first `codex` on `PATH` or where npm
/// puts global tools.
pub fn resolve(configured: Option<&Path>) -> Result<PathBuf, String> {
    Cli {
        name: "codex",
        product: "Codex",
        install_hint: INSTALL_HINT,
        home_dirs: &[".local/bin", ".npm-global/bin", ".bun/bin"],
    }
    .find(configured)
}

/// Why the task's model cannot be used by Codex.
pub fn unusable_model(model: &ModelEndpoint) -> Option<String> {
    let format = model.api_format.as_deref().map(str::trim);
    if format.is_some_and(|f| f.eq_ignore_ascii_case("chat/completions")) {
        return Some("This Codex bot's model speaks the Chat Completions API (`api_format: chat/completions`), but Codex needs the OpenAI Responses API. Give the bot a model with `api_format: responses`, or use a Claude Code bot".to_owned());
    }
    None
}

/// The model is the user's own Codex login, not a served endpoint (no `base_url`).
pub fn uses_user_login(model: &ModelEndpoint) -> bool {
    model.base_url.is_none()
}

/// What to do when a model that needs the user's Codex login finds none.
pub fn missing_login_message(auth_file: &Path) -> String {
    format!(
        "This Codex bot's model has no `base_url`, so Codex signs in with your own Codex login \
         ({}), which this device does not have. Upload your Codex auth.json in Wegent (the \
         server then copies it to this device), run `codex login` on this device, or give the \
         model a base URL and an API key",
        auth_file.display()
    )
}

/// A TOML value for `-c key=value` (a JSON string is a valid TOML basic string).
fn toml_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// Command-line arguments: `-c` overrides, then `app-server`. Nothing secret, nothing from the
/// user's message or the system prompt.
pub fn args(req: &TaskRequest) -> Vec<OsString> {
    let provider = format!("model_providers.{PROVIDER}");
    let mut config: Vec<String> = vec![
        // Offline and quiet: no plugin marketplace, no telemetry (codex-cli.md §2.11).
        "features.plugins=false".to_owned(),
        "analytics.enabled=false".to_owned(),
        "check_for_update_on_startup=false".to_owned(),
        // No background login shell snapshotting the user's environment at thread start: a
        // short turn ends (and its process group is killed) while it still runs, cutting the
        // user's profile scripts short (a killed `pyenv rehash` leaves a lock that stalls every
        // later login shell for a minute). Each command runs its own login shell instead.
        "features.shell_snapshot=false".to_owned(),
        // The model's commands see no `*KEY*`/`*SECRET*`/`*TOKEN*` variable and none of ours
        // (the model's key and headers, MCP header values: `super::mcp`).
        "shell_environment_policy.ignore_default_excludes=false".to_owned(),
        format!(
            "shell_environment_policy.exclude={}",
            json!([format!("{PRIVATE_ENV_PREFIX}*")])
        ),
    ];
    if let Some(url) = &req.model.base_url {
        config.extend([
            format!("model_provider={}", toml_str(PROVIDER)),
            format!("{provider}.name={}", toml_str("Wegent")),
            format!("{provider}.wire_api={}", toml_str("responses")),
            format!("{provider}.base_url={}", toml_str(url.trim())),
        ]);
    }
    if req.model.api_key.is_some() && req.model.base_url.is_some() {
        config.push(format!("{provider}.env_key={}", toml_str(API_KEY_ENV)));
    }
    if !req.model.headers.is_empty() && req.model.base_url.is_some() {
        let table: Vec<String> = req
            .model
            .headers
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("{} = {}", toml_str(name), toml_str(&header_env(i))))
            .collect();
        config.push(format!(
            "{provider}.env_http_headers={{ {} }}",
            table.join(", ")
        ));
    }
    if let Some(model) = &req.model_id {
        config.push(format!("model={}", toml_str(model)));
    }
    let mut args = Vec::with_capacity(config.len() * 2 + 1);
    for c in config {
        args.push(OsString::from("-c"));
        args.push(OsString::from(c));
    }
    args.push("app-server".into());
    args
}

fn header_env(index: usize) -> String {
    format!("{HEADER_ENV_PREFIX}{index}")
}

/// The child's environment on top of the device's own: the payload's variables that carry no
/// secret (a secret could reach a command the model runs), the private `CODEX_HOME`, and the
/// model's key and headers in the variables [`args`] names.
pub fn env(req: &TaskRequest, dirs: &TaskDirs) -> Vec<(String, String)> {
    let carries_secret = |value: &str| req.secrets.iter().any(|s| value.contains(s.as_str()));
    let mut env: Vec<(String, String)> = req
        .env
        .iter()
        .filter(|(_, value)| !carries_secret(value))
        .cloned()
        .collect();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut fixed = vec![
        ("CODEX_HOME".to_owned(), path(&dirs.codex_home)),
        ("TMPDIR".to_owned(), path(&dirs.tmp)),
        ("WEGENT_SUBTASK_ID".to_owned(), req.subtask_id.to_string()),
        ("WEGENT_WORKSPACE".to_owned(), path(&dirs.cwd)),
    ];
    if let Some(key) = &req.model.api_key {
        fixed.push((API_KEY_ENV.to_owned(), key.clone()));
    }
    for (i, (_, value)) in req.model.headers.iter().enumerate() {
        fixed.push((header_env(i), value.clone()));
    }
    for (name, value) in fixed {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    }
    env
}

/// JSON-RPC request ids of the conversation ([`super::stream`]).
pub mod ids {
    pub const INITIALIZE: u64 = 1;
    pub const OPEN_THREAD: u64 = 2;
    /// A fresh thread after the saved one could not be resumed.
    pub const NEW_THREAD: u64 = 3;
    pub const START_TURN: u64 = 4;
}

/// What a thread is opened with.
#[derive(Debug, Clone)]
pub struct ThreadParams {
    pub cwd: PathBuf,
    pub developer_instructions: Option<String>,
    /// Config overrides for this thread (the task's MCP servers, `super::mcp`): sent over
    /// stdin, never in argv.
    pub config: Option<Value>,
}

fn line(message: Value) -> String {
    let mut s = message.to_string();
    s.push('\n');
    s
}

/// `thread/start` (or `thread/resume` of `resume`) with request id `id`: no approvals and no
/// sandbox, as Wegent runs Codex (`:danger-full-access`); Codex's bubblewrap sandbox cannot
/// start everywhere (as root with `CODEX_HOME` under `/tmp`, codex-cli.md §2.10).
pub fn open_thread(id: u64, params: &ThreadParams, resume: Option<&str>) -> String {
    let mut p = json!({
        "cwd": params.cwd.to_string_lossy(),
        "approvalPolicy": "never",
        "sandbox": "danger-full-access",
    });
    if let Some(text) = &params.developer_instructions {
        p["developerInstructions"] = Value::from(text.as_str());
    }
    if let Some(config) = &params.config {
        p["config"] = config.clone();
    }
    match resume {
        Some(thread_id) => {
            p["threadId"] = Value::from(thread_id);
            // The device does not replay history; it only needs the thread to go on.
            p["excludeTurns"] = Value::from(true);
            line(json!({"method": "thread/resume", "id": id, "params": p}))
        }
        None => line(json!({"method": "thread/start", "id": id, "params": p})),
    }
}

/// The lines written at once: the handshake and opening the thread.
pub fn opening(params: &ThreadParams, resume: Option<&str>) -> Vec<String> {
    vec![
        line(
            json!({"method": "initialize", "id": ids::INITIALIZE, "params": {
                "clientInfo": {"name": "wegent_device", "title": "Wegent Device",
                               "version": crate::config::EXECUTOR_VERSION},
            }}),
        ),
        line(json!({"method": "initialized", "params": {}})),
        open_thread(ids::OPEN_THREAD, params, resume),
    ]
}

/// `turn/start` of the user's message in `thread_id`.
pub fn start_turn(thread_id: &str, prompt: &Value) -> String {
    line(
        json!({"method": "turn/start", "id": ids::START_TURN, "params": {
            "threadId": thread_id, "input": input(prompt),
        }}),
    )
}

/// A Responses-style prompt (a string, or `input_text` / `input_image` blocks) as Codex input.
fn input(prompt: &Value) -> Value {
    let text = |t: &str| json!({"type": "text", "text": t, "text_elements": []});
    match prompt {
        Value::Array(blocks) => Value::Array(
            blocks
                .iter()
                .filter_map(|block| match block.get("type").and_then(Value::as_str) {
                    Some("input_text" | "text") => Some(text(block.get("text")?.as_str()?)),
                    Some("input_image" | "image") => {
                        let url = block.get("image_url").and_then(|u| {
                            u.as_str().or_else(|| u.get("url").and_then(Value::as_str))
                        })?;
                        Some(json!({"type": "image", "url": url}))
                    }
                    _ => None,
                })
                .collect(),
        ),
        Value::String(s) => json!([text(s)]),
        _ => json!([text("")]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> TaskRequest {
        crate::task::payload::parse(&json!({
            "task_id": 5, "subtask_id": 6, "prompt": "hi",
            "bot": [{"shell_type": "Codex", "agent_config": {"env": {
                "MY_SETTING": "plain", "DB_PASSWORD": "pw-canary-1"}}}],
            "model_config": {"api_key": "sk-secret-999", "model_id": "gpt-test",
                "base_url": "http://127.0.0.1:9/v1", "api_format": "responses",
                "default_headers": {"X-Team": "hdr-secret-7"}},
        }))
        .unwrap()
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn args_point_codex_at_the_model_without_any_secret() {
        let args = args(&request());
        let all = joined(&args);
        assert_eq!(args.last().unwrap(), "app-server");
        for expected in [
            r#"model_provider="wegent""#,
            r#"model_providers.wegent.base_url="http://127.0.0.1:9/v1""#,
            r#"model_providers.wegent.wire_api="responses""#,
            r#"model_providers.wegent.env_key="WEGENT_CODEX_API_KEY""#,
            r#"model_providers.wegent.env_http_headers={ "X-Team" = "WEGENT_CODEX_HEADER_0" }"#,
            r#"model="gpt-test""#,
            "features.plugins=false",
            "analytics.enabled=false",
            "shell_environment_policy.ignore_default_excludes=false",
            r#"shell_environment_policy.exclude=["WEGENT_CODEX_*"]"#,
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "{expected} missing in {all}"
            );
        }
        for secret in ["sk-secret-999", "hdr-secret-7", "pw-canary-1"] {
            assert!(!all.contains(secret), "{secret} in argv");
        }
        // The MCP header variables are hidden from the model's commands by the same pattern.
        for hidden in [
            API_KEY_ENV,
            HEADER_ENV_PREFIX,
            super::super::mcp::ENV_PREFIX,
        ] {
            assert!(hidden.starts_with(PRIVATE_ENV_PREFIX), "{hidden}");
        }
        assert!(
            !args.iter().any(|a| a == "hi"),
            "the prompt goes over stdin"
        );
    }

    #[test]
    fn env_carries_the_key_for_codex_and_no_payload_secret_for_its_commands() {
        let req = request();
        let dirs = TaskDirs::new(Path::new("/home/x"), 5, "/code/proj".into());
        let env = env(&req, &dirs);
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get(API_KEY_ENV), Some("sk-secret-999"));
        assert_eq!(get("WEGENT_CODEX_HEADER_0"), Some("hdr-secret-7"));
        assert_eq!(get("CODEX_HOME"), Some("/home/x/tasks/5/codex"));
        assert_eq!(get("MY_SETTING"), Some("plain"));
        assert_eq!(get("WEGENT_TASK_ID"), Some("5"));
        // Every other copy of a secret (ANTHROPIC_API_KEY, api_key, the bot's password) stays
        // out: Codex's own excludes hide only `*KEY*`, `*SECRET*` and `*TOKEN*` names.
        assert_eq!(get("DB_PASSWORD"), None);
        for (name, value) in &env {
            if !name.starts_with("WEGENT_CODEX_") {
                assert!(
                    !req.secrets.iter().any(|s| value.contains(s.as_str())),
                    "{name} carries a secret"
                );
            }
        }
    }

    #[test]
    fn a_model_codex_cannot_reach_is_refused_with_what_to_change() {
        let mut model = request().model;
        assert_eq!(unusable_model(&model), None);
        model.api_format = Some("chat/completions".into());
        assert!(unusable_model(&model).unwrap().contains("Responses API"));
        model.api_format = None;
        model.base_url = None;
        assert_eq!(unusable_model(&model), None);
        assert!(uses_user_login(&model));
        let req = TaskRequest { model, ..request() };
        // The user's login: Codex's own provider, nothing of ours.
        assert!(!joined(&args(&req)).contains("model_provider"));
        assert!(missing_login_message(Path::new("/home/u/.codex/auth.json"))
            .contains("/home/u/.codex/auth.json"));
    }

    #[test]
    fn the_conversation_opens_a_thread_or_resumes_one() {
        let params = ThreadParams {
            cwd: "/code/proj".into(),
            developer_instructions: Some("Be \"brief\"\nalways".into()),
            config: Some(json!({"mcp_servers": {"echo": {"command": "srv"}}})),
        };
        let lines = opening(&params, None);
        assert!(lines
            .iter()
            .all(|l| l.ends_with('\n') && l.matches('\n').count() == 1));
        let open: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(open["method"], "thread/start");
        assert_eq!(
            open["params"]["developerInstructions"],
            "Be \"brief\"\nalways"
        );
        assert_eq!(open["params"]["approvalPolicy"], "never");
        assert_eq!(open["params"]["cwd"], "/code/proj");
        let resumed: Value = serde_json::from_str(&opening(&params, Some("thread-1"))[2]).unwrap();
        assert_eq!(resumed["method"], "thread/resume");
        assert_eq!(resumed["params"]["threadId"], "thread-1");
        // A resumed thread gets the task's MCP servers too (each turn is a new process).
        for opened in [&open, &resumed] {
            assert_eq!(
                opened["params"]["config"]["mcp_servers"]["echo"]["command"],
                "srv"
            );
        }
        let turn: Value = serde_json::from_str(&start_turn(
            "thread-1",
            &json!([{"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]),
        ))
        .unwrap();
        assert_eq!(turn["params"]["threadId"], "thread-1");
        assert_eq!(turn["params"]["input"][0]["text"], "look");
        assert_eq!(
            turn["params"]["input"][1]["url"],
            "data:image/png;base64,AAAA"
        );
    }
}
