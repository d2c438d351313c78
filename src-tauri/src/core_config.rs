//! The core's configuration for the tray: the same executor settings as the CLI (executor home,
//! `config.toml`, `WEGENT_*` env; see `wegent_executor::settings`), except that a server chosen
//! in the token window (or the demo server) takes precedence over the configured backend URL.

use wegent_executor::config::Config;
use wegent_executor::identity::{self, IdentityError};
use wegent_executor::settings::{self, Overrides, Settings, SettingsError, Source, Sourced};

/// The executor settings plus this device's identity.
#[derive(Debug, Clone)]
pub struct DeviceSetup {
    pub settings: Settings,
    pub device_id: String,
    pub device_name: String,
}

/// Why the executor settings or this device's identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

pub fn load() -> Result<DeviceSetup, SetupError> {
    let settings = settings::load(&Overrides::default())?;
    let home = settings.home.value.clone();
    let device_id = identity::device_id(&home, settings.device_id_override.as_deref())?.id;
    let device_name =
        identity::device_name(settings.device_name.as_ref().map(|s| s.value.as_str()));
    Ok(DeviceSetup {
        settings,
        device_id,
        device_name,
    })
}

/// Which server to use: the window's (or demo's) choice, else the executor settings'.
pub fn server_url(setup: &DeviceSetup, chosen: Option<&str>) -> Option<String> {
    chosen
        .map(str::to_owned)
        .or_else(|| setup.settings.backend_url.as_ref().map(|s| s.value.clone()))
}

/// The core's config for `url`.
pub fn config_for(setup: &DeviceSetup, url: &str) -> Result<Config, SetupError> {
    let mut settings = setup.settings.clone();
    let chosen_differs = settings.backend_url.as_ref().map(|s| s.value.as_str()) != Some(url);
    if chosen_differs {
        // A socket or web URL configured for another server would be wrong for this one.
        settings.socket_url = None;
        settings.web_url = None;
    }
    settings.backend_url = Some(Sourced {
        value: url.to_owned(),
        source: Source::Flag,
    });
    Ok(settings.to_config(setup.device_id.clone(), setup.device_name.clone())?)
}

/// A config used only to describe the device while no server is known (never started).
pub fn placeholder(setup: &DeviceSetup) -> Config {
    let mut config = config_for(setup, "http://127.0.0.1").unwrap_or_else(|_| Config {
        backend_url: String::new(),
        socket_url: None,
        web_url: None,
        home: setup.settings.home.value.clone(),
        device_id: setup.device_id.clone(),
        device_name: setup.device_name.clone(),
        session: Default::default(),
        tasks: Default::default(),
    });
    config.backend_url = String::new();
    config
}
