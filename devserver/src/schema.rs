//! Validation of `device:register` and `device:heartbeat` payloads, mirroring the server's pydantic
//! schemas (`DeviceRegisterPayload`, `DeviceHeartbeatPayload`) and their error texts
//! (protocol.md §2, §3). Pure functions: JSON in, typed payload or pydantic-style message out.

use serde_json::{Map, Value};

/// A validated `device:register` payload. Unknown fields are dropped, as pydantic does.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterPayload {
    pub device_id: String,
    pub name: String,
    pub device_type: String,
    pub bind_shell: String,
    pub executor_version: Option<String>,
    pub client_ip: Option<String>,
    pub runtime_transfer_host: Option<String>,
    pub runtime_instance_id: Option<String>,
    pub app_device_id: Option<String>,
    /// `None` when absent or malformed (a malformed value is treated as absent).
    pub runtime_features: Option<Value>,
}

/// `runtime_capacity` of a heartbeat: the only source of "n/max slots".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuntimeCapacity {
    pub limit: i64,
    pub active: i64,
    pub active_task_ids: Vec<String>,
    pub queued: i64,
}

/// A validated `device:heartbeat` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatPayload {
    pub device_id: String,
    pub running_task_ids: Vec<i64>,
    pub executor_version: Option<String>,
    pub runtime_instance_id: Option<String>,
    pub runtime_capacity: Option<RuntimeCapacity>,
    pub runtime_transfer_host: Option<String>,
    pub runtime_features: Option<Value>,
}

/// One pydantic line item: where, what, and the pydantic error type.
struct Issue {
    loc: String,
    msg: String,
    kind: &'static str,
}

/// Collects issues while reading a payload, then renders the pydantic summary.
struct Checker<'a> {
    obj: &'a Map<String, Value>,
    issues: Vec<Issue>,
}

impl<'a> Checker<'a> {
    fn issue(&mut self, loc: impl Into<String>, msg: impl Into<String>, kind: &'static str) {
        self.issues.push(Issue {
            loc: loc.into(),
            msg: msg.into(),
            kind,
        });
    }

