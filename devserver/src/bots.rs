//! The bots a task can run on: Claude Code (the captured sample's bot) and Codex, whose
//! `bot[0]` and `model_config` are built here the way the backend builds them for a bot on a
//! `shellType: Codex` Shell with an OpenAI Responses model (codex-cli.md §A.2, §A.3).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::ModelSettings;

/// The agent (`bot[0].shell_type`) a task runs on; the console lets the user pick it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Agent {
    #[default]
    #[serde(rename = "ClaudeCode", alias = "claudecode", alias = "claude")]
    ClaudeCode,
    /// The backend accepts both spellings, `Codex` and `CodeX`.
    #[serde(rename = "Codex", alias = "codex", alias = "CodeX")]
    Codex,
}

impl Agent {
    /// The Shell's `shellType`, as `bot[0].shell_type` carries it.
    pub fn shell_type(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "ClaudeCode",
            Agent::Codex => "Codex",
        }
    }

    /// A stored `shell_type` (case-insensitive, as the executor resolves it); unknown → Claude
    /// Code, the devserver's bot before it knew others.
    pub fn from_shell_type(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "codex" => Agent::Codex,
            _ => Agent::ClaudeCode,
        }
    }
}

/// The bot's name in payloads, like the sample's `wegent-wework-bot`.
const CODEX_BOT: &str = "wegent-codex-bot";

/// Turns the sample (a Claude Code bot) into a Codex bot using `model`, whose `base_url` is
/// `base_url` (already resolved for the device). Only the fields the backend sets differently
/// for Codex change; the system prompt, skills and the rest stay.
pub fn make_codex_bot(payload: &mut Value, model: &ModelSettings, base_url: &str) {
    payload["bot_name"] = json!(CODEX_BOT);
    if let Some(bot) = payload["bot"].get_mut(0) {
        bot["name"] = json!(CODEX_BOT);
        bot["shell_type"] = json!(Agent::Codex.shell_type());
        // The Model CRD's env, which the executor reads the model id from first.
        bot["agent_config"] = json!({"env": {"model": "openai", "model_id": model.model_id,
            "api_key": model.api_key, "base_url": base_url, "api_format": "responses"}});
    }
    let Some(mc) = payload["model_config"].as_object_mut() else {
        return;
    };
    for (key, value) in [
        ("model", json!("openai")),
        ("api_format", json!("responses")),
        ("protocol", json!("openai-responses")),
        ("model_name", json!("devserver-codex-model")),
        // `_apply_user_runtime_config` for a Codex-like model of a user without an uploaded
        // auth.json: the model's own base_url + api_key are used.
        (
            "runtime_config",
            json!({"codex": {"use_user_config": false, "configured": false,
                "target_path": "~/.codex/auth.json", "auth_json_sha256": null, "use_proxy": false,
                "proxy_configured": false}}),
        ),
    ] {
        mc.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_defaults_to_claude_code() {
        for (text, agent) in [
            ("\"Codex\"", Agent::Codex),
            ("\"CodeX\"", Agent::Codex),
            ("\"codex\"", Agent::Codex),
            ("\"ClaudeCode\"", Agent::ClaudeCode),
        ] {
            assert_eq!(serde_json::from_str::<Agent>(text).unwrap(), agent);
        }
        assert!(serde_json::from_str::<Agent>("\"Dify\"").is_err());
        assert_eq!(Agent::from_shell_type(" CODEX "), Agent::Codex);
        assert_eq!(Agent::from_shell_type(""), Agent::ClaudeCode);
        assert_eq!(serde_json::to_value(Agent::Codex).unwrap(), "Codex");
    }
}
