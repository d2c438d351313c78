//! The task manager's folder housekeeping: a closed task's folders, and the retention sweep.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::TaskManager;
use crate::task::cleanup;

/// How often expired tasks' folders are looked for (one small file read per task).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);

impl TaskManager {
    /// Remove a closed task's private state and the scratch dir the device made for it, off
    /// the runtime's threads.
    pub(super) fn remove_task_dirs(&self, task_id: i64) {
        let home = self.inner.ctx.home.clone();
        let root = self.workspace_root();
        tokio::task::spawn_blocking(move || match cleanup::remove_task(&home, &root, task_id) {
            Ok(removed) => {
                tracing::info!(task_id, private = removed.private, scratch = ?removed.scratch, "closed task's folders removed")
            }
            Err(e) => {
                tracing::warn!(task_id, error = %e, "could not remove a closed task's folders")
            }
        });
    }

    fn workspace_root(&self) -> PathBuf {
        let ctx = &self.inner.ctx;
        crate::config::workspace_root(&ctx.config.projects_dir(&ctx.home))
    }

    /// Remove the folders of tasks unused for `task_retention`, now and every
    /// [`SWEEP_INTERVAL`], while the manager lives. Needs a tokio runtime.
    pub fn start_retention_sweeper(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let manager = TaskManager { inner };
                let active: HashSet<i64> = {
                    let state = manager.inner.lock();
                    let running = state.running.iter().map(|r| r.info.task_id);
                    running
                        .chain(state.queue.iter().map(|q| q.req.task_id))
                        .collect()
                };
                let (home, root) = (manager.inner.ctx.home.clone(), manager.workspace_root());
                let retention = manager.inner.ctx.config.task_retention;
                drop(manager);
                let removed = tokio::task::spawn_blocking(move || {
                    cleanup::sweep(&home, &root, retention, SystemTime::now(), &active)
                })
                .await
                .unwrap_or_default();
                if !removed.is_empty() {
                    tracing::info!(tasks = ?removed, "removed the folders of tasks unused for the retention period");
                }
                tokio::time::sleep(SWEEP_INTERVAL).await;
            }
        });
    }
}
