//! Claude Code `stream-json` lines → Responses events (claude-cli.md §3, protocol.md §5.2).
//!
//! A pure state machine: feed it stdout lines, then ask it for the one terminal event once the
//! process has ended. It counts the answer's characters (Unicode scalars) for `offset`, keeps the
//! full text for `response.completed`, and remembers the Claude session id for `--resume`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::task::agent::AgentKind;
use crate::task::events::{ResponsesEvent, ToolCall, Turn};
use crate::task::failure::TaskFailure;

/// Tool output shown in the chat is capped; the agent itself saw all of it.
const TOOL_OUTPUT_MAX_CHARS: usize = 2_000;
/// Between two text blocks (e.g. before and after a tool call) the answer gets a paragraph break.
const BLOCK_SEPARATOR: &str = "\n\n";

pub struct StreamMapper {
    turn: Turn,
    text: String,
    chars: usize,
    /// The next text chunk starts a new block (a separator goes first if text exists).
    new_block: bool,
    session_id: Option<String>,
    /// Messages whose text already arrived as partial `stream_event`s.
    streamed_messages: HashSet<String>,
    tools: HashMap<String, (usize, ToolCall)>,
    next_output_index: usize,
    result: Option<Value>,
}

impl StreamMapper {
    pub fn new(turn: Turn) -> Self {
        Self {
            turn,
            text: String::new(),
            chars: 0,
            new_block: true,
            session_id: None,
            streamed_messages: HashSet::new(),
            tools: HashMap::new(),
            next_output_index: 1,
            result: None,
        }
    }

    pub fn turn(&self) -> &Turn {
        &self.turn
    }

