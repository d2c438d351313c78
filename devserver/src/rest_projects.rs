//! `/api/projects` (Bearer JWT): create a workspace project bound to a device (a folder on it, or
//! a git repository), list and show projects, and "Clone from Git" (`/git-workspace`), which
//! clones on the device through command RPC exactly as the backend does (protocol.md §16.1, §16.4).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::projects::{validate, GitConfig, ProjectConfig};
use crate::rest::{AppState, JwtUser};
use crate::rest_devices::{execute_command, CommandCall};
use crate::state::Shared;
use crate::store::{ProjectRecord, User};
use crate::tasks::{db, ApiError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/projects", post(create).get(list))
        .route("/api/projects/git-workspace", post(create_git_workspace))
        .route("/api/projects/{id}", get(show))
}

fn unprocessable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(422, e.to_string())
}

/// `POST /api/projects` body (`ProjectCreate`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    name: String,
    #[serde(default)]
    description: String,
    /// Accepted like the backend does; the devserver has no colors or Wework origin.
    #[serde(default)]
    #[allow(dead_code)]
    color: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_origin: Option<String>,
    #[serde(default)]
    config: Option<ProjectConfig>,
}

/// `POST /api/projects/git-workspace` body (`GitWorkspaceProjectCreate`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGitWorkspace {
    device_id: String,
    git: GitConfig,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// Accepted like the backend does; the devserver has no colors or Wework origin.
    #[serde(default)]
    #[allow(dead_code)]
    color: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_origin: Option<String>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let chars = name.chars().count();
    if !(1..=100).contains(&chars) {
        return Err(unprocessable("name must be 1 to 100 characters"));
    }
    Ok(())
}

/// Validates and stores a project.
fn insert(
    state: &Shared,
    user: &User,
    name: &str,
    description: &str,
    config: Option<ProjectConfig>,
) -> Result<ProjectRecord, ApiError> {
    check_name(name)?;
    let config = match config {
        Some(mut c) => {
            validate(&mut c).map_err(unprocessable)?;
            without_nulls(serde_json::to_value(c).unwrap_or_default())
        }
        None => Value::Null,
    };
    state
        .store()
        .insert_project(user.id, name, description, &config)
        .map_err(db)
}

/// The config as stored: unset optional fields left out, as the backend's dump does.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `ProjectWithTasksResponse`, with the fields the devserver has.
fn project_json(state: &Shared, p: &ProjectRecord) -> Value {
    let tasks = state.store().project_tasks(p.id).unwrap_or_default();
    let tasks: Vec<Value> = tasks
        .into_iter()
        .map(|(id, title, status)| json!({"task_id": id, "task_title": title, "task_status": status}))
        .collect();
    json!({"id": p.id, "user_id": p.user_id, "name": p.name, "description": p.description,
        "color": null, "client_origin": "frontend", "config": p.config, "sort_order": p.id,
        "is_expanded": true, "task_count": tasks.len(), "created_at": p.created_at,
        "updated_at": p.updated_at, "tasks": tasks})
}

async fn create(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    body: Result<Json<NewProject>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| unprocessable(e.body_text()))?;
    let project = insert(&state, &user, &body.name, &body.description, body.config)?;
    Ok((StatusCode::CREATED, Json(project_json(&state, &project))))
}

async fn list(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
) -> Result<Json<Value>, ApiError> {
    let projects = state.store().projects(user.id).map_err(db)?;
    let items: Vec<Value> = projects.iter().map(|p| project_json(&state, p)).collect();
    Ok(Json(json!({"total": items.len(), "items": items})))
}

async fn show(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let project = state.store().project(user.id, id).map_err(db)?;
    let project = project.ok_or_else(|| ApiError::new(404, "Project not found"))?;
    Ok(Json(project_json(&state, &project)))
}

/// "Clone from Git": a `git` project, cloned on the device into `P/<checkoutPath>` where `P` is
/// the device's answer to `project_workspace_root`. A failure deactivates the project.
async fn create_git_workspace(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    body: Result<Json<NewGitWorkspace>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| unprocessable(e.body_text()))?;
    if body.device_id.is_empty() {
        return Err(unprocessable("device_id must not be empty"));
    }
    let config: ProjectConfig = serde_json::from_value(json!({"mode": "workspace",
        "execution": {"targetType": "local", "deviceId": body.device_id},
        "workspace": {"source": "git"}, "git": body.git}))
    .map_err(unprocessable)?;
    let name = body
        .name
        .clone()
        .unwrap_or_else(|| default_project_name(&body.git));
    let project = insert(&state, &user, &name, &body.description, Some(config))?;
    let checkout = project.config["workspace"]["checkoutPath"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Err(e) = clone_on_device(&state, &user, &body.device_id, &body.git, &checkout).await {
        state.store().deactivate_project(project.id).map_err(db)?;
        return Err(e);
    }
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"project": project_json(&state, &project), "checkout_path": checkout,
            "reused_existing_checkout": false}),
        ),
    ))
}

/// `_default_git_project_name`: the repository name.
fn default_project_name(git: &GitConfig) -> String {
    let source = git.repo.clone().unwrap_or_else(|| {
        git.url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let source = source.trim_end_matches('/');
    let source = source.strip_suffix(".git").unwrap_or(source);
    let name = source.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        "repository".into()
    } else {
        name.into()
    }
}

fn succeeded(ack: &Value) -> bool {
    ack["success"] == true && ack["exit_code"] == 0
}

/// `_raise_for_failed_command`: 400 with the command's stderr (else its error, else `what`).
fn require_success(ack: &Value, what: &str) -> Result<(), ApiError> {
    if succeeded(ack) {
        return Ok(());
    }
    let text = [&ack["stderr"], &ack["error"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .unwrap_or(what);
    Err(ApiError::new(400, text))
}

/// `_prepare_git_checkout`, command for command (the devserver has no git identity to configure).
async fn clone_on_device(
    state: &Shared,
    user: &User,
    device: &str,
    git: &GitConfig,
    checkout: &str,
) -> Result<(), ApiError> {
    let run = |call| execute_command(state, user.id, device, call);
    let root = run(CommandCall::new("project_workspace_root", None, &[])).await?;
    let root = root["stdout"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string();
    if root.is_empty() {
        return Err(ApiError::new(400, "Project workspace root is empty"));
    }
    let made = run(CommandCall::new("mkdir_p", None, &[&root])).await?;
    require_success(&made, "Failed to create project workspace root")?;
    let mut exists = CommandCall::new("path_exists", Some(&root), &[checkout]);
    exists.timeout_seconds = 30;
    if succeeded(&run(exists).await?) {
        let target = format!(
            "{}/{}",
            root.trim_end_matches('/'),
            checkout.trim_matches('/')
        );
        return Err(ApiError::new(
            409,
            format!("Target project directory already exists: {target}"),
        ));
    }
    let mut args: Vec<&str> = Vec::new();
    if let Some(branch) = git
        .branch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        args.extend(["--branch", branch, "--single-branch"]);
    }
    args.extend([git.url.as_str(), checkout]);
    let mut clone = CommandCall::new("git_clone", Some(&root), &args);
    clone.timeout_seconds = 600;
    clone.max_output_bytes = 5 * 1024 * 1024;
    require_success(&run(clone).await?, "Failed to clone Git repository")
}
