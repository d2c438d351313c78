// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use wegent_device::{app, cli_args, core_config, display, token_window};

fn main() {
    // Before anything reads the token: other processes of the user cannot read this one's
    // memory or environment (see wegent_executor::hardening).
    wegent_executor::hardening::deny_inspection();
    let args = cli_args::parse(std::env::args().skip(1));
    if args.help {
        println!("{}", cli_args::USAGE);
        return;
    }
    if args.version {
        println!("wegent-device {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    prepare_linux_webview();
    // Before anything else touches GTK: without a graphical session it would panic inside Tauri.
    if let Err(no_display) = display::check() {
        eprintln!("{no_display}");
        std::process::exit(display::EXIT_NO_DISPLAY);
    }
    if let Some(section) = args.token_window {
        // The token window process the tray started: no core, no log file of its own.
        std::process::exit(token_window::process::run(section));
    }

    let setup = match core_config::load() {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("wegent-device: {e}");
            std::process::exit(2);
        }
    };
    let home = setup.settings.home.value.clone();
    let levels = wegent_executor::logging::levels(
        std::env::var("RUST_LOG").ok().as_deref(),
        setup.settings.log_level.as_ref().map(|s| s.value.as_str()),
        1,
    );
    let opts = wegent_executor::logging::LogOptions::for_home(&home, "wegent-device", levels);
    // Keep the guard alive for the whole run: it flushes the log file on exit.
    let _log_guard = match wegent_executor::logging::init(&opts) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!("wegent-device: logging to a file is off: {e}");
            None
        }
    };
    if !args.unknown.is_empty() {
        tracing::warn!(
            ignored = ?cli_args::loggable(&args.unknown),
            "unknown command-line arguments"
        );
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        demo = args.demo,
        "Wegent Device starting"
    );
    if let Err(e) = app::run(args, setup) {
        tracing::error!("{e}");
        eprintln!("wegent-device: {e}");
        std::process::exit(1);
    }
}

/// Linux defaults, each only when the user has not set the variable:
/// - `WEBKIT_DISABLE_DMABUF_RENDERER=1`: WebKitGTK's DMA-BUF renderer shows blank windows on
///   many GPUs and VMs.
/// - `GDK_GL=disable`: GTK probes OpenGL when it opens the X display, which maps the Mesa driver
///   and LLVM (≈50 MB resident) into a process that never draws with GL itself (web content is
///   rendered in WebKit's own process; without DMA-BUF the window gets plain shared-memory
///   frames). Measured: 127 MB → 75 MB idle. Not done when the user re-enabled DMA-BUF.
fn prepare_linux_webview() {
    #[cfg(target_os = "linux")]
    {
        let dmabuf_off = match std::env::var("WEBKIT_DISABLE_DMABUF_RENDERER") {
            Ok(v) => v != "0",
            Err(_) => {
                // SAFETY: called at the very start of main, before any thread is spawned.
                unsafe { std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1") };
                true
            }
        };
        if dmabuf_off && std::env::var_os("GDK_GL").is_none() {
            // SAFETY: as above, still single-threaded.
            unsafe { std::env::set_var("GDK_GL", "disable") };
        }
    }
}
