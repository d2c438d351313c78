//! ⭐ Default device through the core: `Command::SetDefault` / `RefreshDefault` against the real
//! devserver's REST API, reflected in the status every shell renders.

use std::time::Duration;

use tokio::sync::watch;
use wegent_devserver::{DevServer, DevServerConfig, RunningDevServer};
use wegent_executor::config::{Config, SessionConfig, TaskConfig};
use wegent_executor::device::{self, DeviceHandle};
use wegent_executor::status::{Command, Connection, DeviceStatus};
use wegent_executor::token::Token;

const WAIT: Duration = Duration::from_secs(20);

fn start_device(
    server: &RunningDevServer,
    home: &tempfile::TempDir,
    id: &str,
    token: &str,
) -> DeviceHandle {
    let config = Config {
        backend_url: server.url(),
        socket_url: None,
        web_url: None,
        home: home.path().join(id),
        device_id: id.to_owned(),
        device_name: format!("Linux - {id}"),
        session: SessionConfig::default(),
        tasks: TaskConfig::default(),
    };
    device::start(config, Some(Token::new(token)))
}

async fn until(
    status: &mut watch::Receiver<DeviceStatus>,
    what: &str,
    pred: impl FnMut(&DeviceStatus) -> bool,
) -> DeviceStatus {
    let found = match tokio::time::timeout(WAIT, status.wait_for(pred)).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    found.unwrap_or_else(|| panic!("timed out waiting for {what}; last: {:?}", *status.borrow()))
}

fn server_default(server: &RunningDevServer, device_id: &str) -> bool {
    let device = server.device("admin", device_id).expect("device listed");
    device["is_default"]
        .as_bool()
        .expect("is_default is a bool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_default_moves_the_star_and_both_devices_learn_it() {
    let server = DevServer::start(DevServerConfig::for_tests())
        .await
        .unwrap();
    let token = server.demo_token().unwrap();
    let home = tempfile::tempdir().unwrap();

    // The user's first local device becomes the default when it registers; the core reads the
    // flag from the device list after registration.
    let first = start_device(&server, &home, "device-first", &token);
    let mut first_status = first.status.clone();
    until(&mut first_status, "first device default", |s| {
        s.connection == Connection::Online && s.is_default == Some(true)
    })
    .await;

    let second = start_device(&server, &home, "device-second", &token);
    let mut second_status = second.status.clone();
    until(&mut second_status, "second device not default", |s| {
        s.connection == Connection::Online && s.is_default == Some(false)
    })
    .await;

    second.commands.send(Command::SetDefault).await.unwrap();
    let s = until(&mut second_status, "second device default", |s| {
        s.is_default == Some(true)
    })
    .await;
    assert_eq!(s.last_error, None);
    assert!(server_default(&server, "device-second"));
    assert!(!server_default(&server, "device-first"));

    first.commands.send(Command::RefreshDefault).await.unwrap();
    until(&mut first_status, "first device no longer default", |s| {
        s.is_default == Some(false)
    })
    .await;

    for handle in [first, second] {
        handle.commands.send(Command::Shutdown).await.unwrap();
        handle.stopped().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_device_says_set_default_needs_a_login_token() {
    let server = DevServer::start(DevServerConfig::for_tests())
        .await
        .unwrap();
    let api_key = server.create_api_key("admin");
    let home = tempfile::tempdir().unwrap();

    let handle = start_device(&server, &home, "device-api-key", &api_key);
    let mut status = handle.status.clone();
    until(&mut status, "online", |s| {
        s.connection == Connection::Online
    })
    .await;

    handle.commands.send(Command::SetDefault).await.unwrap();
    let s = until(&mut status, "an explanation", |s| s.last_error.is_some()).await;
    let error = s.last_error.unwrap();
    assert!(error.contains("needs a login token"), "{error}");
    assert_eq!(s.is_default, None, "an API key cannot read the flag");
    assert_eq!(
        s.connection,
        Connection::Online,
        "the connection is untouched"
    );

    handle.commands.send(Command::Shutdown).await.unwrap();
    handle.stopped().await;
}
