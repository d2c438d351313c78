//! Responses-style event objects the backend understands (protocol.md §5.2), and the envelope
//! they travel in. Pure constructors: the shapes live in one place.

use serde_json::{json, Value};

/// One event for the server: the Socket.IO event name is the Responses event type.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesEvent {
    pub name: &'static str,
    pub data: Value,
}

impl ResponsesEvent {
    fn new(name: &'static str, mut data: Value) -> Self {
        data["type"] = Value::from(name);
        Self { name, data }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self.name, COMPLETED | ERROR | INCOMPLETE)
    }
}

pub const CREATED: &str = "response.created";
pub const TEXT_DELTA: &str = "response.output_text.delta";
pub const REASONING_DELTA: &str = "response.reasoning_summary_text.delta";
pub const ITEM_ADDED: &str = "response.output_item.added";
pub const ITEM_DONE: &str = "response.output_item.done";
pub const COMPLETED: &str = "response.completed";
pub const ERROR: &str = "error";
pub const INCOMPLETE: &str = "response.incomplete";

/// Which turn the events belong to: ids and the model, echoed in every response object.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub task_id: i64,
    pub subtask_id: i64,
    pub message_id: Option<i64>,
    pub model: String,
    pub created_at: u64,
}

impl Turn {
    pub fn message_item_id(&self) -> String {
        format!("msg_{}", self.subtask_id)
    }

    fn response(&self, status: &str, text: &str, text_status: &str) -> Value {
        let output = if text.is_empty() && status != "completed" {
            json!([])
        } else {
            json!([{
                "type": "message", "id": self.message_item_id(), "status": text_status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }])
        };
        json!({
            "id": format!("resp_{}", self.subtask_id), "object": "response",
            "created_at": self.created_at, "model": self.model, "status": status,
            "output": output,
        })
    }

    /// The `{event_type, task_id, subtask_id, message_id, data}` envelope (§5.2). Takes the event
    /// by value: `data` moves in rather than being deep-copied (this is the relay's hot path).
    pub fn envelope(&self, event: ResponsesEvent) -> Value {
        let mut envelope = serde_json::Map::with_capacity(5);
        envelope.insert("event_type".into(), Value::from(event.name));
        envelope.insert("task_id".into(), Value::from(self.task_id));
        envelope.insert("subtask_id".into(), Value::from(self.subtask_id));
        envelope.insert(
            "message_id".into(),
            self.message_id.map_or(Value::Null, Value::from),
        );
        envelope.insert("data".into(), event.data);
        Value::Object(envelope)
    }

    /// `shell_type` names the agent (`ClaudeCode`, `codex`).
    pub fn created(&self, bot_name: Option<&str>, shell_type: &str) -> ResponsesEvent {
        ResponsesEvent::new(
            CREATED,
            json!({"response": self.response("in_progress", "", "in_progress"),
                   "shell_type": shell_type, "bot_name": bot_name}),
        )
    }

    pub fn text_delta(&self, delta: &str, offset: usize) -> ResponsesEvent {
        ResponsesEvent::new(
            TEXT_DELTA,
            json!({"item_id": self.message_item_id(), "output_index": 0, "content_index": 0,
                   "delta": delta, "offset": offset}),
        )
    }

    pub fn reasoning_delta(&self, delta: &str) -> ResponsesEvent {
        ResponsesEvent::new(
            REASONING_DELTA,
            json!({"item_id": format!("rs_{}", self.subtask_id), "output_index": 0,
                   "summary_index": 0, "delta": delta}),
        )
    }

    pub fn tool_added(&self, output_index: usize, call: &ToolCall) -> ResponsesEvent {
        ResponsesEvent::new(
            ITEM_ADDED,
            json!({"output_index": output_index, "item": call.item("in_progress", None)}),
        )
    }

    pub fn tool_done(
        &self,
        output_index: usize,
        call: &ToolCall,
        output: &str,
        failed: bool,
    ) -> ResponsesEvent {
        let status = if failed { "incomplete" } else { "completed" };
        ResponsesEvent::new(
            ITEM_DONE,
            json!({"output_index": output_index, "item": call.item(status, Some(output))}),
        )
    }

