//! The devserver's own defences (issue 10, item 2): URLs in payloads come from its configuration,
//! only loopback `Host` names are answered (DNS rebinding), the demo account's password is random
//! per run, and a caller's `env` never reaches command RPC.
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use support::*;
use wegent_devserver::ModelSettings;

/// A forged `Host` header must not pick the model (or backend) URL the device is told to use:
/// an attacker's model would then drive the agent's tools on the user's machine.
#[tokio::test]
async fn payload_urls_come_from_the_configuration_not_the_host_header() {
    // `*` lets the forged Host through the rebinding guard, so only the URL building is tested.
    let server = server_with(|c| {
        c.model = ModelSettings::built_in();
        c.allowed_hosts = vec!["*".into()];
    })
    .await;
    let mut dev = registered_device(&server, "urls").await;
    let resp = http()
        .post(format!("{}/api/device-chat/tasks", server.url()))
        .header("host", "attacker.example:4000")
        .bearer_auth(server.demo_token().unwrap())
        .json(&json!({"deviceId": "urls", "message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(exec["backend_url"], server.url());
    assert_eq!(
        exec["model_config"]["base_url"],
        format!("{}/demo-model/v1", server.url())
    );
    server.shutdown().await;
}

/// A configured public URL (a devserver reached under another name) is what payloads carry.
#[tokio::test]
async fn payload_urls_use_the_configured_public_url() {
    let server = server_with(|c| {
        c.model = ModelSettings::built_in();
        c.public_url = Some("http://devbox.lan:8123/".into());
    })
    .await;
    let mut dev = registered_device(&server, "pub").await;
    server
        .dispatch_task("admin", Some("pub"), "hi")
        .await
        .unwrap();
    let (exec, _) = dev.wait_event("task:execute", T).await.unwrap();
    assert_eq!(exec["backend_url"], "http://devbox.lan:8123");
    assert_eq!(
        exec["model_config"]["base_url"],
        "http://devbox.lan:8123/demo-model/v1"
    );
    // Its host is answered without --allowed-host.
    let status = http()
        .get(format!("{}/api/devices", server.url()))
        .header("host", "devbox.lan:8123")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "past the Host check, stopped by auth");
    server.shutdown().await;
}

async fn status_and_body(url: &str, host: &str) -> (u16, Value) {
    let resp = http().get(url).header("host", host).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// DNS rebinding: a page on `evil.example` re-pointed at 127.0.0.1 reaches the devserver with
/// `Host: evil.example`. Such requests are refused before any route (REST, console, Socket.IO).
#[tokio::test]
async fn only_loopback_host_headers_are_answered() {
    let server = server().await;
    let port = server.addr().port();
    let devices = format!("{}/api/devices", server.url());
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, _) = status_and_body(&devices, &host).await;
        assert_eq!(status, 401, "{host}: past the Host check, stopped by auth");
    }
    for url in [
        devices.clone(),
        format!("{}/", server.url()),
        format!("{}/socket.io/?EIO=4&transport=polling", server.url()),
    ] {
        let (status, body) = status_and_body(&url, &format!("evil.example:{port}")).await;
        assert_eq!(status, 421, "{url}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("evil.example") && detail.contains("--allowed-host evil.example"),
            "{detail}"
        );
    }
    // A token does not help: the Host check comes first.
    let resp = http()
        .get(&devices)
        .header("host", "evil.example")
        .bearer_auth(server.demo_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 421);
    server.shutdown().await;
}

#[tokio::test]
async fn allowed_hosts_extend_the_loopback_names() {
    let server = server_with(|c| c.allowed_hosts = vec!["devbox.lan".into()]).await;
    let devices = format!("{}/api/devices", server.url());
    assert_eq!(status_and_body(&devices, "devbox.lan:8000").await.0, 401);
    assert_eq!(status_and_body(&devices, "evil.example").await.0, 421);
    server.shutdown().await;
}

/// A caller's `env` is dropped: the device gets `{}`, whatever the body says.
#[tokio::test]
async fn command_rpc_does_not_forward_caller_env() {
    let server = server().await;
    let mut dev = registered_device(&server, "envless").await;
    let request = http()
        .post(format!("{}/api/devices/envless/commands", server.url()))
        .bearer_auth(server.demo_token().unwrap())
        .json(&json!({"command_key": "pwd", "env": {"LD_PRELOAD": "/tmp/evil.so", "BASH_ENV": "/tmp/x"}}))
        .send();
    let device_side = async {
        let (p, ack_id) = dev.wait_event("device:execute_command", T).await.unwrap();
        dev.ack(
            ack_id.unwrap(),
            &json!({"success": true, "exit_code": 0, "stdout": "/\n", "stderr": "",
            "duration": 0.01, "timed_out": false}),
        );
        p
    };
    let (resp, payload) = tokio::join!(request, device_side);
    assert_eq!(resp.unwrap().status(), 200);
    assert_eq!(payload["env"], json!({}), "{payload}");
    server.shutdown().await;
}

/// Starts the real `wegent-devserver` binary without `--password` and returns it with the
/// URL and the password it printed.
fn start_binary() -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wegent-devserver"))
        .args(["--bind", "127.0.0.1:0", "--in-memory"])
        .env_remove("WEGENT_DEVSERVER_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wegent-devserver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut password) = (None, None);
    while url.is_none() || password.is_none() {
        let line = lines
            .next()
            .expect("the devserver printed its URL and password")
            .unwrap();
        if let Some(u) = line.strip_prefix("Wegent devserver listening on ") {
            url = Some(u.trim().to_string());
        }
        if let Some((_, p)) = line.split_once("password: ") {
            password = Some(p.trim().to_string());
        }
    }
    (child, url.unwrap(), password.unwrap())
}

async fn login_status(url: &str, password: &str) -> u16 {
    http()
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"user_name": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The demo account's password is random per run and printed once; the old fixed one is refused.
#[tokio::test]
async fn demo_password_is_random_per_run() {
    let (mut first, url, password) = start_binary();
    let (mut second, _, other_password) = start_binary();
    let _ = second.kill();
    let _ = second.wait();
    assert_ne!(password, other_password);
    assert!(password.len() >= 20, "{password}");
    assert_eq!(login_status(&url, &password).await, 200);
    assert_eq!(login_status(&url, "admin-pass").await, 400);
    let _ = first.kill();
    let _ = first.wait();
    // The library's demo configuration (the tray's `--demo`) is random too.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let demo = |_| {
        wegent_devserver::DevServerConfig::demo(addr, wegent_devserver::Storage::Memory).demo_user
    };
    assert_ne!(demo(1), demo(2));
}

/// The console sign-in link (how the tray's demo opens the console, the password being random)
/// signs in once; a used or unknown code is refused.
#[tokio::test]
async fn console_sign_in_link_works_once() {
    let server = server().await;
    let link = server.console_sign_in_url().unwrap();
    let (base, code) = link.split_once("/#login=").unwrap();
    assert_eq!(base, server.url());
    let redeem = |code: String| {
        http()
            .post(format!("{}/api/auth/console-link", server.url()))
            .json(&json!({"code": code}))
            .send()
    };
    let first = redeem(code.to_string()).await.unwrap();
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["user_name"], "admin");
    let devices = http()
        .get(format!("{}/api/devices", server.url()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(devices.status(), 200, "the token works");
    for code in [code.to_string(), "made-up".to_string()] {
        let again = redeem(code).await.unwrap();
        assert_eq!(again.status(), 400);
        let body: Value = again.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("already used or has expired"),
            "{body}"
        );
    }
    server.shutdown().await;
}
