//! Start at login: one entry under the app's name (tauri-plugin-autostart), reconciled from the
//! app's own settings at every start so the entry and the menu's check mark never disagree.

use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt;

use crate::error::TrayError;

/// What to do with the OS entry so it matches what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    Nothing,
    Enable,
    Disable,
}

/// `actual`: whether the entry exists (`None`: could not be read; then write what is wanted).
pub fn reconcile(wanted: bool, actual: Option<bool>) -> Reconcile {
    match (wanted, actual) {
        (true, Some(true)) | (false, Some(false)) => Reconcile::Nothing,
        (true, _) => Reconcile::Enable,
        (false, _) => Reconcile::Disable,
    }
}

/// Make the OS entry match `wanted`.
pub fn apply<R: Runtime>(app: &AppHandle<R>, wanted: bool) -> Result<(), TrayError> {
    let launcher = app.autolaunch();
    let actual = launcher.is_enabled().ok();
    let result = match reconcile(wanted, actual) {
        Reconcile::Nothing => return Ok(()),
        Reconcile::Enable => launcher.enable(),
        Reconcile::Disable => launcher.disable(),
    };
    result?;
    tracing::info!(enabled = wanted, "start at login updated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differences_are_written() {
        assert_eq!(reconcile(true, Some(true)), Reconcile::Nothing);
        assert_eq!(reconcile(false, Some(false)), Reconcile::Nothing);
        assert_eq!(reconcile(true, Some(false)), Reconcile::Enable);
        assert_eq!(reconcile(false, Some(true)), Reconcile::Disable);
        assert_eq!(reconcile(true, None), Reconcile::Enable);
        assert_eq!(reconcile(false, None), Reconcile::Disable);
    }
}
