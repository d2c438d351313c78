//! Workspace projects (protocol.md §16.1): the project config the real backend accepts
//! (`ProjectConfig` in `backend/app/schemas/project.py`), its validation, and the workspace
//! fields it puts into `task:execute` (`_merge_project_workspace` in `request_builder.py`).
//! Pure functions; storage is in `store_projects.rs`, routes in `rest_projects.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// `config.execution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Execution {
    pub target_type: String,
    #[serde(default)]
    pub device_id: Option<String>,
}

/// `config.workspace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceConfig {
    pub source: String,
    #[serde(default)]
    pub local_path: Option<String>,
    #[serde(default)]
    pub checkout_path: Option<String>,
    #[serde(default)]
    pub device_path: Option<String>,
}

/// `config.git` (the branch defaults to `main`, as in pydantic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitConfig {
    pub url: String,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub repo_id: Option<i64>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default = "default_branch")]
    pub branch: Option<String>,
}

fn default_branch() -> Option<String> {
    Some("main".into())
}

/// A project's `config`. Unknown keys are refused, like pydantic's `extra="forbid"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub execution: Option<Execution>,
    #[serde(default)]
    pub workspace: Option<WorkspaceConfig>,
    #[serde(default)]
    pub git: Option<GitConfig>,
}

impl ProjectConfig {
    /// The config stored with a project (`None` for a project without one).
    pub fn of(project: &crate::store::ProjectRecord) -> Option<Self> {
        serde_json::from_value(project.config.clone()).ok()
    }
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// The backend's validators, in its order and with its texts; fills the defaults it fills
/// (`execution` from a legacy `device_id`, `checkoutPath` from the repository name).
pub fn validate(config: &mut ProjectConfig) -> Result<(), String> {
    if let Some(e) = &config.execution {
        if !matches!(e.target_type.as_str(), "local" | "cloud" | "remote") {
            return Err("execution.targetType must be 'local', 'cloud' or 'remote'".into());
        }
        if e.target_type != "cloud" && blank(&e.device_id) {
            return Err(format!(
                "deviceId is required when targetType is {}",
                e.target_type
            ));
        }
    }
    if config.mode.as_deref() != Some("workspace") {
        return match config.mode.as_deref() {
            None => Ok(()),
            Some(other) => Err(format!("mode must be 'workspace', got '{other}'")),
        };
    }
    if config.execution.is_none() && !blank(&config.device_id) {
        config.execution = Some(Execution {
            target_type: "local".into(),
            device_id: config.device_id.clone(),
        });
    }
    let target = config.execution.as_ref().map(|e| e.target_type.as_str());
    let has_git = config.git.is_some();
    let Some(ws) = config.workspace.as_mut() else {
        return Ok(());
    };
    match ws.source.as_str() {
        "git" => {
            let git = config
                .git
                .as_ref()
                .ok_or("git config is required when workspace.source is git")?;
            if git.url.trim().is_empty() {
                return Err("git.url must not be empty".into());
            }
            if blank(&ws.checkout_path) {
                ws.checkout_path = Some(checkout_key(&git.url, git.repo.as_deref()));
            }
        }
        "local_path" => {
            if target != Some("local") {
                return Err("local_path source is only supported for local target".into());
            }
            if blank(&ws.local_path) {
                return Err("workspace.localPath is required for local_path source".into());
            }
            if has_git {
                return Err("git config must be empty for local_path source".into());
            }
        }
        "device_path" => {
            return Err(
                "device_path source is only supported for cloud or remote target (the devserver has local devices only)"
                    .into(),
            )
        }
        other => {
            return Err(format!(
                "workspace.source must be 'git', 'local_path' or 'device_path', got '{other}'"
            ))
        }
    }
    Ok(())
}

/// `get_safe_git_workspace_key`: the repository name from `repo` or the URL, reduced to
/// `[A-Za-z0-9._-]` (runs of anything else become `_`), e.g. `git@host:team/app.git` → `app`.
pub fn checkout_key(git_url: &str, repo: Option<&str>) -> String {
    let name = [
        repo.unwrap_or_default().to_string(),
        project_path_from_url(git_url),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_else(|| repo_name_from_url(git_url));
    let name = name.trim().trim_end_matches('/');
    let name = name.strip_suffix(".git").unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut key = String::new();
    let mut in_run = false;
    for c in last.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            key.push(c);
            in_run = false;
        } else if !in_run {
            key.push('_');
            in_run = true;
        }
    }
    let key = key.trim_matches(|c| matches!(c, '.' | '_' | '-'));
    if key.is_empty() {
        "git_repo".into()
    } else {
        key.to_string()
    }
}

