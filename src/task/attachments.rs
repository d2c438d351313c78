//! Attachments of a message (protocol.md §16.7): read from the payload, downloaded with the task
//! token into the task's private state, and the prompt's sandbox paths rewritten to the files.
//!
//! The backend sends metadata only; the prompt names a sandbox path
//! `/home/user/<task_id>:executor:attachments/<subtask_id>/<file>` built from the attachment's own
//! `subtask_id` (the user's subtask), which this module replaces with the real local path.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::fetch::{self, Download, FetchError};
use super::payload::id_field;
use super::runner::StopSignal;

/// Per file, as Wegent's executor does.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
const SANDBOX_LABEL: &str = "File Path(already in sandbox): ";
const LOCAL_LABEL: &str = "Local File Path: ";

/// One attachment to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    /// The name the user gave it (as in the prompt's sandbox path).
    pub name: String,
    pub mime: Option<String>,
    pub size: Option<u64>,
    /// The user subtask the file belongs to.
    pub subtask_id: i64,
}

/// An attachment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub attachment: Attachment,
    pub path: PathBuf,
}

/// Why an attachment could not be provided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Could not download the attachment `{name}` (id {id}) from {url}: {reason}. Attach the file again, or check that this device can reach the backend")]
pub struct AttachmentError {
    pub name: String,
    pub id: i64,
    pub url: String,
    pub reason: FetchError,
}

/// The attachments to download: entries with an id, not already local, not failed.
pub fn from_payload(payload: &Value) -> Vec<Attachment> {
    let fallback_subtask =
        id_field(payload, "user_subtask_id").or_else(|| id_field(payload, "subtask_id"));
    let Some(list) = payload.get("attachments").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter(|a| {
            let present = |k: &str| a.get(k).is_some_and(|v| !v.is_null() && v != "");
            !present("local_path")
                && !present("error")
                && a.get("status").and_then(Value::as_str) != Some("failed")
        })
        .filter_map(|a| {
            let id = id_field(a, "id")?;
            let name = ["original_filename", "filename", "name"]
                .iter()
                .find_map(|k| a.get(*k).and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned();
            Some(Attachment {
                id,
                name,
                mime: a
                    .get("mime_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                size: a.get("file_size").and_then(Value::as_u64),
                subtask_id: id_field(a, "subtask_id").or(fallback_subtask)?,
            })
        })
        .collect()
}

/// A file name that stays inside its directory: the last path component, without NUL or
/// control characters; `attachment-<id>` if nothing usable is left.
pub fn safe_file_name(name: &str, id: i64) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        format!("attachment-{id}")
    } else {
        clean.to_owned()
    }
}

