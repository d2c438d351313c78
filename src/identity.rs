//! Who this device is: a stable `device_id` and a human-readable name.
//!
//! The id is read from `<home>/device_id` when present. On first run it is derived from the OS
//! machine id with an app-specific salt (so the raw machine id never leaves the machine, and two
//! cloned machines whose machine ids differ get different device ids), falling back to random
//! bytes, and persisted. `DEVICE_ID` overrides it without touching the file.
//!
//! The server keeps the device's identity by `device_id` (protocol.md §2, §4.5): two machines
//! sharing one id would steal each other's tasks, hence [`reset_device_id`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// File in the executor home that holds the persisted id (one line).
pub const DEVICE_ID_FILE: &str = "device_id";
/// The server accepts `device_id` and `name` of 1..=100 characters.
pub const MAX_ID_CHARS: usize = 100;
pub const MAX_NAME_CHARS: usize = 100;
/// Mixed into the machine id before hashing: the id is specific to this app, and the machine id
/// cannot be recovered from it.
const MACHINE_ID_SALT: &str = "wegent-device/device-id/v1";
/// Hex characters after `device-`, as the Wegent executor generates (protocol.md §11).
const ID_HEX_CHARS: usize = 24;

/// Where an id came from, for `status` output and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// The `DEVICE_ID` environment variable.
    Env,
    /// The persisted file in the executor home.
    File,
    /// Newly derived from the machine id and saved.
    MachineId,
    /// Newly generated at random and saved (no machine id available, or after a reset).
    Random,
}

impl IdSource {
    pub fn describe(self) -> &'static str {
        match self {
            IdSource::Env => "from DEVICE_ID",
            IdSource::File => "saved",
            IdSource::MachineId => "new, derived from the machine id",
            IdSource::Random => "new, random",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot find the home directory: set WEGENT_EXECUTOR_HOME to a writable folder")]
    NoHome,
    #[error("cannot create the executor home {path}: {source}; set WEGENT_EXECUTOR_HOME to a writable folder")]
    CreateHome { path: PathBuf, source: io::Error },
    #[error("cannot read the device id file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot save the device id to {path}: {source}; make the folder writable or set WEGENT_EXECUTOR_HOME to a writable folder")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "DEVICE_ID {0:?} is not usable: it must be 1 to 100 printable characters without spaces"
    )]
    BadOverride(String),
}

/// The device id and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    pub id: String,
    pub source: IdSource,
}

/// Resolve the device id: `env_override` (from `DEVICE_ID`), else `<home>/device_id`, else a new
/// id derived from the machine id (or random), saved to that file.
pub fn device_id(home: &Path, env_override: Option<&str>) -> Result<DeviceId, IdentityError> {
    if let Some(raw) = env_override.map(str::trim).filter(|s| !s.is_empty()) {
        return if is_valid_id(raw) {
            Ok(DeviceId {
                id: raw.to_owned(),
                source: IdSource::Env,
            })
        } else {
            Err(IdentityError::BadOverride(raw.to_owned()))
        };
    }
    ensure_home(home)?;
    let path = home.join(DEVICE_ID_FILE);
    if let Some(saved) = read_saved_id(&path)? {
        return Ok(DeviceId {
            id: saved,
            source: IdSource::File,
        });
    }
    let (id, source) = match machine_uid::get() {
        Ok(uid) if !uid.trim().is_empty() => (id_from_machine_uid(uid.trim()), IdSource::MachineId),
        _ => (random_id(), IdSource::Random),
    };
    save_id(home, &id)?;
    tracing::info!(device_id = %id, source = source.describe(), "device id created");
    Ok(DeviceId { id, source })
}

/// Replace the saved id with a new random one (random, because deriving again from the machine
/// id would give the same id back). Returns the new id.
pub fn reset_device_id(home: &Path) -> Result<String, IdentityError> {
    let id = random_id();
    save_id(home, &id)?;
    tracing::info!(device_id = %id, "device id reset");
    Ok(id)
}

/// `device-` + the first 24 hex characters of SHA-256(salt ‖ machine id).
pub fn id_from_machine_uid(machine_uid: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(MACHINE_ID_SALT.as_bytes());
    hasher.update([0u8]);
    hasher.update(machine_uid.as_bytes());
    format!("device-{}", &hex(&hasher.finalize())[..ID_HEX_CHARS])
}

/// `device-` + 24 random hex characters.
pub fn random_id() -> String {
    let bytes: [u8; ID_HEX_CHARS / 2] = rand::random();
    format!("device-{}", hex(&bytes))
}

