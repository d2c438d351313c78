//! The task queue and slots: admission, cancel, close, shutdown.
//!
//! Never blocks on the network: every event goes to the outbox, which the session drains when it
//! is online. All state sits behind one mutex, held only for bookkeeping (never across `.await`).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{broadcast, watch, Notify};

use super::emitter::Emitter;
use super::events::{self, Turn};
use super::extras::TaskExtras;
use super::failure::TaskFailure;
use super::payload::{self, id_field, TaskRequest};
use super::runner::{self, RunContext};
use super::workdir::{WorkDir, WorkDirError};
use super::{command_rpc, slots, workspace};
use crate::config::TaskConfig;
use crate::outbox::Outbox;
use crate::redact::{hold_secrets, SecretHold};
use crate::status::{DeviceEvent, QueuedTask, RunningTask, Slots};

const CANCELLED: &str = "Task cancelled";
/// Why a task stopped when the user stopped it on the device (tray, CLI): the server shows it.
pub const STOPPED_BY_USER: &str = "Stopped on this device by its user";
const SESSION_CLOSED: &str = "Task session closed";
const SHUTTING_DOWN: &str = "The device is shutting down";
const SUPERSEDED: &str = "Stopped: a newer message arrived in this task";
/// Finished subtasks remembered, so a late cancel is not answered with a second terminal event.
const FINISHED_MEMORY: usize = 512;

mod folders;
mod port;

#[derive(Clone)]
pub struct TaskManager {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: RunContext,
    outbox: Outbox,
    events: broadcast::Sender<DeviceEvent>,
    slots: watch::Sender<Slots>,
    state: Mutex<State>,
    /// Signalled whenever a running turn ends (shutdown waits on it).
    idle: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    /// Keyed by subtask id, in start order for the slots view.
    running: Vec<Running>,
    finished: VecDeque<i64>,
    shutting_down: bool,
    /// The user paused new tasks: new ones are refused, running and queued ones go on.
    paused: bool,
    /// Tasks closed by the server whose folders go once their last turn has stopped.
    closing: HashSet<i64>,
}

struct Running {
    info: RunningTask,
    stop: watch::Sender<Option<String>>,
    _secrets: SecretHold,
}

/// A turn waiting for a slot, with its claim on its secrets (released when it ends, however).
struct Queued {
    req: TaskRequest,
    secrets: SecretHold,
}

impl TaskManager {
    pub fn new(
        config: TaskConfig,
        home: PathBuf,
        backend_url: String,
        outbox: Outbox,
        events: broadcast::Sender<DeviceEvent>,
    ) -> Self {
        let max = config
            .max_slots
            .clamp(crate::config::MIN_SLOTS, crate::config::MAX_SLOTS);
        let (slots, _) = watch::channel(Slots {
            max,
            running: Vec::new(),
            queued: 0,
            waiting: Vec::new(),
            max_queued: config.max_queued,
        });
        Self {
            inner: Arc::new(Inner {
                ctx: RunContext::new(config, home, backend_url),
                outbox,
                events,
                slots,
                state: Mutex::new(State::default()),
                idle: Notify::new(),
            }),
        }
    }

