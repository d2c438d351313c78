//! What a click on a tray menu item asks for, as an enum. Menu ids are made from an action
//! ([`MenuAction::id`]) and parsed back ([`MenuAction::parse`]) here and nowhere else, and the
//! handler (`menu_handler.rs`) matches exhaustively: an action without a handler does not compile.
//! Items that only inform (header, device line, task lines) have ids that parse to `None`.

use crate::app_settings::NotifyKind;
use crate::menu_ids as id;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    RestartConnection,
    ToggleDefaultDevice,
    PasteToken,
    SignIn,
    /// "Try the demo" or, once it runs, "Open demo console".
    Demo,
    ToggleStartAtLogin,
    ToggleNotification(NotifyKind),
    OpenLogs,
    About,
    Quit,
}

impl MenuAction {
    /// The menu item id for this action.
    pub fn id(self) -> String {
        match self {
            Self::RestartConnection => id::RESTART.to_owned(),
            Self::ToggleDefaultDevice => id::DEFAULT_DEVICE.to_owned(),
            Self::PasteToken => id::PASTE_TOKEN.to_owned(),
            Self::SignIn => id::SIGN_IN.to_owned(),
            Self::Demo => id::DEMO.to_owned(),
            Self::ToggleStartAtLogin => id::START_AT_LOGIN.to_owned(),
            Self::ToggleNotification(kind) => format!("{}{}", id::NOTIFY_PREFIX, kind.key()),
            Self::OpenLogs => id::OPEN_LOGS.to_owned(),
            Self::About => id::ABOUT.to_owned(),
            Self::Quit => id::QUIT.to_owned(),
        }
    }

    /// The action of a clicked item; `None` for items that only inform.
    pub fn parse(item: &str) -> Option<Self> {
        Some(match item {
            id::RESTART => Self::RestartConnection,
            id::DEFAULT_DEVICE => Self::ToggleDefaultDevice,
            id::PASTE_TOKEN => Self::PasteToken,
            id::SIGN_IN => Self::SignIn,
            id::DEMO => Self::Demo,
            id::START_AT_LOGIN => Self::ToggleStartAtLogin,
            id::OPEN_LOGS => Self::OpenLogs,
            id::ABOUT => Self::About,
            id::QUIT => Self::Quit,
            other => {
                let key = other.strip_prefix(id::NOTIFY_PREFIX)?;
                Self::ToggleNotification(NotifyKind::from_key(key)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<MenuAction> {
        let mut all = vec![
            MenuAction::RestartConnection,
            MenuAction::ToggleDefaultDevice,
            MenuAction::PasteToken,
            MenuAction::SignIn,
            MenuAction::Demo,
            MenuAction::ToggleStartAtLogin,
            MenuAction::OpenLogs,
            MenuAction::About,
            MenuAction::Quit,
        ];
        all.extend(NotifyKind::ALL.map(MenuAction::ToggleNotification));
        all
    }

    #[test]
    fn every_action_id_parses_back_to_it() {
        let mut ids = std::collections::HashSet::new();
        for action in all() {
            let item = action.id();
            assert_eq!(MenuAction::parse(&item), Some(action), "{item}");
            assert!(ids.insert(item), "two actions share an id");
        }
    }

    #[test]
    fn informational_and_unknown_ids_are_no_action() {
        for item in [
            id::HEADER,
            id::DEVICE,
            id::TASKS,
            "task.7.70",
            "notify.nonsense",
            "",
        ] {
            assert_eq!(MenuAction::parse(item), None, "{item}");
        }
    }
}