    pub fn completed(&self, text: &str, usage: Value, stop_reason: &str) -> ResponsesEvent {
        let mut response = self.response("completed", text, "completed");
        response["usage"] = usage;
        response["stop_reason"] = Value::from(stop_reason);
        ResponsesEvent::new(COMPLETED, json!({ "response": response }))
    }

    /// A cancel: what streamed so far, marked cancelled (`response.incomplete`).
    pub fn incomplete(&self, text_so_far: &str, message: &str) -> ResponsesEvent {
        let mut response = self.response("cancelled", text_so_far, "incomplete");
        response["error"] = json!({"code": "cancelled", "message": message});
        ResponsesEvent::new(INCOMPLETE, json!({ "response": response }))
    }
}

/// `response.completed` with the standalone chat's folder, which the backend pins for the
/// chat's later turns (protocol.md §16.5). Other events pass unchanged.
pub fn with_standalone_workspace(
    mut event: ResponsesEvent,
    cwd: &std::path::Path,
) -> ResponsesEvent {
    if event.name == COMPLETED {
        event.data["response"]["standalone_chat_workspace_path"] =
            Value::from(cwd.to_string_lossy().into_owned());
    }
    event
}

/// A failure the user reads in the chat. Never `response.failed`: the backend ignores it.
pub fn error(code: &str, message: &str) -> ResponsesEvent {
    ResponsesEvent::new(ERROR, json!({"code": code, "message": message}))
}

/// A tool call the agent made, as a Responses `function_call` item.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub call_id: String,
    pub name: String,
    /// The input as a JSON string, as Responses carries arguments.
    pub arguments: String,
}

impl ToolCall {
    fn item(&self, status: &str, output: Option<&str>) -> Value {
        let mut item = json!({
            "type": "function_call", "id": format!("fc_{}", self.call_id), "call_id": self.call_id,
            "name": self.name, "arguments": self.arguments, "status": status,
        });
        if let Some(output) = output {
            item["output"] = Value::from(output);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn() -> Turn {
        Turn {
            task_id: 3,
            subtask_id: 4,
            message_id: Some(2),
            model: "m".into(),
            created_at: 10,
        }
    }

    #[test]
    fn completed_has_the_shape_the_backend_reads() {
        let e = turn().completed("hi", Value::Null, "end_turn");
        assert_eq!(e.name, "response.completed");
        assert_eq!(e.data["type"], "response.completed");
        assert_eq!(e.data["response"]["status"], "completed");
        assert_eq!(
            e.data["response"]["output"][0]["content"][0]["type"],
            "output_text"
        );
        assert_eq!(e.data["response"]["output"][0]["content"][0]["text"], "hi");
        assert_eq!(e.data["response"]["stop_reason"], "end_turn");
        assert!(e.is_terminal());
    }

    #[test]
    fn only_a_completed_response_carries_the_standalone_folder() {
        let dir = std::path::Path::new("/home/u/scratch");
        let e = with_standalone_workspace(turn().completed("hi", Value::Null, "end_turn"), dir);
        assert_eq!(
            e.data["response"]["standalone_chat_workspace_path"],
            "/home/u/scratch"
        );
        let e = with_standalone_workspace(error("runtime_error", "boom"), dir);
        assert!(e.data.get("response").is_none());
    }

    #[test]
    fn envelope_echoes_ids() {
        let t = turn();
        let env = t.envelope(t.text_delta("a", 5));
        assert_eq!(env["event_type"], "response.output_text.delta");
        assert_eq!(
            (env["task_id"].as_i64(), env["subtask_id"].as_i64()),
            (Some(3), Some(4))
        );
        assert_eq!(env["message_id"], 2);
        assert_eq!(env["data"]["offset"], 5);
    }

    #[test]
    fn incomplete_and_error_shapes() {
        let e = turn().incomplete("", "Task cancelled");
        assert_eq!(e.data["response"]["status"], "cancelled");
        assert_eq!(e.data["response"]["error"]["code"], "cancelled");
        let e = error("runtime_error", "boom");
        assert_eq!(
            (e.name, &e.data["code"], &e.data["message"]),
            ("error", &Value::from("runtime_error"), &Value::from("boom"))
        );
        assert_eq!(e.data["type"], "error");
    }
}
