//! Handing things to the desktop: URLs to the default browser, folders to the file manager.
//! Failing to open one is never fatal: the failure is logged and the tray goes on.

use std::path::Path;

use tauri::{AppHandle, Runtime};
use tauri_plugin_opener::OpenerExt;

pub fn open_url<R: Runtime>(app: &AppHandle<R>, url: &str) {
    if let Err(e) = app.opener().open_url(url, None::<&str>) {
        tracing::warn!("could not open {url} in a browser: {e}");
    }
}

/// Open `link`, which carries a secret (a sign-in link): only `shown` is ever logged.
pub fn open_secret_url<R: Runtime>(app: &AppHandle<R>, link: &str, shown: &str) {
    if let Err(e) = app.opener().open_url(link, None::<&str>) {
        tracing::warn!("could not open {shown} in a browser: {e}");
    }
}

/// Open a folder in the file manager.
pub fn open_folder<R: Runtime>(app: &AppHandle<R>, dir: &Path) {
    if let Err(e) = app.opener().open_path(dir.to_string_lossy(), None::<&str>) {
        tracing::warn!("could not open the folder {}: {e}", dir.display());
    }
}
