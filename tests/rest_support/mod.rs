//! A small real HTTP server (axum on loopback) that answers like the Wegent backend's REST
//! routes (protocol.md §1.2, §8, §14.3): FastAPI-style `{"detail": …}` errors, Bearer JWT only on
//! `/api/devices`, user `admin` with password `s3cret-pass`. Shared by `rest_client.rs` and
//! `cli_login.rs`.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

pub const PASSWORD: &str = "s3cret-pass";

#[derive(Default)]
pub struct Backend {
    pub default_device: Mutex<String>,
    pub deleted: Mutex<Vec<String>>,
    pub seen_auth: Mutex<Vec<String>>,
}

pub fn jwt(user: &str) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = json!({"sub": user, "user_id": 1, "exp": 4_102_444_800u64}).to_string();
    format!(
        "{}.{}.c2ln",
        e.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(claims)
    )
}

fn detail(status: StatusCode, text: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "detail": text })))
}

/// Like `security.get_current_user`: a Bearer JWT of user "admin", nothing else.
fn authorise(b: &Backend, headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    b.seen_auth.lock().unwrap().push(auth.to_owned());
    if auth == format!("Bearer {}", jwt("admin")) {
        Ok(())
    } else {
        Err(detail(
            StatusCode::UNAUTHORIZED,
            "Could not validate credentials",
        ))
    }
}

fn device(id: &str, default: bool) -> Value {
    json!({"id": 17, "device_id": id, "name": format!("Linux - {id}"), "status": "online",
           "is_default": default, "last_heartbeat": "2026-08-22T16:40:01.123456",
           "device_type": "local", "connection_mode": "websocket", "capabilities": null,
           "slot_used": 1, "slot_max": 5, "running_tasks": [], "executor_version": "0.1.0",
           "latest_version": "0.1.0", "update_available": false, "client_ip": "127.0.0.1",
           "runtime_transfer_host": null, "runtime_instance_id": "runtime-1",
           "app_device_id": null, "socket_device_id": null, "runtime_features": null,
           "cloud_config": null, "remote_config": null, "bind_shell": "claudecode"})
}

pub async fn start_backend() -> (String, Arc<Backend>) {
    let backend = Arc::new(Backend::default());
    *backend.default_device.lock().unwrap() = "device-a".into();
    let app = Router::new()
        .route(
            "/api/auth/login",
            post(|Json(body): Json<Value>| async move {
                if body["user_name"] == "admin" && body["password"] == PASSWORD {
                    Ok(Json(json!({"access_token": jwt("admin"), "token_type": "bearer"})))
                } else {
                    Err(detail(StatusCode::BAD_REQUEST, "Invalid username or password"))
                }
            }),
        )
        .route(
            "/api/devices",
            get(|State(b): State<Arc<Backend>>, headers: HeaderMap| async move {
                authorise(&b, &headers)?;
                let default = b.default_device.lock().unwrap().clone();
                let deleted = b.deleted.lock().unwrap().clone();
                let items: Vec<Value> = ["device-a", "device-b"]
                    .iter()
                    .filter(|id| !deleted.iter().any(|d| d == *id))
                    .map(|id| device(id, *id == default))
                    .collect();
                Ok::<_, (StatusCode, Json<Value>)>(Json(json!({"total": items.len(), "items": items})))
            }),
        )
        .route(
            "/api/devices/{id}/default",
            put(|State(b): State<Arc<Backend>>, Path(id): Path<String>, headers: HeaderMap| async move {
                authorise(&b, &headers)?;
                if id.starts_with("device-") {
                    *b.default_device.lock().unwrap() = id.clone();
                    Ok(Json(json!({"message": format!("Device '{id}' set as default")})))
                } else {
                    Err(detail(StatusCode::NOT_FOUND, &format!("Device '{id}' not found")))
                }
            }),
        )
        .route(
            "/api/devices/{id}",
            delete(|State(b): State<Arc<Backend>>, Path(id): Path<String>, headers: HeaderMap| async move {
                authorise(&b, &headers)?;
                b.deleted.lock().unwrap().push(id.clone());
                Ok::<_, (StatusCode, Json<Value>)>(Json(json!({"message": format!("Device '{id}' deleted")})))
            }),
        )
        .with_state(backend.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, backend)
}
