//! ⭐ Default device through the server's REST API (`PUT /api/devices/{id}/default`, login JWT
//! only). The contract is `Command::SetDefault` / `is_default` in the core's status; while the core
//! leaves `is_default` unknown (`None`), the shell asks the server itself, so the menu item never
//! silently does nothing.

use wegent_executor::rest::RestClient;
use wegent_executor::status::Command;

use crate::shell::Shell;

/// The REST client for the current server and token, if both are known.
fn client(shell: &Shell) -> Result<RestClient, String> {
    let url = shell.server_url().ok_or("no server configured")?;
    let token = shell.token().ok_or("no token")?;
    Ok(RestClient::new(&url)
        .map_err(|e| e.to_string())?
        .with_token(token))
}

/// Read `is_default` of this device from the server's device list.
pub async fn refresh(shell: &Shell, device_id: &str) {
    let result = match client(shell) {
        Ok(c) => c.list_devices().await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(devices) => {
            let flag = devices
                .iter()
                .find(|d| d.device_id == device_id)
                .map(|d| d.is_default);
            shell.set_default_flag(flag);
        }
        Err(e) => tracing::info!("could not read the default device: {e}"),
    }
}

/// Handle a click on ⭐ Default device.
pub async fn make_default(shell: &Shell, device_id: &str, core_reports_default: bool) {
    if core_reports_default {
        if let Err(e) = shell.core.send(Command::SetDefault).await {
            tracing::warn!("{e}");
        }
        return;
    }
    let result = match client(shell) {
        Ok(c) => c.set_default(device_id).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::info!("this device is now the default device"),
        Err(e) => tracing::warn!("could not set the default device: {e}"),
    }
    refresh(shell, device_id).await;
}
