//! Tray menu item ids. Kept in one place so the menu model, the event handler and the e2e tests
//! (which click items by label, but read ids in logs) agree.

pub const HEADER: &str = "header";
pub const DEVICE: &str = "device";
pub const DETAIL: &str = "detail";
/// "Queue full" line, while new tasks would fail at once.
pub const QUEUE_FULL: &str = "queue_full";
/// "Unencrypted connection" warning line.
pub const INSECURE: &str = "insecure_transport";
pub const TASKS: &str = "tasks";
pub const NO_TASKS: &str = "tasks.none";
/// Prefix of one running task's submenu: `task.<task_id>.<subtask_id>`.
pub const TASK_PREFIX: &str = "task.";
/// Prefix of one waiting task's submenu: `queued.<task_id>.<subtask_id>`.
pub const QUEUED_PREFIX: &str = "queued.";
/// A task's items: `<prefix><task_id>.<subtask_id>`.
pub const STOP_PREFIX: &str = "stop.";
pub const PAGE_PREFIX: &str = "page.";
pub const FOLDER_PREFIX: &str = "folder.";
pub const RECENT: &str = "recent";
pub const NO_RECENT: &str = "recent_none";
/// A finished task's item in Recent: `recent.<task_id>`.
pub const RECENT_PREFIX: &str = "recent.";
pub const DEFAULT_DEVICE: &str = "default_device";
pub const PAUSE: &str = "pause";
pub const RESTART: &str = "restart";
pub const PASTE_TOKEN: &str = "paste_token";
pub const SIGN_IN: &str = "sign_in";
pub const DEMO: &str = "demo";
pub const START_AT_LOGIN: &str = "start_at_login";
pub const NOTIFICATIONS: &str = "notifications";
/// Prefix of a per-kind notification switch: `notify.<kind>`.
pub const NOTIFY_PREFIX: &str = "notify.";
pub const OPEN_LOGS: &str = "open_logs";
pub const ABOUT: &str = "about";
pub const QUIT: &str = "quit";
