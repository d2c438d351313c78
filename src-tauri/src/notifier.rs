//! Showing a [`Notice`] on the desktop. notify-rust is called directly (not the notification
//! plugin) because it returns the D-Bus error when no notification daemon runs; we log it and go
//! on — a missing daemon must never stop the app. A notice with a link opens it when clicked,
//! where the notification server supports actions (Linux: its `actions` capability).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::notify_policy::Notice;

pub const APP_NAME: &str = "Wegent Device";
/// The action a click on the notification's body invokes (the Desktop Notifications spec's
/// default action).
const DEFAULT_ACTION: &str = "default";
/// Notifications waiting for a click at once. Each holds a thread until it is closed, and some
/// servers (GNOME) keep notifications until the user dismisses them: beyond this, new ones are
/// shown without the click.
const MAX_CLICKABLE: usize = 8;

/// Where notices go; a trait so the bridge can be exercised without a desktop.
pub trait Notifier: Send + Sync + 'static {
    fn show(&self, notice: Notice);
}

/// Opens a notice's link (the default browser).
pub type OpenLink = Arc<dyn Fn(&str) + Send + Sync>;

/// The desktop's notification service.
pub struct DesktopNotifier {
    open_link: OpenLink,
    /// Notifications shown with a click action and not closed yet.
    clickable: Arc<AtomicUsize>,
}

impl DesktopNotifier {
    pub fn new(open_link: OpenLink) -> Self {
        Self {
            open_link,
            clickable: Arc::default(),
        }
    }
}

impl Notifier for DesktopNotifier {
    fn show(&self, notice: Notice) {
        let open_link = self.open_link.clone();
        let clickable = self.clickable.clone();
        // The D-Bus call blocks (and can take seconds when the daemon is being activated), and
        // waiting for a click blocks until the notification closes: keep it off the UI and async
        // threads.
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || show_and_wait(notice, open_link, &clickable));
        if let Err(e) = spawned {
            tracing::warn!("could not start the notification thread: {e}");
        }
    }
}

fn show_and_wait(notice: Notice, open_link: OpenLink, clickable: &AtomicUsize) {
    // Task failure reasons come from outside; mask any registered secret in them.
    let summary = wegent_executor::redact::redact(&notice.summary).into_owned();
    let body = wegent_executor::redact::redact(&notice.body).into_owned();
    let mut n = notify_rust::Notification::new();
    n.appname(APP_NAME).summary(&summary).body(&body);
    // Held while this notification waits for a click.
    let slot = notice
        .link
        .as_ref()
        .filter(|_| supports_actions())
        .and_then(|_| ClickSlot::take(clickable));
    let link = notice.link.filter(|_| slot.is_some());
    #[cfg(all(unix, not(target_os = "macos")))]
    n.icon("wegent-device");
    if link.is_some() {
        n.action(DEFAULT_ACTION, "Open in Wegent");
    }
    let kind = notice.kind.key();
    match n.show() {
        Ok(handle) => {
            tracing::info!(kind, clickable = link.is_some(), "notification shown");
            if let Some(link) = link {
                handle.wait_for_action(|action| {
                    if action == DEFAULT_ACTION {
                        tracing::info!(kind, "notification clicked: opening the task");
                        open_link(&link);
                    }
                });
            }
        }
        Err(e) => tracing::warn!(
            kind,
            "could not show a notification (is a notification daemon running?): {e}"
        ),
    }
}

/// One of the [`MAX_CLICKABLE`] places for a notification that waits for a click; given back
/// when dropped.
struct ClickSlot<'a>(&'a AtomicUsize);

impl<'a> ClickSlot<'a> {
    fn take(waiting: &'a AtomicUsize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_CLICKABLE).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for ClickSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the notification server can report a click (an action).
fn supports_actions() -> bool {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        notify_rust::get_capabilities()
            .map(|caps| caps.iter().any(|c| c == "actions"))
            .unwrap_or(false)
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_eight_notifications_wait_for_a_click_and_places_come_back() {
        let waiting = AtomicUsize::new(0);
        let slots: Vec<ClickSlot> = (0..MAX_CLICKABLE)
            .map(|_| ClickSlot::take(&waiting).expect("a free place"))
            .collect();
        assert!(
            ClickSlot::take(&waiting).is_none(),
            "the ninth waits for no click"
        );
        drop(slots);
        assert_eq!(waiting.load(Ordering::SeqCst), 0);
        assert!(ClickSlot::take(&waiting).is_some());
    }
}
