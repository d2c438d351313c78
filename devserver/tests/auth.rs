//! Connect auth refusals (protocol.md §1.1), the connect rate limit, and REST auth rules.
mod support;

use serde_json::json;
use support::*;
use wegent_devserver::wire_client::{WireClient, WireError};

async fn refusal(url: &str, auth: Option<serde_json::Value>) -> String {
    match WireClient::connect(url, auth, T).await {
        Err(WireError::Refused(message)) => message,
        Err(e) => panic!("expected a CONNECT_ERROR, got {e}"),
        Ok(_) => panic!("expected a CONNECT_ERROR, got a connection"),
    }
}

#[tokio::test]
async fn refusals_carry_the_server_messages() {
    let server = server().await;
    let url = server.url();
    assert_eq!(refusal(&url, None).await, "Missing authentication token");
    assert_eq!(
        refusal(&url, Some(json!({"token": ""}))).await,
        "Missing authentication token"
    );
    assert_eq!(
        refusal(&url, Some(json!({"tok": "x"}))).await,
        "Missing authentication token"
    );
    assert_eq!(
        refusal(&url, Some(json!({"token": "junk"}))).await,
        "Invalid or expired token"
    );
    assert_eq!(
        refusal(&url, Some(json!({"token": "wg-unknown"}))).await,
        "Invalid or expired API key"
    );
    let bearer = format!("Bearer {}", server.demo_token().unwrap());
    assert_eq!(
        refusal(&url, Some(json!({"token": bearer}))).await,
        "Invalid or expired token",
        "no Bearer stripping"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn expired_jwt_is_refused_and_api_keys_connect() {
    let server = server().await;
    let now = wegent_devserver::jwt::now_secs();
    let expired = wegent_devserver::jwt::encode(
        &json!({"sub": "admin", "user_id": 1, "exp": now - 5}),
        &server.config().jwt_secret,
    );
    assert_eq!(
        refusal(&server.url(), Some(json!({"token": expired}))).await,
        "Invalid or expired token"
    );
    let valid = wegent_devserver::jwt::encode(
        &json!({"sub": "admin", "user_id": 1, "exp": now + 60}),
        &server.config().jwt_secret,
    );
    WireClient::connect_with_token(&server.url(), &valid)
        .await
        .expect("the same claims, not expired, connect");
    let key = server.create_api_key("admin");
    let mut events = server.events();
    let c = WireClient::connect_with_token(&server.url(), &key)
        .await
        .expect("API key connects");
    let auth_type = events
        .wait_for("connect", T, |e| match e {
            wegent_devserver::ServerEvent::Connected { auth_type, .. } => Some(auth_type.clone()),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(auth_type, "api_key");
    c.close();
    server.shutdown().await;
}

#[tokio::test]
async fn the_31st_connect_within_the_window_is_refused() {
    let server = server().await;
    let token = server.demo_token().unwrap();
    let mut clients = Vec::new();
    for _ in 0..30 {
        clients.push(
            WireClient::connect_with_token(&server.url(), &token)
                .await
                .expect("within the limit"),
        );
    }
    assert_eq!(
        refusal(&server.url(), Some(json!({"token": token}))).await,
        "Too many device connection attempts"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn injected_refusal_and_restore() {
    let server = server().await;
    let mut events = server.events();
    server.refuse_connects(Some("Server is shutting down"));
    assert_eq!(
        refusal(
            &server.url(),
            Some(json!({"token": server.demo_token().unwrap()}))
        )
        .await,
        "Server is shutting down"
    );
    assert_eq!(
        events.connect_refused(T).await.unwrap(),
        "Server is shutting down"
    );
    server.refuse_connects(None);
    WireClient::connect_with_token(&server.url(), &server.demo_token().unwrap())
        .await
        .expect("normal again");
    server.shutdown().await;
}

#[tokio::test]
async fn rest_login_api_keys_and_jwt_only_device_routes() {
    let server = server().await;
    let http = support::http();
    let url = server.url();
    let bad = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"user_name": "admin", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<serde_json::Value>().await.unwrap()["detail"],
        "Invalid username or password"
    );
    let ok: serde_json::Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"user_name": "admin", "password": "admin-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["token_type"], "bearer");
    let jwt = ok["access_token"].as_str().unwrap().to_string();
    let created = http
        .post(format!("{url}/api/api-keys"))
        .bearer_auth(&jwt)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let key = created.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(key.starts_with("wg-"));
    let listed = http
        .get(format!("{url}/api/devices"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let with_key = http
        .get(format!("{url}/api/devices"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 401);
    assert_eq!(
        with_key.json::<serde_json::Value>().await.unwrap()["detail"],
        "Could not validate credentials"
    );
    let none = http.get(format!("{url}/api/devices")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let x_api_key = http
        .get(format!("{url}/api/devices"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        x_api_key.json::<serde_json::Value>().await.unwrap()["detail"],
        "Not authenticated"
    );
    let events = http
        .get(format!("{url}/api/console/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.status(),
        401,
        "the console's event stream needs a login token"
    );
    let page = http.get(format!("{url}/")).send().await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Wegent devserver"));
    // A task's page, where Wegent's web app has it (the device's "Open in Wegent" goes there),
    // is the console, which opens the task named in the query.
    let task_page = http
        .get(format!("{url}/devices/chat?taskId=42"))
        .send()
        .await
        .unwrap();
    assert_eq!(task_page.status(), 200);
    assert!(task_page.text().await.unwrap().contains("Wegent devserver"));
    // Dispatch takes a JWT or an X-API-Key.
    let no_device = http
        .post(format!("{url}/api/device-chat/tasks"))
        .header("X-API-Key", &key)
        .json(&json!({"teamId": 1, "message": "hi", "deviceId": "missing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_device.status(), 404);
    server.shutdown().await;
}
