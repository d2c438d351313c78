//! The token window's IPC commands through Tauri's real IPC layer on the mock runtime (no display,
//! no D-Bus): argument names as the page sends them, answers as the page reads them.

use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindowBuilder;
use wegent_device::commands;

fn invoke(cmd: &str, body: Value) -> Result<Value, Value> {
    let app = mock_builder()
        .invoke_handler(tauri::generate_handler![
            commands::check_token,
            commands::check_server_url
        ])
        .build(mock_context(noop_assets()))
        .expect("mock app");
    let webview = WebviewWindowBuilder::new(&app, "token", Default::default())
        .build()
        .expect("mock window");
    get_ipc_response(
        &webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(body),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|r| r.deserialize::<Value>().expect("json answer"))
}

#[test]
fn check_token_answers_without_echoing_the_token() {
    let answer = invoke("check_token", json!({ "token": "wg-abcdefghijklmnop" })).unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["kind"], "api_key");
    assert_eq!(answer["hint"], "wg-abc…");
    assert!(!answer.to_string().contains("abcdefghijklmnop"));

    let answer = invoke("check_token", json!({ "token": "two words" })).unwrap();
    assert_eq!(answer["ok"], false);
    assert!(answer["message"].as_str().unwrap().contains("whitespace"));
}

#[test]
fn check_server_url_normalises_or_explains() {
    let ok = invoke(
        "check_server_url",
        json!({ "url": "https://wegent.example.com/api/" }),
    );
    assert_eq!(ok, Ok(json!("https://wegent.example.com")));
    let err = invoke("check_server_url", json!({ "url": "wegent.example.com" })).unwrap_err();
    assert!(err.as_str().unwrap().contains("http://"), "{err}");
}

/// The handler the window process registers answers every command the capability grants (a
/// listed command missing from `token_window::process::handler` would reach the page as "command
/// not found").
#[test]
fn the_app_handler_has_every_window_command() {
    for &cmd in wegent_device::window_commands::WINDOW_COMMANDS {
        let app = mock_builder()
            .invoke_handler(wegent_device::token_window::process::handler())
            .build(mock_context(noop_assets()))
            .expect("mock app");
        let webview = WebviewWindowBuilder::new(&app, "token", Default::default())
            .build()
            .expect("mock window");
        // No arguments and no managed state: every command answers, most with an error about
        // what is missing, none with "not found".
        let answer = get_ipc_response(
            &webview,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(json!({})),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        );
        let text = format!("{answer:?}");
        assert!(!text.contains("not found"), "{cmd}: {text}");
    }
}