    /// A string field with length bounds. `required` fields may not be missing; `nullable` ones may be null.
    fn string(
        &mut self,
        key: &str,
        min: usize,
        max: usize,
        required: bool,
        nullable: bool,
    ) -> Option<String> {
        match self.obj.get(key) {
            None if required => {
                self.issue(key, "Field required", "missing");
                None
            }
            None => None,
            Some(Value::Null) if nullable => None,
            Some(Value::String(s)) => {
                let len = s.chars().count();
                if len < min {
                    let unit = if min == 1 { "character" } else { "characters" };
                    self.issue(
                        key,
                        format!("String should have at least {min} {unit}"),
                        "string_too_short",
                    );
                    None
                } else if len > max {
                    self.issue(
                        key,
                        format!("String should have at most {max} characters"),
                        "string_too_long",
                    );
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(_) => {
                self.issue(key, "Input should be a valid string", "string_type");
                None
            }
        }
    }

    fn literal(&mut self, key: &str, allowed: &[&str], default: &str) -> String {
        match self.obj.get(key) {
            None => default.to_string(),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => s.clone(),
            Some(_) => {
                let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
                let (last, rest) = quoted.split_last().expect("non-empty literal list");
                self.issue(
                    key,
                    format!("Input should be {} or {last}", rest.join(", ")),
                    "literal_error",
                );
                default.to_string()
            }
        }
    }

    fn finish<T>(self, model: &str, value: T) -> Result<T, String> {
        if self.issues.is_empty() {
            return Ok(value);
        }
        Err(render(model, &self.issues))
    }
}

fn render(model: &str, issues: &[Issue]) -> String {
    let n = issues.len();
    let plural = if n == 1 { "" } else { "s" };
    let mut text = format!("{n} validation error{plural} for {model}");
    for issue in issues {
        if issue.loc.is_empty() {
            text.push_str(&format!("\n  {} [type={}]", issue.msg, issue.kind));
        } else {
            text.push_str(&format!(
                "\n{}\n  {} [type={}]",
                issue.loc, issue.msg, issue.kind
            ));
        }
    }
    text
}

fn not_an_object(model: &str) -> String {
    let issue = Issue {
        loc: String::new(),
        msg: format!("Input should be a valid dictionary or instance of {model}"),
        kind: "model_type",
    };
    render(model, &[issue])
}

/// Runtime features: `{"schemaVersion": int ≥ 1, ...}`; anything else counts as absent.
fn runtime_features(obj: &Map<String, Value>) -> Option<Value> {
    let v = obj.get("runtime_features")?;
    let version = v.get("schemaVersion")?.as_i64()?;
    (version >= 1).then(|| v.clone())
}

/// Validates a `device:register` payload. `Err` holds the text after `"Invalid payload: "`.
pub fn validate_register(payload: &Value) -> Result<RegisterPayload, String> {
    const MODEL: &str = "DeviceRegisterPayload";
    let Some(obj) = payload.as_object() else {
        return Err(not_an_object(MODEL));
    };
    let mut c = Checker {
        obj,
        issues: Vec::new(),
    };
    let device_id = c.string("device_id", 1, 100, true, false);
    let name = c.string("name", 1, 100, true, false);
    let device_type = c.literal("device_type", &["local", "app", "cloud", "remote"], "local");
    let bind_shell = c.literal("bind_shell", &["claudecode", "openclaw"], "claudecode");
    let executor_version = c.string("executor_version", 0, 50, false, true);
    let client_ip = c.string("client_ip", 0, 50, false, true);
    let runtime_transfer_host = c.string("runtime_transfer_host", 0, 255, false, true);
    let runtime_instance_id = c.string("runtime_instance_id", 0, 100, false, true);
    let app_device_id = c.string("app_device_id", 0, 100, false, true);
    check_string_list(&mut c, "capabilities");
    let value = RegisterPayload {
        device_id: device_id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        device_type,
        bind_shell,
        executor_version,
        client_ip,
        runtime_transfer_host,
        runtime_instance_id,
        app_device_id,
        runtime_features: runtime_features(obj),
    };
    c.finish(MODEL, value)
}

fn check_string_list(c: &mut Checker<'_>, key: &str) {
    match c.obj.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    c.issue(
                        format!("{key}.{i}"),
                        "Input should be a valid string",
                        "string_type",
                    );
                }
            }
        }
        Some(_) => c.issue(key, "Input should be a valid list", "list_type"),
    }
}

/// Pydantic's lax integer: ints, integral floats, bools and numeric strings.
fn lax_int(v: &Value) -> Result<i64, (&'static str, &'static str)> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            })
            .ok_or((
                "Input should be a valid integer, got a number with a fractional part",
                "int_from_float",
            )),
        Value::Bool(b) => Ok(*b as i64),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            (
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
            )
        }),
        _ => Err(("Input should be a valid integer", "int_type")),
    }
}

/// Validates a `device:heartbeat` payload. `Err` holds the text after `"Invalid payload: "`.
pub fn validate_heartbeat(payload: &Value) -> Result<HeartbeatPayload, String> {
    const MODEL: &str = "DeviceHeartbeatPayload";
    let Some(obj) = payload.as_object() else {
        return Err(not_an_object(MODEL));
    };
    let mut c = Checker {
        obj,
        issues: Vec::new(),
    };
    let device_id = c.string("device_id", 0, usize::MAX, true, false);
    let running_task_ids = running_task_ids(&mut c);
    let executor_version = c.string("executor_version", 0, 50, false, true);
    let runtime_instance_id = c.string("runtime_instance_id", 1, 100, false, true);
    let runtime_transfer_host = c.string("runtime_transfer_host", 0, 255, false, true);
    let runtime_capacity = capacity(&mut c);
    for key in ["capabilities", "runtime_auth_files"] {
        if !matches!(
            obj.get(key),
            None | Some(Value::Null) | Some(Value::Object(_))
        ) {
            c.issue(key, "Input should be a valid dictionary", "dict_type");
        }
    }
    let value = HeartbeatPayload {
        device_id: device_id.unwrap_or_default(),
        running_task_ids,
        executor_version,
        runtime_instance_id,
        runtime_capacity,
        runtime_transfer_host,
        runtime_features: runtime_features(obj),
    };
    c.finish(MODEL, value)
}

