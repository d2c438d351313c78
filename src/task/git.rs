//! The git step of a task's directory (protocol.md §16.4).
//!
//! STUB, to be replaced by helper `projects-git` (clone into a missing or empty directory,
//! reuse an existing repository, refuse a non-empty non-repository, time limit, cancel). Until
//! then it only makes the directory exist, which is what the device did before projects.
//! The signature is the agreed boundary with [`super::workdir::prepare`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::runner::StopSignal;
use super::workdir::{GitIdentity, GitSource};

/// Why the checkout could not be prepared; the message is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("Could not create the git workspace {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub async fn prepare_checkout(
    dir: &Path,
    source: &GitSource,
    identity: Option<&GitIdentity>,
    timeout: Duration,
    stop: &mut StopSignal,
) -> Result<(), GitError> {
    let _ = (source, identity, timeout, stop);
    tracing::warn!("git checkout not implemented yet; the task runs in an empty folder");
    std::fs::create_dir_all(dir).map_err(|source| GitError::CreateDir {
        path: dir.to_owned(),
        source,
    })
}
