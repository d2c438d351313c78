//! REST under `/api`: auth, API keys, tasks. Device routes are in `rest_devices.rs`.
//! Errors are `{"detail": ...}` with the real server's status codes and texts.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::state::Shared;
use crate::store::User;
use crate::tasks::{ApiError, DispatchRequest};

pub type AppState = Arc<Shared>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({"detail": self.detail}))).into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `security.get_current_user`: a Bearer **JWT** only; `wg-` keys get 401.
pub struct JwtUser(pub User);

impl FromRequestParts<AppState> for JwtUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer(&parts.headers).ok_or_else(|| ApiError::new(401, "Not authenticated"))?;
        let user = crate::auth::user_from_jwt(token, &state.store(), &state.cfg.jwt_secret);
        user.map(JwtUser)
            .ok_or_else(|| ApiError::new(401, "Could not validate credentials"))
    }
}

/// A Bearer JWT, or an `X-API-Key` (accepted by `POST /api/device-chat/tasks`).
pub struct JwtOrKeyUser(pub User);

impl FromRequestParts<AppState> for JwtOrKeyUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(key) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            let user = state.store().user_by_api_key(key).ok().flatten();
            return user
                .map(JwtOrKeyUser)
                .ok_or_else(|| ApiError::new(401, "Invalid API key"));
        }
        JwtUser::from_request_parts(parts, state)
            .await
            .map(|JwtUser(u)| JwtOrKeyUser(u))
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        // As the backend's `main.py`: at the origin root, next to `/socket.io/`, no database.
        .route(
            "/health",
            get(|| async { Json(json!({"status": "healthy"})) }),
        )
        .route("/api/auth/login", post(login))
        .route("/api/auth/oauth2", post(login_form))
        .route("/api/auth/console-link", post(redeem_console_link))
        .route("/api/api-keys", post(create_api_key).get(list_api_keys))
        .route("/api/device-chat/tasks", post(dispatch_task))
        .route("/api/tasks/{id}", get(get_task).delete(delete_task))
        .route("/api/tasks/{id}/cancel", post(cancel_task))
        .route("/api/console/events", get(crate::console::events))
        .merge(crate::rest_devices::router())
        .merge(crate::rest_projects::router())
        .merge(crate::attachments::router())
}

pub async fn not_found() -> ApiError {
    ApiError::new(404, "Not Found")
}

#[derive(Deserialize)]
struct LoginBody {
    user_name: String,
    password: String,
}

fn issue_token(state: &Shared, user_name: &str, password: &str) -> Result<Json<Value>, ApiError> {
    let user = state
        .store()
        .check_password(user_name, password)
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let user = user.ok_or_else(|| ApiError::new(400, "Invalid username or password"))?;
    let token =
        crate::auth::login_token(&user, &state.cfg.jwt_secret, state.cfg.timings.jwt_lifetime);
    Ok(Json(json!({"access_token": token, "token_type": "bearer"})))
}

async fn login(
    State(state): State<AppState>,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(422, e.body_text()))?;
    issue_token(&state, &body.user_name, &body.password)
}

#[derive(Deserialize)]
struct ConsoleLink {
    code: String,
}

/// Exchanges a one-time console sign-in code (`RunningDevServer::console_sign_in_url`) for a
/// login token.
async fn redeem_console_link(
    State(state): State<AppState>,
    body: Result<Json<ConsoleLink>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(422, e.body_text()))?;
    let user =
        crate::state::lock(&state.sign_in_links).redeem(&body.code, std::time::Instant::now());
    let user = user.ok_or_else(|| {
        ApiError::new(
            400,
            "This sign-in link was already used or has expired. Sign in with the user name and password.",
        )
    })?;
    let token =
        crate::auth::login_token(&user, &state.cfg.jwt_secret, state.cfg.timings.jwt_lifetime);
    Ok(Json(
        json!({"access_token": token, "token_type": "bearer", "user_name": user.user_name}),
    ))
}

#[derive(Deserialize)]
struct OAuthForm {
    username: String,
    password: String,
}

async fn login_form(
    State(state): State<AppState>,
    Form(form): Form<OAuthForm>,
) -> Result<Json<Value>, ApiError> {
    issue_token(&state, &form.username, &form.password)
}

#[derive(Deserialize)]
struct NewApiKey {
    name: String,
    description: Option<String>,
}

async fn create_api_key(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
    body: Result<Json<NewApiKey>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(422, e.body_text()))?;
    let key = format!("wg-{}", crate::random_token(32));
    let mut row = state
        .store()
        .insert_api_key(user.id, &body.name, body.description.as_deref(), &key)
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    row["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(row)))
}

async fn list_api_keys(
    State(state): State<AppState>,
    JwtUser(user): JwtUser,
) -> Result<Json<Value>, ApiError> {
    let keys = state
        .store()
        .list_api_keys(user.id)
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    Ok(Json(json!({"items": keys, "total": keys.len()})))
}

async fn dispatch_task(
    State(state): State<AppState>,
    JwtOrKeyUser(user): JwtOrKeyUser,
    body: Result<Json<DispatchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(422, e.body_text()))?;
    let dispatched = crate::tasks::dispatch(&state, &user, req).await?;
    Ok(Json(serde_json::to_value(dispatched).unwrap_or_default()))
}

async fn get_task(
    State(state): State<AppState>,
    JwtOrKeyUser(user): JwtOrKeyUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    crate::tasks::view(&state, Some(user.id), id).map(Json)
}

async fn cancel_task(
    State(state): State<AppState>,
    JwtOrKeyUser(user): JwtOrKeyUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    crate::tasks::cancel(&state, &user, id).await.map(Json)
}

async fn delete_task(
    State(state): State<AppState>,
    JwtOrKeyUser(user): JwtOrKeyUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    crate::tasks::delete(&state, &user, id).await.map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
