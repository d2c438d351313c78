//! `wegent-executor stop <task>`: the tray's *Stop* for a device that runs elsewhere (a service,
//! another terminal, the tray itself), through files in its home, like the pause switch
//! (`crate::pause`): no control socket to secure, and nothing to run but the device.
//!
//! The CLI writes `<home>/stop-requests/<task id>`. A running device looks every
//! [`crate::pause::MARKER_POLL`], takes each request (removes it), stops the task if it runs or
//! waits there, and answers in `<task id>.reply`: [`Reply::Stopping`] or [`Reply::NotHere`]. The
//! CLI waits for the answer and removes it; no answer means no device runs with that home.

use std::io;
use std::path::{Path, PathBuf};

const DIR: &str = "stop-requests";
const REPLY: &str = "reply";

/// What the device answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The task ran or waited on the device; it is being stopped.
    Stopping,
    /// No such task runs or waits on the device.
    NotHere,
}

impl Reply {
    fn word(self) -> &'static str {
        match self {
            Reply::Stopping => "stopping",
            Reply::NotHere => "not-here",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "stopping" => Some(Reply::Stopping),
            "not-here" => Some(Reply::NotHere),
            _ => None,
        }
    }
}

fn dir(home: &Path) -> PathBuf {
    home.join(DIR)
}

fn reply_path(home: &Path, task_id: i64) -> PathBuf {
    dir(home).join(format!("{task_id}.{REPLY}"))
}

/// Ask the device in `home` to stop `task_id` (an earlier answer for it is dropped).
pub fn request(home: &Path, task_id: i64) -> io::Result<()> {
    std::fs::create_dir_all(dir(home))?;
    let _ = std::fs::remove_file(reply_path(home, task_id));
    std::fs::write(dir(home).join(task_id.to_string()), "stop\n")
}

/// Withdraw a request no device took.
pub fn withdraw(home: &Path, task_id: i64) {
    let _ = std::fs::remove_file(dir(home).join(task_id.to_string()));
}

/// The device's answer for `task_id`, if it answered (taken: read once).
pub fn take_reply(home: &Path, task_id: i64) -> Option<Reply> {
    let path = reply_path(home, task_id);
    let reply = Reply::parse(&std::fs::read_to_string(&path).ok()?);
    let _ = std::fs::remove_file(&path);
    reply
}

/// The device's side: take every waiting request (removed as taken), answering each with what
/// `stop` says (`stop(task_id)` stops the task and tells whether it ran or waited here).
pub fn serve(home: &Path, mut stop: impl FnMut(i64) -> Reply) {
    let Ok(entries) = std::fs::read_dir(dir(home)) else {
        return;
    };
    let requests: Vec<i64> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for task_id in requests {
        // Removed first: a request is served once even if answering fails.
        if std::fs::remove_file(dir(home).join(task_id.to_string())).is_err() {
            continue;
        }
        let reply = stop(task_id);
        tracing::info!(
            task_id,
            reply = reply.word(),
            "stop asked from the command line"
        );
        if let Err(e) = std::fs::write(reply_path(home, task_id), reply.word()) {
            tracing::warn!(task_id, error = %e, "could not answer a stop request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_served_once_and_answered() {
        let home = tempfile::tempdir().unwrap();
        request(home.path(), 7).unwrap();
        request(home.path(), 8).unwrap();
        assert_eq!(take_reply(home.path(), 7), None, "no answer yet");
        let mut asked = Vec::new();
        serve(home.path(), |id| {
            asked.push(id);
            if id == 7 {
                Reply::Stopping
            } else {
                Reply::NotHere
            }
        });
        asked.sort();
        assert_eq!(asked, [7, 8]);
        serve(home.path(), |id| panic!("{id} served twice"));
        assert_eq!(take_reply(home.path(), 7), Some(Reply::Stopping));
        assert_eq!(take_reply(home.path(), 8), Some(Reply::NotHere));
        assert_eq!(take_reply(home.path(), 7), None, "read once");
    }

    #[test]
    fn a_withdrawn_request_is_not_served_and_no_requests_is_fine() {
        let home = tempfile::tempdir().unwrap();
        serve(home.path(), |id| panic!("{id}: nothing was asked"));
        request(home.path(), 3).unwrap();
        withdraw(home.path(), 3);
        serve(home.path(), |id| panic!("{id} was withdrawn"));
    }
}
