//! The tray's failures as one typed enum. Each `Display` is the sentence the user reads (in the
//! token window, or in the log line a menu action leaves), so an IPC command serialises its error
//! as exactly that sentence.

use serde::{Serialize, Serializer};
use wegent_executor::keychain::KeychainError;

use crate::app_settings::SettingsError;
use crate::core_config::SetupError;
use crate::core_link::CoreError;
use crate::token_check::ServerUrlError;

#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    #[error(transparent)]
    ServerUrl(#[from] ServerUrlError),
    /// The pasted token's format is unusable (the sentence comes from the token check).
    #[error("{0}")]
    TokenFormat(String),
    #[error("Enter your user name and password.")]
    MissingCredentials,
    /// The server refused the sign-in, in its words.
    #[error("{0}")]
    SignInRefused(String),
    /// The test connection with the token failed; nothing was stored.
    #[error("{0}. Nothing was saved.")]
    TokenRefused(String),
    #[error("{0}. The token was not saved anywhere.")]
    Keychain(#[from] KeychainError),
    /// The keychain worker thread itself failed (panicked or was cancelled).
    #[error("the keychain call failed: {0}")]
    KeychainCall(String),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("could not start the demo server: {0}")]
    DemoStart(#[from] wegent_devserver::StartError),
    #[error("the demo server has no demo account")]
    DemoNoAccount,
    #[error("could not update the start-at-login entry: {0}")]
    Autostart(#[from] tauri_plugin_autostart::Error),
    #[error("could not start the app: {0}")]
    App(#[from] tauri::Error),
}

/// The page reads the error as a plain sentence.
impl Serialize for TrayError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_sentence_the_user_reads() {
        let e = TrayError::TokenRefused("Invalid or expired API key".into());
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!("Invalid or expired API key. Nothing was saved.")
        );
        let e = TrayError::from(ServerUrlError::NotHttp("example.com".into()));
        assert!(serde_json::to_value(&e)
            .unwrap()
            .as_str()
            .unwrap()
            .contains("must start with http://"));
    }
}
