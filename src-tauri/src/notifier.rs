//! Showing a [`Notice`] on the desktop. notify-rust is called directly (not the notification
//! plugin) because it returns the D-Bus error when no notification daemon runs; we log it and go
//! on — a missing daemon must never stop the app. A notice with a link opens it when clicked,
//! where the notification server supports actions (Linux: its `actions` capability).

use std::sync::Arc;

use crate::notify_policy::Notice;

pub const APP_NAME: &str = "Wegent Device";
/// The action a click on the notification's body invokes (the Desktop Notifications spec's
/// default action).
const DEFAULT_ACTION: &str = "default";

/// Where notices go; a trait so the bridge can be exercised without a desktop.
pub trait Notifier: Send + Sync + 'static {
    fn show(&self, notice: Notice);
}

/// Opens a notice's link (the default browser).
pub type OpenLink = Arc<dyn Fn(&str) + Send + Sync>;

/// The desktop's notification service.
pub struct DesktopNotifier {
    pub open_link: OpenLink,
}

impl Notifier for DesktopNotifier {
    fn show(&self, notice: Notice) {
        let open_link = self.open_link.clone();
        // The D-Bus call blocks (and can take seconds when the daemon is being activated), and
        // waiting for a click blocks until the notification closes: keep it off the UI and async
        // threads.
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || show_and_wait(notice, open_link));
        if let Err(e) = spawned {
            tracing::warn!("could not start the notification thread: {e}");
        }
    }
}

fn show_and_wait(notice: Notice, open_link: OpenLink) {
    // Task failure reasons come from outside; mask any registered secret in them.
    let summary = wegent_executor::redact::redact(&notice.summary).into_owned();
    let body = wegent_executor::redact::redact(&notice.body).into_owned();
    let mut n = notify_rust::Notification::new();
    n.appname(APP_NAME).summary(&summary).body(&body);
    let link = notice.link.filter(|_| supports_actions());
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
