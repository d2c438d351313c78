//! The Anthropic Messages API side of the mock model (`POST /v1/messages`, SSE), which Claude
//! Code runs against (claude-cli.md §6).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    content_text, demo_answer, header_pairs, json_response, rand_suffix, record, sse_response,
    ModelApi, Script, SeenRequest, Sent, Shared, TextAnswer, TOOL_RESULT,
};

pub(super) async fn messages(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"]
        .as_str()
        .unwrap_or("claude-sonnet-4-5")
        .to_owned();
    let has_tool_result = last_user_has_tool_result(&request);
    record(
        &shared,
        SeenRequest {
            api: ModelApi::Messages,
            api_key: headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            model: model.clone(),
            has_tool_result,
            prompt: first_user_text(&request),
            prompts: user_texts(&request).collect(),
            earlier_answers: earlier_answers(&request),
            cwd: working_directory(&request),
            headers: header_pairs(&headers),
            body: request.clone(),
        },
    );

    if request["stream"] == false {
        // The CLI's non-streaming fallback: answer with a plain message.
        let message = json!({"id": "msg_mock_ns", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "non-streaming answer"}], "stop_reason": "end_turn",
            "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 3}});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(message.to_string()))
            .expect("static response parts");
    }

    let (tx, rx) = mpsc::channel::<String>(64);
    let demo = || {
        demo_answer(
            CLAUDE,
            &last_user_text(&request),
            &working_directory(&request),
            earlier_answers(&request),
        )
    };
    if let Some(answer) = TextAnswer::of(&shared.script, demo) {
        tokio::spawn(async move {
            let _ = send_text_message(&tx, &model, &answer).await;
        });
        return sse_response(rx);
    }
    match shared.script.clone() {
        Script::ApiError { status, message } => {
            let error =
                json!({"type": "error", "error": {"type": "api_error", "message": message}});
            return json_response(status, &error);
        }
        Script::Stall => {
            tokio::spawn(async move {
                let _ = tx.send(message_start(&model)).await;
                // Keep the stream open until the client goes away.
                tx.closed().await;
            });
        }
        Script::RunCommand { command, then } => {
            let then = if has_tool_result {
                then.replace(
                    TOOL_RESULT,
                    &last_tool_result_text(&request).unwrap_or_default(),
                )
            } else {
                then
            };
            tokio::spawn(async move {
                if has_tool_result {
                    let _ = send_text_message(&tx, &model, &TextAnswer::whole(then)).await;
                } else {
                    let input =
                        json!({"command": command, "description": "Run the scripted command"});
                    let _ = send_tool_use(&tx, &model, "Bash", &input).await;
                }
            });
        }
        Script::CallTool { tool, input } => {
            let result = last_tool_result_text(&request);
            tokio::spawn(async move {
                match result {
                    Some(text) => {
                        let answer = TextAnswer::whole(format!("Tool result: {text}"));
                        let _ = send_text_message(&tx, &model, &answer).await;
                    }
                    None => {
                        let _ = send_tool_use(&tx, &model, &tool, &input).await;
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

/// The agent the Messages API's demo answer names.
const CLAUDE: &str = "Claude Code";

fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn message_start(model: &str) -> String {
    let id = format!("msg_mock_{}", rand_suffix());
    sse(
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}}}),
    )
}

fn message_end(stop_reason: &str) -> [String; 2] {
    [
        sse(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                   "usage": {"output_tokens": 7}}),
        ),
        sse("message_stop", json!({"type": "message_stop"})),
    ]
}

/// A streamed text answer: one `content_block_delta` per chunk.
async fn send_text_message(tx: &mpsc::Sender<String>, model: &str, answer: &TextAnswer) -> Sent {
    tx.send(message_start(model)).await?;
    tx.send(sse(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ))
    .await?;
    for (i, chunk) in answer.chunks.iter().enumerate() {
        answer.before_chunk(i).await;
        tx.send(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}),
        ))
        .await?;
    }
    tx.send(sse(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ))
    .await?;
    for event in message_end("end_turn") {
        tx.send(event).await?;
    }
    Ok(())
}

async fn send_tool_use(tx: &mpsc::Sender<String>, model: &str, tool: &str, input: &Value) -> Sent {
    tx.send(message_start(model)).await?;
    let id = format!("toolu_mock_{}", rand_suffix());
    let events = [
        sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Running the command."}}),
        ),
        sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": id, "name": tool, "input": {}}}),
        ),
        sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
        ),
        sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
    ];
    for event in events {
        tx.send(event).await?;
    }
    for event in message_end("tool_use") {
        tx.send(event).await?;
    }
    Ok(())
}

/// The text of the tool result in the last user message, if it has one.
fn last_tool_result_text(request: &Value) -> Option<String> {
    let last_user = request["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    let result = last_user["content"]
        .as_array()?
        .iter()
        .find(|b| b["type"] == "tool_result")?;
    Some(content_text(&result["content"]))
}

fn last_user_has_tool_result(request: &Value) -> bool {
    let Some(messages) = request["messages"].as_array() else {
        return false;
    };
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"))
}

/// The last text block of the first user message (after the CLI's `<system-reminder>` blocks).
fn first_user_text(request: &Value) -> String {
    user_texts(request).next().unwrap_or_default()
}

/// The latest user message's text: the prompt of this turn (a resumed session replays the
/// earlier turns before it).
fn last_user_text(request: &Value) -> String {
    user_texts(request).last().unwrap_or_default()
}

/// The text of each user message (its last text block: the CLI puts reminders before the prompt).
fn user_texts(request: &Value) -> impl Iterator<Item = String> + '_ {
    let messages = request["messages"].as_array().map(Vec::as_slice);
    messages
        .unwrap_or_default()
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| match &m["content"] {
            Value::String(s) => Some(s.clone()),
            Value::Array(blocks) => blocks
                .iter()
                .rev()
                .find_map(|b| b["text"].as_str())
                .map(str::to_owned),
            _ => None,
        })
}

/// Answers already in the conversation: more than 0 when the device resumed the task's session.
fn earlier_answers(request: &Value) -> usize {
    request["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count())
}

/// The directory Claude Code runs in, from its `# Environment` block
/// (`Primary working directory: …`), which 2.1.330 sends in a `role:"system"` message and older
/// versions in `system`: search every string of the request.
fn working_directory(request: &Value) -> String {
    fn find(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => s.lines().find_map(|l| {
                let (_, rest) = l.split_once("Primary working directory:")?;
                Some(rest.trim().to_owned())
            }),
            Value::Array(items) => items.iter().find_map(find),
            Value::Object(map) => map.values().find_map(find),
            _ => None,
        }
    }
    find(request).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_answer_names_the_latest_prompt_and_a_resumed_session() {
        let first = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "one"}]}]});
        let text = demo_answer(
            CLAUDE,
            &last_user_text(&first),
            "/p",
            earlier_answers(&first),
        );
        assert!(
            text.contains("You asked: \"one\"") && text.contains("in `/p`"),
            "{text}"
        );
        assert!(!text.contains("follow-up"), "{text}");
        let resumed = json!({"messages": [{"role": "user", "content": "one"},
            {"role": "assistant", "content": [{"type": "text", "text": "answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "two"}]}]});
        assert_eq!(first_user_text(&resumed), "one");
        let text = demo_answer(
            CLAUDE,
            &last_user_text(&resumed),
            "",
            earlier_answers(&resumed),
        );
        assert!(text.contains("You asked: \"two\""), "{text}");
        assert!(
            text.contains(
                "Claude Code resumed the task's session, which already holds 1 earlier answer."
            ),
            "{text}"
        );
    }
}
