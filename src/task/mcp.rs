//! MCP servers of a task (protocol.md §16.6): payload entries → placeholders resolved →
//! normalized Claude `mcpServers` entries → a 0600 `mcp.json` for `--mcp-config`.
//!
//! Everything but [`write_config`] is pure. The plan is computed when the task arrives (the
//! placeholders need the whole payload, which is not kept), so its secrets are registered for
//! redaction before anything about the task can be logged.

use std::path::Path;

use serde_json::{json, Map, Value};

/// Why a task's MCP servers cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error(
        "MCP server `{server}` uses the placeholder `${{{{{placeholder}}}}}`, which this task does not provide; \
         fix the bot's MCP configuration (known values are payload fields such as `auth_token`, \
         `task_token`, `backend_url`, `task_id`)"
    )]
    UnknownPlaceholder { server: String, placeholder: String },
}

/// The servers a task gets, and what was left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct McpPlan {
    /// `(name, Claude config entry)`, in first-seen order.
    pub servers: Vec<(String, Value)>,
    /// stdio servers skipped because this device does not allow them (names only).
    pub skipped_stdio: Vec<String>,
}

/// Where `${{a.b.c}}` placeholders are looked up.
pub struct Placeholders<'a> {
    pub payload: &'a Value,
    /// The device's own backend URL: the payload's `backend_url` is the server's internal URL,
    /// which a device often cannot reach.
    pub device_backend_url: &'a str,
}

