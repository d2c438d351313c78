//! The OpenAI Responses API side of the mock model (`POST /v1/responses`, SSE), the only wire API
//! Codex CLI 0.171 speaks (codex-cli.md §2.2–§2.4). It follows the same [`Script`] as the
//! Anthropic side, so a test can run the same scenario against either agent.
//!
//! Codex builds its turn only from `response.output_item.done` and needs `response.completed`
//! with an id; the text deltas before them are what an app-server client streams
//! (`item/agentMessage/delta`), so the mock sends the full sequence OpenAI sends.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    content_text, demo_answer, json_response, rand_suffix, record, sse_response, ModelApi, Script,
    SeenRequest, Sent, Shared, TextAnswer, TOOL_RESULT,
};

/// The agent named in the demo answer.
const AGENT: &str = "Codex";

pub(super) async fn responses(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("gpt-5.5").to_owned();
    let tool_output = last_tool_output(&request);
    let prompts = user_prompts(&request);
    let seen = SeenRequest {
        api: ModelApi::Responses,
        api_key: bearer(&headers),
        model: model.clone(),
        has_tool_result: tool_output.is_some(),
        prompt: prompts.first().cloned().unwrap_or_default(),
        cwd: working_directory(&request),
        earlier_answers: earlier_answers(&request),
        prompts,
        headers: super::header_pairs(&headers),
        body: request.clone(),
    };
    record(&shared, seen.clone());

    let (tx, rx) = mpsc::channel::<String>(64);
    let demo = || {
        let prompt = seen.prompts.last().cloned().unwrap_or_default();
        demo_answer(AGENT, &prompt, &seen.cwd, seen.earlier_answers)
    };
    if let Some(answer) = TextAnswer::of(&shared.script, demo) {
        tokio::spawn(async move {
            let _ = send_text(&tx, &model, &answer).await;
        });
        return sse_response(rx);
    }
    match shared.script.clone() {
        Script::ApiError { status, message } => {
            // OpenAI's error body; codex puts `error.message` into its `turn.failed` message.
            let error = json!({"error": {"message": message, "type": "api_error", "param": null,
                "code": null}});
            return json_response(status, &error);
        }
        Script::Stall => {
            tokio::spawn(async move {
                let _ = tx.send(created(&response_id(), &model)).await;
                // Keep the stream open until the client goes away.
                tx.closed().await;
            });
        }
        Script::RunCommand { command, then } => {
            tokio::spawn(async move {
                match tool_output {
                    Some(output) => {
                        let answer = then.replace(TOOL_RESULT, &command_output(&output));
                        let _ = send_text(&tx, &model, &TextAnswer::whole(answer)).await;
                    }
                    None => {
                        let arguments = json!({"cmd": command});
                        let call = FunctionCall {
                            namespace: None,
                            name: "exec_command",
                            arguments: &arguments,
                        };
                        let _ = send_function_call(&tx, &model, &call).await;
                    }
                }
            });
        }
        Script::CallTool { tool, input } => {
            tokio::spawn(async move {
                match tool_output {
                    Some(output) => {
                        let answer = TextAnswer::whole(format!("Tool result: {output}"));
                        let _ = send_text(&tx, &model, &answer).await;
                    }
                    None => {
                        let (namespace, name) = codex_tool_name(&tool);
                        let call = FunctionCall {
                            namespace,
                            name,
                            arguments: &input,
                        };
                        let _ = send_function_call(&tx, &model, &call).await;
                    }
                }
            });
        }
        Script::Text(_) | Script::Slow { .. } | Script::Gated { .. } | Script::Demo => {
            unreachable!("a text answer is streamed above")
        }
    }
    sse_response(rx)
}

fn sse(event: &str, mut data: Value) -> String {
    data["type"] = json!(event);
    format!("event: {event}\ndata: {data}\n\n")
}

fn response_id() -> String {
    format!("resp_mock_{}", rand_suffix())
}

fn created(id: &str, model: &str) -> String {
    sse(
        "response.created",
        json!({"response": {"id": id, "object": "response", "status": "in_progress", "model": model,
            "output": []}}),
    )
}

