//! The IPC commands the token window (`ui/app.js`) calls, in one list: `build.rs` declares them
//! in the app manifest (which makes Tauri check every app command against the window's
//! capability and generates an `allow-<command>` permission for each), and
//! `capabilities/default.json` grants exactly these, no core permission (the page calls no core
//! API: `invoke` itself needs none). The window process
//! (`token_window::process::handler`) registers the same handlers.

pub const WINDOW_COMMANDS: &[&str] = &[
    "window_state",
    "close_window",
    "check_token",
    "check_server_url",
    "test_and_save",
    "sign_in",
    "start_demo",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn read(path: &str) -> String {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
    }

    #[test]
    fn the_capability_grants_exactly_the_windows_commands() {
        let cap: serde_json::Value =
            serde_json::from_str(&read("capabilities/default.json")).unwrap();
        let granted: BTreeSet<&str> = cap["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().expect("plain permission identifiers"))
            .collect();
        let wanted: Vec<String> = WINDOW_COMMANDS
            .iter()
            .map(|c| format!("allow-{}", c.replace('_', "-")))
            .collect();
        let wanted: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
        assert_eq!(granted, wanted);
        assert_eq!(cap["windows"], serde_json::json!(["token"]));
    }

    #[test]
    fn the_page_invokes_only_listed_commands_and_all_of_them() {
        let js = read("../ui/app.js");
        let invoked: BTreeSet<&str> = js
            .split("invoke(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        let listed: BTreeSet<&str> = WINDOW_COMMANDS.iter().copied().collect();
        assert_eq!(invoked, listed);
    }
}
