//! The token window (`ui/`): opened on demand, destroyed on close. What the page asks of the app
//! (check, test and save a token, sign in, start the demo) is in `commands.rs`.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

pub const WINDOW_LABEL: &str = "token";

/// Which part of the window to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Token,
    SignIn,
    About,
}

impl Section {
    fn anchor(self) -> &'static str {
        match self {
            Section::Token => "token",
            Section::SignIn => "signin",
            Section::About => "about",
        }
    }
}

/// Open (or focus) the window on `section`. Failures are logged: the tray keeps working.
pub fn open<R: Runtime>(app: &AppHandle<R>, section: Section) {
    if let Some(window) = app.get_webview_window(WINDOW_LABEL) {
        let _ = window.eval(format!(
            "window.showSection && showSection('{}')",
            section.anchor()
        ));
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let url = WebviewUrl::App(format!("index.html#{}", section.anchor()).into());
    let built = WebviewWindowBuilder::new(app, WINDOW_LABEL, url)
        .title("Wegent Device")
        .inner_size(480.0, 600.0)
        .min_inner_size(400.0, 480.0)
        .center()
        .focused(true)
        .build();
    match built {
        Ok(_) => tracing::info!(section = section.anchor(), "token window opened"),
        Err(e) => tracing::warn!("could not open the token window: {e}"),
    }
}