    /// The answer text streamed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The Claude session id, once a line has carried it.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    pub fn saw_result(&self) -> bool {
        self.result.is_some()
    }

    /// Events for one stdout line. Unknown or malformed lines give none.
    pub fn feed(&mut self, line: &str) -> Vec<ResponsesEvent> {
        let Ok(value) = serde_json::from_str::<Value>(line.trim()) else {
            return Vec::new();
        };
        if self.session_id.is_none() {
            if let Some(id) = value.get("session_id").and_then(Value::as_str) {
                if !id.is_empty() {
                    self.session_id = Some(id.to_owned());
                }
            }
        }
        match value.get("type").and_then(Value::as_str) {
            Some("stream_event") => self.stream_event(&value),
            Some("assistant") => self.assistant(&value),
            Some("user") => self.tool_results(&value),
            Some("result") => {
                self.result = Some(value);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn text_chunk(&mut self, chunk: &str) -> Vec<ResponsesEvent> {
        if chunk.is_empty() {
            return Vec::new();
        }
        let mut delta = String::new();
        if std::mem::take(&mut self.new_block) && !self.text.is_empty() {
            delta.push_str(BLOCK_SEPARATOR);
        }
        delta.push_str(chunk);
        let event = self.turn.text_delta(&delta, self.chars);
        self.chars += delta.chars().count();
        self.text.push_str(&delta);
        vec![event]
    }

    /// Remember that this API message streamed partial deltas (its full copy in the later
    /// `assistant` line is then not sent again). Checked first: one allocation per message.
    fn note_streamed(&mut self, line: &Value) {
        if let Some(id) = line.get("api_message_id").and_then(Value::as_str) {
            if !self.streamed_messages.contains(id) {
                self.streamed_messages.insert(id.to_owned());
            }
        }
    }

    /// Partial messages (`--include-partial-messages`): real token streaming.
    fn stream_event(&mut self, line: &Value) -> Vec<ResponsesEvent> {
        let event = &line["event"];
        match event.get("type").and_then(Value::as_str) {
            Some("content_block_start") => {
                if event["content_block"]["type"] == "text" {
                    self.new_block = true;
                }
                Vec::new()
            }
            Some("content_block_delta") => {
                let delta = &event["delta"];
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        self.note_streamed(line);
                        self.text_chunk(delta["text"].as_str().unwrap_or_default())
                    }
                    Some("thinking_delta") => {
                        self.note_streamed(line);
                        let t = delta["thinking"].as_str().unwrap_or_default();
                        if t.is_empty() {
                            Vec::new()
                        } else {
                            vec![self.turn.reasoning_delta(t)]
                        }
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// A whole content block. Text already streamed as partials is skipped; synthetic API-error
    /// messages are not part of the answer (the terminal `error` carries them).
    fn assistant(&mut self, line: &Value) -> Vec<ResponsesEvent> {
        let message = &line["message"];
        let synthetic = message["model"] == "<synthetic>" || line["is_api_error_message"] == true;
        let streamed = message
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| self.streamed_messages.contains(id));
        let mut out = Vec::new();
        for block in message["content"].as_array().into_iter().flatten() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") if !streamed && !synthetic => {
                    self.new_block = true;
                    out.extend(self.text_chunk(block["text"].as_str().unwrap_or_default()));
                }
                Some("thinking") if !streamed => {
                    if let Some(t) = block["thinking"].as_str().filter(|t| !t.is_empty()) {
                        out.push(self.turn.reasoning_delta(t));
                    }
                }
                Some("tool_use") => {
                    let call = ToolCall {
                        call_id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or("tool").to_owned(),
                        arguments: block.get("input").map(Value::to_string).unwrap_or_default(),
                    };
                    let index = self.next_output_index;
                    self.next_output_index += 1;
                    out.push(self.turn.tool_added(index, &call));
                    self.tools.insert(call.call_id.clone(), (index, call));
                    // Text after a tool call is a new paragraph.
                    self.new_block = true;
                }
                _ => {}
            }
        }
        out
    }

    fn tool_results(&mut self, line: &Value) -> Vec<ResponsesEvent> {
        let mut out = Vec::new();
        for block in line["message"]["content"].as_array().into_iter().flatten() {
            if block["type"] != "tool_result" {
                continue;
            }
            let id = block["tool_use_id"].as_str().unwrap_or_default();
            let Some((index, call)) = self.tools.remove(id) else {
                continue;
            };
            let output = crate::task::payload::truncate_chars(
                &content_text(&block["content"]),
                TOOL_OUTPUT_MAX_CHARS,
            );
            let failed = block["is_error"] == true;
            out.push(self.turn.tool_done(index, &call, &output, failed));
        }
        out
    }

    /// The terminal event after the process exited by itself (not cancelled, not timed out).
    /// `exit` is the exit code (`None`: killed by a signal); `stderr_tail` the CLI's last words.
    pub fn finish(&self, exit: Option<i32>, stderr_tail: &str) -> ResponsesEvent {
        let Some(result) = &self.result else {
            return TaskFailure::ProcessExited {
                agent: AgentKind::Claude,
                exit,
                detail: stderr_tail.to_owned(),
            }
            .event();
        };
        // `subtype:"success"` can carry `is_error:true` (an API error): check `is_error`.
        if result["is_error"] == true || result["subtype"].as_str().is_some_and(|s| s != "success")
        {
            let api =
                result["terminal_reason"] == "api_error" || !result["api_error_status"].is_null();
            let message = result_error_message(result, stderr_tail);
            let failure = if api {
                TaskFailure::Api(message)
            } else {
                TaskFailure::Runtime(message)
            };
            return failure.event();
        }
        let text = if self.text.trim().is_empty() {
            result["result"].as_str().unwrap_or_default()
        } else {
            &self.text
        };
        let stop = result["stop_reason"].as_str().unwrap_or("end_turn");
        self.turn.completed(text, usage(&result["usage"]), stop)
    }
}

/// The CLI's own words for a failed run: `result` text, else `errors[]`, else the stderr tail.
fn result_error_message(result: &Value, stderr_tail: &str) -> String {
    if let Some(text) = result["result"].as_str().filter(|t| !t.trim().is_empty()) {
        return text.trim().to_owned();
    }
    let errors: Vec<&str> = result["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !errors.is_empty() {
        return format!("Claude Code failed: {}", errors.join("; "));
    }
    let subtype = result["subtype"].as_str().unwrap_or("error");
    with_detail(&format!("Claude Code failed ({subtype})"), stderr_tail)
}

fn with_detail(message: &str, detail: &str) -> String {
    let detail = detail.trim();
    if detail.is_empty() {
        message.to_owned()
    } else {
        format!("{message}: {detail}")
    }
}

/// Responses-style usage from the CLI's totals.
fn usage(u: &Value) -> Value {
    let Some(input) = u["input_tokens"].as_u64() else {
        return Value::Null;
    };
    let output = u["output_tokens"].as_u64().unwrap_or(0);
    let cached = u["cache_read_input_tokens"].as_u64().unwrap_or(0)
        + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    serde_json::json!({
        "input_tokens": input + cached, "output_tokens": output,
        "total_tokens": input + cached + output,
        "input_tokens_details": {"cached_tokens": u["cache_read_input_tokens"].as_u64().unwrap_or(0)},
    })
}

/// A tool result's content: a string or a list of text blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapper() -> StreamMapper {
        StreamMapper::new(Turn {
            task_id: 1,
            subtask_id: 2,
            message_id: None,
            model: "m".into(),
            created_at: 0,
        })
    }

    fn feed(m: &mut StreamMapper, v: Value) -> Vec<ResponsesEvent> {
        m.feed(&v.to_string())
    }

    fn names(events: &[ResponsesEvent]) -> Vec<&str> {
        events.iter().map(|e| e.name).collect()
    }

    #[test]
    fn offsets_count_unicode_scalars_and_blocks_are_separated() {
        let mut m = mapper();
        let e = feed(
            &mut m,
            json!({"type":"assistant","message":{"id":"a","content":[{"type":"text","text":"héllo 🌍"}]}}),
        );
        assert_eq!(e[0].data["offset"], 0);
        let e = feed(
            &mut m,
            json!({"type":"assistant","message":{"id":"b","content":[{"type":"text","text":"ok"}]}}),
        );
        assert_eq!(e[0].data["delta"], "\n\nok");
        assert_eq!(e[0].data["offset"], 7, "7 scalars before, not 10 bytes");
        assert_eq!(m.text(), "héllo 🌍\n\nok");
    }

    #[test]
    fn partial_messages_stream_and_the_whole_block_is_not_repeated() {
        let mut m = mapper();
        feed(
            &mut m,
            json!({"type":"system","subtype":"init","session_id":"s-1"}),
        );
        feed(
            &mut m,
            json!({"type":"stream_event","api_message_id":"a","event":{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}}),
        );
        let e1 = feed(
            &mut m,
            json!({"type":"stream_event","api_message_id":"a","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}}),
        );
        let e2 = feed(
            &mut m,
            json!({"type":"stream_event","api_message_id":"a","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}}),
        );
        assert_eq!(
            (e1[0].data["offset"].as_u64(), e2[0].data["offset"].as_u64()),
            (Some(0), Some(3))
        );
        let whole = feed(
            &mut m,
            json!({"type":"assistant","message":{"id":"a","content":[{"type":"text","text":"Hello"}]}}),
        );
        assert!(whole.is_empty());
        assert_eq!(m.session_id(), Some("s-1"));
        feed(
            &mut m,
            json!({"type":"result","subtype":"success","is_error":false,"result":"Hello","usage":{"input_tokens":3,"output_tokens":2}}),
        );
        let done = m.finish(Some(0), "");
        assert_eq!(done.name, "response.completed");
        assert_eq!(
            done.data["response"]["output"][0]["content"][0]["text"],
            "Hello"
        );
        assert_eq!(done.data["response"]["usage"]["total_tokens"], 5);
    }

    #[test]
    fn tool_use_becomes_item_added_then_done() {
        let mut m = mapper();
        let added = feed(
            &mut m,
            json!({"type":"assistant","message":{"id":"a","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}),
        );
        assert_eq!(names(&added), ["response.output_item.added"]);
        assert_eq!(added[0].data["item"]["type"], "function_call");
        assert_eq!(added[0].data["item"]["name"], "Bash");
        assert_eq!(added[0].data["item"]["arguments"], r#"{"command":"ls"}"#);
        let done = feed(
            &mut m,
            json!({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"a.txt","is_error":false}]}}),
        );
        assert_eq!(names(&done), ["response.output_item.done"]);
        assert_eq!(done[0].data["item"]["output"], "a.txt");
        assert_eq!(done[0].data["output_index"], added[0].data["output_index"]);
    }

    #[test]
    fn reasoning_becomes_reasoning_deltas() {
        let mut m = mapper();
        let e = feed(
            &mut m,
            json!({"type":"assistant","message":{"id":"a","content":[{"type":"thinking","thinking":"hmm"}]}}),
        );
        assert_eq!(names(&e), ["response.reasoning_summary_text.delta"]);
        assert_eq!(e[0].data["delta"], "hmm");
    }

    #[test]
    fn api_error_with_success_subtype_is_an_error_not_text() {
        let mut m = mapper();
        let e = feed(
            &mut m,
            json!({"type":"assistant","message":{"id":"x","model":"<synthetic>","content":[{"type":"text","text":"API Error: 500"}]}}),
        );
        assert!(e.is_empty());
        feed(
            &mut m,
            json!({"type":"result","subtype":"success","is_error":true,"result":"API Error: 500 mock api_error","terminal_reason":"api_error","api_error_status":500}),
        );
        let end = m.finish(Some(1), "");
        assert_eq!(end.name, "error");
        assert_eq!(end.data["code"], "api_error");
        assert_eq!(end.data["message"], "API Error: 500 mock api_error");
    }

    #[test]
    fn errors_list_and_missing_result_are_reported_in_the_clis_words() {
        let mut m = mapper();
        feed(
            &mut m,
            json!({"type":"result","subtype":"error_max_turns","is_error":true,"errors":["Reached maximum number of turns (1)"]}),
        );
        assert!(m.finish(Some(1), "").data["message"]
            .as_str()
            .unwrap()
            .contains("maximum number of turns"));
        let m = mapper();
        let end = m.finish(Some(1), "Error: bad flag");
        assert_eq!(end.name, "error");
        assert_eq!(
            end.data["message"],
            "Claude Code exited with status 1 before finishing the task: Error: bad flag"
        );
        assert!(m.finish(None, "").data["message"]
            .as_str()
            .unwrap()
            .contains("killed by a signal"));
    }

    #[test]
    fn unknown_and_malformed_lines_are_ignored() {
        let mut m = mapper();
        assert!(m.feed("not json").is_empty());
        assert!(feed(&mut m, json!({"type":"brand_new_type","x":1})).is_empty());
        assert!(feed(&mut m, json!({"type":"system","subtype":"api_retry"})).is_empty());
        assert!(!m.saw_result());
    }
}
