//! `codex app-server` JSON-RPC lines → Responses events, and the replies the conversation needs
//! (codex-cli.md §2.6, §A.4).
//!
//! A pure state machine: [`launch::opening`] opened a thread; the reply carries its id, which
//! the turn is started in; notifications stream the answer (`item/agentMessage/delta`, one per
//! model text delta), commands and reasoning; `turn/completed` ends the turn. A saved thread
//! Codex no longer knows is replaced by a fresh one in the same process.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::launch::{self, ids, ThreadParams};
use crate::task::agent::AgentKind;
use crate::task::events::{ResponsesEvent, ToolCall, Turn};
use crate::task::failure::TaskFailure;

/// Tool output shown in the chat is capped; the agent itself saw all of it.
const TOOL_OUTPUT_MAX_CHARS: usize = 2_000;
/// Between two answer messages (e.g. before and after a command) the answer gets a paragraph
/// break, as Claude tasks do.
const BLOCK_SEPARATOR: &str = "\n\n";

pub struct AppServerMapper {
    turn: Turn,
    params: ThreadParams,
    prompt: Value,
    resume: Option<String>,
    thread_id: Option<String>,
    /// The saved thread could not be resumed; a fresh one was started.
    resume_lost: bool,
    replies: Vec<String>,
    text: String,
    chars: usize,
    /// The agent message the last text chunk belonged to.
    current_item: Option<String>,
    /// Messages whose text already arrived as deltas (their completed copy is not sent again).
    streamed_items: HashSet<String>,
    tools: HashMap<String, (usize, ToolCall)>,
    next_output_index: usize,
    usage: Value,
    /// The last error Codex reported that it will not retry.
    last_error: Option<String>,
    result: Option<ResponsesEvent>,
}

impl AppServerMapper {
    /// `resume`: the saved thread to go on with, if any.
    pub fn new(turn: Turn, params: ThreadParams, prompt: Value, resume: Option<String>) -> Self {
        Self {
            turn,
            params,
            prompt,
            resume,
            thread_id: None,
            resume_lost: false,
            replies: Vec::new(),
            text: String::new(),
            chars: 0,
            current_item: None,
            streamed_items: HashSet::new(),
            tools: HashMap::new(),
            next_output_index: 1,
            usage: Value::Null,
            last_error: None,
            result: None,
        }
    }