/// `get_project_path_from_url`: `team/app` of `https://host/team/app.git` or `git@host:team/app`.
fn project_path_from_url(url: &str) -> String {
    let url = url.split("/-/").next().unwrap_or(url);
    let url = url.strip_suffix(".git").unwrap_or(url);
    if url.contains('@') && url.contains(':') {
        return url.rsplit(':').next().unwrap_or(url).to_string();
    }
    // `urlparse(...).path` without its leading slash: what follows the host, before `?`/`#`.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.to_string()
}

/// `get_repo_name_from_url`: the last path segment, or the one before a trailing slash.
fn repo_name_from_url(url: &str) -> String {
    let url = url.strip_suffix(".git").unwrap_or(url);
    let url = url.split("/-/").next().unwrap_or(url);
    let parts: Vec<&str> = url.split('/').collect();
    match parts.as_slice() {
        [.., before, ""] => before.to_string(),
        [.., last] => last.to_string(),
        [] => String::new(),
    }
}

/// What a project puts into `task:execute` (top-level keys and the `workspace` copy).
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadWorkspace {
    pub project_id: i64,
    pub workspace_source: String,
    pub project_workspace_path: String,
    pub execution_target_type: String,
    pub device_id: Option<String>,
    pub checkout_path: Option<String>,
    pub local_path: Option<String>,
    pub git: Option<GitConfig>,
}

/// `_merge_project_workspace`: `None` for a project that is not an executable workspace.
pub fn payload_workspace(project_id: i64, config: &ProjectConfig) -> Option<PayloadWorkspace> {
    if config.mode.as_deref() != Some("workspace") {
        return None;
    }
    let execution = config.execution.as_ref()?;
    let (source, path, checkout_path, local_path) = match &config.workspace {
        Some(ws) => {
            let path = match (ws.source.as_str(), &ws.checkout_path) {
                ("git", Some(k)) if !k.is_empty() => format!("projects/{k}"),
                ("device_path", _) => ws.device_path.clone().unwrap_or_default(),
                _ => ws
                    .local_path
                    .clone()
                    .or(ws.checkout_path.clone())
                    .unwrap_or_default(),
            };
            let (k, l) = (ws.checkout_path.clone(), ws.local_path.clone());
            (ws.source.clone(), path, k, l)
        }
        // No workspace config: the device's `project<id>` directory under its workspace root.
        None => {
            let path = format!("project{project_id}");
            ("local_path".into(), path.clone(), None, Some(path))
        }
    };
    Some(PayloadWorkspace {
        project_id,
        workspace_source: source,
        project_workspace_path: path,
        execution_target_type: execution.target_type.clone(),
        device_id: execution.device_id.clone(),
        checkout_path,
        local_path,
        git: config.git.clone(),
    })
}

