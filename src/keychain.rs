//! The device token in the OS keychain: macOS Keychain, Windows Credential Manager, or the
//! freedesktop Secret Service (gnome-keyring, KWallet, KeePassXC) on Linux.
//!
//! One item: service [`SERVICE`], account [`ACCOUNT`]. Every call runs on its own thread with a
//! timeout, because a locked Secret Service can wait forever for a password prompt that no one
//! will ever see (desktop-ci.md §6). Failures become [`KeychainError`]s that say what to do.
//! There is deliberately no plaintext fallback: without a keychain the user passes the token via
//! `WEGENT_TOKEN`.

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use crate::token::Token;

/// Keychain service name of the device token (shared by the tray app and the CLI).
pub const SERVICE: &str = "wegent-device";
/// Keychain account name of the device token.
pub const ACCOUNT: &str = "device-token";
/// Long enough for a user to answer an unlock prompt; short enough that a prompt nobody can see
/// does not hang the app.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the device token is kept. Implementations may block (up to their timeout); from async
/// code call them through `tokio::task::spawn_blocking`.
pub trait SecretStore: Send + Sync {
    /// The stored token, `None` when nothing is stored.
    fn get(&self) -> Result<Option<Token>, KeychainError>;
    /// Store (or replace) the token.
    fn set(&self, token: &Token) -> Result<(), KeychainError>;
    /// Remove the token; succeeds when nothing was stored.
    fn delete(&self) -> Result<(), KeychainError>;
}

/// Why the keychain could not be used, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeychainError {
    #[error("No keychain service is running: install and start gnome-keyring (or KeePassXC's Secret Service), or pass the token with WEGENT_TOKEN ({0})")]
    NoService(String),
    #[error("The keychain is locked or refused access: unlock it (log in to your desktop session or unlock the login keyring) and try again, or pass the token with WEGENT_TOKEN ({0})")]
    Locked(String),
    #[error("The keychain did not answer within {} s: it is probably locked and waiting for a password prompt that cannot be shown. Unlock your login keyring, or pass the token with WEGENT_TOKEN", .0.as_secs())]
    TimedOut(Duration),
    #[error("The keychain entry {SERVICE}/{ACCOUNT} is not readable text; remove it with `wegent-executor logout` and sign in again")]
    BadEntry,
    #[error("The keychain failed: {0}")]
    Platform(String),
}

/// The real OS keychain.
#[derive(Debug, Clone)]
pub struct OsKeychain {
    service: String,
    account: String,
    timeout: Duration,
}

impl Default for OsKeychain {
    fn default() -> Self {
        Self::new()
    }
}

impl OsKeychain {
    /// The device token item ([`SERVICE`]/[`ACCOUNT`]) with [`DEFAULT_TIMEOUT`].
    pub fn new() -> Self {
        Self::for_account(SERVICE, ACCOUNT)
    }

    /// Another item; tests use this so they never touch a real user's token.
    pub fn for_account(service: &str, account: &str) -> Self {
        Self {
            service: service.to_owned(),
            account: account.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Run `op` against the entry off-thread. The outer error is the timeout; the inner result
    /// is the keyring's own, so callers can treat `NoEntry` as "nothing stored".
    fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, KeychainError> {
        let (service, account) = (self.service.clone(), self.account.clone());
        with_timeout(self.timeout, move || {
            let entry = keyring::Entry::new(&service, &account)?;
            op(&entry)
        })
    }
}

impl SecretStore for OsKeychain {
    fn get(&self) -> Result<Option<Token>, KeychainError> {
        match self.call(|e| e.get_password())? {
            Ok(secret) => Ok(Some(Token::new(&secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    fn set(&self, token: &Token) -> Result<(), KeychainError> {
        let secret = token.expose().to_owned();
        self.call(move |e| e.set_password(&secret))?
            .map_err(map_error)
    }

    fn delete(&self) -> Result<(), KeychainError> {
        match self.call(|e| e.delete_credential())? {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }
}

/// Run `op` on its own thread; give up after `timeout`. The thread of a timed-out call is left to
/// finish (or hang) on its own: there is no way to cancel a blocked D-Bus call.
pub fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    op: impl FnOnce() -> T + Send + 'static,
) -> Result<T, KeychainError> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let _ = tx.send(op());
        })
        .map_err(|e| KeychainError::Platform(format!("cannot start a thread: {e}")))?;
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => KeychainError::TimedOut(timeout),
        mpsc::RecvTimeoutError::Disconnected => {
            KeychainError::Platform("the keychain call panicked".into())
        }
    })
}

/// Turn a keyring error into advice. The D-Bus texts are matched because the keyring crate
/// reports every D-Bus problem as an opaque `PlatformFailure`.
pub fn map_error(err: keyring::Error) -> KeychainError {
    match err {
        keyring::Error::NoEntry => KeychainError::Platform("no such keychain entry".into()),
        keyring::Error::NoStorageAccess(e) => KeychainError::Locked(e.to_string()),
        keyring::Error::BadEncoding(_) => KeychainError::BadEntry,
        keyring::Error::PlatformFailure(e) => classify_platform_failure(&e.to_string()),
        other => KeychainError::Platform(other.to_string()),
    }
}

/// Pure part of [`map_error`], unit-tested on the messages observed in desktop-ci.md §6.
pub fn classify_platform_failure(text: &str) -> KeychainError {
    const NO_SERVICE_HINTS: [&str; 6] = [
        "ServiceUnknown",
        "org.freedesktop.secrets",
        "Unable to autolaunch",
        "DBUS_SESSION_BUS_ADDRESS",
        "Failed to connect to socket",
        "NoServer",
    ];
    const LOCKED_HINTS: [&str; 3] = ["locked", "IsLocked", "Prompt dismissed"];
    if NO_SERVICE_HINTS.iter().any(|h| text.contains(h)) {
        KeychainError::NoService(text.to_owned())
    } else if LOCKED_HINTS.iter().any(|h| text.contains(h)) {
        KeychainError::Locked(text.to_owned())
    } else {
        KeychainError::Platform(text.to_owned())
    }
}

/// Reads the keychain once and answers later `get`s from memory (design-notes: no repeated
/// macOS keychain prompts). Writes go through and update the cache; failures are not cached.
#[derive(Debug)]
pub struct CachedStore<S> {
    inner: S,
    cache: Mutex<Option<Option<Token>>>,
}

impl<S: SecretStore> CachedStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            cache: Mutex::new(None),
        }
    }

    fn remember(&self, value: Option<Token>) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }
}

