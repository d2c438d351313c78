//! (d) Canaries: the device's token and a task's secrets (model API key, task token, a default
//! header, an MCP server header, a git token) searched for in every log (the log files under the
//! executor home and the process's stdout/stderr, at `RUST_LOG=trace`), every file under the
//! executor home (task folders included), the argv and environment of every descendant of the
//! device (sampled every 100 ms while the task runs), and every event the server received.
//!
//! Some places are the intended channel and are reported apart: the model key and the default
//! header must reach the Claude CLI, and its environment is how (never argv); the MCP header and
//! the task token belong in the task's private `mcp.json` (0600) the CLI reads. Everything else
//! is a leak. The device token is expected nowhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wegent_devserver::ServerEvent;

use crate::orphans::Executor;
use crate::support;

pub const MODEL_KEY: &str = "sk-ant-CANARYmodelKEY0123456789";
pub const TASK_TOKEN: &str = "CANARYtaskTOKEN0123456789";
pub const HEADER: &str = "CANARYdefaultHEADER0123456789";
pub const MCP_HEADER: &str = "CANARYmcpHEADER0123456789";
pub const GIT_TOKEN: &str = "ghp_CANARYgitTOKEN0123456789";
const TASK_ID: i64 = 880_001;

/// Where a canary was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Log,
    HomeFile,
    ChildArgv,
    ChildEnv,
    Event,
}

struct Hit {
    secret: &'static str,
    place: Place,
    what: String,
}

pub async fn run(exe: &mut Executor) -> Result<Value, String> {
    let device_token = exe.token.clone();
    let canaries: Vec<(&'static str, String)> = vec![
        ("device_token", device_token),
        ("model_api_key", MODEL_KEY.into()),
        ("task_token", TASK_TOKEN.into()),
        ("default_header", HEADER.into()),
        ("mcp_header", MCP_HEADER.into()),
        ("git_token", GIT_TOKEN.into()),
    ];
    let mark = exe.log.len();
    let sample: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/task-execute.sample.json"
    ))
    .unwrap();
    let mut p = sample;
    p["task_id"] = json!(TASK_ID);
    p["subtask_id"] = json!(TASK_ID + 1);
    p["prompt"] = json!("say something slowly");
    p["model_config"]["base_url"] = json!(exe.model_url);
    p["model_config"]["model_id"] = json!("claude-sonnet-4-5");
    p["model_config"]["api_key"] = json!(MODEL_KEY);
    p["model_config"]["default_headers"]["Authorization"] = json!(format!("Bearer {HEADER}"));
    p["auth_token"] = json!(TASK_TOKEN);
    p["user"]["git_token"] = json!(GIT_TOKEN);
    if let Some(bot) = p["bot"].get_mut(0) {
        bot["mcp_servers"] = json!([{
            "name": "canary", "type": "http", "url": "http://127.0.0.1:9/mcp",
            "headers": {"Authorization": format!("Bearer {MCP_HEADER}")}, "timeout": 5,
        }]);
    }
    if exe
        .server
        .emit_to_device(&exe.device_id, "task:execute", &p)
        == 0
    {
        return Err("the device is not connected".into());
    }

    // Sample the device's descendants until the task's terminal event.
    let mut hits = Vec::new();
    let mut samples = 0;
    let mut children_seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut cursor = mark;
    loop {
        for pid in support::descendants(exe.pid) {
            children_seen.insert(pid);
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let name = String::from_utf8_lossy(&argv)
                .split('\0')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            for (secret, value) in &canaries {
                if contains(&argv, value) {
                    hits.push(Hit {
                        secret,
                        place: Place::ChildArgv,
                        what: format!("pid {pid} {name}"),
                    });
                }
                if contains(&env, value) {
                    hits.push(Hit {
                        secret,
                        place: Place::ChildEnv,
                        what: format!("pid {pid} {name}"),
                    });
                }
            }
        }
        samples += 1;
        let done = exe
            .log
            .next_from(
                "the canary task's end",
                &mut cursor,
                Duration::from_millis(100),
                |e| match e {
                    ServerEvent::Responses { name, payload, .. }
                        if payload["task_id"] == TASK_ID && crate::rig::is_terminal_name(name) =>
                    {
                        Some(name.clone())
                    }
                    _ => None,
                },
            )
            .await;
        if let Ok(end) = done {
            println!("canary task ended with {end}");
            break;
        }
        if Instant::now() > deadline {
            return Err("the canary task did not end within 120 s".into());
        }
    }
    // Let the log writer flush.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for path in files_under(&exe.home) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let rel = path
            .strip_prefix(&exe.home)
            .unwrap_or(&path)
            .display()
            .to_string();
        let place = if rel.contains("log") {
            Place::Log
        } else {
            Place::HomeFile
        };
        for (secret, value) in &canaries {
            if contains(&bytes, value) {
                hits.push(Hit {
                    secret,
                    place,
                    what: rel.clone(),
                });
            }
        }
    }
    for (label, path) in [("stdout", &exe.stdout), ("stderr", &exe.stderr)] {
        let bytes = std::fs::read(path).unwrap_or_default();
        for (secret, value) in &canaries {
            if contains(&bytes, value) {
                hits.push(Hit {
                    secret,
                    place: Place::Log,
                    what: label.into(),
                });
            }
        }
    }
    for (_, event) in exe.log.snapshot() {
        let text = format!("{event:?}");
        for (secret, value) in &canaries {
            if text.contains(value.as_str()) {
                let kind: String = text.chars().take_while(|c| c.is_alphanumeric()).collect();
                hits.push(Hit {
                    secret,
                    place: Place::Event,
                    what: kind,
                });
            }
        }
    }

    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut leaks = Vec::new();
    let mut intended = Vec::new();
    for hit in &hits {
        *table
            .entry(hit.secret.to_owned())
            .or_default()
            .entry(format!("{:?}", hit.place))
            .or_default() += 1;
        let line = format!("{} in {:?}: {}", hit.secret, hit.place, hit.what);
        if intended_channel(hit) {
            intended.push(line);
        } else {
            leaks.push(line);
        }
    }
    leaks.sort();
    leaks.dedup();
    intended.sort();
    intended.dedup();
    let device_token_hits = hits.iter().filter(|h| h.secret == "device_token").count();
    Ok(json!({
        "canaries": canaries.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "process_samples": samples,
        "descendants_seen": children_seen.len(),
        "hits_by_secret_and_place": table,
        "device_token_hits": device_token_hits,
        "leaks": leaks,
        "leak_count": leaks.len(),
        "intended_channel_hits": intended,
    }))
}

/// Task secrets in the environment of the Claude CLI (the agreed channel: the CLI reads the
/// model key and headers from it, its tools get the tokens from it); the MCP header and the task
/// token in the task's private `mcp.json`. The device token belongs nowhere.
fn intended_channel(hit: &Hit) -> bool {
    let cli = hit.what.contains("claude") || hit.what.contains("node");
    match (hit.secret, hit.place) {
        ("device_token", _) => false,
        (_, Place::ChildEnv) => cli,
        ("mcp_header" | "task_token", Place::HomeFile) => hit.what.ends_with("mcp.json"),
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Where the device's stdout/stderr go, outside its home.
pub fn capture_files(dir: &Path) -> (PathBuf, PathBuf, Stdio, Stdio) {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("stdout.log");
    let err = dir.join("stderr.log");
    let o = std::fs::File::create(&out).unwrap();
    let e = std::fs::File::create(&err).unwrap();
    (out, err, o.into(), e.into())
}
