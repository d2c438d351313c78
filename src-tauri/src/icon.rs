//! Which tray icon and tooltip show the device's state. Pure; the PNGs are drawn by
//! `icons/generate.py` and embedded at build time.

use wegent_executor::status::{Connection, DeviceStatus};

use crate::app_settings::TrayTheme;

/// The five looks of the tray icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    /// Connected, with a free slot.
    Online,
    /// Connected, every slot in use.
    Busy,
    /// Connecting, offline, or stopped: the app is working on it.
    Offline,
    /// The user must act: no token, token rejected or expired, keychain unusable.
    Attention,
    /// Connected, but the user paused new tasks.
    Paused,
}

impl TrayState {
    pub fn name(self) -> &'static str {
        match self {
            TrayState::Online => "online",
            TrayState::Busy => "busy",
            TrayState::Offline => "offline",
            TrayState::Attention => "attention",
            TrayState::Paused => "paused",
        }
    }
}

/// `needs_attention` covers problems outside the core's status (e.g. no usable keychain).
pub fn tray_state(status: &DeviceStatus, needs_attention: bool) -> TrayState {
    match &status.connection {
        Connection::NoToken | Connection::TokenRejected { .. } => TrayState::Attention,
        _ if needs_attention => TrayState::Attention,
        Connection::Online if status.paused => TrayState::Paused,
        Connection::Online if status.slots.used() >= usize::from(status.slots.max) => {
            TrayState::Busy
        }
        Connection::Online => TrayState::Online,
        Connection::Connecting { .. } | Connection::Offline { .. } | Connection::Stopped => {
            TrayState::Offline
        }
    }
}

/// The drawn variant: glyph colour for the panel, or a macOS template image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconVariant {
    /// Dark glyph, for light panels.
    Light,
    /// Light glyph, for dark panels.
    Dark,
    /// Black + alpha; macOS recolours it for the menu bar.
    Template,
}

pub fn icon_variant(theme: TrayTheme, is_macos: bool) -> IconVariant {
    match (theme, is_macos) {
        (TrayTheme::Auto, true) => IconVariant::Template,
        // GNOME, KDE (Breeze default), Windows 11 taskbars are dark by default.
        (TrayTheme::Auto, false) | (TrayTheme::Dark, _) => IconVariant::Dark,
        (TrayTheme::Light, _) => IconVariant::Light,
    }
}

/// PNG bytes of the icon for this state and variant (64 px: crisp on HiDPI, scaled down by hosts).
pub fn icon_png(state: TrayState, variant: IconVariant) -> &'static [u8] {
    macro_rules! png {
        ($s:literal, $v:literal) => {
            include_bytes!(concat!("../../icons/tray/", $s, "-", $v, "@2x.png")).as_slice()
        };
    }
    use IconVariant as V;
    use TrayState as S;
    match (state, variant) {
        (S::Online, V::Light) => png!("online", "light"),
        (S::Online, V::Dark) => png!("online", "dark"),
        (S::Online, V::Template) => png!("online", "template"),
        (S::Busy, V::Light) => png!("busy", "light"),
        (S::Busy, V::Dark) => png!("busy", "dark"),
        (S::Busy, V::Template) => png!("busy", "template"),
        (S::Offline, V::Light) => png!("offline", "light"),
        (S::Offline, V::Dark) => png!("offline", "dark"),
        (S::Offline, V::Template) => png!("offline", "template"),
        (S::Attention, V::Light) => png!("attention", "light"),
        (S::Attention, V::Dark) => png!("attention", "dark"),
        (S::Attention, V::Template) => png!("attention", "template"),
        (S::Paused, V::Light) => png!("paused", "light"),
        (S::Paused, V::Dark) => png!("paused", "dark"),
        (S::Paused, V::Template) => png!("paused", "template"),
    }
}

/// Tooltip: the state in words and the version, e.g. `Wegent Device 0.1.0 — Online · 2/5 slots`.
pub fn tooltip(header: &str, version: &str) -> String {
    format!("Wegent Device {version} — {}", strip_status_emoji(header))
}

/// Tooltips render emoji badly on several hosts; the words carry the state.
fn strip_status_emoji(header: &str) -> &str {
    ["🟢 ", "🟡 ", "🟠 ", "🔴 ", "⚠️ ", "⚪ ", "⏸️ "]
        .iter()
        .find_map(|e| header.strip_prefix(e))
        .unwrap_or(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::status;

    #[test]
    fn state_follows_connection_and_slots() {
        let mut s = status(Connection::Online, 5, 2);
        assert_eq!(tray_state(&s, false), TrayState::Online);
        s = status(Connection::Online, 5, 5);
        assert_eq!(tray_state(&s, false), TrayState::Busy);
        s = status(Connection::Connecting { attempt: 2 }, 5, 0);
        assert_eq!(tray_state(&s, false), TrayState::Offline);
        s = status(
            Connection::Offline {
                reason: "x".into(),
                retry_at: None,
            },
            5,
            0,
        );
        assert_eq!(tray_state(&s, false), TrayState::Offline);
        s = status(Connection::NoToken, 5, 0);
        assert_eq!(tray_state(&s, false), TrayState::Attention);
        s = status(
            Connection::TokenRejected {
                message: "m".into(),
            },
            5,
            0,
        );
        assert_eq!(tray_state(&s, false), TrayState::Attention);
    }

    #[test]
    fn paused_shows_while_online_but_a_token_problem_wins() {
        let mut s = status(Connection::Online, 1, 1);
        s.paused = true;
        assert_eq!(tray_state(&s, false), TrayState::Paused);
        assert_eq!(tray_state(&s, true), TrayState::Attention);
        s.connection = Connection::NoToken;
        assert_eq!(tray_state(&s, false), TrayState::Attention);
        assert_eq!(
            tooltip("⏸️ Paused · 1/5 slots", "0.1.0"),
            "Wegent Device 0.1.0 — Paused · 1/5 slots"
        );
    }

    #[test]
    fn outside_problems_need_attention_even_when_online() {
        let s = status(Connection::Online, 5, 1);
        assert_eq!(tray_state(&s, true), TrayState::Attention);
    }

    #[test]
    fn variant_per_platform_and_theme() {
        assert_eq!(icon_variant(TrayTheme::Auto, true), IconVariant::Template);
        assert_eq!(icon_variant(TrayTheme::Auto, false), IconVariant::Dark);
        assert_eq!(icon_variant(TrayTheme::Light, true), IconVariant::Light);
    }

    #[test]
    fn every_icon_is_a_distinct_png() {
        let states = [
            TrayState::Online,
            TrayState::Busy,
            TrayState::Offline,
            TrayState::Attention,
            TrayState::Paused,
        ];
        let mut seen = std::collections::HashSet::new();
        for s in states {
            for v in [IconVariant::Light, IconVariant::Dark, IconVariant::Template] {
                let png = icon_png(s, v);
                assert_eq!(&png[1..4], b"PNG");
                assert!(seen.insert(png.as_ptr()), "{s:?} {v:?} reuses another icon");
            }
        }
    }

    #[test]
    fn tooltip_has_words_and_version() {
        assert_eq!(
            tooltip("🟢 Online · 2/5 slots", "0.1.0"),
            "Wegent Device 0.1.0 — Online · 2/5 slots"
        );
    }
}
