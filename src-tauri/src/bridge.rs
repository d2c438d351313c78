//! The tray's render loop: on every status change, core event, settings change and a 1 s tick
//! (countdowns, elapsed times), recompute the menu model, apply it to the tray in place, and show
//! whatever notices the policy lets through.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tauri::{AppHandle, Runtime};
use tokio::sync::broadcast::error::RecvError;
use wegent_executor::status::DeviceStatus;

use crate::icon::{icon_variant, tooltip, tray_state};
use crate::menu_model::{self, MenuModel, ShellState};
use crate::notifier::Notifier;
use crate::notify_policy::NotifyPolicy;
use crate::shell::Shell;
use crate::tray::Tray;

/// How long a first click on Quit (with tasks running) waits for the confirming second click.
pub const QUIT_CONFIRM_WINDOW: Duration = Duration::from_secs(10);

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The menu model for the current state.
pub fn model(shell: &Shell, status: &DeviceStatus, now: SystemTime) -> MenuModel {
    let settings = shell.settings();
    let problem = shell.keychain_problem();
    let quit_pending = shell
        .quit_pending()
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|d| d <= QUIT_CONFIRM_WINDOW);
    let state = ShellState {
        settings: &settings,
        keychain_problem: problem.as_deref(),
        server_configured: shell.server_url().is_some(),
        demo_running: shell.demo.url().is_some(),
        quit_pending,
        version: VERSION,
    };
    menu_model::build(status, &state, now)
}

pub async fn run<R: Runtime>(
    app: AppHandle<R>,
    shell: Arc<Shell>,
    mut tray: Option<Tray<R>>,
    notifier: Arc<dyn Notifier>,
) {
    let mut status = shell.core.status();
    let mut events = shell.core.events();
    let mut policy = NotifyPolicy::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let is_macos = cfg!(target_os = "macos");
    let mut last_header = String::new();
    loop {
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            event = events.recv() => match event {
                Ok(event) => {
                    tracing::debug!(event = event_name(&event), "device event");
                    policy.on_event(&event, SystemTime::now());
                }
                Err(RecvError::Lagged(n)) => tracing::warn!("missed {n} device events"),
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {}
            _ = shell.refresh.notified() => {}
        }
        let now = SystemTime::now();
        let current = status.borrow_and_update().clone();
        let model = model(&shell, &current, now);
        if model.header != last_header {
            // One line per state change: the log tells the story without payloads.
            tracing::info!(header = %model.header, "device state");
            last_header.clone_from(&model.header);
        }
        if let Some(t) = tray.as_mut() {
            let settings = shell.settings();
            let state = tray_state(&current, shell.keychain_problem().is_some());
            let variant = icon_variant(settings.tray_theme, is_macos);
            if shell.take_menu_dirty() {
                t.invalidate();
            }
            if let Err(e) = t.apply(
                &app,
                &model,
                state,
                variant,
                &tooltip(&model.header, VERSION),
            ) {
                tracing::warn!("could not update the tray: {e}");
            }
        }
        for notice in policy.poll(&current, now, &shell.settings().notifications) {
            // Kind only: summaries carry task titles, which are user content.
            tracing::info!(kind = notice.kind.key(), "notify");
            notifier.show(notice);
        }
    }
}

fn event_name(event: &wegent_executor::status::DeviceEvent) -> &'static str {
    use wegent_executor::status::DeviceEvent as E;
    match event {
        E::TaskStarted { .. } => "task_started",
        E::TaskCompleted { .. } => "task_completed",
        E::TaskFailed { .. } => "task_failed",
        E::TaskCancelled { .. } => "task_cancelled",
        E::Registered => "registered",
    }
}
