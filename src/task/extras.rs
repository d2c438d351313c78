//! What a task brings besides its prompt (protocol.md §16.6–16.7): attachments, required
//! skills and MCP servers. [`TaskExtras`] is read when the task arrives (the payload is not
//! kept); [`prepare`] puts them in place once the task's directories exist.

use std::path::PathBuf;

use serde_json::Value;

use super::agent::AgentKind;
use super::attachments::{self, Attachment, AttachmentError};
use super::fetch;
use super::mcp::{self, McpError, McpPlan};
use super::runner::StopSignal;
use super::skills::{self, InstallError, SkillError, SkillPlan};
use super::workspace::TaskDirs;

/// Env var naming the task's MCP config file (as Wegent's executor sets it).
pub const MCP_CONFIG_ENV: &str = "WEGENT_MCP_CONFIG_PATH";
/// `<executor home>/cache/skills`: skill archives shared by all tasks.
const SKILL_CACHE: [&str; 2] = ["cache", "skills"];

#[derive(Debug, Clone, PartialEq)]
pub struct TaskExtras {
    pub attachments: Vec<Attachment>,
    pub skills: SkillPlan,
    /// The resolved servers, or why they cannot be (which fails the task when it runs).
    pub mcp: Result<McpPlan, McpError>,
    /// The task token: downloads authenticate with it.
    pub auth_token: Option<String>,
}

impl Default for TaskExtras {
    fn default() -> Self {
        Self {
            attachments: Vec::new(),
            skills: SkillPlan::default(),
            mcp: Ok(McpPlan::default()),
            auth_token: None,
        }
    }
}

impl TaskExtras {
    /// `device_backend_url` is this device's configured server, used for downloads and for the
    /// `${{backend_url}}` placeholder.
    pub fn from_payload(payload: &Value, device_backend_url: &str, allow_stdio_mcp: bool) -> Self {
        let source = mcp::Placeholders {
            payload,
            device_backend_url,
        };
        Self {
            attachments: attachments::from_payload(payload),
            skills: skills::plan(payload),
            mcp: mcp::plan(&source, allow_stdio_mcp),
            auth_token: payload
                .get("auth_token")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        }
    }

    /// MCP header and env values: to register for redaction on arrival.
    pub fn secrets(&self) -> Vec<String> {
        self.mcp.as_ref().map(McpPlan::secrets).unwrap_or_default()
    }
}

/// Why a task's extras could not be put in place. Each becomes the task's `error` event.
#[derive(Debug, thiserror::Error)]
pub enum ExtrasError {
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    #[error(transparent)]
    Skill(#[from] SkillError),
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error("Could not write the task's MCP configuration {}: {error}", path.display())]
    McpConfig {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The task was stopped while downloading.
    #[error("{0}")]
    Stopped(String),
}

/// What the CLI launch needs from the extras.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The prompt with attachment paths rewritten (`None`: unchanged).
    pub prompt: Option<Value>,
    /// Claude's `--mcp-config` (`None`: the task has no MCP servers, or runs with Codex).
    pub mcp_config: Option<PathBuf>,
    /// The CLI's environment additions: the config file's variables (secret values).
    pub mcp_env: Vec<(String, String)>,
}

/// Everything a download needs from the device.
pub struct Downloads<'a> {
    pub backend_url: &'a str,
    pub home: &'a std::path::Path,
    pub max_attachment_bytes: u64,
}

/// Attachments, then required skills (where `agent` reads them), then the MCP config. Stops at
/// the first failure.
pub async fn prepare(
    device: &Downloads<'_>,
    agent: AgentKind,
    task_id: i64,
    prompt: &Value,
    extras: &TaskExtras,
    dirs: &TaskDirs,
    stop: &mut StopSignal,
) -> Result<Prepared, ExtrasError> {
    // A configuration error needs no download to be known: report it first.
    let plan = extras
        .mcp
        .as_ref()
        .map_err(|e| ExtrasError::Mcp(e.clone()))?;
    let mut prepared = Prepared::default();
    let needs_http = !extras.attachments.is_empty() || !extras.skills.required.is_empty();
    let http = needs_http.then(|| fetch::client(device.backend_url));
    let token = extras.auth_token.as_deref();
    if let Some(http) = &http {
        if !extras.attachments.is_empty() {
            let files = attachments::local_paths(
                |subtask| dirs.attachments_dir(subtask),
                &extras.attachments,
            );
            let source = attachments::Source {
                http,
                backend_url: device.backend_url,
                token,
                max_bytes: device.max_attachment_bytes,
            };
            attachments::download_all(&source, &files, stop)
                .await
                .map_err(|e| match e.reason {
                    fetch::FetchError::Cancelled(message) => ExtrasError::Stopped(message),
                    _ => ExtrasError::Attachment(e),
                })?;
            prepared.prompt = Some(attachments::rewrite_prompt(prompt, task_id, &files));
        }
        let cache_dir = SKILL_CACHE
            .iter()
            .fold(device.home.to_owned(), |p, c| p.join(c));
        let installer = skills::Installer {
            http,
            backend_url: device.backend_url,
            token,
            task_id,
            cache_dir: &cache_dir,
            skills_dir: &dirs.skills_dir(agent),
        };
        skills::install_required(&installer, &extras.skills, stop)
            .await
            .map_err(|e| match e {
                InstallError::Failed(e) => ExtrasError::Skill(e),
                InstallError::Cancelled(message) => ExtrasError::Stopped(message),
            })?;
    }
    if !extras.skills.skipped.is_empty() {
        tracing::info!(task_id, skipped = ?extras.skills.skipped, "skills not installed on this device (not required)");
    }
    if !plan.skipped_stdio.is_empty() {
        tracing::info!(task_id, skipped = ?plan.skipped_stdio, "stdio MCP servers skipped: not allowed on this device (allow_stdio_mcp)");
    }
    if !plan.servers.is_empty() {
        let names: Vec<&str> = plan.servers.iter().map(|(n, _)| n.as_str()).collect();
        tracing::info!(task_id, servers = ?names, "MCP servers configured");
    }
    let path = dirs.mcp_config_file();
    if plan.servers.is_empty() || agent == AgentKind::Codex {
        // An earlier turn's servers are not this turn's. Codex gets them in its thread's
        // config (`agent::codex::mcp`), not from a file.
        let _ = std::fs::remove_file(&path);
    } else {
        let (config, vars) = plan.config_with_env_refs();
        mcp::write_config(&path, &config).map_err(|error| ExtrasError::McpConfig {
            path: path.clone(),
            error,
        })?;
        prepared.mcp_env = vars;
        prepared.mcp_config = Some(path);
    }
    Ok(prepared)
}
