//! The subcommands of `wegent-executor` (`run` is in [`super::run`]). Decisions live in
//! [`crate::settings`] and [`super::render`]; this module does the I/O: terminal, keychain, REST.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::render;
use super::{Cli, Commands};
use crate::identity;
use crate::keychain::{KeychainError, OsKeychain, SecretStore};
use crate::rest::{RestClient, RestError};
use crate::settings::{self, vars, Settings, TokenSource};
use crate::token::Token;

/// How long `status` waits for the server before saying it could not ask.
const STATUS_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// Bad or missing settings (exit 2, like a usage error).
    pub fn config(e: impl ToString) -> Self {
        Self {
            message: e.to_string(),
            code: 2,
        }
    }
    /// No usable token, or the server refused it (exit 3).
    pub fn auth(e: impl ToString) -> Self {
        Self {
            message: e.to_string(),
            code: 3,
        }
    }
    /// Anything else (exit 1).
    pub fn failed(e: impl ToString) -> Self {
        Self {
            message: e.to_string(),
            code: 1,
        }
    }
}

impl From<RestError> for CliError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::NeedsLoginToken
            | RestError::NoToken
            | RestError::LoginRefused(_)
            | RestError::Unauthorized(_) => CliError::auth(e),
            RestError::BadUrl { .. } => CliError::config(e),
            _ => CliError::failed(e),
        }
    }
}

/// Run the command line's command. Logging is set up here, once the executor home is known.
pub async fn execute(cli: Cli) -> Result<(), CliError> {
    let settings = settings::load(&cli.overrides()).map_err(CliError::config)?;
    let levels = crate::logging::levels(
        std::env::var(vars::RUST_LOG).ok().as_deref(),
        settings.log_level.as_ref().map(|s| s.value.as_str()),
        cli.global.verbose,
    );
    let log_options =
        crate::logging::LogOptions::for_home(&settings.home.value, "wegent-executor", levels);
    let _log_guard = crate::logging::init(&log_options).map_err(CliError::config)?;

    match cli.selected() {
        Commands::Run(args) => super::run::run(&cli, &args, &settings).await,
        Commands::Status => status(&cli, &settings).await,
        Commands::Login { user } => login(&settings, &user).await,
        Commands::Logout => logout(&settings).await,
        Commands::Devices => devices(&cli, &settings).await,
        Commands::SetDefault { device_id } => set_default(&cli, &settings, device_id).await,
        Commands::DeleteDevice { device_id } => delete_device(&cli, &settings, &device_id).await,
        Commands::ResetDeviceId => reset_device_id(&settings),
        Commands::Service { action } => super::service::execute(&settings, action).await,
        Commands::Pause => set_paused(&settings, true),
        Commands::Resume => set_paused(&settings, false),
        Commands::Stop { task_id } => stop_task(&settings, task_id).await,
    }
}

/// How long `stop` waits for a running device to take its request (it looks every second).
const STOP_ANSWER_WAIT: Duration = Duration::from_secs(5);

