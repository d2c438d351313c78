//! What a click on a tray menu item asks for, as an enum. Menu ids are made from an action
//! ([`MenuAction::id`]) and parsed back ([`MenuAction::parse`]) here and nowhere else, and the
//! handler (`menu_handler.rs`) matches exhaustively: an action without a handler does not compile.
//! Items that only inform (header, device line, task lines) have ids that parse to `None`.

use crate::app_settings::NotifyKind;
use crate::menu_ids as id;

/// One turn of a task in the menu (a task may show twice for a moment: a running turn and the
/// follow-up waiting for it), so each turn's items have ids of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnRef {
    pub task_id: i64,
    pub subtask_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    RestartConnection,
    ToggleDefaultDevice,
    /// "Pause new tasks".
    TogglePause,
    /// A running or waiting task's "Stop".
    StopTask(TurnRef),
    /// A running or waiting task's "Open in Wegent".
    OpenTaskPage(TurnRef),
    /// A running task's "Open folder".
    OpenTaskFolder(TurnRef),
    /// A finished task in "Recent": its page in Wegent.
    OpenRecentTask {
        task_id: i64,
    },
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
            Self::TogglePause => id::PAUSE.to_owned(),
            Self::StopTask(turn) => turn_id(id::STOP_PREFIX, turn),
            Self::OpenTaskPage(turn) => turn_id(id::PAGE_PREFIX, turn),
            Self::OpenTaskFolder(turn) => turn_id(id::FOLDER_PREFIX, turn),
            Self::OpenRecentTask { task_id } => format!("{}{task_id}", id::RECENT_PREFIX),
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
            id::PAUSE => Self::TogglePause,
            id::PASTE_TOKEN => Self::PasteToken,
            id::SIGN_IN => Self::SignIn,
            id::DEMO => Self::Demo,
            id::START_AT_LOGIN => Self::ToggleStartAtLogin,
            id::OPEN_LOGS => Self::OpenLogs,
            id::ABOUT => Self::About,
            id::QUIT => Self::Quit,
            other => return parse_prefixed(other),
        })
    }
}

fn turn_id(prefix: &str, turn: TurnRef) -> String {
    format!("{prefix}{}.{}", turn.task_id, turn.subtask_id)
}

/// Ids that carry a value after their prefix.
fn parse_prefixed(item: &str) -> Option<MenuAction> {
    let turn = |rest: &str| {
        let (task, subtask) = rest.split_once('.')?;
        Some(TurnRef {
            task_id: task.parse().ok()?,
            subtask_id: subtask.parse().ok()?,
        })
    };
    if let Some(key) = item.strip_prefix(id::NOTIFY_PREFIX) {
        NotifyKind::from_key(key).map(MenuAction::ToggleNotification)
    } else if let Some(rest) = item.strip_prefix(id::STOP_PREFIX) {
        turn(rest).map(MenuAction::StopTask)
    } else if let Some(rest) = item.strip_prefix(id::PAGE_PREFIX) {
        turn(rest).map(MenuAction::OpenTaskPage)
    } else if let Some(rest) = item.strip_prefix(id::FOLDER_PREFIX) {
        turn(rest).map(MenuAction::OpenTaskFolder)
    } else if let Some(rest) = item.strip_prefix(id::RECENT_PREFIX) {
        rest.parse()
            .ok()
            .map(|task_id| MenuAction::OpenRecentTask { task_id })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<MenuAction> {
        let turn = TurnRef {
            task_id: 7,
            subtask_id: 70,
        };
        let mut all = vec![
            MenuAction::RestartConnection,
            MenuAction::ToggleDefaultDevice,
            MenuAction::TogglePause,
            MenuAction::StopTask(turn),
            MenuAction::OpenTaskPage(turn),
            MenuAction::OpenTaskFolder(turn),
            MenuAction::OpenRecentTask { task_id: 7 },
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
            "stop.7",
            "stop.x.1",
            "recent.",
            "folder.1.2.3",
            "",
        ] {
            assert_eq!(MenuAction::parse(item), None, "{item}");
        }
    }
}
