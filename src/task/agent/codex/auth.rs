//! The user's own Codex login, `~/.codex/auth.json` (codex-cli.md §A.7).
//!
//! A Codex model without a `base_url` (Wegent's runtime-only `codex-gpt-5.5`) means "use the
//! user's own Codex login". The backend copies the user's uploaded `auth.json` to the device
//! when the heartbeat's `runtime_auth_files.codex.exists` is `false`, always to
//! `~/.codex/auth.json` of the device's user (it ignores `CODEX_HOME`): so that file is what the
//! heartbeat reports, and what a task's private `CODEX_HOME` links to.

use std::path::{Path, PathBuf};

/// `~/.codex/auth.json`.
pub fn user_auth_file(user_home: &Path) -> PathBuf {
    user_home.join(".codex").join("auth.json")
}

/// `runtime_auth_files.codex` of the heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFileState {
    pub target_path: PathBuf,
    pub exists: bool,
}

/// The state of the user's Codex auth file now (`None`: no home directory to look in).
pub fn auth_file_state(user_home: Option<&Path>) -> Option<AuthFileState> {
    let target_path = user_auth_file(user_home?);
    let exists = target_path.is_file();
    Some(AuthFileState {
        target_path,
        exists,
    })
}

/// Make the user's login visible in a task's `CODEX_HOME` (a link: a later `codex login` or a
/// pushed file is seen without copying a credential around).
pub fn link_into(codex_home: &Path, auth_file: &Path) -> std::io::Result<()> {
    let link = codex_home.join("auth.json");
    if std::fs::read_link(&link).is_ok_and(|target| target == auth_file) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    return std::os::unix::fs::symlink(auth_file, &link);
    #[cfg(not(unix))]
    return std::fs::copy(auth_file, &link).map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_file_is_the_one_the_backend_writes_and_its_state_is_true() {
        let home = tempfile::tempdir().unwrap();
        let state = auth_file_state(Some(home.path())).unwrap();
        assert_eq!(state.target_path, home.path().join(".codex/auth.json"));
        assert!(!state.exists);
        std::fs::create_dir_all(home.path().join(".codex")).unwrap();
        std::fs::write(&state.target_path, "{}").unwrap();
        assert!(auth_file_state(Some(home.path())).unwrap().exists);
        assert_eq!(auth_file_state(None), None);
    }

    #[test]
    fn a_task_home_links_to_the_users_login() {
        let home = tempfile::tempdir().unwrap();
        let auth = home.path().join("auth.json");
        std::fs::write(&auth, r#"{"auth_mode":"apikey"}"#).unwrap();
        let codex_home = home.path().join("codex");
        std::fs::create_dir(&codex_home).unwrap();
        link_into(&codex_home, &auth).unwrap();
        link_into(&codex_home, &auth).unwrap();
        assert_eq!(
            std::fs::read_to_string(codex_home.join("auth.json")).unwrap(),
            r#"{"auth_mode":"apikey"}"#
        );
    }
}
