#[path = "src/window_commands.rs"]
mod window_commands;

fn main() {
    // An app manifest makes Tauri check the app's own commands against the capabilities too
    // (without one, any window may call any command).
    let manifest = tauri_build::AppManifest::new().commands(window_commands::WINDOW_COMMANDS);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("the Tauri build step (capabilities, app manifest) succeeds");
}
