//! How device Responses events settle a task (protocol.md §5.2, §14.4). Pure functions.
//!
//! `response.completed` → COMPLETED, `error` → FAILED, `response.incomplete` → CANCELLED,
//! (with the device's reason, `response.error.message`, as the task's error message, so a
//! tester sees why; Wegent's own parser keeps only the status), `response.failed` is ignored (the real parser has no branch for it), deltas accumulate.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Task / subtask states as the Wegent REST API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Pending,
    Running,
    Cancelling,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Cancelling => "CANCELLING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => Self::Pending,
            "CANCELLING" => Self::Cancelling,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            _ => Self::Running,
        }
    }

    /// A terminal state never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// What one Responses event does to its subtask.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// No state change (`response.created`, `response.failed`, tool events, ...).
    Nothing,
    /// Answer text to append.
    Delta(String),
    /// The subtask and its task reach a terminal state.
    Settle {
        status: TaskStatus,
        /// `Some` for COMPLETED when the event carried non-blank output text.
        result: Option<String>,
        error: Option<String>,
    },
}

/// Does the server treat this event as a Responses event (`_is_responses_api_event`)?
pub fn is_responses_event(name: &str, payload: &Value) -> bool {
    if name.starts_with("response.")
        || name.starts_with("error")
        || name.starts_with("image_generation.")
    {
        return true;
    }
    payload.get("data").is_some_and(Value::is_object)
        && ["task_id", "subtask_id", "local_task_id"]
            .iter()
            .any(|k| payload.get(*k).is_some())
}

/// The effect of event `name` with Responses object `data`.
pub fn effect(name: &str, data: &Value) -> Effect {
    match name {
        "response.output_text.delta" => match data.get("delta").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => Effect::Delta(d.to_string()),
            _ => Effect::Nothing,
        },
        "response.completed" => Effect::Settle {
            status: TaskStatus::Completed,
            result: completed_text(data),
            error: None,
        },
        "error" => {
            let message = data
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Unknown error");
            Effect::Settle {
                status: TaskStatus::Failed,
                result: None,
                error: Some(message.to_string()),
            }
        }
        "response.incomplete" => Effect::Settle {
            status: TaskStatus::Cancelled,
            result: None,
            error: data
                .pointer("/response/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        _ => Effect::Nothing,
    }
}

/// The `output_text` parts of `response.output[].content[]`, joined; `None` if blank.
pub fn completed_text(data: &Value) -> Option<String> {
    let output = data.get("response")?.get("output")?.as_array()?;
    let text: String = output
        .iter()
        .filter_map(|item| item.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("output_text"))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

/// The stored answer: the completed text, else the concatenated deltas (`collect_completed_result`).
pub fn final_result(completed: Option<String>, deltas: &str) -> String {
    completed.unwrap_or_else(|| deltas.to_string())
}

/// Reads an id that may be an int or a numeric string.
pub fn id_of(payload: &Value, key: &str) -> Option<i64> {
    match payload.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completed(text: &str) -> Value {
        json!({"type":"response.completed","response":{"status":"completed","output":[{"type":"message","role":"assistant",
            "content":[{"type":"output_text","text":text,"annotations":[]}]}]}})
    }

    #[test]
    fn settlement_table() {
        assert_eq!(
            effect("response.output_text.delta", &json!({"delta":"hi"})),
            Effect::Delta("hi".into())
        );
        assert_eq!(
            effect("response.completed", &completed("hello")),
            Effect::Settle {
                status: TaskStatus::Completed,
                result: Some("hello".into()),
                error: None
            }
        );
        assert_eq!(
            effect(
                "error",
                &json!({"type":"error","code":"runtime_error","message":"boom"})
            ),
            Effect::Settle {
                status: TaskStatus::Failed,
                result: None,
                error: Some("boom".into())
            }
        );
        assert_eq!(
            effect(
                "response.incomplete",
                &json!({"response":{"status":"cancelled"}})
            ),
            Effect::Settle {
                status: TaskStatus::Cancelled,
                result: None,
                error: None
            }
        );
        assert_eq!(
            effect(
                "response.incomplete",
                &json!({"response":{"status":"cancelled","error":{"code":"cancelled","message":"Stopped on this device by its user"}}})
            ),
            Effect::Settle {
                status: TaskStatus::Cancelled,
                result: None,
                error: Some("Stopped on this device by its user".into())
            }
        );
        assert_eq!(
            effect("response.failed", &json!({"response":{"status":"failed"}})),
            Effect::Nothing
        );
        assert_eq!(effect("response.created", &json!({})), Effect::Nothing);
    }

    #[test]
    fn blank_completed_text_falls_back_to_deltas() {
        let Effect::Settle { result, .. } = effect("response.completed", &completed("  ")) else {
            panic!()
        };
        assert_eq!(final_result(result, "a b"), "a b");
        assert_eq!(final_result(completed_text(&completed("x")), "a b"), "x");
    }

    #[test]
    fn responses_routing() {
        assert!(is_responses_event("response.output_text.delta", &json!({})));
        assert!(is_responses_event("error", &json!({})));
        assert!(is_responses_event(
            "custom",
            &json!({"data":{},"task_id":1})
        ));
        assert!(!is_responses_event("task:progress", &json!({"task_id":1})));
    }

    #[test]
    fn ids_accept_ints_and_numeric_strings() {
        assert_eq!(id_of(&json!({"t": 5}), "t"), Some(5));
        assert_eq!(id_of(&json!({"t": "7"}), "t"), Some(7));
        assert_eq!(id_of(&json!({"t": "x"}), "t"), None);
    }
}
