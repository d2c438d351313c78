//! The `task:execute` payload: the captured 72 KB sample from a real Wegent backend
//! (`assets/task-execute.sample.json`), with this dispatch's ids, prompt, user and model filled in.

use serde_json::{json, Value};

use crate::bots::Agent;
use crate::config::ModelSettings;
use crate::projects::PayloadWorkspace;
use crate::store::User;

const SAMPLE: &str = include_str!("../assets/task-execute.sample.json");

/// What varies per dispatch.
pub struct ExecuteParams<'a> {
    pub task_id: i64,
    pub subtask_id: i64,
    pub message_id: i64,
    pub user_subtask_id: i64,
    pub prompt: &'a str,
    pub title: &'a str,
    pub device_id: &'a str,
    pub user: &'a User,
    /// The bot's agent: the sample is a Claude Code bot, a Codex bot is built from it.
    pub agent: Agent,
    /// The model of that bot.
    pub model: &'a ModelSettings,
    pub backend_url: &'a str,
    /// The per-turn task JWT (no `sub`).
    pub auth_token: &'a str,
    /// A later turn of an existing task (§16.5): `new_session:false` and the executor name filled.
    pub follow_up: bool,
    /// The task's workspace project, if any (§16.1).
    pub workspace: Option<&'a PayloadWorkspace>,
}

/// The sample with `p` filled in; every other key keeps its captured value.
pub fn task_execute_payload(p: &ExecuteParams<'_>) -> Value {
    let mut v: Value = serde_json::from_str(SAMPLE).expect("the embedded sample is valid JSON");
    let o = v.as_object_mut().expect("the sample is an object");
    let set = |o: &mut serde_json::Map<String, Value>, k: &str, val: Value| {
        o.insert(k.to_string(), val);
    };
    set(o, "task_id", json!(p.task_id));
    set(o, "subtask_id", json!(p.subtask_id));
    set(o, "message_id", json!(p.message_id));
    set(o, "user_subtask_id", json!(p.user_subtask_id));
    set(o, "prompt", json!(p.prompt));
    set(o, "task_title", json!(p.title));
    set(o, "subtask_title", json!(p.title));
    set(o, "device_id", json!(p.device_id));
    set(o, "user_id", json!(p.user.id));
    set(o, "user_name", json!(p.user.user_name));
    set(o, "auth_token", json!(p.auth_token));
    set(o, "backend_url", json!(p.backend_url));
    // The real backend sends `new_session:false` on a first turn too. The devserver says `true`
    // there: its task ids restart at 1 with every in-memory run, and a device must not resume a
    // session it kept for an earlier run's task 1.
    set(o, "new_session", json!(!p.follow_up));
    set(o, "request_id", json!(crate::random_token(4)));
    // Empty on a first turn, `device-<id>` / `user-<uid>` on follow-ups (§16.10).
    let (name, namespace) = if p.follow_up {
        (
            format!("device-{}", p.device_id),
            format!("user-{}", p.user.id),
        )
    } else {
        (String::new(), String::new())
    };
    set(o, "executor_name", json!(name));
    set(o, "executor_namespace", json!(namespace));
    if let Some(user) = o.get_mut("user").and_then(Value::as_object_mut) {
        user.insert("id".into(), json!(p.user.id));
        user.insert("name".into(), json!(p.user.user_name));
    }
    let base_url = p.model.base_url_for(p.backend_url);
    if let Some(mc) = o.get_mut("model_config").and_then(Value::as_object_mut) {
        mc.insert("api_key".into(), json!(p.model.api_key));
        mc.insert("base_url".into(), json!(base_url));
        mc.insert("model_id".into(), json!(p.model.model_id));
        if let Some(h) = mc.get_mut("default_headers").and_then(Value::as_object_mut) {
            h.insert("user".into(), json!(p.user.user_name));
        }
    }
    if p.agent == Agent::Codex {
        crate::bots::make_codex_bot(&mut v, p.model, &base_url);
    }
    if let Some(w) = p.workspace {
        crate::projects::apply(&mut v, w);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(agent: Agent, model: &ModelSettings) -> Value {
        let user = User {
            id: 7,
            user_name: "alice".into(),
        };
        task_execute_payload(&ExecuteParams {
            task_id: 11,
            subtask_id: 22,
            message_id: 2,
            user_subtask_id: 21,
            prompt: "say hi",
            title: "t",
            device_id: "dev-1",
            user: &user,
            agent,
            model,
            backend_url: "http://127.0.0.1:1",
            auth_token: "tok",
            follow_up: false,
            workspace: None,
        })
    }

    #[test]
    fn fills_ids_prompt_and_model_and_keeps_the_rest() {
        let model = ModelSettings {
            base_url: "http://127.0.0.1:4000".into(),
            api_key: "sk-x".into(),
            model_id: "m1".into(),
        };
        let v = payload(Agent::ClaudeCode, &model);
        assert_eq!(
            (v["task_id"].as_i64(), v["subtask_id"].as_i64()),
            (Some(11), Some(22))
        );
        assert_eq!(v["prompt"], "say hi");
        assert_eq!(v["model_config"]["base_url"], "http://127.0.0.1:4000");
        assert_eq!(v["model_config"]["api_key"], "sk-x");
        assert_eq!(v["user"]["name"], "alice");
        assert_eq!(v["bot"][0]["shell_type"], "ClaudeCode");
        assert!(v.as_object().unwrap().len() > 90);
        assert!(serde_json::to_vec(&v).unwrap().len() > 60_000);
    }

    #[test]
    fn a_codex_bot_gets_an_openai_responses_model_on_the_demo_model() {
        let claude = payload(Agent::ClaudeCode, &ModelSettings::built_in());
        let v = payload(Agent::Codex, &ModelSettings::built_in_codex());
        assert_eq!(v["bot"][0]["shell_type"], "Codex");
        let mc = &v["model_config"];
        assert_eq!(
            (&mc["model"], &mc["api_format"], &mc["protocol"]),
            (
                &json!("openai"),
                &json!("responses"),
                &json!("openai-responses")
            )
        );
        // The devserver's own Responses API: codex POSTs `{base_url}/responses`.
        assert_eq!(mc["base_url"], "http://127.0.0.1:1/demo-model/v1");
        assert_eq!(mc["model_id"], ModelSettings::CODEX_MODEL_ID);
        assert_eq!(mc["runtime_config"]["codex"]["use_user_config"], false);
        let env = &v["bot"][0]["agent_config"]["env"];
        assert_eq!(
            (&env["model_id"], &env["base_url"], &env["api_key"]),
            (&mc["model_id"], &mc["base_url"], &mc["api_key"])
        );
        // Everything else is the Claude bot's payload.
        assert_eq!(
            v["bot"][0]["system_prompt"],
            claude["bot"][0]["system_prompt"]
        );
        assert_eq!(v["prompt"], claude["prompt"]);
        assert_eq!(claude["model_config"]["protocol"], "claude");
    }
}