fn running_task_ids(c: &mut Checker<'_>) -> Vec<i64> {
    let mut ids = Vec::new();
    match c.obj.get("running_task_ids") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match lax_int(item) {
                    Ok(id) => ids.push(id),
                    Err((msg, kind)) => c.issue(format!("running_task_ids.{i}"), msg, kind),
                }
            }
        }
        Some(_) => c.issue(
            "running_task_ids",
            "Input should be a valid list",
            "list_type",
        ),
    }
    ids
}

fn bounded_int(
    c: &mut Checker<'_>,
    cap: &Map<String, Value>,
    key: &str,
    min: i64,
    max: Option<i64>,
    default: Option<i64>,
) -> Option<i64> {
    let loc = format!("runtime_capacity.{key}");
    let Some(raw) = cap.get(key) else {
        if default.is_none() {
            c.issue(loc, "Field required", "missing");
        }
        return default;
    };
    match lax_int(raw) {
        Err((msg, kind)) => {
            c.issue(loc, msg, kind);
            None
        }
        Ok(v) if v < min => {
            c.issue(
                loc,
                format!("Input should be greater than or equal to {min}"),
                "greater_than_equal",
            );
            None
        }
        Ok(v) if max.is_some_and(|m| v > m) => {
            c.issue(
                loc,
                format!(
                    "Input should be less than or equal to {}",
                    max.unwrap_or_default()
                ),
                "less_than_equal",
            );
            None
        }
        Ok(v) => Some(v),
    }
}

fn capacity(c: &mut Checker<'_>) -> Option<RuntimeCapacity> {
    let raw = match c.obj.get("runtime_capacity") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(m)) => m,
        Some(_) => {
            c.issue(
                "runtime_capacity",
                "Input should be a valid dictionary or instance of RuntimeCapacity",
                "model_type",
            );
            return None;
        }
    };
    let before = c.issues.len();
    let limit = bounded_int(c, raw, "limit", 1, Some(20), None);
    let active = bounded_int(c, raw, "active", 0, None, Some(0));
    let queued = bounded_int(c, raw, "queued", 0, None, Some(0));
    let mut ids: Vec<String> = Vec::new();
    match raw.get("active_task_ids") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => ids.push(s.clone()),
                    _ => c.issue(
                        format!("runtime_capacity.active_task_ids.{i}"),
                        "Input should be a valid string",
                        "string_type",
                    ),
                }
            }
        }
        Some(_) => c.issue(
            "runtime_capacity.active_task_ids",
            "Input should be a valid list",
            "list_type",
        ),
    }
    if c.issues.len() > before {
        return None;
    }
    let (limit, active, queued) = (limit?, active?, queued?);
    if let Some(problem) = capacity_ids_problem(&ids, active) {
        c.issue(
            "runtime_capacity",
            format!("Value error, {problem}"),
            "value_error",
        );
        return None;
    }
    Some(RuntimeCapacity {
        limit,
        active,
        active_task_ids: ids,
        queued,
    })
}

/// The model validator of `RuntimeCapacity`: ids must be ≤20, unique, non-empty, and count `active`.
fn capacity_ids_problem(ids: &[String], active: i64) -> Option<&'static str> {
    if ids.len() > 20 {
        return Some("active_task_ids must contain at most 20 items");
    }
    if ids.iter().any(|id| id.trim().is_empty()) {
        return Some("active_task_ids must not contain empty ids");
    }
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    if unique.len() != ids.len() {
        return Some("active_task_ids must be unique");
    }
    if ids.len() as i64 != active {
        return Some("active_task_ids must identify every active Runtime task");
    }
    None
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