/// The server's limits: 1..=100 characters; we also refuse whitespace and control characters,
/// which would make the id unreadable in lists and logs.
pub fn is_valid_id(id: &str) -> bool {
    let n = id.chars().count();
    (1..=MAX_ID_CHARS).contains(&n) && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The name shown in the Wegent UI: `DEVICE_NAME` (or the config file's `device_name`) when set,
/// else `"{OS} - {hostname}"`, clamped to the server's 1..=100 characters.
pub fn device_name(configured: Option<&str>) -> String {
    let fallback = || default_device_name(os_label(), &hostname());
    match configured.map(clamp_name) {
        Some(name) if !name.is_empty() => name,
        _ => clamp_name(&fallback()),
    }
}

/// `"Linux - build-box"`.
pub fn default_device_name(os: &str, hostname: &str) -> String {
    let host = hostname.trim();
    if host.is_empty() {
        format!("{os} device")
    } else {
        format!("{os} - {host}")
    }
}

/// Collapse control characters and surrounding blanks, then cut to 100 characters (by character,
/// never inside a UTF-8 sequence).
pub fn clamp_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// The OS as users name it.
pub fn os_label() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macOS",
        "linux" => "Linux",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        _ => "Unknown OS",
    }
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn read_saved_id(path: &Path) -> Result<Option<String>, IdentityError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let id = text.trim();
            if is_valid_id(id) {
                Ok(Some(id.to_owned()))
            } else {
                // A damaged file: make a new id rather than refuse to start. The derived id is
                // deterministic, so this usually restores the old one.
                tracing::warn!(path = %path.display(), "device id file is empty or damaged; creating a new id");
                Ok(None)
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Write via a temporary file and rename, so a crash never leaves a half-written id.
fn save_id(home: &Path, id: &str) -> Result<(), IdentityError> {
    ensure_home(home)?;
    let path = home.join(DEVICE_ID_FILE);
    let tmp = home.join(format!(".{DEVICE_ID_FILE}.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{id}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        IdentityError::Write { path, source }
    })
}

fn ensure_home(home: &Path) -> Result<(), IdentityError> {
    std::fs::create_dir_all(home).map_err(|source| IdentityError::CreateHome {
        path: home.to_owned(),
        source,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_is_salted_hashed_and_shaped_like_the_executors() {
        let a = id_from_machine_uid("4c4c4544-0042-3510-8052-b4c04f4e4d32");
        let b = id_from_machine_uid("4c4c4544-0042-3510-8052-b4c04f4e4d33");
        assert_ne!(a, b, "cloned machines with different machine ids differ");
        assert_eq!(
            a,
            id_from_machine_uid("4c4c4544-0042-3510-8052-b4c04f4e4d32")
        );
        assert!(a.starts_with("device-"));
        assert_eq!(a.len(), "device-".len() + 24);
        assert!(!a.contains("4c4c4544"), "the raw machine id never shows");
        // Salted: not the plain SHA-256 of the machine id.
        let plain = hex(&Sha256::digest(b"4c4c4544-0042-3510-8052-b4c04f4e4d32"));
        assert!(!plain.starts_with(&a["device-".len()..]));
    }

    #[test]
    fn saved_id_wins_then_env_overrides() {
        let home = tempfile::tempdir().unwrap();
        let first = device_id(home.path(), None).unwrap();
        assert!(matches!(
            first.source,
            IdSource::MachineId | IdSource::Random
        ));
        let again = device_id(home.path(), None).unwrap();
        assert_eq!(again.id, first.id);
        assert_eq!(again.source, IdSource::File);
        let env = device_id(home.path(), Some(" my-box ")).unwrap();
        assert_eq!(env.id, "my-box");
        assert_eq!(env.source, IdSource::Env);
        assert!(matches!(
            device_id(home.path(), Some("has space")),
            Err(IdentityError::BadOverride(_))
        ));
    }

    #[test]
    fn creates_the_home_and_reset_gives_a_new_persisted_id() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("nested/home");
        let first = device_id(&home, None).unwrap();
        let reset = reset_device_id(&home).unwrap();
        assert_ne!(reset, first.id);
        assert_eq!(device_id(&home, None).unwrap().id, reset);
    }

    #[test]
    fn damaged_file_is_replaced() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(DEVICE_ID_FILE), "  \n").unwrap();
        let id = device_id(home.path(), None).unwrap();
        assert!(is_valid_id(&id.id));
        assert_ne!(id.source, IdSource::File);
    }

    #[test]
    fn unusable_home_is_a_clear_error() {
        // A path under a regular file cannot be created, even by root.
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("file"), "x").unwrap();
        let err = device_id(&root.path().join("file/home"), None).unwrap_err();
        assert!(matches!(err, IdentityError::CreateHome { .. }), "{err:?}");
        assert!(err.to_string().contains("WEGENT_EXECUTOR_HOME"), "{err}");
    }

    #[test]
    fn names_default_to_os_and_host_and_are_clamped() {
        assert_eq!(
            default_device_name("Linux", "build-box"),
            "Linux - build-box"
        );
        assert_eq!(default_device_name("macOS", " "), "macOS device");
        assert_eq!(device_name(Some("  My laptop \n")), "My laptop");
        let long = "é".repeat(150);
        assert_eq!(device_name(Some(&long)).chars().count(), 100);
        let fallback = device_name(Some("   "));
        assert!(fallback.starts_with(os_label()), "{fallback}");
        assert!((1..=100).contains(&fallback.chars().count()));
        assert_eq!(clamp_name("a\tb"), "a b");
    }
}
