//! Attachments (protocol.md §16.7): a user stores a file, a device fetches it for a task.
//!
//! - `POST /api/attachments?filename=<name>`: the raw body is the file (`Content-Type` is kept
//!   as its mime type); login JWT. Answers `{id, original_filename, mime_type, file_size}`,
//!   the fields a `task:execute` carries in `attachments[]`.
//! - `GET /api/attachments/{id}/executor-download`: the bytes, with `Content-Type` and
//!   `Content-Disposition`; a task token, a login JWT or a `wg-` key of the owner.
//!
//! Files live in the devserver's database, in a table this module creates on first use.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::rest::{AppState, JwtUser};
use crate::store::User;
use crate::tasks::ApiError;

/// Large enough for documents and images in demos and tests.
const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    content BLOB NOT NULL)";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/attachments",
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/api/attachments/{id}/executor-download", get(download))
}

#[derive(Deserialize)]
struct UploadQuery {
    filename: String,
}

async fn upload(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let filename = q.filename.trim();
    if filename.is_empty() {
        return Err(ApiError::new(400, "filename is required"));
    }
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let store = state.store();
    let db = |e: rusqlite::Error| ApiError::new(500, format!("database error: {e}"));
    store.conn.execute(TABLE, []).map_err(db)?;
    store
        .conn
        .execute(
            "INSERT INTO attachments (user_id, filename, mime_type, content) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![user.id, filename, mime, body.as_ref()],
        )
        .map_err(db)?;
    let id = store.conn.last_insert_rowid();
    Ok(Json(json!({
        "id": id, "original_filename": filename, "mime_type": mime, "file_size": body.len(),
    })))
}

/// The owner of a task token (no `sub`, `type: task_token`), a login JWT or a `wg-` key.
fn caller(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| ApiError::new(401, "Missing authentication credentials"))?;
    let store = state.store();
    let invalid = || ApiError::new(401, "Could not validate credentials");
    if token.starts_with("wg-") {
        return store
            .user_by_api_key(token)
            .ok()
            .flatten()
            .ok_or_else(invalid);
    }
    let claims = crate::jwt::decode(token, &state.cfg.jwt_secret, crate::jwt::now_secs())
        .map_err(|_| invalid())?;
    if claims["type"] == "task_token" {
        let name = claims["user_name"].as_str().ok_or_else(invalid)?;
        return store.user_by_name(name).ok().flatten().ok_or_else(invalid);
    }
    drop(store);
    crate::auth::user_from_jwt(token, &state.store(), &state.cfg.jwt_secret).ok_or_else(invalid)
}

async fn download(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = caller(&state, &headers)?;
    let store = state.store();
    let db = |e: rusqlite::Error| ApiError::new(500, format!("database error: {e}"));
    store.conn.execute(TABLE, []).map_err(db)?;
    let found: Option<(String, String, Vec<u8>)> = store
        .conn
        .query_row(
            "SELECT filename, mime_type, content FROM attachments WHERE id = ?1 AND user_id = ?2",
            rusqlite::params![id, user.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db)?;
    let (filename, mime, content) =
        found.ok_or_else(|| ApiError::new(404, "Attachment not found"))?;
    // Quotes and line breaks would break the header; the device takes only the basename anyway.
    let safe: String = filename
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        Body::from(content),
    )
        .into_response())
}