impl Placeholders<'_> {
    fn value(&self, path: &str) -> Option<String> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match path {
            "backend_url" => return Some(self.device_backend_url.trim_end_matches('/').to_owned()),
            "task_token" => return self.payload.get("auth_token").and_then(scalar),
            "type" => {
                return ["type", "task_type"]
                    .iter()
                    .find_map(|k| self.payload.get(*k).and_then(scalar))
            }
            _ => {}
        }
        let mut at = self.payload;
        for part in path.split('.') {
            at = match at {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        scalar(at)
    }

    /// `text` with every `${{path}}` replaced; `Err(path)` for the first unknown one.
    pub fn resolve_str(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            let Some(len) = rest[start + 3..].find("}}") else {
                break;
            };
            let path = rest[start + 3..start + 3 + len].trim();
            out.push_str(&rest[..start]);
            out.push_str(&self.value(path).ok_or_else(|| path.to_owned())?);
            rest = &rest[start + 3 + len + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.resolve_str(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// The task's MCP plan: every entry collected, resolved and normalized; stdio only if allowed.
pub fn plan(source: &Placeholders<'_>, allow_stdio: bool) -> Result<McpPlan, McpError> {
    let mut plan = McpPlan::default();
    for (name, raw) in collect(source.payload) {
        let resolved =
            source
                .resolve(&raw)
                .map_err(|placeholder| McpError::UnknownPlaceholder {
                    server: name.clone(),
                    placeholder,
                })?;
        let Some(entry) = normalize(&resolved) else {
            tracing::warn!(server = %name, "MCP server without a usable type, url or command skipped");
            continue;
        };
        merge(&mut plan.servers, name, entry);
    }
    if !allow_stdio {
        let (stdio, kept) = std::mem::take(&mut plan.servers)
            .into_iter()
            .partition(|(_, e)| e["type"] == "stdio");
        plan.servers = kept;
        plan.skipped_stdio = stdio.into_iter().map(|(name, _)| name).collect::<Vec<_>>();
    }
    Ok(plan)
}

/// Entries with a name, from `bot[0]` (every bot in `mode:"coordinate"`), then the top level.
fn collect(payload: &Value) -> Vec<(String, Value)> {
    let bots = payload.get("bot").and_then(Value::as_array);
    let take = if payload.get("mode").and_then(Value::as_str) == Some("coordinate") {
        usize::MAX
    } else {
        1
    };
    let mut out = Vec::new();
    for bot in bots.into_iter().flatten().take(take) {
        named_entries(bot.get("mcp_servers"), &mut out);
    }
    let start = out.len();
    named_entries(payload.get("mcp_servers"), &mut out);
    // Top-level entries carry their headers as `auth` (the Wegent executor drops them).
    for (_, entry) in &mut out[start..] {
        if let Some(auth) = entry.get("auth").and_then(Value::as_object).cloned() {
            let headers = entry
                .as_object_mut()
                .map(|o| o.entry("headers").or_insert_with(|| json!({})));
            if let Some(Value::Object(headers)) = headers {
                for (k, v) in auth {
                    headers.entry(k).or_insert(v);
                }
            }
        }
    }
    out
}

/// A list of `{name, …}` or an object `{name: cfg}`.
fn named_entries(list: Option<&Value>, out: &mut Vec<(String, Value)>) {
    match list {
        Some(Value::Array(items)) => {
            for item in items {
                if let Some(name) = item.get("name").and_then(Value::as_str) {
                    if !name.trim().is_empty() && item.is_object() {
                        out.push((name.trim().to_owned(), item.clone()));
                    }
                }
            }
        }
        Some(Value::Object(map)) => {
            for (name, cfg) in map {
                if cfg.is_object() && !name.trim().is_empty() {
                    out.push((name.trim().to_owned(), cfg.clone()));
                }
            }
        }
        _ => {}
    }
}

/// One entry as Claude's `mcpServers` wants it; `None` if it names no transport it can use.
fn normalize(raw: &Value) -> Option<Value> {
    let str_of = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let kind = str_of("type")
        .or_else(|| str_of("transport"))
        .map(str::to_ascii_lowercase)
        .or_else(|| {
            if str_of("command").is_some() {
                Some("stdio".into())
            } else {
                str_of("url").map(|_| "http".into())
            }
        })?;
    match kind.as_str() {
        "http" | "streamable-http" | "streamable_http" | "streamablehttp" | "sse" => {
            let mut out = Map::new();
            let kind = if kind == "sse" { "sse" } else { "http" };
            out.insert("type".into(), kind.into());
            out.insert("url".into(), str_of("url")?.into());
            let headers = string_map(raw.get("headers"));
            if !headers.is_empty() {
                out.insert("headers".into(), Value::Object(headers));
            }
            if let Some(ms) = timeout_ms(raw) {
                out.insert("timeout".into(), ms.into());
            }
            Some(Value::Object(out))
        }
        "stdio" => {
            let args: Vec<Value> = raw
                .get("args")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| match a {
                    Value::String(_) => Some(a.clone()),
                    Value::Number(n) => Some(n.to_string().into()),
                    _ => None,
                })
                .collect();
            Some(json!({
                "type": "stdio",
                "command": str_of("command")?,
                "args": args,
                "env": Value::Object(string_map(raw.get("env"))),
            }))
        }
        _ => None,
    }
}

/// `timeout` in ms (values below 1000 are seconds), or `timeout_seconds` × 1000.
fn timeout_ms(raw: &Value) -> Option<u64> {
    let number = |k: &str| {
        let v = raw.get(k)?;
        v.as_f64()
            .or_else(|| v.as_str()?.trim().parse().ok())
            .filter(|n| *n > 0.0)
    };
    if let Some(t) = number("timeout") {
        return Some(if t < 1000.0 { t * 1000.0 } else { t } as u64);
    }
    number("timeout_seconds").map(|s| (s * 1000.0) as u64)
}

fn string_map(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match v {
            Value::String(_) => Some((k.clone(), v.clone())),
            Value::Number(_) | Value::Bool(_) => Some((k.clone(), v.to_string().into())),
            _ => None,
        })
        .collect()
}

/// A later entry with the same name wins, keeping earlier `headers`/`timeout` it lacks.
fn merge(servers: &mut Vec<(String, Value)>, name: String, mut entry: Value) {
    let Some(slot) = servers.iter_mut().find(|(n, _)| *n == name) else {
        servers.push((name, entry));
        return;
    };
    if entry["type"] != "stdio" {
        for key in ["headers", "timeout"] {
            if entry.get(key).is_none() {
                if let Some(old) = slot.1.get(key) {
                    entry[key] = old.clone();
                }
            }
        }
    }
    slot.1 = entry;
}

impl McpPlan {
    /// Header and env values: credentials more often than not.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, entry) in &self.servers {
            for key in ["headers", "env"] {
                let values = entry.get(key).and_then(Value::as_object).into_iter();
                for v in values.flat_map(|m| m.values()) {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                        // "Bearer <token>": the token alone may show up elsewhere.
                        if let Some((_, token)) = s.split_once(' ') {
                            out.push(token.to_owned());
                        }
                    }
                }
            }
        }
        out
    }

    /// `{"mcpServers": {…}}`, with the values inline.
    pub fn config(&self) -> Value {
        let servers: Map<String, Value> = self.servers.iter().cloned().collect();
        json!({ "mcpServers": servers })
    }

    /// The config with every header and env value replaced by a `${WEGENT_MCP_SECRET_<n>}`
    /// reference, and the variables that hold them. The CLI expands the references from its
    /// environment, so credentials reach it the way every other secret does and never sit in
    /// a file.
    pub fn config_with_env_refs(&self) -> (Value, Vec<(String, String)>) {
        let mut vars = Vec::new();
        let mut config = self.config();
        let servers = config["mcpServers"].as_object_mut().into_iter().flatten();
        for (_, entry) in servers {
            for key in ["headers", "env"] {
                let values = entry.get_mut(key).and_then(Value::as_object_mut);
                for value in values.into_iter().flat_map(|m| m.values_mut()) {
                    if let Some(s) = value.as_str() {
                        let name = format!("{SECRET_VAR_PREFIX}{}", vars.len());
                        vars.push((name.clone(), s.to_owned()));
                        *value = Value::String(format!("${{{name}}}"));
                    }
                }
            }
        }
        (config, vars)
    }
}

