//! How `claude` is launched for a task (protocol.md §15, claude-cli.md §2).
//!
//! Arguments, environment and the stdin line are pure functions of the task, so they are tested
//! without a process. Secrets travel only in the environment; the prompt only on stdin; the system
//! prompt in a file in the task's private dir (it is often 25 KB: too big to show in `ps`, and an
//! argument that large risks `E2BIG`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::task::agent::locate::Cli;
use crate::task::payload::TaskRequest;
use crate::task::workspace::TaskDirs;

pub const INSTALL_HINT: &str =
    "Install it with `npm install -g @anthropic-ai/claude-code` (needs Node.js), \
or set the path to the `claude` executable in the device settings";

/// The `claude` executable: the configured path, else the first `claude` on `PATH` or where its
/// installers put it.
pub fn resolve(configured: Option<&Path>) -> Result<PathBuf, String> {
    Cli {
        name: "claude",
        product: "Claude Code",
        install_hint: INSTALL_HINT,
        home_dirs: &[".claude/local", ".local/bin", ".npm-global/bin", ".bun/bin"],
    }
    .find(configured)
}

/// Command-line arguments. Nothing secret and nothing from the user's message goes here.
pub fn args(
    req: &TaskRequest,
    resume: Option<&str>,
    system_prompt_file: Option<&Path>,
    mcp_config: Option<&Path>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        // Token-by-token text for the chat instead of one block per message.
        "--include-partial-messages",
        "--permission-mode",
        &req.permission_mode,
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if let Some(file) = system_prompt_file {
        args.push("--append-system-prompt-file".into());
        args.push(file.into());
    }
    if let Some(file) = mcp_config {
        args.push("--mcp-config".into());
        args.push(file.into());
    }
    if let Some(model) = &req.model_id {
        args.push("--model".into());
        args.push(model.into());
    }
    if let Some(id) = resume {
        args.push("--resume".into());
        args.push(id.into());
    }
    args
}

/// The child's environment on top of the device's own: the payload's variables, then the
/// per-task isolation the CLI needs (config dir, temp dir, no nonessential traffic).
pub fn env(req: &TaskRequest, dirs: &TaskDirs, as_root: bool) -> Vec<(String, String)> {
    let mut env = req.env.clone();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let fixed = [
        ("CLAUDE_CONFIG_DIR", path(&dirs.claude_config)),
        ("TMPDIR", path(&dirs.tmp)),
        ("CLAUDE_CODE_TMPDIR", path(&dirs.tmp)),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ("CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY", "1".into()),
        ("DISABLE_AUTOUPDATER", "1".into()),
        ("WEGENT_SUBTASK_ID", req.subtask_id.to_string()),
        ("WEGENT_WORKSPACE", path(&dirs.cwd)),
    ];
    for (name, value) in fixed {
        env.retain(|(n, _)| n != name);
        env.push((name.to_owned(), value));
    }
    // As root the CLI refuses bypassPermissions unless it is told it runs in a sandbox.
    if as_root && req.permission_mode == "bypassPermissions" {
        env.push(("IS_SANDBOX".into(), "1".into()));
    }
    env
}

/// The one stream-json line written to stdin: the user's message.
pub fn stdin_line(prompt: &Value) -> String {
    let content = match prompt {
        Value::Array(blocks) => Value::Array(blocks.iter().filter_map(content_block).collect()),
        Value::String(s) => Value::String(s.clone()),
        _ => Value::String(String::new()),
    };
    let line = json!({
        "type": "user", "session_id": "",
        "message": {"role": "user", "content": content},
        "parent_tool_use_id": null,
    });
    let mut s = line.to_string();
    s.push('\n');
    s
}

/// A Responses input block (`input_text`, `input_image`) as an Anthropic content block.
fn content_block(block: &Value) -> Option<Value> {
    match block.get("type").and_then(Value::as_str) {
        Some("input_text" | "text") => {
            Some(json!({"type": "text", "text": block.get("text")?.as_str()?}))
        }
        Some("input_image" | "image") => {
            let url = block
                .get("image_url")
                .and_then(|u| u.as_str().or_else(|| u.get("url").and_then(Value::as_str)))?;
            if let Some(rest) = url.strip_prefix("data:") {
                let (media_type, data) = rest.split_once(";base64,")?;
                Some(
                    json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
                )
            } else {
                Some(json!({"type": "image", "source": {"type": "url", "url": url}}))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> TaskRequest {
        crate::task::payload::parse(&json!({
            "task_id": 5, "subtask_id": 6, "prompt": "hi",
            "model_config": {"api_key": "sk-secret-999", "model_id": "claude-sonnet-4-5"},
        }))
        .unwrap()
    }

    #[test]
    fn args_carry_no_secret_and_no_prompt() {
        let req = request();
        let args = args(
            &req,
            Some("sess-1"),
            Some(Path::new("/t/sp.md")),
            Some(Path::new("/t/mcp.json")),
        );
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(joined.windows(2).any(|w| w == ["--resume", "sess-1"]));
        assert!(joined
            .windows(2)
            .any(|w| w == ["--model", "claude-sonnet-4-5"]));
        assert!(joined
            .windows(2)
            .any(|w| w == ["--append-system-prompt-file", "/t/sp.md"]));
        assert!(joined
            .windows(2)
            .any(|w| w == ["--mcp-config", "/t/mcp.json"]));
        assert!(joined.contains(&"--verbose".to_owned()));
        assert!(!joined
            .iter()
            .any(|a| a.contains("sk-secret-999") || a == "hi"));
    }

    #[test]
    fn env_isolates_the_task_and_allows_bypass_as_root() {
        let req = request();
        let dirs = TaskDirs::new(Path::new("/home/x"), 5, "/code/proj".into());
        let env = env(&req, &dirs, true);
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("ANTHROPIC_API_KEY"), Some("sk-secret-999"));
        assert_eq!(get("IS_SANDBOX"), Some("1"));
        assert_eq!(get("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"), Some("1"));
        // Private state under the executor home, never in the user's folder.
        assert!(get("CLAUDE_CONFIG_DIR")
            .unwrap()
            .starts_with("/home/x/tasks/5/"));
        assert!(get("TMPDIR").unwrap().starts_with("/home/x/tasks/5/"));
        assert_eq!(get("WEGENT_WORKSPACE"), Some("/code/proj"));
        let not_root = super::env(&req, &dirs, false);
        assert!(!not_root.iter().any(|(k, _)| k == "IS_SANDBOX"));
    }

    #[test]
    fn stdin_line_is_one_user_message_with_images() {
        let line = stdin_line(&json!([
            {"type": "input_text", "text": "what is this"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
        ]));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "user");
        assert_eq!(v["message"]["content"][0]["text"], "what is this");
        assert_eq!(
            v["message"]["content"][1]["source"]["media_type"],
            "image/png"
        );
    }

    #[test]
    fn missing_claude_names_the_install_command() {
        let err = resolve(Some(Path::new("/nonexistent/claude"))).unwrap_err();
        assert!(err.contains("npm install -g @anthropic-ai/claude-code"));
    }
}
