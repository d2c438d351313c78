//! What each tray menu item does. Linux trays send no icon clicks, so every action is here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_opener::OpenerExt;
use wegent_executor::status::Command;

use crate::app_settings::NotifyKind;
use crate::bridge::{MENU_DIRTY, QUIT_CONFIRM_WINDOW};
use crate::menu_ids as id;
use crate::menu_model::{on_quit_click, QuitDecision};
use crate::shell::Shell;
use crate::token_window::{self, Section};

/// Running tasks get this long to be cancelled and reported before the app exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub fn on_menu<R: Runtime>(app: &AppHandle<R>, item: &str) {
    tracing::info!(item, "menu click");
    // Check items toggle themselves in the host; the next render writes the truth back.
    MENU_DIRTY.store(true, Ordering::SeqCst);
    let shell = app.state::<Arc<Shell>>().inner().clone();
    if item != id::QUIT {
        shell.set_quit_pending(None);
    }
    match item {
        id::RESTART => send(shell.clone(), Command::Restart),
        id::DEFAULT_DEVICE => send(shell.clone(), Command::SetDefault),
        id::PASTE_TOKEN => token_window::open(app, Section::Token),
        id::SIGN_IN => token_window::open(app, Section::SignIn),
        id::ABOUT => token_window::open(app, Section::About),
        id::DEMO => match shell.demo() {
            Some(demo) => crate::demo::open_console(app, &demo.url),
            None => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = crate::demo::start(&app).await {
                        tracing::warn!("demo mode failed: {e}");
                    }
                });
            }
        },
        id::START_AT_LOGIN => {
            let wanted = !shell.settings().start_at_login;
            if let Err(e) = shell.update_settings(|s| s.start_at_login = wanted) {
                tracing::warn!("{e}");
            }
            if let Err(e) = crate::autostart::apply(app, wanted) {
                tracing::warn!("{e}");
            }
        }
        id::OPEN_LOGS => {
            let dir = shell.logs_dir.clone();
            let _ = std::fs::create_dir_all(&dir);
            if let Err(e) = app.opener().open_path(dir.to_string_lossy(), None::<&str>) {
                tracing::warn!("could not open the logs folder {}: {e}", dir.display());
            }
        }
        id::QUIT => quit(app, &shell),
        other => {
            if let Some(kind) = other
                .strip_prefix(id::NOTIFY_PREFIX)
                .and_then(NotifyKind::from_key)
            {
                let result = shell.update_settings(|s| {
                    let on = s.notifications.enabled(kind);
                    s.notifications.set(kind, !on);
                });
                if let Err(e) = result {
                    tracing::warn!("{e}");
                }
            }
            // Header, device line, tasks: informational, nothing to do.
        }
    }
    shell.refresh.notify_one();
}

fn send(shell: Arc<Shell>, command: Command) {
    tauri::async_runtime::spawn(async move {
        if let Err(e) = shell.core.send(command).await {
            tracing::warn!("{e}");
        }
    });
}

pub fn open_url<R: Runtime>(app: &AppHandle<R>, url: &str) {
    // Failing to open a browser is not fatal: the URL is in the log and the menu.
    if let Err(e) = app.opener().open_url(url, None::<&str>) {
        tracing::warn!("could not open {url} in a browser: {e}");
    }
}

fn quit<R: Runtime>(app: &AppHandle<R>, shell: &Arc<Shell>) {
    let running = shell.core.current().slots.used();
    let now = SystemTime::now();
    match on_quit_click(running, shell.quit_pending(), now, QUIT_CONFIRM_WINDOW) {
        QuitDecision::AskToConfirm => {
            tracing::info!(
                running,
                "quit asked with tasks running; waiting for confirmation"
            );
            shell.set_quit_pending(Some(now));
        }
        QuitDecision::QuitNow => shutdown_and_exit(app.clone(), shell.clone()),
    }
}

/// Cancel running tasks (each gets its terminal event), disconnect, then exit.
pub fn shutdown_and_exit<R: Runtime>(app: AppHandle<R>, shell: Arc<Shell>) {
    tauri::async_runtime::spawn(async move {
        tracing::info!("quitting: stopping the device core");
        shell.core.stop(SHUTDOWN_GRACE).await;
        tracing::info!("quit");
        app.exit(0);
    });
}
