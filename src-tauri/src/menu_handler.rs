//! What each tray menu item does. Linux trays send no icon clicks, so every action is a menu item.
//! The match over [`MenuAction`] is exhaustive: a new action needs its handler here to compile.

use std::sync::Arc;
use std::time::SystemTime;

use tauri::{AppHandle, Manager, Runtime};
use wegent_executor::status::Command;
use wegent_executor::web_links::task_page_url;

use crate::bridge::QUIT_CONFIRM_WINDOW;
use crate::core_link::SHUTDOWN_GRACE;
use crate::desktop;
use crate::menu_action::{MenuAction, TurnRef};
use crate::menu_model::{on_quit_click, QuitDecision};
use crate::shell::Shell;
use crate::token_window::{self, Section};

pub fn on_menu<R: Runtime>(app: &AppHandle<R>, item: &str) {
    tracing::info!(item, "menu click");
    let shell = app.state::<Arc<Shell>>().inner().clone();
    // Check items toggle themselves in the host; the next render writes the truth back.
    shell.mark_menu_dirty();
    let action = MenuAction::parse(item);
    if action != Some(MenuAction::Quit) {
        // Any other click withdraws a pending "click again to quit".
        shell.set_quit_pending(None);
    }
    // `None`: header, device line, tasks: informational, nothing to do.
    if let Some(action) = action {
        run(app, &shell, action);
    }
    shell.refresh.notify_one();
}

fn run<R: Runtime>(app: &AppHandle<R>, shell: &Arc<Shell>, action: MenuAction) {
    match action {
        MenuAction::RestartConnection => send(shell.clone(), Command::Restart),
        MenuAction::ToggleDefaultDevice => send(shell.clone(), Command::SetDefault),
        MenuAction::TogglePause => {
            let paused = shell.core.current().paused;
            send(shell.clone(), Command::SetPaused(!paused));
        }
        MenuAction::StopTask(turn) => send(
            shell.clone(),
            Command::StopTask {
                task_id: turn.task_id,
            },
        ),
        MenuAction::OpenTaskPage(TurnRef { task_id, .. })
        | MenuAction::OpenRecentTask { task_id } => open_task_page(app, shell, task_id),
        MenuAction::OpenTaskFolder(turn) => {
            let status = shell.core.current();
            let folder = status
                .slots
                .running
                .iter()
                .find(|t| t.subtask_id == turn.subtask_id)
                .and_then(|t| t.folder.as_deref());
            match folder {
                Some(folder) => desktop::open_folder(app, folder),
                None => tracing::warn!(
                    task_id = turn.task_id,
                    "the task has ended or has no folder: nothing to open"
                ),
            }
        }
        MenuAction::PasteToken => token_window::open(app, Section::Token),
        MenuAction::SignIn => token_window::open(app, Section::SignIn),
        MenuAction::About => token_window::open(app, Section::About),
        MenuAction::Demo => {
            let (app, shell) = (app.clone(), shell.clone());
            tauri::async_runtime::spawn(async move {
                // Starts the demo, or opens the console of the one that runs.
                if let Err(e) = crate::demo::start(&app, &shell).await {
                    tracing::warn!("demo mode failed: {e}");
                }
            });
        }
        MenuAction::ToggleStartAtLogin => {
            let wanted = !shell.settings().start_at_login;
            if let Err(e) = shell.update_settings(|s| s.start_at_login = wanted) {
                tracing::warn!("{e}");
            }
            if let Err(e) = crate::autostart::apply(app, wanted) {
                tracing::warn!("{e}");
            }
        }
        MenuAction::ToggleNotification(kind) => {
            let result = shell.update_settings(|s| {
                let on = s.notifications.enabled(kind);
                s.notifications.set(kind, !on);
            });
            if let Err(e) = result {
                tracing::warn!("{e}");
            }
        }
        MenuAction::OpenLogs => {
            let _ = std::fs::create_dir_all(&shell.logs_dir);
            desktop::open_folder(app, &shell.logs_dir);
        }
        MenuAction::Quit => quit(app, shell),
    }
}

/// A task's page on the server. The demo's console has no session in a fresh browser: there the
/// page opens signed in, through a one-time sign-in link.
fn open_task_page<R: Runtime>(app: &AppHandle<R>, shell: &Shell, task_id: i64) {
    let page = task_page_url(&shell.core.current().web_url, task_id);
    // The link's fragment (`login=<code>`) signs in; the console keeps the page's query.
    let sign_in = shell.demo.sign_in_link().and_then(|link| {
        link.split_once('#')
            .map(|(_, fragment)| fragment.to_owned())
    });
    match sign_in {
        Some(fragment) => desktop::open_secret_url(app, &format!("{page}#{fragment}"), &page),
        None => desktop::open_url(app, &page),
    }
}

fn send(shell: Arc<Shell>, command: Command) {
    tauri::async_runtime::spawn(async move {
        if let Err(e) = shell.core.send(command).await {
            tracing::warn!("{e}");
        }
    });
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
