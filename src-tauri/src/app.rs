//! Building and running the Tauri app: plugins (single instance first), the tray, the core, the
//! render loop, and the exit policy (closing windows never quits; only Quit does).

use std::sync::Arc;

use tauri::{AppHandle, Manager, RunEvent, Runtime};
use wegent_executor::keychain::{OsKeychain, SecretStore};
use wegent_executor::token::Token;

use crate::app_settings;
use crate::bridge;
use crate::cli_args::Args;
use crate::core_config::{self, DeviceSetup};
use crate::core_link::{idle_status, CoreLink};
use crate::error::TrayError;
use crate::icon::{icon_variant, tooltip, tray_state};
use crate::menu_handler;
use crate::notifier::DesktopNotifier;
use crate::shell::Shell;
use crate::token_window::{self, Section};
use crate::tray::Tray;

pub fn run(args: Args, setup: DeviceSetup) -> Result<(), TrayError> {
    let app = tauri::Builder::default()
        // First, so a second launch is caught before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            tracing::info!(args = argv.len(), "second launch: showing the window");
            let section = if argv.iter().any(|a| a == "--demo") {
                Section::About
            } else {
                Section::Token
            };
            token_window::open(app, section);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--minimized"]),
        ))
        .plugin(tauri_plugin_opener::init())
        .setup(move |app| {
            setup_app(app.handle(), &args, setup);
            Ok(())
        })
        .build(crate::context())?;
    app.run(|_app, event| {
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            // The last window closed: a tray app keeps running.
            api.prevent_exit();
        }
    });
    Ok(())
}

fn setup_app<R: Runtime>(app: &AppHandle<R>, args: &Args, setup: DeviceSetup) {
    let settings_dir = app
        .path()
        .app_config_dir()
        .unwrap_or_else(|_| setup.settings.home.value.join("tray"));
    let settings = app_settings::load(&settings_dir).unwrap_or_else(|e| {
        tracing::warn!("{e}; using default settings");
        Default::default()
    });
    let server_url = core_config::server_url(&setup, settings.server_url.as_deref());
    let placeholder = core_config::placeholder(&setup);
    let keychain: Arc<dyn SecretStore> = Arc::new(OsKeychain::new());
    let logs_dir = setup
        .settings
        .home
        .value
        .join(wegent_executor::logging::LOG_DIR);
    let shell = Arc::new(Shell::new(
        setup,
        CoreLink::new(idle_status(&placeholder)),
        keychain,
        settings_dir,
        logs_dir,
        settings.clone(),
        server_url.clone(),
    ));
    app.manage(shell.clone());

    if let Err(e) = crate::autostart::apply(app, settings.start_at_login) {
        tracing::warn!("{e}");
    }

    stop_on_signals(app.clone(), shell.clone());
    let tray = create_tray(app, &shell);
    let link_opener = app.clone();
    let notifier = Arc::new(DesktopNotifier::new(Arc::new(move |url: &str| {
        crate::desktop::open_url(&link_opener, url)
    })));
    tauri::async_runtime::spawn(bridge::run(app.clone(), shell.clone(), tray, notifier));
    crate::memory::trim_from_time_to_time();

    let app = app.clone();
    let (demo, show, minimized) = (args.demo, args.show, args.minimized);
    tauri::async_runtime::spawn(async move {
        if demo {
            if let Err(e) = crate::demo::start(&app, &shell).await {
                tracing::error!("demo mode failed: {e}");
                token_window::open(&app, Section::Token);
            }
            return;
        }
        let token = read_token(&shell).await;
        let unconfigured = server_url.is_none() || token.is_none();
        match &server_url {
            Some(url) => {
                if let Err(e) = shell.restart_core(url, token).await {
                    tracing::error!("{e}");
                }
            }
            None => tracing::info!(
                "no Wegent server configured yet: offering the demo and the token window"
            ),
        }
        // Offer a way in rather than sitting silently offline.
        if show || (unconfigured && !minimized) {
            token_window::open(&app, Section::Token);
        }
    });
}

fn create_tray<R: Runtime>(app: &AppHandle<R>, shell: &Shell) -> Option<Tray<R>> {
    let now = std::time::SystemTime::now();
    let status = shell.core.current();
    let model = bridge::model(shell, &status, now);
    let state = tray_state(&status, false);
    let variant = icon_variant(shell.settings().tray_theme, cfg!(target_os = "macos"));
    let tip = tooltip(&model.header, bridge::VERSION);
    match Tray::create(app, &model, state, variant, &tip, menu_handler::on_menu) {
        Ok(tray) => Some(tray),
        Err(e) => {
            // GNOME without the AppIndicator extension has no tray: keep running; a second
            // launch opens the window.
            tracing::warn!(
                "no system tray available ({e}); launch Wegent Device again to open its window"
            );
            None
        }
    }
}

/// SIGTERM / SIGINT (logout, `kill`, Ctrl-C in a terminal) quit like the menu's Quit: running
/// tasks are cancelled and reported before the process ends.
fn stop_on_signals<R: Runtime>(app: AppHandle<R>, shell: Arc<Shell>) {
    tauri::async_runtime::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot listen for SIGTERM/SIGINT");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            tracing::info!("Ctrl-C: shutting down");
        }
        menu_handler::shutdown_and_exit(app, shell);
    });
}

/// `WEGENT_TOKEN` / `WEGENT_AUTH_TOKEN` (like the CLI), else the keychain, off-thread (a locked
/// keychain can block). A keychain failure is shown in the menu, never worked around.
async fn read_token(shell: &Arc<Shell>) -> Option<Token> {
    let store = shell.keychain.clone();
    let env = wegent_executor::settings::ProcessEnv;
    let found = tokio::task::spawn_blocking(move || {
        wegent_executor::settings::resolve_token(None, &env, Some(store.as_ref()))
    })
    .await;
    match found {
        Ok(Ok(Some((token, source)))) => {
            tracing::info!(%source, kind = ?token.kind(), "token found");
            shell.set_token(Some(token.clone()));
            Some(token)
        }
        Ok(Ok(None)) => {
            tracing::info!("no token stored yet");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!("keychain: {e}");
            shell.set_keychain_problem(Some(e.to_string()));
            None
        }
        Err(e) => {
            tracing::warn!("keychain call failed: {e}");
            None
        }
    }
}
