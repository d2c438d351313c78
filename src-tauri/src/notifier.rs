//! Showing a [`Notice`] on the desktop. notify-rust is called directly (not the notification
//! plugin) because it returns the D-Bus error when no notification daemon runs; we log it and go
//! on — a missing daemon must never stop the app.

use crate::notify_policy::Notice;

pub const APP_NAME: &str = "Wegent Device";

/// Where notices go; a trait so the bridge can be exercised without a desktop.
pub trait Notifier: Send + Sync + 'static {
    fn show(&self, notice: Notice);
}

/// The desktop's notification service.
#[derive(Debug, Default)]
pub struct DesktopNotifier;

impl Notifier for DesktopNotifier {
    fn show(&self, notice: Notice) {
        // The D-Bus call blocks (and can take seconds when the daemon is being activated): keep it
        // off the UI and async threads.
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                // Task failure reasons come from outside; mask any registered secret in them.
                let summary = wegent_executor::redact::redact(&notice.summary).into_owned();
                let body = wegent_executor::redact::redact(&notice.body).into_owned();
                let mut n = notify_rust::Notification::new();
                n.appname(APP_NAME).summary(&summary).body(&body);
                #[cfg(all(unix, not(target_os = "macos")))]
                n.icon("wegent-device");
                match n.show() {
                    Ok(_) => tracing::info!(kind = notice.kind.key(), "notification shown"),
                    Err(e) => tracing::warn!(
                        kind = notice.kind.key(),
                        "could not show a notification (is a notification daemon running?): {e}"
                    ),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("could not start the notification thread: {e}");
        }
    }
}