async fn stop_task(settings: &Settings, task_id: i64) -> Result<(), CliError> {
    use crate::stop_requests::{self, Reply};
    let home = &settings.home.value;
    stop_requests::request(home, task_id).map_err(|e| {
        CliError::failed(format!(
            "could not write the stop request in {}: {e}",
            home.display()
        ))
    })?;
    let deadline = tokio::time::Instant::now() + STOP_ANSWER_WAIT;
    loop {
        match stop_requests::take_reply(home, task_id) {
            Some(Reply::Stopping) => {
                println!("Task {task_id} is being stopped; the server records it cancelled.");
                return Ok(());
            }
            Some(Reply::NotHere) => {
                return Err(CliError::failed(format!(
                    "Task {task_id} does not run or wait on this device (`wegent-executor status` lists the recent ones)."
                )))
            }
            None if tokio::time::Instant::now() >= deadline => {
                stop_requests::withdraw(home, task_id);
                return Err(CliError::failed(format!(
                    "No running device took the request within {} s: is `wegent-executor run` (or the tray) running with the home {}? Pass `--home` to reach another one.",
                    STOP_ANSWER_WAIT.as_secs(),
                    home.display()
                )));
            }
            // The device looks every second: a short poll of one small file.
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn status(cli: &Cli, settings: &Settings) -> Result<(), CliError> {
    let (device_id, device_name) = device_identity(settings)?;
    for line in render::settings_report(settings, &device_id, &device_name) {
        println!("{line}");
    }

    let (token, line) = match lookup_token(cli, settings).await {
        Ok(Some((token, source))) => {
            let summary = render::token_summary(&token, SystemTime::now());
            (Some(token), format!("{summary} (from {source})"))
        }
        Ok(None) => (
            None,
            "none — set WEGENT_TOKEN or run `wegent-executor login --user NAME`".to_owned(),
        ),
        Err(e) => (None, format!("not in the environment; keychain: {e}")),
    };
    println!("{}", render::labelled("Token", &line));
    let paused = crate::pause::is_paused(&settings.home.value);
    println!(
        "{}",
        render::labelled("New tasks", &render::pause_state(&paused))
    );
    if let Some(url) = settings.backend_url.as_ref() {
        let recent = crate::recent::load(&settings.home.value, &url.value);
        let web_url = settings.web_url.as_ref().unwrap_or(url);
        for line in render::recent_tasks(&recent, &web_url.value, SystemTime::now()) {
            println!("{line}");
        }
    }
    if let (Some(token), Some(url)) = (token, settings.backend_url.as_ref()) {
        let query = server_view(&url.value, token, &device_id.id);
        let answer = tokio::time::timeout(STATUS_QUERY_TIMEOUT, query).await;
        let line = answer.unwrap_or_else(|_| "no answer within 5 s".to_owned());
        println!("{}", render::labelled("On the server", &line));
    }
    Ok(())
}

async fn server_view(backend: &str, token: Token, device_id: &str) -> String {
    let devices = match RestClient::new(backend) {
        Ok(client) => client.with_token(token).list_devices().await,
        Err(e) => Err(e),
    };
    match devices {
        Ok(list) => match list.iter().find(|d| d.device_id == device_id) {
            Some(d) => render::device_row(d, None),
            None => "not registered yet (run `wegent-executor` to connect)".to_owned(),
        },
        Err(e) => e.to_string(),
    }
}

async fn login(settings: &Settings, user: &str) -> Result<(), CliError> {
    let backend = settings
        .require_backend()
        .map_err(CliError::config)?
        .to_owned();
    let store = keychain(settings).ok_or_else(|| {
        CliError::config("login stores the token in the OS keychain, which WEGENT_NO_KEYCHAIN switches off; pass the token with WEGENT_TOKEN instead")
    })?;
    // Ask the keychain first, so a missing Secret Service is reported before the password prompt.
    blocking(store.clone(), |s| s.get())
        .await
        .map_err(CliError::failed)?;
    let password = match std::env::var("WEGENT_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => rpassword::prompt_password(format!("Password for {user} at {backend}: ")).map_err(
            |e| {
                CliError::config(format!(
                    "cannot read the password from the terminal ({e}); set WEGENT_PASSWORD instead"
                ))
            },
        )?,
    };
    crate::redact::register_secret(&password);
    let token = RestClient::new(&backend)?.login(user, &password).await?;
    let stored = token.clone();
    blocking(store.clone(), move |s| s.set(&stored))
        .await
        .map_err(CliError::failed)?;
    // Read it back: proves the keychain really persisted it (not a silent in-memory store).
    let back = blocking(store, |s| s.get())
        .await
        .map_err(CliError::failed)?;
    if back.as_ref().map(Token::expose) != Some(token.expose()) {
        return Err(CliError::failed(
            "the keychain accepted the token but does not return it; check your keychain",
        ));
    }
    println!(
        "Signed in as {user}; token stored in the OS keychain ({}).",
        render::token_summary(&token, SystemTime::now())
    );
    println!("Start the device with `wegent-executor` (or restart the tray app).");
    Ok(())
}

async fn logout(settings: &Settings) -> Result<(), CliError> {
    let store = keychain(settings)
        .ok_or_else(|| CliError::config("the OS keychain is switched off (WEGENT_NO_KEYCHAIN)"))?;
    blocking(store, |s| s.delete())
        .await
        .map_err(CliError::failed)?;
    println!("Removed the device token from the OS keychain.");
    Ok(())
}

async fn devices(cli: &Cli, settings: &Settings) -> Result<(), CliError> {
    let client = rest_client(cli, settings).await?;
    let this =
        identity::device_id(&settings.home.value, settings.device_id_override.as_deref()).ok();
    let list = client.list_devices().await?;
    if list.is_empty() {
        println!("No devices yet. Start this one with `wegent-executor`.");
    }
    for d in &list {
        println!(
            "{}",
            render::device_row(d, this.as_ref().map(|t| t.id.as_str()))
        );
    }
    Ok(())
}

async fn set_default(
    cli: &Cli,
    settings: &Settings,
    device_id: Option<String>,
) -> Result<(), CliError> {
    let client = rest_client(cli, settings).await?;
    let id = match device_id {
        Some(id) => id,
        None => device_identity(settings)?.0.id,
    };
    client.set_default(&id).await.map_err(|e| match e {
        RestError::NotFound(_) => CliError::failed(format!(
            "{e} — a device appears on the server once it has connected (run `wegent-executor`)"
        )),
        other => other.into(),
    })?;
    println!("⭐ {id} is now your default device.");
    Ok(())
}

async fn delete_device(cli: &Cli, settings: &Settings, device_id: &str) -> Result<(), CliError> {
    rest_client(cli, settings)
        .await?
        .delete_device(device_id)
        .await?;
    println!("Removed {device_id} from your devices (it comes back if it connects again).");
    Ok(())
}

fn reset_device_id(settings: &Settings) -> Result<(), CliError> {
    let home = &settings.home.value;
    let old = identity::device_id(home, None).ok().map(|d| d.id);
    let new = identity::reset_device_id(home).map_err(CliError::failed)?;
    match old {
        Some(old) => println!("Device id changed: {old} → {new}"),
        None => println!("Device id: {new}"),
    }
    println!("The server still lists the old id; remove it with `wegent-executor delete-device <old id>` if you no longer need it.");
    if settings.device_id_override.is_some() {
        println!("Note: DEVICE_ID is set in the environment and overrides the saved id.");
    }
    Ok(())
}

/// `pause` / `resume`: save the switch; a running device (CLI, service or tray) follows it.
fn set_paused(settings: &Settings, paused: bool) -> Result<(), CliError> {
    let home = &settings.home.value;
    let was = crate::pause::is_paused(home).unwrap_or(!paused);
    crate::pause::set_paused(home, paused)
        .map_err(|e| CliError::failed(crate::pause::save_error(home, paused, &e)))?;
    println!("{}", render::pause_changed(was, paused));
    Ok(())
}

/// Whether the OS keychain holds a token: what a service started at login will read.
pub(super) async fn keychain_has_token(settings: &Settings) -> Result<bool, KeychainError> {
    match keychain(settings) {
        Some(store) => blocking(store, |s| s.get()).await.map(|t| t.is_some()),
        None => Ok(false),
    }
}

pub(super) fn device_identity(
    settings: &Settings,
) -> Result<(identity::DeviceId, String), CliError> {
    settings.device_identity().map_err(|e| CliError {
        message: e.to_string(),
        code: 2,
    })
}

fn keychain(settings: &Settings) -> Option<Arc<OsKeychain>> {
    settings
        .keychain_enabled
        .then(|| Arc::new(OsKeychain::new()))
}

/// Run a keychain call off the async threads (it may block up to its timeout).
async fn blocking<T: Send + 'static>(
    store: Arc<OsKeychain>,
    op: impl FnOnce(&OsKeychain) -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    tokio::task::spawn_blocking(move || op(&store))
        .await
        .unwrap_or_else(|e| {
            Err(KeychainError::Platform(format!(
                "keychain call failed: {e}"
            )))
        })
}

/// Token by precedence; warns about `--token`.
async fn lookup_token(
    cli: &Cli,
    settings: &Settings,
) -> Result<Option<(Token, TokenSource)>, KeychainError> {
    let flag = cli.global.token.clone();
    if flag.is_some() {
        eprintln!("{}", settings::TOKEN_FLAG_WARNING);
    }
    let store = keychain(settings);
    tokio::task::spawn_blocking(move || {
        settings::resolve_token(
            flag.as_deref(),
            &settings::ProcessEnv,
            store.as_deref().map(|s| s as &dyn SecretStore),
        )
    })
    .await
    .unwrap_or_else(|e| {
        Err(KeychainError::Platform(format!(
            "keychain call failed: {e}"
        )))
    })
}

pub(super) async fn require_token(
    cli: &Cli,
    settings: &Settings,
) -> Result<(Token, TokenSource), CliError> {
    const HOW: &str = "pass it with WEGENT_TOKEN=<token> (a login token or a wg- API key from the Wegent web UI), or sign in with `wegent-executor login --user NAME` to store one in the OS keychain";
    match lookup_token(cli, settings).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) if settings.keychain_enabled => Err(CliError::auth(format!("no token: {HOW}"))),
        Ok(None) => Err(CliError::auth(format!(
            "no token (the keychain is switched off by WEGENT_NO_KEYCHAIN): {HOW}"
        ))),
        Err(e) => Err(CliError::auth(format!(
            "no token in the environment, and the keychain could not be read: {e}"
        ))),
    }
}

async fn rest_client(cli: &Cli, settings: &Settings) -> Result<RestClient, CliError> {
    let backend = settings
        .require_backend()
        .map_err(CliError::config)?
        .to_owned();
    let (token, _) = require_token(cli, settings).await?;
    Ok(RestClient::new(&backend)?.with_token(token))
}