/// `name`, or `stem-2.ext`, `stem-3.ext`, … whichever is not in `taken`.
fn unique_name(name: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(name) {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (2..)
        .map(|n| format!("{stem}-{n}{ext}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_default()
}

/// Where each attachment goes: `<dir of its subtask>/<safe name>`, unique within the batch.
pub fn local_paths(dir_of: impl Fn(i64) -> PathBuf, list: &[Attachment]) -> Vec<Local> {
    let mut taken: HashSet<(i64, String)> = HashSet::new();
    list.iter()
        .map(|a| {
            let in_dir: HashSet<String> = taken
                .iter()
                .filter(|(s, _)| *s == a.subtask_id)
                .map(|(_, n)| n.clone())
                .collect();
            let name = unique_name(&safe_file_name(&a.name, a.id), &in_dir);
            taken.insert((a.subtask_id, name.clone()));
            Local {
                attachment: a.clone(),
                path: dir_of(a.subtask_id).join(name),
            }
        })
        .collect()
}

/// The path the backend wrote into the prompt for `a`.
pub fn sandbox_path(task_id: i64, a: &Attachment) -> String {
    format!(
        "/home/user/{task_id}:executor:attachments/{}/{}",
        a.subtask_id, a.name
    )
}

/// The prompt with sandbox paths replaced by local ones, and an "Available attachments" block
/// (a text block when the prompt is a list).
pub fn rewrite_prompt(prompt: &Value, task_id: i64, files: &[Local]) -> Value {
    if files.is_empty() {
        return prompt.clone();
    }
    let rewrite = |text: &str| {
        let mut out = text.replace(SANDBOX_LABEL, LOCAL_LABEL);
        for f in files {
            let local = f.path.to_string_lossy();
            out = out.replace(&sandbox_path(task_id, &f.attachment), &local);
        }
        out
    };
    let listing = available_block(files);
    match prompt {
        Value::String(s) => Value::String(format!("{}\n\n{listing}", rewrite(s))),
        Value::Array(blocks) => {
            let mut out: Vec<Value> = blocks
                .iter()
                .map(|b| {
                    let is_text = matches!(
                        b.get("type").and_then(Value::as_str),
                        Some("input_text" | "text")
                    );
                    match (is_text, b.get("text").and_then(Value::as_str)) {
                        (true, Some(text)) => {
                            let mut b = b.clone();
                            b["text"] = rewrite(text).into();
                            b
                        }
                        _ => b.clone(),
                    }
                })
                .collect();
            out.push(json!({"type": "input_text", "text": listing}));
            Value::Array(out)
        }
        other => other.clone(),
    }
}

fn available_block(files: &[Local]) -> String {
    let lines: Vec<String> = files
        .iter()
        .map(|f| {
            let a = &f.attachment;
            let mime = a.mime.as_deref().unwrap_or("unknown type");
            let size = a
                .size
                .map_or_else(|| "unknown size".to_owned(), |n| format!("{n} bytes"));
            format!("- {} ({mime}, {size}): {}", a.name, f.path.display())
        })
        .collect();
    format!(
        "<attachment>\nAvailable attachments:\n{}\n</attachment>",
        lines.join("\n")
    )
}

/// What a download needs besides the files.
pub struct Source<'a> {
    pub http: &'a reqwest::Client,
    /// The device's configured backend URL.
    pub backend_url: &'a str,
    pub token: Option<&'a str>,
    pub max_bytes: u64,
}

/// Download every file of `files` (in order); the first failure stops and is returned.
pub async fn download_all(
    source: &Source<'_>,
    files: &[Local],
    stop: &mut StopSignal,
) -> Result<(), AttachmentError> {
    for f in files {
        let a = &f.attachment;
        let url = format!(
            "{}/api/attachments/{}/executor-download",
            source.backend_url.trim_end_matches('/'),
            a.id
        );
        let fail = |reason| AttachmentError {
            name: a.name.clone(),
            id: a.id,
            url: url.clone(),
            reason,
        };
        if let Some(dir) = f.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(FetchError::Io(format!("{}: {e}", dir.display()))))?;
        }
        let spec = Download {
            url: &url,
            token: source.token,
            if_none_match: None,
            dest: &f.path,
            max_bytes: source.max_bytes,
            timeout: DOWNLOAD_TIMEOUT,
        };
        let fetched = fetch::download(source.http, &spec, stop)
            .await
            .map_err(fail)?;
        tracing::info!(attachment_id = a.id, ?fetched, path = %f.path.display(), "attachment downloaded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn captured() -> Value {
        let raw = include_str!("../../tests/fixtures/attachment-prompt.json");
        serde_json::from_str(raw).unwrap()
    }

    #[test]
    fn the_captured_payload_yields_the_user_subtask_and_skips_local_or_failed_entries() {
        let mut payload = captured();
        let list = from_payload(&payload);
        assert_eq!(
            list,
            [Attachment {
                id: 1,
                name: "research-notes.txt".into(),
                mime: Some("text/plain".into()),
                size: Some(18),
                subtask_id: 11,
            }]
        );
        payload["attachments"] = json!([
            {"id": 2, "original_filename": "a", "local_path": "/x/a"},
            {"id": 3, "original_filename": "b", "status": "failed"},
            {"id": 4, "original_filename": "c", "error": "too big"},
            {"id": "5", "original_filename": "d"},
        ]);
        let list = from_payload(&payload);
        assert_eq!(list.len(), 1);
        // No subtask of its own: the payload's user subtask.
        assert_eq!((list[0].id, list[0].subtask_id), (5, 11));
    }

    #[test]
    fn file_names_cannot_leave_their_directory_and_collisions_get_numbers() {
        assert_eq!(safe_file_name("../../etc/passwd", 1), "passwd");
        assert_eq!(safe_file_name("a\\b\\c.txt", 1), "c.txt");
        assert_eq!(safe_file_name("..", 7), "attachment-7");
        assert_eq!(safe_file_name("x/", 8), "attachment-8");
        assert_eq!(safe_file_name("bad\0name\n.txt", 1), "badname.txt");
        let a = |id, name: &str, subtask_id| Attachment {
            id,
            name: name.into(),
            mime: None,
            size: None,
            subtask_id,
        };
        let root = Path::new("/h/tasks/1/attachments");
        let paths: Vec<_> = local_paths(
            |s| root.join(s.to_string()),
            &[
                a(1, "r.txt", 11),
                a(2, "dir/r.txt", 11),
                a(3, "r.txt", 11),
                a(4, "r.txt", 12),
                a(5, "..", 12),
            ],
        )
        .into_iter()
        .map(|l| l.path)
        .collect();
        assert_eq!(
            paths,
            [
                root.join("11/r.txt"),
                root.join("11/r-2.txt"),
                root.join("11/r-3.txt"),
                root.join("12/r.txt"),
                root.join("12/attachment-5"),
            ]
        );
    }

    #[test]
    fn the_list_prompt_gets_local_paths_and_an_available_block() {
        let payload = captured();
        let files = local_paths(
            |s| PathBuf::from(format!("/h/tasks/1/attachments/{s}")),
            &from_payload(&payload),
        );
        let out = rewrite_prompt(&payload["prompt"], 1, &files);
        let blocks = out.as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        let first = blocks[0]["text"].as_str().unwrap();
        assert!(
            first.contains("Local File Path: /h/tasks/1/attachments/11/research-notes.txt]"),
            "{first}"
        );
        assert!(!first.contains("/home/user/") && !first.contains("already in sandbox"));
        assert_eq!(blocks[1]["text"], "please read the attached notes");
        assert_eq!(
            blocks[2],
            json!({"type": "input_text", "text": "<attachment>\nAvailable attachments:\n- research-notes.txt (text/plain, 18 bytes): /h/tasks/1/attachments/11/research-notes.txt\n</attachment>"})
        );
    }

    #[test]
    fn a_string_prompt_is_rewritten_and_extended() {
        let files = [Local {
            attachment: Attachment {
                id: 9,
                name: "n.md".into(),
                mime: None,
                size: None,
                subtask_id: 4,
            },
            path: PathBuf::from("/p/4/n.md"),
        }];
        let prompt =
            json!("see File Path(already in sandbox): /home/user/3:executor:attachments/4/n.md");
        let out = rewrite_prompt(&prompt, 3, &files);
        assert_eq!(
            out,
            json!("see Local File Path: /p/4/n.md\n\n<attachment>\nAvailable attachments:\n- n.md (unknown type, unknown size): /p/4/n.md\n</attachment>")
        );
        // Nothing downloaded: the prompt is untouched.
        assert_eq!(rewrite_prompt(&prompt, 3, &[]), prompt);
    }
}
