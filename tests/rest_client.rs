//! The REST client against a small real HTTP server (axum on loopback) that answers like the
//! Wegent backend's routes (protocol.md §1.2, §8, §14.3): FastAPI-style `{"detail": …}` errors,
//! Bearer JWT only on `/api/devices`.

mod rest_support;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use rest_support::{jwt, start_backend, PASSWORD};
use wegent_executor::rest::{RestClient, RestError};
use wegent_executor::token::{Token, TokenKind};

#[tokio::test]
async fn login_then_manage_devices() {
    let (url, backend) = start_backend().await;
    let client = RestClient::new(&url).unwrap();
    let token = client.login("admin", PASSWORD).await.unwrap();
    assert_eq!(token.kind(), TokenKind::Jwt);
    assert_eq!(token.user_name().as_deref(), Some("admin"));

    let client = client.with_token(token);
    let devices = client.list_devices().await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(devices[0].is_default && devices[0].device_id == "device-a");
    assert_eq!((devices[0].slot_used, devices[0].slot_max), (1, 5));

    assert_eq!(client.is_default("device-a").await.unwrap(), Some(true));
    assert_eq!(client.is_default("device-b").await.unwrap(), Some(false));
    assert_eq!(client.is_default("device-zzz").await.unwrap(), None);
    client.set_default("device-b").await.unwrap();
    let devices = client.list_devices().await.unwrap();
    assert!(
        devices
            .iter()
            .find(|d| d.device_id == "device-b")
            .unwrap()
            .is_default
    );

    client.delete_device("device-a").await.unwrap();
    let ids: Vec<_> = client
        .list_devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(ids, ["device-b"]);
    assert!(backend
        .seen_auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a.starts_with("Bearer ey")));
}

#[tokio::test]
async fn refusals_are_typed_with_the_servers_words() {
    let (url, backend) = start_backend().await;
    let client = RestClient::new(&url).unwrap();
    let err = client.login("admin", "wrong").await.unwrap_err();
    assert_eq!(
        err,
        RestError::LoginRefused("Invalid username or password".into())
    );

    let jwt_client = RestClient::new(&url)
        .unwrap()
        .with_token(client.login("admin", PASSWORD).await.unwrap());
    let err = jwt_client.set_default("laptop").await.unwrap_err();
    assert_eq!(err, RestError::NotFound("Device 'laptop' not found".into()));

    let stale = RestClient::new(&url)
        .unwrap()
        .with_token(Token::new(&jwt("mallory")));
    let err = stale.list_devices().await.unwrap_err();
    assert_eq!(
        err,
        RestError::Unauthorized("Could not validate credentials".into())
    );
    assert!(err.to_string().contains("wegent-executor login"));

    // An API key is refused here, before any request reaches the server.
    let before = backend.seen_auth.lock().unwrap().len();
    let key = RestClient::new(&url)
        .unwrap()
        .with_token(Token::new("wg-personal-api-key-000"));
    assert_eq!(
        key.list_devices().await.unwrap_err(),
        RestError::NeedsLoginToken
    );
    assert_eq!(
        key.set_default("device-a").await.unwrap_err(),
        RestError::NeedsLoginToken
    );
    assert_eq!(backend.seen_auth.lock().unwrap().len(), before);
}

#[tokio::test]
async fn an_unreachable_server_is_named_in_the_error() {
    // Bind then drop: the port is closed, so the connect is refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = RestClient::new(&url)
        .unwrap()
        .login("admin", "x")
        .await
        .unwrap_err();
    match &err {
        RestError::Unreachable(msg) => assert!(msg.contains(&url), "{msg}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("cannot reach the Wegent server"));
}

#[tokio::test]
async fn a_server_error_keeps_status_and_detail() {
    let app = Router::new().route(
        "/api/devices",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "upstream down") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = RestClient::new(&url)
        .unwrap()
        .with_token(Token::new(&jwt("admin")));
    let err = client.list_devices().await.unwrap_err();
    assert_eq!(
        err,
        RestError::Server {
            status: 503,
            detail: "upstream down".into()
        }
    );
}