impl<S: SecretStore> SecretStore for CachedStore<S> {
    fn get(&self) -> Result<Option<Token>, KeychainError> {
        if let Some(cached) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(cached.clone());
        }
        let value = self.inner.get()?;
        self.remember(value.clone());
        Ok(value)
    }

    fn set(&self, token: &Token) -> Result<(), KeychainError> {
        self.inner.set(token)?;
        self.remember(Some(token.clone()));
        Ok(())
    }

    fn delete(&self) -> Result<(), KeychainError> {
        self.inner.delete()?;
        self.remember(None);
        Ok(())
    }
}

/// A store in memory, for tests of code that uses a [`SecretStore`]. It can be told to fail.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    token: Mutex<Option<Token>>,
    failure: Mutex<Option<KeychainError>>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_token(token: Token) -> Self {
        let store = Self::new();
        *store.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        store
    }

    /// Make every later call fail with `error` (`None`: work again).
    pub fn fail_with(&self, error: Option<KeychainError>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    fn check(&self) -> Result<(), KeychainError> {
        match &*self.failure.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl SecretStore for InMemoryStore {
    fn get(&self) -> Result<Option<Token>, KeychainError> {
        self.check()?;
        Ok(self.token.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn set(&self, token: &Token) -> Result<(), KeychainError> {
        self.check()?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(())
    }

    fn delete(&self) -> Result<(), KeychainError> {
        self.check()?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbus_failures_become_advice() {
        let none = classify_platform_failure(
            "D-Bus error: The name org.freedesktop.secrets was not provided by any .service files (org.freedesktop.DBus.Error.ServiceUnknown)",
        );
        assert!(matches!(none, KeychainError::NoService(_)));
        assert!(none.to_string().contains("gnome-keyring"));
        assert!(none.to_string().contains("WEGENT_TOKEN"));
        let no_bus = classify_platform_failure(
            "Unable to autolaunch a dbus-daemon without a $DISPLAY for X11",
        );
        assert!(matches!(no_bus, KeychainError::NoService(_)));
        assert!(matches!(
            classify_platform_failure("collection is locked"),
            KeychainError::Locked(_)
        ));
        assert!(matches!(
            classify_platform_failure("disk full"),
            KeychainError::Platform(_)
        ));
        assert!(matches!(
            map_error(keyring::Error::BadEncoding(vec![0xff])),
            KeychainError::BadEntry
        ));
    }

    #[test]
    fn a_hanging_call_times_out_with_advice() {
        let started = std::time::Instant::now();
        let err = with_timeout(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(5));
        })
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err, KeychainError::TimedOut(Duration::from_millis(50)));
        assert!(err.to_string().contains("locked"), "{err}");
        assert_eq!(with_timeout(Duration::from_secs(5), || 7).unwrap(), 7);
    }

    #[test]
    fn cached_store_reads_once_and_writes_through() {
        let cached = CachedStore::new(InMemoryStore::with_token(Token::new("wg-cached-one")));
        assert_eq!(cached.get().unwrap().unwrap().expose(), "wg-cached-one");
        // The backing store now fails: answers still come from memory.
        cached
            .inner
            .fail_with(Some(KeychainError::TimedOut(Duration::from_secs(1))));
        assert_eq!(cached.get().unwrap().unwrap().expose(), "wg-cached-one");
        assert!(cached.set(&Token::new("wg-cached-two")).is_err());
        assert_eq!(cached.get().unwrap().unwrap().expose(), "wg-cached-one");
        cached.inner.fail_with(None);
        cached.set(&Token::new("wg-cached-two")).unwrap();
        assert_eq!(
            cached.inner.get().unwrap().unwrap().expose(),
            "wg-cached-two"
        );
        cached.delete().unwrap();
        assert_eq!(cached.get().unwrap(), None);
    }

    #[test]
    fn in_memory_store_round_trips_and_fails_on_demand() {
        let store = InMemoryStore::new();
        assert_eq!(store.get().unwrap(), None);
        store.set(&Token::new("wg-memory-token")).unwrap();
        assert_eq!(store.get().unwrap().unwrap().expose(), "wg-memory-token");
        store.fail_with(Some(KeychainError::TimedOut(Duration::from_secs(1))));
        assert!(store.get().is_err());
        store.fail_with(None);
        store.delete().unwrap();
        store.delete().unwrap();
        assert_eq!(store.get().unwrap(), None);
    }
}