fn completed(id: &str, model: &str, output: Value) -> String {
    sse(
        "response.completed",
        json!({"response": {"id": id, "object": "response", "status": "completed", "model": model,
            "output": output,
            "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 19}}}),
    )
}

/// A streamed assistant message: one `response.output_text.delta` per chunk.
async fn send_text(tx: &mpsc::Sender<String>, model: &str, answer: &TextAnswer) -> Sent {
    let id = response_id();
    let item_id = format!("msg_mock_{}", rand_suffix());
    let at = |extra: Value| {
        let mut v = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        v
    };
    tx.send(created(&id, model)).await?;
    let message = json!({"type": "message", "id": item_id, "role": "assistant",
        "status": "in_progress", "content": []});
    tx.send(sse(
        "response.output_item.added",
        json!({"output_index": 0, "item": message}),
    ))
    .await?;
    let empty = json!({"type": "output_text", "text": "", "annotations": []});
    tx.send(sse(
        "response.content_part.added",
        at(json!({"part": empty})),
    ))
    .await?;
    for (i, chunk) in answer.chunks.iter().enumerate() {
        answer.before_chunk(i).await;
        tx.send(sse(
            "response.output_text.delta",
            at(json!({"delta": chunk})),
        ))
        .await?;
    }
    let text = answer.chunks.concat();
    let part = json!({"type": "output_text", "text": text, "annotations": []});
    tx.send(sse("response.output_text.done", at(json!({"text": text}))))
        .await?;
    tx.send(sse("response.content_part.done", at(json!({"part": part}))))
        .await?;
    let message = json!({"type": "message", "id": item_id, "role": "assistant",
        "status": "completed", "content": [part]});
    tx.send(sse(
        "response.output_item.done",
        json!({"output_index": 0, "item": message}),
    ))
    .await?;
    tx.send(completed(&id, model, json!([message]))).await
}

/// A function the model calls; `namespace`: the tool group it was listed in, if any.
struct FunctionCall<'a> {
    namespace: Option<&'a str>,
    name: &'a str,
    arguments: &'a Value,
}

/// The Claude-style name of an MCP tool (`mcp__<server>__<tool>`) as codex 0.171.0 lists it:
/// the tool `<tool>` in the namespace `mcp__<server>` (the namespace is named in the request's
/// "Deferred tool namespaces"). Any other name is a plain function.
fn codex_tool_name(tool: &str) -> (Option<&str>, &str) {
    let split = tool
        .strip_prefix("mcp__")
        .and_then(|rest| rest.find("__"))
        .map(|at| tool.split_at(at + "mcp__".len()));
    match split {
        Some((namespace, name)) => (Some(namespace), &name[2..]),
        None => (None, tool),
    }
}

/// A function call: codex runs it and asks again with its output.
async fn send_function_call(
    tx: &mpsc::Sender<String>,
    model: &str,
    call: &FunctionCall<'_>,
) -> Sent {
    let id = response_id();
    let suffix = rand_suffix();
    let (item_id, arguments) = (format!("fc_mock_{suffix}"), call.arguments.to_string());
    let namespace = call.namespace;
    let mut call = json!({"type": "function_call", "id": item_id,
        "call_id": format!("call_mock_{suffix}"), "name": call.name, "arguments": arguments,
        "status": "completed"});
    if let Some(namespace) = namespace {
        call["namespace"] = namespace.into();
    }
    let mut started = call.clone();
    started["status"] = json!("in_progress");
    started["arguments"] = json!("");
    let events = [
        created(&id, model),
        sse(
            "response.output_item.added",
            json!({"output_index": 0, "item": started}),
        ),
        sse(
            "response.function_call_arguments.delta",
            json!({"item_id": item_id, "output_index": 0, "delta": arguments}),
        ),
        sse(
            "response.function_call_arguments.done",
            json!({"item_id": item_id, "output_index": 0, "arguments": arguments}),
        ),
        sse(
            "response.output_item.done",
            json!({"output_index": 0, "item": call}),
        ),
        completed(&id, model, json!([call])),
    ];
    for event in events {
        tx.send(event).await?;
    }
    Ok(())
}

/// The key codex sends (`Authorization: Bearer <env_key's value>`).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    Some(value.strip_prefix("Bearer ").unwrap_or(value).to_owned())
}

/// The output of the tool call this request answers (the last input item), if it is one.
fn last_tool_output(request: &Value) -> Option<String> {
    let last = request["input"].as_array()?.last()?;
    if last["type"] != "function_call_output" {
        return None;
    }
    let output = &last["output"];
    Some(if output.is_string() || output.is_array() {
        content_text(output)
    } else {
        output.to_string()
    })
}

/// What the command printed: codex wraps it in a header (`Chunk ID`, `Wall time`, exit code …,
/// then `Output:`); a test wants to see the command's own output.
fn command_output(tool_output: &str) -> String {
    let output = tool_output
        .split_once("Output:\n")
        .map_or(tool_output, |(_, rest)| rest);
    output.trim_end().to_owned()
}

/// Context blocks codex sends as user messages before (and between) the user's prompts.
const CONTEXT_PREFIXES: [&str; 4] = [
    "<environment_context>",
    "<user_instructions>",
    "<turn_aborted>",
    "# AGENTS.md instructions",
];

/// The user's prompts in order: the text of each user message that is not one of codex's own
/// context blocks (a resumed thread carries the earlier turns' prompts first).
fn user_prompts(request: &Value) -> Vec<String> {
    input_messages(request, "user")
        .map(message_text)
        .filter(|t| !CONTEXT_PREFIXES.iter().any(|p| t.starts_with(p)))
        .map(|t| t.trim().to_owned())
        .collect()
}

/// Assistant answers already in the conversation: more than 0 when codex resumed the thread.
fn earlier_answers(request: &Value) -> usize {
    input_messages(request, "assistant").count()
}

/// The directory codex runs in, from its `<environment_context>` (`<cwd>…</cwd>`).
fn working_directory(request: &Value) -> String {
    input_messages(request, "user")
        .map(message_text)
        .find_map(|t| {
            let (_, rest) = t.split_once("<cwd>")?;
            let (cwd, _) = rest.split_once("</cwd>")?;
            Some(cwd.trim().to_owned())
        })
        .unwrap_or_default()
}

fn input_messages<'a>(request: &'a Value, role: &'a str) -> impl Iterator<Item = &'a Value> {
    let items = request["input"].as_array().map(Vec::as_slice);
    items
        .unwrap_or_default()
        .iter()
        .filter(move |i| i["type"] == "message" && i["role"] == role)
}

fn message_text(message: &Value) -> String {
    content_text(&message["content"])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input of a resumed codex thread's second request, as codex 0.171.0 sends it.
    fn resumed() -> Value {
        let user = |text: &str| {
            json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]})
        };
        json!({"model": "gpt-5.5", "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex"}]},
            user("<environment_context>\n  <cwd>/work/p</cwd>\n  <shell>bash</shell>\n</environment_context>"),
            user("one\n"),
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
            user("two\n"),
        ]})
    }

    #[test]
    fn reads_prompts_cwd_and_earlier_answers_of_a_resumed_thread() {
        let request = resumed();
        assert_eq!(user_prompts(&request), ["one", "two"]);
        assert_eq!(working_directory(&request), "/work/p");
        assert_eq!(earlier_answers(&request), 1);
        assert_eq!(last_tool_output(&request), None);
    }

    #[test]
    fn an_mcp_tool_is_called_in_its_servers_namespace() {
        assert_eq!(
            codex_tool_name("mcp__echo__echo"),
            (Some("mcp__echo"), "echo")
        );
        assert_eq!(
            codex_tool_name("mcp__my-board__list__all"),
            (Some("mcp__my-board"), "list__all")
        );
        assert_eq!(codex_tool_name("exec_command"), (None, "exec_command"));
        assert_eq!(codex_tool_name("mcp__odd"), (None, "mcp__odd"));
    }

    #[test]
    fn the_tool_result_is_the_commands_own_output() {
        let mut request = resumed();
        request["input"].as_array_mut().unwrap().push(json!({"type": "function_call_output",
            "call_id": "c", "output": "Chunk ID: 1\nWall time: 0.1 seconds\nProcess exited with code 0\nOriginal token count: 4\nOutput:\nhello\n"}));
        let output = last_tool_output(&request).unwrap();
        assert_eq!(command_output(&output), "hello");
        assert_eq!(command_output("plain\n"), "plain");
    }
}
