//! Which desktop notifications to show, and when. Pure: fed with the core's events and status plus
//! the clock; returns [`Notice`]s. Bursts of task results are coalesced ("3 tasks finished"), a
//! connection loss is only told after it lasted [`NotifyPolicy::lost_after`], token expiry is told
//! once per token, and switched-off kinds are dropped (their state still advances, so switching a
//! kind back on does not replay old news).

use std::time::{Duration, SystemTime};

use wegent_executor::status::{Connection, DeviceEvent, DeviceStatus};
use wegent_executor::web_links::task_page_url;

use crate::app_settings::{NotificationSwitches, NotifyKind};
use crate::token_check::{expiry, human_duration, Expiry};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NotifyKind,
    pub summary: String,
    pub body: String,
    /// What a click on the notification opens (one task's page), where the notification
    /// server supports actions.
    pub link: Option<String>,
}

#[derive(Debug)]
pub struct NotifyPolicy {
    /// Task results within this window are told together.
    pub coalesce: Duration,
    /// A connection loss shorter than this is not worth a notification.
    pub lost_after: Duration,
    /// `(task id, title)` of each.
    finished: Burst<(i64, String)>,
    /// `(task id, title, reason)` of each.
    failed: Burst<(i64, String, String)>,
    online: bool,
    lost: Option<Lost>,
    warned_expiring: Option<SystemTime>,
    told_unusable: Option<Option<SystemTime>>,
}

#[derive(Debug)]
struct Burst<T> {
    first_at: Option<SystemTime>,
    items: Vec<T>,
}

impl<T> Default for Burst<T> {
    fn default() -> Self {
        Self {
            first_at: None,
            items: Vec::new(),
        }
    }
}

impl<T> Burst<T> {
    fn push(&mut self, item: T, now: SystemTime) {
        self.first_at.get_or_insert(now);
        self.items.push(item);
    }

    fn take_if_due(&mut self, now: SystemTime, window: Duration) -> Option<Vec<T>> {
        let first = self.first_at?;
        if now.duration_since(first).unwrap_or_default() < window {
            return None;
        }
        self.first_at = None;
        Some(std::mem::take(&mut self.items))
    }
}

#[derive(Debug)]
struct Lost {
    since: SystemTime,
    reason: String,
    told: bool,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        Self::new(Duration::from_secs(3), Duration::from_secs(10))
    }
}

impl NotifyPolicy {
    pub fn new(coalesce: Duration, lost_after: Duration) -> Self {
        Self {
            coalesce,
            lost_after,
            finished: Burst::default(),
            failed: Burst::default(),
            online: false,
            lost: None,
            warned_expiring: None,
            told_unusable: None,
        }
    }

    /// Record a one-off event from the core; it is told by a later [`Self::poll`].
    pub fn on_event(&mut self, event: &DeviceEvent, now: SystemTime) {
        match event {
            DeviceEvent::TaskCompleted { task_id, title } => {
                self.finished.push((*task_id, title.clone()), now)
            }
            DeviceEvent::TaskFailed {
                task_id,
                title,
                reason,
            } => self
                .failed
                .push((*task_id, title.clone(), reason.clone()), now),
            _ => {}
        }
    }

    /// Call on every status change and on a regular tick (about once a second).
    pub fn poll(
        &mut self,
        status: &DeviceStatus,
        now: SystemTime,
        switches: &NotificationSwitches,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        self.tasks(&status.web_url, now, &mut out);
        self.connection(status, now, &mut out);
        self.token(status, now, &mut out);
        out.retain(|n| switches.enabled(n.kind));
        out
    }