    /// `task:execute` (no ack). Must be called inside a tokio runtime.
    pub fn execute(&self, payload: Value) {
        let mut req = match payload::parse(&payload) {
            Ok(req) => req,
            Err(e) => {
                // No ids: nothing can be sent back for it. Say so where a developer looks.
                tracing::error!(error = %e, "ignoring a task the server sent without ids");
                return;
            }
        };
        let ctx = &self.inner.ctx;
        req.extras =
            TaskExtras::from_payload(&payload, &ctx.backend_url, ctx.config.allow_stdio_mcp);
        drop(payload);
        // Before anything can log about the task (nothing before this point logs the payload).
        let mut task_secrets = req.secrets.clone();
        task_secrets.extend(req.extras.secrets());
        let secrets = hold_secrets(&task_secrets, ctx.config.secret_forget_delay);
        let mut state = self.inner.lock();
        let known = state
            .running
            .iter()
            .any(|r| r.info.subtask_id == req.subtask_id)
            || state
                .queue
                .iter()
                .any(|q| q.req.subtask_id == req.subtask_id);
        if known && !state.shutting_down {
            tracing::warn!(
                task_id = req.task_id,
                subtask_id = req.subtask_id,
                "duplicate task:execute ignored"
            );
            return;
        }
        let max_queued = self.inner.ctx.config.max_queued;
        // The task's own queued turns make way for this one (below), so they do not count.
        let waiting_others = state
            .queue
            .iter()
            .filter(|q| q.req.task_id != req.task_id)
            .count();
        // Why the task ends at once without running.
        let refusal = if state.shutting_down {
            Some(TaskFailure::ShuttingDown)
        } else if state.paused {
            Some(TaskFailure::Paused)
        } else if let Some(refusal) = req.refusal.clone() {
            Some(TaskFailure::InvalidTask(refusal))
        } else if waiting_others >= max_queued {
            Some(TaskFailure::QueueFull {
                waiting: waiting_others,
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(state);
            tracing::warn!(
                task_id = req.task_id,
                subtask_id = req.subtask_id,
                code = refusal.code(),
                "task refused"
            );
            self.emitter_for(&req).emit(refusal.event());
            return;
        }
        // A newer message of a task replaces its older turns (as Wegent's executor does): the
        // running one is stopped, and starts the new one when its slot frees (the slot policy
        // keeps one turn per task); a queued one never starts.
        let superseded = self.supersede(&mut state, req.task_id);
        tracing::info!(
            task_id = req.task_id,
            subtask_id = req.subtask_id,
            "task queued"
        );
        state.queue.push_back(Queued { req, secrets });
        self.pump(&mut state);
        drop(state);
        for old in &superseded {
            self.emitter_for(old)
                .emit(self.turn_for(old).incomplete("", SUPERSEDED));
        }
    }

    /// Stop the running turns of `task_id` and take its queued ones out; returns those.
    fn supersede(&self, state: &mut State, task_id: i64) -> Vec<TaskRequest> {
        for running in state.running.iter().filter(|r| r.info.task_id == task_id) {
            tracing::info!(
                task_id,
                subtask_id = running.info.subtask_id,
                "a newer message arrived; stopping the running turn"
            );
            running.stop.send_replace(Some(SUPERSEDED.to_owned()));
        }
        let (dropped, kept): (Vec<_>, Vec<_>) = state
            .queue
            .drain(..)
            .partition(|q| q.req.task_id == task_id);
        state.queue = kept.into();
        dropped.into_iter().map(|q| q.req).collect()
    }

    /// `task:cancel` `{task_id, subtask_id}` (subtask optional: then every turn of the task).
    pub fn cancel(&self, payload: &Value) {
        self.stop_requested(payload, CANCELLED, false);
    }

    /// `task:close-session` `{task_id}`: the task was deleted.
    pub fn close_session(&self, payload: &Value) {
        self.stop_requested(payload, SESSION_CLOSED, true);
    }

    /// The user stopped `task_id` on this device: its running turn and queued turns end with
    /// [`STOPPED_BY_USER`].
    pub fn stop_task(&self, task_id: i64) {
        tracing::info!(task_id, "stop requested on this device");
        self.stop_matching(task_id, None, STOPPED_BY_USER, false);
    }

    pub async fn execute_command(&self, payload: Value) -> Value {
        let ctx = &self.inner.ctx;
        let projects_dir = ctx.config.projects_dir(&ctx.home);
        command_rpc::execute(ctx.config.allow_remote_commands, &projects_dir, payload).await
    }

    pub fn slots(&self) -> watch::Receiver<Slots> {
        self.inner.slots.subscribe()
    }

    /// Pause or resume new tasks; running and queued ones are not touched.
    pub fn set_paused(&self, paused: bool) {
        self.inner.lock().paused = paused;
        tracing::info!(
            paused,
            "new tasks {}",
            if paused { "paused" } else { "resumed" }
        );
    }

    /// Cancel everything; when this returns every task's terminal event is in the outbox.
    pub async fn shutdown(&self) {
        self.drain();
        for running in &self.inner.lock().running {
            running.stop.send_replace(Some(SHUTTING_DOWN.to_owned()));
        }
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.lock().running.is_empty() {
                return;
            }
            idle.await;
        }
    }

    /// Stop taking tasks (the start of a drain, or of a shutdown): a new one is refused from now
    /// on, the queued ones end now (they have not started: the user sends them again), the
    /// running ones go on.
    pub fn drain(&self) {
        let queued: Vec<Queued> = {
            let mut state = self.inner.lock();
            state.shutting_down = true;
            let queued = state.queue.drain(..).collect();
            self.publish(&state);
            queued
        };
        for Queued { req, .. } in queued {
            self.emitter_for(&req)
                .emit(self.turn_for(&req).incomplete("", SHUTTING_DOWN));
        }
    }

    /// A stop the server asked for (`{task_id, subtask_id?}`).
    fn stop_requested(&self, payload: &Value, message: &str, forget_session: bool) {
        let Some(task_id) = id_field(payload, "task_id") else {
            tracing::warn!("cancel without a task_id ignored");
            return;
        };
        let subtask_id = id_field(payload, "subtask_id");
        self.stop_matching(task_id, subtask_id, message, forget_session);
    }

    /// Stop the turns of `task_id` (only `subtask_id`'s, if given), running or queued.
    fn stop_matching(
        &self,
        task_id: i64,
        subtask_id: Option<i64>,
        message: &str,
        forget_session: bool,
    ) {
        let matches = |t: i64, s: i64| t == task_id && subtask_id.is_none_or(|id| id == s);
        let (dropped, stopped, finished) = {
            let mut state = self.inner.lock();
            let (dropped, kept): (Vec<_>, Vec<_>) = state
                .queue
                .drain(..)
                .partition(|q| matches(q.req.task_id, q.req.subtask_id));
            state.queue = kept.into();
            let mut stopped = 0;
            for r in state
                .running
                .iter()
                .filter(|r| matches(r.info.task_id, r.info.subtask_id))
            {
                r.stop.send_replace(Some(message.to_owned()));
                stopped += 1;
            }
            let finished = subtask_id.is_some_and(|s| state.finished.contains(&s));
            self.publish(&state);
            (dropped, stopped, finished)
        };
        tracing::info!(
            task_id,
            queued = dropped.len(),
            running = stopped,
            "stopping task"
        );
        for Queued { req, .. } in &dropped {
            self.emitter_for(req)
                .emit(self.turn_for(req).incomplete("", message));
        }
        if let (Some(subtask_id), 0, 0, false) = (subtask_id, dropped.len(), stopped, finished) {
            // The server waits for our `response.incomplete` to settle a cancel, also for a turn
            // this device never saw (sent while it was offline, or lost in a restart).
            let turn = Turn {
                task_id,
                subtask_id,
                message_id: None,
                model: String::new(),
                created_at: now_secs(),
            };
            self.inner.outbox.push(
                events::INCOMPLETE,
                turn.envelope(turn.incomplete("", message)),
            );
        }
        if forget_session {
            workspace::forget_sessions(&workspace::private_dir(&self.inner.ctx.home, task_id));
            let mut state = self.inner.lock();
            if state.running.iter().any(|r| r.info.task_id == task_id) {
                // Removed when its last turn ends (`finish`): the CLI still has files open.
                state.closing.insert(task_id);
            } else {
                drop(state);
                self.remove_task_dirs(task_id);
            }
        }
    }

    /// Start queued turns while slots are free.
    fn pump(&self, state: &mut State) {
        let max = usize::from(self.inner.slots.borrow().max);
        loop {
            let running_ids: Vec<i64> = state.running.iter().map(|r| r.info.task_id).collect();
            let queued_ids: Vec<i64> = state.queue.iter().map(|q| q.req.task_id).collect();
            let Some(index) = slots::next_to_start(max, &running_ids, &queued_ids) else {
                break;
            };
            let Some(Queued { req, secrets }) = state.queue.remove(index) else {
                break;
            };
            let (stop_tx, stop_rx) = watch::channel(None);
            let workdir = self.inner.ctx.workdir(&req);
            state.running.push(Running {
                info: RunningTask {
                    task_id: req.task_id,
                    subtask_id: req.subtask_id,
                    title: req.title.clone(),
                    agent: req.agent(),
                    started_at: SystemTime::now(),
                    project: workdir.as_ref().ok().and_then(WorkDir::display_name),
                    folder: workdir.as_ref().ok().map(|w| w.path.clone()),
                },
                stop: stop_tx,
                _secrets: secrets,
            });
            self.spawn_turn(req, workdir, stop_rx);
        }
        self.publish(state);
    }

    /// Run one turn under a supervisor: whatever happens inside (even a panic), the turn ends
    /// with a terminal event and frees its slot.
    fn spawn_turn(
        &self,
        req: TaskRequest,
        workdir: Result<WorkDir, WorkDirError>,
        stop: watch::Receiver<Option<String>>,
    ) {
        let emitter = self.emitter_for(&req);
        let manager = self.clone();
        tokio::spawn(async move {
            let work = {
                let (manager, emitter, req) = (manager.clone(), emitter.clone(), req.clone());
                tokio::spawn(async move {
                    runner::run(&manager.inner.ctx, &req, workdir, &emitter, stop).await;
                })
            };
            if let Err(e) = work.await {
                tracing::error!(
                    task_id = req.task_id,
                    subtask_id = req.subtask_id,
                    panicked = e.is_panic(),
                    "task runner ended abnormally"
                );
                emitter.emit(TaskFailure::Internal.event());
            }
            manager.finish(req.subtask_id);
        });
    }

    fn finish(&self, subtask_id: i64) {
        let mut state = self.inner.lock();
        let task_id = state
            .running
            .iter()
            .find(|r| r.info.subtask_id == subtask_id)
            .map(|r| r.info.task_id);
        state.running.retain(|r| r.info.subtask_id != subtask_id);
        let closed = task_id.filter(|&t| {
            !state.running.iter().any(|r| r.info.task_id == t) && state.closing.remove(&t)
        });
        if state.finished.len() == FINISHED_MEMORY {
            state.finished.pop_front();
        }
        state.finished.push_back(subtask_id);
        if !state.shutting_down {
            self.pump(&mut state);
        } else {
            self.publish(&state);
        }
        drop(state);
        if let Some(task_id) = closed {
            self.remove_task_dirs(task_id);
        }
        self.inner.idle.notify_waiters();
    }

    fn publish(&self, state: &State) {
        let running: Vec<RunningTask> = state.running.iter().map(|r| r.info.clone()).collect();
        let waiting: Vec<QueuedTask> = state
            .queue
            .iter()
            .map(|q| QueuedTask {
                task_id: q.req.task_id,
                subtask_id: q.req.subtask_id,
                title: q.req.title.clone(),
                agent: q.req.agent(),
            })
            .collect();
        self.inner.slots.send_if_modified(|s| {
            let changed = s.running != running || s.waiting != waiting;
            s.running = running;
            s.queued = waiting.len();
            s.waiting = waiting;
            changed
        });
    }

    fn turn_for(&self, req: &TaskRequest) -> Turn {
        Turn {
            task_id: req.task_id,
            subtask_id: req.subtask_id,
            message_id: req.message_id,
            model: req.model_id.clone().unwrap_or_default(),
            created_at: now_secs(),
        }
    }

    fn emitter_for(&self, req: &TaskRequest) -> Emitter {
        Emitter::new(
            self.turn_for(req),
            req.title.clone(),
            req.agent(),
            self.inner.outbox.clone(),
            self.inner.events.clone(),
        )
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
