//! The task manager as the session sees it ([`TaskPort`]).

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::watch;

use super::TaskManager;
use crate::session::TaskPort;
use crate::status::Slots;
use crate::task::agent::codex::auth::{auth_file_state, AuthFileState};

/// What the heartbeat says of the user's Codex login file. The backend copies a missing one over
/// `device:execute_command`; with remote commands off that copy cannot land, so the device says
/// nothing rather than have the backend try again at every heartbeat.
fn codex_auth_report(remote_commands: bool, state: Option<AuthFileState>) -> Option<AuthFileState> {
    state.filter(|_| remote_commands)
}

impl TaskPort for TaskManager {
    fn execute(&self, payload: Value) {
        TaskManager::execute(self, payload);
    }

    fn cancel(&self, payload: &Value) {
        TaskManager::cancel(self, payload);
    }

    fn stop_task(&self, task_id: i64) {
        TaskManager::stop_task(self, task_id);
    }

    fn close_session(&self, payload: &Value) {
        TaskManager::close_session(self, payload);
    }

    fn execute_command(&self, payload: Value) -> Pin<Box<dyn Future<Output = Value> + Send>> {
        let manager = self.clone();
        Box::pin(async move { manager.execute_command(payload).await })
    }

    fn slots(&self) -> watch::Receiver<Slots> {
        TaskManager::slots(self)
    }

    fn codex_auth_file(&self) -> Option<AuthFileState> {
        let ctx = &self.inner.ctx;
        codex_auth_report(
            ctx.config.allow_remote_commands,
            auth_file_state(ctx.user_home.as_deref()),
        )
    }

    fn set_paused(&self, paused: bool) {
        TaskManager::set_paused(self, paused);
    }

    fn drain(&self) {
        TaskManager::drain(self);
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let manager = self.clone();
        Box::pin(async move { manager.shutdown().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codex_login_file_is_reported_only_where_the_backend_can_copy_it() {
        let state = AuthFileState {
            target_path: "/home/u/.codex/auth.json".into(),
            exists: false,
        };
        assert_eq!(
            codex_auth_report(true, Some(state.clone())),
            Some(state.clone())
        );
        assert_eq!(codex_auth_report(false, Some(state)), None);
        assert_eq!(codex_auth_report(true, None), None);
    }
}