    /// What is written to stdin at once.
    pub fn opening(&self) -> Vec<String> {
        launch::opening(&self.params, self.resume.as_deref())
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The thread this turn ran in, once Codex named it.
    pub fn thread_id(&self) -> Option<&str> {
        self.thread_id.as_deref()
    }

    pub fn resume_lost(&self) -> bool {
        self.resume_lost
    }

    /// Lines to write to stdin now.
    pub fn take_replies(&mut self) -> Vec<String> {
        std::mem::take(&mut self.replies)
    }

    /// The turn's result is known (Codex may still be running).
    pub fn is_over(&self) -> bool {
        self.result.is_some()
    }

    /// Events for one stdout line. Unknown or malformed lines give none.
    pub fn feed(&mut self, line: &str) -> Vec<ResponsesEvent> {
        let Ok(message) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        let method = message.get("method").and_then(Value::as_str);
        match (message.get("id"), method) {
            (Some(id), Some(method)) => {
                self.refuse_request(id, method);
                Vec::new()
            }
            (Some(id), None) => {
                self.response(id.as_u64(), &message);
                Vec::new()
            }
            (None, Some(method)) => self.notification(method, &message["params"]),
            (None, None) => Vec::new(),
        }
    }

    /// A request from Codex to the device (approvals, user input). With approvals off none is
    /// expected; an unanswered one would stall the turn, so each is answered with an error.
    fn refuse_request(&mut self, id: &Value, method: &str) {
        tracing::warn!(method, "Codex asked the device something it cannot answer");
        self.replies.push(reply_line(json!({
            "id": id,
            "error": {"code": -32601, "message": format!("{method} is not supported by the Wegent device")},
        })));
    }

    fn response(&mut self, id: Option<u64>, message: &Value) {
        let error = message.get("error").map(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_owned)
        });
        match (id, error) {
            (Some(ids::OPEN_THREAD), Some(error)) if self.resume.is_some() => {
                // The thread's files are gone (private state wiped, other CLI version): a fresh
                // thread rather than failing every later message of this task.
                tracing::warn!(error = %error, "saved Codex thread not found; starting a new one");
                self.resume_lost = true;
                self.replies
                    .push(launch::open_thread(ids::NEW_THREAD, &self.params, None));
            }
            (Some(ids::OPEN_THREAD | ids::NEW_THREAD), None) => {
                let Some(thread_id) = message["result"]["thread"]["id"].as_str() else {
                    self.fail("Codex opened a thread without an id".to_owned());
                    return;
                };
                self.thread_id = Some(thread_id.to_owned());
                self.replies
                    .push(launch::start_turn(thread_id, &self.prompt));
            }
            (Some(ids::INITIALIZE), None) => {}
            (_, Some(error)) => self.fail(format!("Codex refused the request: {error}")),
            (_, None) => {}
        }
    }

    fn fail(&mut self, message: String) {
        if self.result.is_none() {
            self.result = Some(TaskFailure::Runtime(message).event());
        }
    }

    /// Whether a notification belongs to this task's thread (sub-agents have their own).
    fn ours(&self, params: &Value) -> bool {
        match (
            params.get("threadId").and_then(Value::as_str),
            &self.thread_id,
        ) {
            (Some(thread), Some(ours)) => thread == ours,
            _ => true,
        }
    }

    fn notification(&mut self, method: &str, params: &Value) -> Vec<ResponsesEvent> {
        if !self.ours(params) {
            return Vec::new();
        }
        match method {
            "item/agentMessage/delta" => {
                let item = params["itemId"].as_str().unwrap_or_default();
                if !self.streamed_items.contains(item) {
                    self.streamed_items.insert(item.to_owned());
                }
                self.text_chunk(item, params["delta"].as_str().unwrap_or_default())
            }
            "item/reasoning/summaryTextDelta" | "item/reasoning/textDelta" => {
                match params["delta"].as_str().filter(|d| !d.is_empty()) {
                    Some(delta) => vec![self.turn.reasoning_delta(delta)],
                    None => Vec::new(),
                }
            }
            "item/started" => self.item_started(&params["item"]),
            "item/completed" => self.item_completed(&params["item"]),
            "thread/tokenUsage/updated" => {
                self.usage = usage(&params["tokenUsage"]["total"]);
                Vec::new()
            }
            "error" => {
                let message = params["error"]["message"].as_str().unwrap_or_default();
                if params["willRetry"] == true {
                    tracing::info!(message, "Codex retries the model request");
                } else {
                    self.last_error = Some(model_error_text(message));
                }
                Vec::new()
            }
            "turn/completed" => {
                self.turn_completed(&params["turn"]);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn text_chunk(&mut self, item: &str, chunk: &str) -> Vec<ResponsesEvent> {
        if chunk.is_empty() {
            return Vec::new();
        }
        let mut delta = String::new();
        if self.current_item.as_deref() != Some(item) {
            if !self.text.is_empty() {
                delta.push_str(BLOCK_SEPARATOR);
            }
            self.current_item = Some(item.to_owned());
        }
        delta.push_str(chunk);
        let event = self.turn.text_delta(&delta, self.chars);
        self.chars += delta.chars().count();
        self.text.push_str(&delta);
        vec![event]
    }

    fn item_started(&mut self, item: &Value) -> Vec<ResponsesEvent> {
        let str_of = |key: &str| item[key].as_str().unwrap_or_default();
        // The names Claude tasks use for a shell command and an MCP tool: the chat shows both
        // agents' tools alike.
        let (name, arguments) = match str_of("type") {
            "commandExecution" => (
                "Bash".to_owned(),
                json!({"command": str_of("command")}).to_string(),
            ),
            "mcpToolCall" => (
                format!("mcp__{}__{}", str_of("server"), str_of("tool")),
                item["arguments"].to_string(),
            ),
            _ => return Vec::new(),
        };
        let call = ToolCall {
            call_id: str_of("id").to_owned(),
            name,
            arguments,
        };
        let index = self.next_output_index;
        self.next_output_index += 1;
        let event = self.turn.tool_added(index, &call);
        self.tools.insert(call.call_id.clone(), (index, call));
        vec![event]
    }

    fn item_completed(&mut self, item: &Value) -> Vec<ResponsesEvent> {
        let id = item["id"].as_str().unwrap_or_default();
        match item["type"].as_str() {
            Some("agentMessage") if !self.streamed_items.contains(id) => {
                let text = item["text"].as_str().unwrap_or_default().to_owned();
                self.text_chunk(id, &text)
            }
            Some(kind @ ("commandExecution" | "mcpToolCall")) => {
                let Some((index, call)) = self.tools.remove(id) else {
                    return Vec::new();
                };
                let (output, failed) = if kind == "commandExecution" {
                    let output = item["aggregatedOutput"].as_str().unwrap_or_default();
                    let exit = item["exitCode"].as_i64();
                    (output.to_owned(), exit.is_some_and(|code| code != 0))
                } else {
                    mcp_tool_output(item)
                };
                let output = crate::task::payload::truncate_chars(&output, TOOL_OUTPUT_MAX_CHARS);
                let failed = failed || item["status"] != "completed";
                vec![self.turn.tool_done(index, &call, &output, failed)]
            }
            _ => Vec::new(),
        }
    }

    fn turn_completed(&mut self, turn: &Value) {
        let result = match turn["status"].as_str() {
            Some("completed") => self
                .turn
                .completed(&self.text, self.usage.clone(), "end_turn"),
            Some("interrupted") => self
                .turn
                .incomplete(&self.text, "Codex interrupted the turn"),
            status => {
                let message = turn["error"]["message"]
                    .as_str()
                    .map(model_error_text)
                    .or_else(|| self.last_error.clone())
                    .unwrap_or_else(|| {
                        format!(
                            "Codex ended the turn with status {}",
                            status.unwrap_or("unknown")
                        )
                    });
                TaskFailure::Runtime(message).event()
            }
        };
        self.result.get_or_insert(result);
    }

    /// The terminal event after the process ended by itself (not cancelled, not timed out).
    pub fn finish(&self, exit: Option<i32>, stderr_tail: &str) -> ResponsesEvent {
        if let Some(result) = &self.result {
            return result.clone();
        }
        let detail = match &self.last_error {
            Some(error) if stderr_tail.trim().is_empty() => error.clone(),
            _ => stderr_tail.to_owned(),
        };
        TaskFailure::ProcessExited {
            agent: AgentKind::Codex,
            exit,
            detail,
        }
        .event()
    }
}

/// An MCP tool call's result text (its text blocks), or its error; and whether it failed.
fn mcp_tool_output(item: &Value) -> (String, bool) {
    if let Some(error) = item["error"].as_object() {
        let message = error.get("message").and_then(Value::as_str);
        return (message.unwrap_or("the tool failed").to_owned(), true);
    }
    let blocks = item["result"]["content"].as_array().into_iter().flatten();
    let text: Vec<&str> = blocks.filter_map(|b| b["text"].as_str()).collect();
    (text.join("\n"), false)
}

fn reply_line(message: Value) -> String {
    let mut s = message.to_string();
    s.push('\n');
    s
}

/// Codex quotes a refused model request's body (`{"error":{"message":…}}`): its message alone
/// reads better in the chat.
fn model_error_text(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|body| {
            body["error"]["message"]
                .as_str()
                .or_else(|| body["message"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| raw.trim().to_owned())
}

/// Responses-style usage from Codex's token totals.
fn usage(total: &Value) -> Value {
    let Some(input) = total["inputTokens"].as_u64() else {
        return Value::Null;
    };
    let output = total["outputTokens"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": input, "output_tokens": output,
        "total_tokens": total["totalTokens"].as_u64().unwrap_or(input + output),
        "input_tokens_details": {"cached_tokens": total["cachedInputTokens"].as_u64().unwrap_or(0)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREAD: &str = "01a23293-2959-7200-b2ca-5465857fa163";

    fn mapper(resume: Option<&str>) -> AppServerMapper {
        let turn = Turn {
            task_id: 1,
            subtask_id: 2,
            message_id: None,
            model: "mock-model".into(),
            created_at: 0,
        };
        let params = ThreadParams {
            cwd: "/work".into(),
            developer_instructions: None,
            config: None,
        };
        AppServerMapper::new(turn, params, json!("say hi"), resume.map(str::to_owned))
    }

    fn feed(m: &mut AppServerMapper, lines: &[Value]) -> Vec<ResponsesEvent> {
        lines.iter().flat_map(|l| m.feed(&l.to_string())).collect()
    }

    fn thread_opened() -> Value {
        json!({"id": 2, "result": {"thread": {"id": THREAD}}})
    }

    fn delta(item: &str, text: &str) -> Value {
        json!({"method": "item/agentMessage/delta", "params": {"threadId": THREAD, "itemId": item, "delta": text}})
    }

    fn turn_completed(status: &str, error: Value) -> Value {
        json!({"method": "turn/completed", "params": {"threadId": THREAD,
            "turn": {"id": "t", "status": status, "error": error}}})
    }

    // Lines as `codex app-server` 0.171.0 printed them against the mock (codex-cli.md §2.6).
    #[test]
    fn a_text_turn_streams_each_delta_and_completes_with_the_whole_answer() {
        let mut m = mapper(None);
        let events = feed(
            &mut m,
            &[
                json!({"id": 1, "result": {"userAgent": "x", "codexHome": "/h"}}),
                thread_opened(),
            ],
        );
        assert!(events.is_empty());
        let replies = m.take_replies();
        assert_eq!(replies.len(), 1);
        let start: Value = serde_json::from_str(&replies[0]).unwrap();
        assert_eq!(
            (&start["method"], &start["params"]["threadId"]),
            (&json!("turn/start"), &json!(THREAD))
        );
        assert_eq!(m.thread_id(), Some(THREAD));
        let events = feed(
            &mut m,
            &[
                json!({"method": "warning", "params": {"threadId": THREAD, "message": "Model metadata for `mock-model` not found."}}),
                json!({"method": "item/started", "params": {"threadId": THREAD, "item": {"type": "agentMessage", "id": "msg_1", "text": ""}}}),
                delta("msg_1", "Hello "),
                delta("msg_1", "from the mock model!"),
                json!({"method": "item/completed", "params": {"threadId": THREAD, "item": {"type": "agentMessage", "id": "msg_1", "text": "Hello from the mock model!"}}}),
                json!({"method": "thread/tokenUsage/updated", "params": {"threadId": THREAD, "tokenUsage": {"total": {"totalTokens": 15, "inputTokens": 10, "cachedInputTokens": 0, "outputTokens": 5}}}}),
            ],
        );
        let deltas: Vec<(&str, u64)> = events
            .iter()
            .map(|e| {
                (
                    e.data["delta"].as_str().unwrap(),
                    e.data["offset"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(deltas, [("Hello ", 0), ("from the mock model!", 6)]);
        assert!(!m.is_over());
        feed(&mut m, &[turn_completed("completed", Value::Null)]);
        assert!(m.is_over());
        let end = m.finish(Some(0), "");
        assert_eq!(end.name, "response.completed");
        assert_eq!(
            end.data["response"]["output"][0]["content"][0]["text"],
            "Hello from the mock model!"
        );
        assert_eq!(end.data["response"]["usage"]["total_tokens"], 15);
    }

    #[test]
    fn a_command_becomes_a_tool_block_and_the_answers_around_it_paragraphs() {
        let mut m = mapper(None);
        feed(&mut m, &[thread_opened()]);
        let events = feed(
            &mut m,
            &[
                delta("msg_1", "Let me look."),
                json!({"method": "item/started", "params": {"threadId": THREAD, "item": {"type": "commandExecution", "id": "call_1", "command": "/bin/bash -lc 'echo hi'", "status": "inProgress"}}}),
                json!({"method": "item/completed", "params": {"threadId": THREAD, "item": {"type": "commandExecution", "id": "call_1", "command": "/bin/bash -lc 'echo hi'", "aggregatedOutput": "hi\n", "exitCode": 0, "status": "completed"}}}),
                // A message that came whole, without deltas.
                json!({"method": "item/completed", "params": {"threadId": THREAD, "item": {"type": "agentMessage", "id": "msg_2", "text": "It said hi."}}}),
            ],
        );
        let names: Vec<&str> = events.iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "response.output_text.delta",
                "response.output_item.added",
                "response.output_item.done",
                "response.output_text.delta"
            ]
        );
        assert_eq!(events[1].data["item"]["name"], "Bash");
        assert_eq!(events[2].data["item"]["output"], "hi\n");
        assert_eq!(events[2].data["item"]["status"], "completed");
        assert_eq!(events[3].data["delta"], "\n\nIt said hi.");
        assert_eq!(m.text(), "Let me look.\n\nIt said hi.");
    }

    #[test]
    fn an_mcp_tool_call_becomes_a_tool_block_named_as_for_claude() {
        let mut m = mapper(None);
        feed(&mut m, &[thread_opened()]);
        let call = |status: &str, result: Value, error: Value| {
            json!({"method": if status == "inProgress" { "item/started" } else { "item/completed" },
                "params": {"threadId": THREAD, "item": {"type": "mcpToolCall", "id": "call_9",
                "server": "echo", "tool": "echo", "status": status, "arguments": {"text": "ping"},
                "result": result, "error": error}}})
        };
        let result = json!({"content": [{"type": "text", "text": "can-1:ping"}]});
        let events = feed(
            &mut m,
            &[
                call("inProgress", Value::Null, Value::Null),
                call("completed", result, Value::Null),
            ],
        );
        assert_eq!(events[0].data["item"]["name"], "mcp__echo__echo");
        assert_eq!(events[0].data["item"]["arguments"], r#"{"text":"ping"}"#);
        assert_eq!(events[1].data["item"]["output"], "can-1:ping");
        assert_eq!(events[1].data["item"]["status"], "completed");
        let events = feed(
            &mut m,
            &[
                call("inProgress", Value::Null, Value::Null),
                call("failed", Value::Null, json!({"message": "server gone"})),
            ],
        );
        assert_eq!(events[1].data["item"]["output"], "server gone");
        assert_ne!(events[1].data["item"]["status"], "completed");
    }

    #[test]
    fn a_failed_turn_fails_with_the_models_own_message() {
        let mut m = mapper(None);
        let body = r#"{"error": {"message": "mock model refused: quota exceeded", "type": "invalid_request_error"}}"#;
        feed(
            &mut m,
            &[
                thread_opened(),
                json!({"method": "error", "params": {"threadId": THREAD, "willRetry": true, "error": {"message": "Reconnecting... 1/5"}}}),
                json!({"method": "error", "params": {"threadId": THREAD, "willRetry": false, "error": {"message": body}}}),
                turn_completed("failed", json!({"message": body})),
            ],
        );
        let end = m.finish(Some(0), "");
        assert_eq!(end.name, "error");
        assert_eq!(end.data["code"], "runtime_error");
        assert_eq!(end.data["message"], "mock model refused: quota exceeded");
    }

    #[test]
    fn a_lost_thread_is_replaced_by_a_fresh_one_in_the_same_process() {
        let mut m = mapper(Some("gone-thread"));
        let opening: Value = serde_json::from_str(&m.opening()[2]).unwrap();
        assert_eq!(opening["method"], "thread/resume");
        feed(
            &mut m,
            &[
                json!({"id": 2, "error": {"code": -32600, "message": "no rollout found for thread id gone-thread"}}),
            ],
        );
        assert!(m.resume_lost() && !m.is_over());
        let fresh: Value = serde_json::from_str(&m.take_replies()[0]).unwrap();
        assert_eq!(
            (fresh["method"].as_str(), fresh["id"].as_u64()),
            (Some("thread/start"), Some(3))
        );
        feed(
            &mut m,
            &[json!({"id": 3, "result": {"thread": {"id": THREAD}}})],
        );
        let start: Value = serde_json::from_str(&m.take_replies()[0]).unwrap();
        assert_eq!(start["params"]["threadId"], THREAD);
    }

    #[test]
    fn other_threads_requests_and_an_early_exit_are_handled() {
        let mut m = mapper(None);
        feed(&mut m, &[thread_opened()]);
        m.take_replies();
        // A sub-agent's text is not this task's answer.
        let other = json!({"method": "item/agentMessage/delta", "params": {"threadId": "other", "itemId": "x", "delta": "no"}});
        assert!(feed(&mut m, &[other]).is_empty());
        // A request the device cannot answer gets an error, not silence.
        feed(
            &mut m,
            &[json!({"id": 9, "method": "item/tool/requestUserInput", "params": {}})],
        );
        let reply: Value = serde_json::from_str(&m.take_replies()[0]).unwrap();
        assert_eq!(
            (reply["id"].as_u64(), reply["error"]["code"].as_i64()),
            (Some(9), Some(-32601))
        );
        let end = m.finish(Some(1), "boom on stderr");
        assert_eq!(end.data["code"], "process_exited");
        assert_eq!(
            end.data["message"],
            "Codex exited with status 1 before finishing the task: boom on stderr"
        );
    }
}
