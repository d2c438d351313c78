//! A task's MCP servers as Codex sees them: the task's [`McpPlan`] (placeholders resolved,
//! entries normalised, secrets registered for redaction; `crate::task::mcp`) rendered as
//! Codex's `mcp_servers` config (codex-cli.md §A.4).
//!
//! Where each part travels, and why:
//! - The table goes in `thread/start`'s (and `thread/resume`'s) `config` over stdin, not in
//!   `-c` arguments: server names become JSON keys (no TOML key quoting: `-c` splits its key at
//!   every `.`, even a quoted one), and a stdio server's `env` values, often credentials,
//!   never show in a command line. Codex does not write that config to its files (checked:
//!   a server's command, args and env are in none of `$CODEX_HOME`'s files after a turn).
//! - HTTP header values live in `WEGENT_CODEX_MCP_<n>` variables of Codex's own environment,
//!   named by `env_http_headers` / `bearer_token_env_var`, and hidden from the model's commands
//!   like every `WEGENT_CODEX_*` variable (`launch::args`).
//! - A stdio server's `env` goes in its `env` table: Codex's `env_vars` could only forward a
//!   variable of its own environment under the same name, and names such as `PATH` or `HOME`
//!   cannot be given to the Codex process itself.
//!
//! Every server's tools run without asking (`default_tools_approval_mode = "approve"`), as a
//! Claude Code task's do: nobody is there to approve a call.

use serde_json::{json, Map, Value};

use crate::task::mcp::McpPlan;

/// `WEGENT_CODEX_MCP_<n>`: one HTTP header value (or bearer token) each.
pub const ENV_PREFIX: &str = "WEGENT_CODEX_MCP_";

/// The plan as Codex config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodexMcp {
    /// `mcp_servers`: Codex server name → its config (empty: the task has none).
    pub servers: Map<String, Value>,
    /// Variables Codex reads the header values from (secret values).
    pub env: Vec<(String, String)>,
    /// What was changed or left out, one sentence each (names only, no values).
    pub warnings: Vec<String>,
}

impl CodexMcp {
    /// The `config` of `thread/start` / `thread/resume`, if there is any server.
    pub fn thread_config(&self) -> Option<Value> {
        (!self.servers.is_empty()).then(|| json!({ "mcp_servers": self.servers }))
    }

    /// Give every stdio server the variables `vars` (the device's process markers, see
    /// `crate::task::orphans`). Codex starts a stdio server in a process group of its own with
    /// only a short list of variables, so without them the end of the turn (or of the device)
    /// would not find a server that ignores the end of its stdin, and it would live on.
    pub fn mark_stdio_servers(&mut self, vars: &[(&str, &str)]) {
        let stdio = self
            .servers
            .values_mut()
            .filter(|s| s.get("command").is_some());
        for server in stdio {
            if let Some(env) = server["env"].as_object_mut() {
                for (name, value) in vars {
                    env.insert((*name).to_owned(), (*value).into());
                }
            }
        }
    }
}

/// Render `plan` for Codex.
pub fn render(plan: &McpPlan) -> CodexMcp {
    let mut out = CodexMcp::default();
    for (name, entry) in &plan.servers {
        let codex_name = codex_name(name);
        if out.servers.contains_key(&codex_name) {
            out.warnings.push(format!(
                "MCP server `{name}` is not given to Codex: as `{codex_name}` (Codex allows \
                 only letters, digits, `_` and `-` in a server name) it clashes with another \
                 server; rename one of them in the bot's MCP configuration"
            ));
            continue;
        }
        if codex_name != *name {
            out.warnings.push(format!(
                "MCP server `{name}` is called `{codex_name}` in Codex (Codex allows only \
                 letters, digits, `_` and `-` in a server name)"
            ));
        }
        let server = match entry["type"].as_str() {
            Some("stdio") => stdio(entry),
            Some(kind @ ("http" | "sse")) => {
                if kind == "sse" {
                    out.warnings.push(format!(
                        "MCP server `{name}` is declared as SSE, which Codex does not speak; \
                         it is tried as a streamable HTTP server at the same URL"
                    ));
                }
                http(entry, &mut out.env)
            }
            _ => continue,
        };
        out.servers.insert(codex_name, server);
    }
    out
}

/// A name Codex accepts (`^[a-zA-Z0-9_-]+$`): any other character becomes `_`.
fn codex_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn stdio(entry: &Value) -> Value {
    json!({
        "command": entry["command"],
        "args": entry.get("args").cloned().unwrap_or_else(|| json!([])),
        "env": entry.get("env").cloned().unwrap_or_else(|| json!({})),
        "default_tools_approval_mode": "approve",
    })
}

fn http(entry: &Value, env: &mut Vec<(String, String)>) -> Value {
    let mut server = json!({
        "url": entry["url"],
        "default_tools_approval_mode": "approve",
    });
    let mut variable = |value: &str| {
        let name = format!("{ENV_PREFIX}{}", env.len());
        env.push((name.clone(), value.to_owned()));
        name
    };
    let mut headers = Map::new();
    let entries = entry.get("headers").and_then(Value::as_object).into_iter();
    for (header, value) in entries.flatten() {
        let Some(value) = value.as_str() else {
            continue;
        };
        match bearer_token(header, value) {
            Some(token) => server["bearer_token_env_var"] = variable(token).into(),
            None => {
                headers.insert(header.clone(), variable(value).into());
            }
        }
    }
    if !headers.is_empty() {
        server["env_http_headers"] = Value::Object(headers);
    }
    if let Some(ms) = entry["timeout"].as_u64() {
        server["tool_timeout_sec"] = (ms as f64 / 1000.0).into();
    }
    server
}