/// Writes the project's fields into a `task:execute` payload, as `ExecutionRequest` carries them.
pub fn apply(payload: &mut Value, w: &PayloadWorkspace) {
    let Some(o) = payload.as_object_mut() else {
        return;
    };
    o.insert("project_id".into(), json!(w.project_id));
    o.insert("workspace_source".into(), json!(w.workspace_source));
    o.insert(
        "project_workspace_path".into(),
        json!(w.project_workspace_path),
    );
    o.insert(
        "execution_target_type".into(),
        json!(w.execution_target_type),
    );
    let workspace = o
        .entry("workspace")
        .or_insert_with(|| json!({"repository": {}, "branch": null, "path": null}));
    let Some(ws) = workspace.as_object_mut() else {
        return;
    };
    ws.insert(
        "project".into(),
        json!({"project_id": w.project_id, "workspace_source": w.workspace_source,
            "project_workspace_path": w.project_workspace_path,
            "execution_target_type": w.execution_target_type, "device_id": w.device_id,
            "checkout_path": w.checkout_path, "local_path": w.local_path}),
    );
    if let Some(git) = &w.git {
        ws.insert(
            "repository".into(),
            json!({"gitUrl": git.url, "gitRepo": git.repo, "gitRepoId": git.repo_id,
                "gitDomain": git.domain, "branchName": git.branch}),
        );
        ws.insert("branch".into(), json!(git.branch));
        let top: Map<String, Value> = [
            ("git_url", json!(git.url)),
            ("git_domain", json!(git.domain)),
            ("git_repo", json!(git.repo)),
            ("git_repo_id", json!(git.repo_id)),
            ("branch_name", json!(git.branch)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        o.extend(top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: Value) -> Result<ProjectConfig, String> {
        let mut c: ProjectConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        validate(&mut c)?;
        Ok(c)
    }

    #[test]
    fn checkout_keys_like_the_backend() {
        assert_eq!(
            checkout_key("https://github.com/wecode-ai/Wegent.git", None),
            "Wegent"
        );
        assert_eq!(
            checkout_key("https://github.com/x/y.git", Some("wecode-ai/Wegent")),
            "Wegent"
        );
        assert_eq!(
            checkout_key("git@gitlab.example.com:platform/app.git", None),
            "app"
        );
        assert_eq!(checkout_key("git://127.0.0.1:9418/demo.git", None), "demo");
        assert_eq!(
            checkout_key("file:///srv/git/my repo!.git", None),
            "my_repo"
        );
        assert_eq!(
            checkout_key("https://host/group/proj/-/tree/main", None),
            "proj"
        );
        assert_eq!(checkout_key("https://host/", None), "host");
        assert_eq!(checkout_key("a_ b", None), "a__b");
        assert_eq!(checkout_key("", None), "git_repo");
    }

    #[test]
    fn validation_rules_and_texts() {
        let local = |ws: Value, extra: Value| {
            let mut v = json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"}, "workspace": ws});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            config(v)
        };
        assert!(local(
            json!({"source": "local_path", "localPath": "/abs"}),
            json!({})
        )
        .is_ok());
        assert_eq!(
            local(json!({"source": "local_path"}), json!({})).unwrap_err(),
            "workspace.localPath is required for local_path source"
        );
        assert_eq!(
            local(
                json!({"source": "local_path", "localPath": "/a"}),
                json!({"git": {"url": "u"}})
            )
            .unwrap_err(),
            "git config must be empty for local_path source"
        );
        assert_eq!(
            local(json!({"source": "git"}), json!({})).unwrap_err(),
            "git config is required when workspace.source is git"
        );
        let git = local(
            json!({"source": "git"}),
            json!({"git": {"url": "git://h/demo.git"}}),
        )
        .unwrap();
        assert_eq!(
            git.workspace.unwrap().checkout_path.as_deref(),
            Some("demo")
        );
        assert_eq!(git.git.unwrap().branch.as_deref(), Some("main"));
        assert_eq!(
            config(json!({"mode": "workspace", "execution": {"targetType": "local"}})).unwrap_err(),
            "deviceId is required when targetType is local"
        );
        assert_eq!(
            config(
                json!({"mode": "workspace", "execution": {"targetType": "cloud"},
                "workspace": {"source": "local_path", "localPath": "/a"}})
            )
            .unwrap_err(),
            "local_path source is only supported for local target"
        );
        assert!(config(json!({"mode": "workspace", "bogus": 1})).is_err());
        // A legacy device_id becomes a local execution target.
        let legacy = config(json!({"mode": "workspace", "device_id": "d"})).unwrap();
        assert_eq!(legacy.execution.unwrap().device_id.as_deref(), Some("d"));
    }

    #[test]
    fn workspace_paths_per_source() {
        let git = config(
            json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"},
            "workspace": {"source": "git"}, "git": {"url": "git://h/demo.git"}}),
        )
        .unwrap();
        let w = payload_workspace(2, &git).unwrap();
        assert_eq!(
            (
                w.workspace_source.as_str(),
                w.project_workspace_path.as_str()
            ),
            ("git", "projects/demo")
        );
        let default = config(
            json!({"mode": "workspace", "execution": {"targetType": "local", "deviceId": "d"}}),
        )
        .unwrap();
        let w = payload_workspace(3, &default).unwrap();
        assert_eq!(
            (
                w.workspace_source.as_str(),
                w.project_workspace_path.as_str()
            ),
            ("local_path", "project3")
        );
        assert_eq!(payload_workspace(4, &ProjectConfig::default()), None);
    }
}
