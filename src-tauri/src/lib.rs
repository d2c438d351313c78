//! Wegent Device tray app: a thin shell over the executor core. Status comes from the core's
//! `watch`, commands go into its channel; what the menu shows, which icon, which notification are
//! pure functions (`menu_model`, `icon`, `notify_policy`, `token_check`) with unit tests.

pub mod app;
pub mod app_settings;
pub mod autostart;
pub mod bridge;
pub mod cli_args;
pub mod commands;
pub mod core_config;
pub mod core_link;
pub mod demo;
pub mod desktop;
pub mod display;
pub mod error;
pub mod icon;
pub mod memory;
pub mod menu_action;
pub mod menu_handler;
pub mod menu_ids;
pub mod menu_model;
pub mod menu_tasks;
pub mod notifier;
pub mod notify_policy;
pub mod shell;
pub mod token_check;
pub mod token_window;
pub mod tray;
pub mod window_commands;

#[cfg(test)]
mod test_support;

/// The app's Tauri context (config, the embedded `ui/`, icons): one copy for the tray and the
/// token window process.
pub fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}