const SECRET_VAR_PREFIX: &str = "WEGENT_MCP_SECRET_";

/// Write the config readable by the user only.
pub fn write_config(path: &Path, config: &Value) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(config).map_err(std::io::Error::other)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // A file left by an older run may have wider permissions than `mode` (which only applies
    // when creating).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    std::io::Write::write_all(&mut file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE_URL: &str = "http://device-config:8000/";

    fn plan_of(payload: Value, allow_stdio: bool) -> Result<McpPlan, McpError> {
        plan(
            &Placeholders {
                payload: &payload,
                device_backend_url: DEVICE_URL,
            },
            allow_stdio,
        )
    }

    #[test]
    fn the_captured_entry_resolves_with_the_devices_backend_url_and_task_token() {
        let raw = include_str!("../../tests/fixtures/task-execute.sample.json");
        let mut payload: Value = serde_json::from_str(raw).unwrap();
        payload["bot"][0]["mcp_servers"] = json!([{"type":"http","url":"${{backend_url}}/mcp/subscription/sse",
            "headers":{"Authorization":"Bearer ${{task_token}}"},"timeout":60,
            "name":"subscription-manager_wegent-subscription"}]);
        payload["backend_url"] = "http://internal-only:8000".into();
        let token = payload["auth_token"].as_str().unwrap().to_owned();
        let plan = plan_of(payload, false).unwrap();
        assert_eq!(
            plan.config(),
            json!({"mcpServers": {"subscription-manager_wegent-subscription": {
                "type": "http", "url": "http://device-config:8000/mcp/subscription/sse",
                "headers": {"Authorization": format!("Bearer {token}")}, "timeout": 60000}}})
        );
        assert!(plan.secrets().contains(&token));
    }

    #[test]
    fn an_unknown_placeholder_names_the_server_and_the_placeholder() {
        let err = plan_of(
            json!({"bot": [{"mcp_servers": [{"name": "tracker", "type": "sse",
                "url": "https://x/${{ user.nope }}"}]}]}),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err,
            McpError::UnknownPlaceholder {
                server: "tracker".into(),
                placeholder: "user.nope".into()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("`tracker`") && message.contains("${{user.nope}}"),
            "{message}"
        );
    }

    #[test]
    fn placeholders_follow_paths_and_aliases() {
        let payload = json!({"auth_token": "tok-1", "user": {"name": "ann", "ids": [7, 8]},
            "task_type": "code", "task_id": 3});
        let p = Placeholders {
            payload: &payload,
            device_backend_url: "http://d",
        };
        assert_eq!(
            p.resolve_str("${{user.name}}/${{user.ids.1}}/${{type}}/${{task_id}}/${{task_token}}")
                .unwrap(),
            "ann/8/code/3/tok-1"
        );
        assert_eq!(
            p.resolve_str("plain ${{ unclosed").unwrap(),
            "plain ${{ unclosed"
        );
        assert_eq!(p.resolve_str("${{user}}"), Err("user".to_owned()));
    }

    #[test]
    fn top_level_auth_becomes_headers_and_later_entries_inherit() {
        let plan = plan_of(
            json!({
                "bot": [{"mcp_servers": {"board": {"type": "streamable-http", "url": "https://a",
                    "headers": {"X-Key": "k1"}, "timeout_seconds": 5}}},
                        {"mcp_servers": [{"name": "second-bot", "url": "https://ignored"}]}],
                "mcp_servers": [
                    {"name": "board", "type": "http", "url": "https://b"},
                    {"name": "wework", "type": "sse", "url": "https://c", "auth": {"Authorization": "Bearer zz"}, "timeout": 1500},
                ]
            }),
            false,
        )
        .unwrap();
        let config = plan.config();
        assert_eq!(
            config["mcpServers"]["board"],
            json!({"type": "http", "url": "https://b", "headers": {"X-Key": "k1"}, "timeout": 5000})
        );
        assert_eq!(
            config["mcpServers"]["wework"],
            json!({"type": "sse", "url": "https://c", "headers": {"Authorization": "Bearer zz"}, "timeout": 1500})
        );
        // Not in coordinate mode: only the first bot's servers.
        assert!(config["mcpServers"].get("second-bot").is_none());
    }

    #[test]
    fn coordinate_mode_takes_every_bot() {
        let plan = plan_of(
            json!({"mode": "coordinate", "bot": [
                {"mcp_servers": [{"name": "a", "url": "https://a"}]},
                {"mcp_servers": [{"name": "b", "url": "https://b"}]}]}),
            false,
        )
        .unwrap();
        let names: Vec<_> = plan.servers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn stdio_is_skipped_unless_allowed_and_entries_without_transport_are_dropped() {
        let payload = json!({"bot": [{"mcp_servers": [
            {"name": "local", "type": "stdio", "command": "python3", "args": ["s.py", 1],
             "env": {"API_TOKEN": "secret-env-value"}},
            {"name": "broken", "type": "http"},
            {"name": "weird", "type": "websocket", "url": "ws://x"},
        ]}]});
        let off = plan_of(payload.clone(), false).unwrap();
        assert!(off.servers.is_empty());
        assert_eq!(off.skipped_stdio, ["local"]);
        let on = plan_of(payload, true).unwrap();
        assert_eq!(
            on.servers,
            [(
                "local".to_owned(),
                json!({"type": "stdio", "command": "python3", "args": ["s.py", "1"],
                       "env": {"API_TOKEN": "secret-env-value"}})
            )]
        );
        assert!(on.secrets().contains(&"secret-env-value".to_owned()));
    }

    #[cfg(unix)]
    #[test]
    fn the_config_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let plan = plan_of(
            json!({"mcp_servers": [{"name": "a", "url": "https://a"}]}),
            false,
        )
        .unwrap();
        write_config(&path, &plan.config()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written, plan.config());
    }

    #[test]
    fn header_and_env_values_move_into_variables() {
        let plan = plan_of(
            json!({"auth_token": "tok-123456", "bot": [{"mcp_servers": [
                {"name": "h", "url": "https://h", "headers": {"Authorization": "Bearer ${{task_token}}"}},
                {"name": "s", "command": "srv", "env": {"KEY": "v-secret"}}]}]}),
            true,
        )
        .unwrap();
        let (config, vars) = plan.config_with_env_refs();
        assert_eq!(
            config["mcpServers"]["h"]["headers"]["Authorization"],
            "${WEGENT_MCP_SECRET_0}"
        );
        assert_eq!(
            config["mcpServers"]["s"]["env"]["KEY"],
            "${WEGENT_MCP_SECRET_1}"
        );
        assert_eq!(config["mcpServers"]["h"]["url"], "https://h");
        assert_eq!(
            vars,
            [
                (
                    "WEGENT_MCP_SECRET_0".to_owned(),
                    "Bearer tok-123456".to_owned()
                ),
                ("WEGENT_MCP_SECRET_1".to_owned(), "v-secret".to_owned()),
            ]
        );
        let text = config.to_string();
        assert!(!text.contains("tok-123456") && !text.contains("v-secret"));
    }
}
