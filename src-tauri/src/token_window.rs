//! The token window (`ui/`): opened on demand in a process of its own, which ends when the window
//! closes and takes WebKit with it. What the page asks of the app (check, test and save a token,
//! sign in, start the demo) is answered in `commands.rs`.

mod host;
pub mod process;
pub mod protocol;

pub use host::WINDOW_FLAG;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Runtime};

pub const WINDOW_LABEL: &str = "token";

/// Which part of the window to show. Serialised as the page's anchor (`#signin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Token,
    SignIn,
    About,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Token, Section::SignIn, Section::About];

    pub fn anchor(self) -> &'static str {
        match self {
            Section::Token => "token",
            Section::SignIn => "signin",
            Section::About => "about",
        }
    }

    pub fn from_anchor(anchor: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.anchor() == anchor)
    }
}

/// Open the window on `section`, or bring it to the front. It runs in a process of its own
/// (`process.rs`), started and answered by the tray (`host.rs`). Failures are logged: the tray
/// keeps working.
pub fn open<R: Runtime>(app: &AppHandle<R>, section: Section) {
    host::open(app, section);
}
