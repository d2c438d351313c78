//! Account actions a shell asks for — ⭐ default device — done over the REST API and reflected in
//! the status (`is_default`, `last_error`), so every shell renders the same truth.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::rest::{RestClient, RestError};
use crate::status::DeviceStatus;
use crate::token::{Token, TokenKind};

/// What the REST calls need; cheap to clone into a spawned task.
#[derive(Clone)]
pub struct Account {
    pub backend_url: String,
    pub device_id: String,
    /// The token the shell set last (shared with the command router).
    pub token: Arc<Mutex<Option<Token>>>,
    pub status: Arc<watch::Sender<DeviceStatus>>,
}

impl Account {
    /// Make this device the user's default; on failure say why in `last_error`.
    pub async fn set_default(&self) {
        let result = match self.client() {
            Ok(client) => client.set_default(&self.device_id).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!("this device is now the default device");
                self.status.send_modify(|s| {
                    s.is_default = Some(true);
                    s.last_error = None;
                });
            }
            Err(e) => {
                tracing::warn!("could not set the default device: {e}");
                self.status
                    .send_modify(|s| s.last_error = Some(format!("Default device: {e}")));
            }
        }
    }

    /// Read `is_default` from the server's device list. Only a login JWT may ask; with an API key
    /// the flag stays unknown (`None`), which the shell renders as "needs Sign in".
    pub async fn refresh_default(&self) {
        let client = match self.client() {
            Ok(client) => client,
            Err(RestError::NeedsLoginToken | RestError::NoToken) => {
                self.status
                    .send_if_modified(|s| s.is_default.take().is_some());
                return;
            }
            Err(e) => {
                tracing::info!("could not read the default device: {e}");
                return;
            }
        };
        match client.is_default(&self.device_id).await {
            Ok(flag) => {
                self.status.send_if_modified(|s| {
                    let changed = s.is_default != flag;
                    s.is_default = flag;
                    changed
                });
            }
            Err(e) => tracing::info!("could not read the default device: {e}"),
        }
    }

    fn client(&self) -> Result<RestClient, RestError> {
        let token = self
            .token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(RestError::NoToken)?;
        if token.kind() == TokenKind::ApiKey {
            return Err(RestError::NeedsLoginToken);
        }
        Ok(RestClient::new(&self.backend_url)?.with_token(token))
    }
}