/// The token of an `Authorization: Bearer <token>` header: Codex sends it itself.
fn bearer_token<'a>(header: &str, value: &'a str) -> Option<&'a str> {
    if !header.eq_ignore_ascii_case("authorization") {
        return None;
    }
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(servers: Value) -> McpPlan {
        McpPlan {
            servers: servers
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            skipped_stdio: Vec::new(),
        }
    }

    #[test]
    fn a_stdio_server_keeps_its_command_args_and_env_and_runs_unprompted() {
        let out = render(&plan(
            json!({"echo": {"type": "stdio", "command": "python3",
            "args": ["s.py", "1"], "env": {"API_TOKEN": "env-secret", "PATH": "/opt/bin"}}}),
        ));
        assert_eq!(
            out.thread_config().unwrap(),
            json!({"mcp_servers": {"echo": {"command": "python3", "args": ["s.py", "1"],
                "env": {"API_TOKEN": "env-secret", "PATH": "/opt/bin"},
                "default_tools_approval_mode": "approve"}}})
        );
        assert!(out.env.is_empty() && out.warnings.is_empty());
    }

    #[test]
    fn http_header_values_and_the_bearer_token_move_into_variables() {
        let out = render(&plan(
            json!({"board": {"type": "http", "url": "https://b/mcp",
            "headers": {"X-Api-Key": "hdr-secret", "Authorization": "Bearer tok-123"},
            "timeout": 60000}}),
        ));
        let variable = |value: &str| {
            let found = out.env.iter().find(|(_, v)| v == value);
            found.map(|(name, _)| name.clone()).unwrap()
        };
        assert_eq!(
            out.servers["board"],
            json!({"url": "https://b/mcp", "default_tools_approval_mode": "approve",
                "env_http_headers": {"X-Api-Key": variable("hdr-secret")},
                "bearer_token_env_var": variable("tok-123"), "tool_timeout_sec": 60.0})
        );
        assert_eq!(out.env.len(), 2);
        assert!(out.env.iter().all(|(name, _)| name.starts_with(ENV_PREFIX)));
        assert_ne!(out.env[0].0, out.env[1].0);
        let config = out.thread_config().unwrap().to_string();
        assert!(!config.contains("hdr-secret") && !config.contains("tok-123"));
    }

    #[test]
    fn an_authorization_header_of_another_scheme_is_sent_as_it_is() {
        let out = render(&plan(json!({"a": {"type": "http", "url": "https://a",
            "headers": {"authorization": "Basic dXNlcg=="}}})));
        assert_eq!(
            out.servers["a"]["env_http_headers"],
            json!({"authorization": "WEGENT_CODEX_MCP_0"})
        );
        assert_eq!(out.env[0].1, "Basic dXNlcg==");
        assert!(out.servers["a"].get("bearer_token_env_var").is_none());
    }

    #[test]
    fn names_codex_refuses_are_renamed_and_a_clash_is_left_out_with_a_warning() {
        let out = render(&plan(json!({
            "team board.v2": {"type": "http", "url": "https://1"},
            "team_board_v2": {"type": "http", "url": "https://2"},
            "ok-name_1": {"type": "sse", "url": "https://3"},
        })));
        let mut names: Vec<&str> = out.servers.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["ok-name_1", "team_board_v2"]);
        assert_eq!(out.servers["team_board_v2"]["url"], "https://1");
        assert_eq!(out.warnings.len(), 3, "{:?}", out.warnings);
        assert!(out
            .warnings
            .iter()
            .any(|w| w.contains("`team board.v2` is called `team_board_v2`")));
        assert!(out
            .warnings
            .iter()
            .any(|w| w.contains("`team_board_v2` is not given to Codex")));
        assert!(out
            .warnings
            .iter()
            .any(|w| w.contains("`ok-name_1` is declared as SSE")));
    }

    #[test]
    fn no_server_no_config() {
        assert_eq!(render(&McpPlan::default()).thread_config(), None);
    }

    #[test]
    fn stdio_servers_carry_the_process_markers_and_http_servers_do_not() {
        let mut out = render(&plan(json!({
            "local": {"type": "stdio", "command": "srv", "env": {"A": "1"}},
            "bare": {"type": "stdio", "command": "srv2"},
            "remote": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
        })));
        out.mark_stdio_servers(&[("WEGENT_DEVICE_RUN", "7-9"), ("WEGENT_DEVICE_TURN", "3@/t")]);
        let config = out.thread_config().unwrap();
        assert_eq!(
            config["mcp_servers"]["local"]["env"],
            json!({"A": "1", "WEGENT_DEVICE_RUN": "7-9", "WEGENT_DEVICE_TURN": "3@/t"})
        );
        assert_eq!(
            config["mcp_servers"]["bare"]["env"]["WEGENT_DEVICE_RUN"],
            "7-9"
        );
        assert!(config["mcp_servers"]["remote"].get("env").is_none());
    }
}