    /// A notice about one task opens that task's page in the web app at `web_url` when clicked.
    fn tasks(&mut self, web_url: &str, now: SystemTime, out: &mut Vec<Notice>) {
        let page = |task_id: &i64| Some(task_page_url(web_url, *task_id));
        if let Some(done) = self.finished.take_if_due(now, self.coalesce) {
            out.push(match done.as_slice() {
                [(id, title)] => Notice {
                    link: page(id),
                    ..notice(NotifyKind::TaskFinished, "Task finished", title)
                },
                many => notice(
                    NotifyKind::TaskFinished,
                    &format!("{} tasks finished", many.len()),
                    &list(many.iter().map(|(_, t)| t.as_str())),
                ),
            });
        }
        if let Some(failures) = self.failed.take_if_due(now, self.coalesce) {
            out.push(match failures.as_slice() {
                [(id, title, reason)] => Notice {
                    link: page(id),
                    ..notice(
                        NotifyKind::TaskFailed,
                        &format!("Task failed: {title}"),
                        reason,
                    )
                },
                many => notice(
                    NotifyKind::TaskFailed,
                    &format!("{} tasks failed", many.len()),
                    &many
                        .iter()
                        .map(|(_, t, r)| format!("{t}: {r}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            });
        }
    }

    fn connection(&mut self, status: &DeviceStatus, now: SystemTime, out: &mut Vec<Notice>) {
        match &status.connection {
            Connection::Online => {
                if let Some(lost) = self.lost.take() {
                    if lost.told {
                        let gone = now.duration_since(lost.since).unwrap_or_default();
                        out.push(notice(
                            NotifyKind::Connection,
                            "Connection restored",
                            &format!("Back online after {}.", human_duration(gone)),
                        ));
                    }
                }
                self.online = true;
            }
            Connection::Connecting { .. } | Connection::Offline { .. } => {
                let reason = match &status.connection {
                    Connection::Offline { reason, .. } => reason.clone(),
                    _ => String::new(),
                };
                if self.online {
                    self.online = false;
                    self.lost = Some(Lost {
                        since: now,
                        reason: String::new(),
                        told: false,
                    });
                }
                if let Some(lost) = &mut self.lost {
                    if !reason.is_empty() {
                        lost.reason = reason;
                    }
                    let gone = now.duration_since(lost.since).unwrap_or_default();
                    if !lost.told && gone >= self.lost_after {
                        lost.told = true;
                        let why = if lost.reason.is_empty() {
                            "Reconnecting…".to_owned()
                        } else {
                            format!("{} Reconnecting…", sentence(&lost.reason))
                        };
                        out.push(notice(NotifyKind::Connection, "Connection lost", &why));
                    }
                }
            }
            // Token problems have their own notice; stopping or having no token is not a loss.
            Connection::TokenRejected { .. } | Connection::NoToken | Connection::Stopped => {
                self.online = false;
                self.lost = None;
            }
        }
    }

    fn token(&mut self, status: &DeviceStatus, now: SystemTime, out: &mut Vec<Notice>) {
        let exp = status.token_expires_at;
        let state = expiry(exp, now);
        let rejected = match &status.connection {
            Connection::TokenRejected { message } => Some(message.as_str()),
            _ => None,
        };
        let expired = matches!(state, Expiry::Expired { .. });
        if (expired || rejected.is_some()) && self.told_unusable != Some(exp) {
            self.told_unusable = Some(exp);
            out.push(if expired {
                notice(
                    NotifyKind::TokenExpiry,
                    "Token expired — paste a new one",
                    "Wegent Device cannot connect until you sign in again or paste a new token.",
                )
            } else {
                notice(
                    NotifyKind::TokenExpiry,
                    "Token rejected — paste a new one",
                    &format!("The server said: {}", rejected.unwrap_or_default()),
                )
            });
            return;
        }
        if let Expiry::Soon { remaining } = state {
            if self.warned_expiring != exp {
                self.warned_expiring = exp;
                out.push(notice(
                    NotifyKind::TokenExpiry,
                    &format!("Token expires in {}", human_duration(remaining)),
                    "Sign in again or paste a new token before it expires.",
                ));
            }
        }
    }
}

fn notice(kind: NotifyKind, summary: &str, body: &str) -> Notice {
    Notice {
        kind,
        summary: summary.to_owned(),
        body: body.to_owned(),
        link: None,
    }
}

/// Up to five lines, then "and N more".
fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = items.collect();
    let mut lines: Vec<String> = all.iter().take(5).map(|s| format!("• {s}")).collect();
    if all.len() > 5 {
        lines.push(format!("and {} more", all.len() - 5));
    }
    lines.join("\n")
}

fn sentence(s: &str) -> String {
    let s = s.trim();
    if s.ends_with(['.', '!', '?']) {
        s.to_owned()
    } else {
        format!("{s}.")
    }
}

#[cfg(test)]
#[path = "notify_policy_tests.rs"]
mod tests;
