//! The pipe between the tray and its token window process: one JSON object per line. The tray
//! writes [`ToWindow`] to the window process's stdin; the window process writes [`FromWindow`] to
//! its stdout. Pure: encoding and decoding only, the I/O is in `host.rs` and `process.rs`.
//!
//! A token or a password crosses this pipe inside a [`Call`], from the window to the tray, and
//! nowhere else: never on a command line or in a file. `Call`'s `Debug` names the call only, so a
//! logged message cannot show a secret.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Section;

/// Longest line either side accepts. A token is at most 4 KiB and the window's state a few
/// hundred bytes; anything longer is a broken peer, not a message.
pub const MAX_LINE: usize = 64 * 1024;

/// What the tray tells the window process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToWindow {
    /// Show the window (again) on this section and bring it to the front.
    Show { section: Section },
    /// The tray's answer to call `id`: what the page gets back (a value or an error message).
    Reply {
        id: u64,
        result: Result<Value, String>,
    },
}

/// What the window process asks of the tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FromWindow {
    Call { id: u64, call: Call },
}

/// The page's requests that need the tray (its state, the keychain, the core). The checks that
/// need nothing (`check_token`, `check_server_url`) are answered in the window process itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    WindowState,
    TestAndSave {
        token: String,
        server_url: String,
    },
    SignIn {
        server_url: String,
        user: String,
        password: String,
    },
    StartDemo,
}

impl Call {
    /// The page's command name for this call (also what is logged).
    pub fn name(&self) -> &'static str {
        match self {
            Call::WindowState => "window_state",
            Call::TestAndSave { .. } => "test_and_save",
            Call::SignIn { .. } => "sign_in",
            Call::StartDemo => "start_demo",
        }
    }
}

/// Names the call, never its arguments (a token, a password).
impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("a message longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("an unreadable message: {0}")]
    Malformed(String),
    #[error("the pipe failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One line, newline included.
pub fn encode<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message).expect("protocol messages always serialise");
    line.push('\n');
    line
}

/// A line as read (with or without its newline, at most [`MAX_LINE`] bytes). The serde error is
/// kept without the line itself: a broken message may hold a secret.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, ProtocolError> {
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong);
    }
    serde_json::from_slice(line.trim_ascii_end()).map_err(|e| {
        ProtocolError::Malformed(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Io => "i/o",
                serde_json::error::Category::Syntax => "bad JSON",
                serde_json::error::Category::Data => "unexpected fields",
                serde_json::error::Category::Eof => "cut short",
            },
            e.line(),
            e.column()
        ))
    })
}

/// Reads the next message from a blocking reader; `None` at the end of the pipe.
pub fn read<T: for<'de> Deserialize<'de>>(
    reader: &mut impl std::io::BufRead,
) -> Result<Option<T>, ProtocolError> {
    use std::io::{BufRead, Read};
    let mut line = Vec::new();
    let n = reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") && line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong);
    }
    decode(&line).map(Some)
}

/// Reads the next message from an async reader; `None` at the end of the pipe.
pub async fn read_async<T: for<'de> Deserialize<'de>>(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
) -> Result<Option<T>, ProtocolError> {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(reader, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") && line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong);
    }
    decode(&line).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T>(message: T)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        let line = encode(&message);
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        assert_eq!(decode::<T>(line.as_bytes()).unwrap(), message);
    }

    #[test]
    fn every_message_survives_a_line() {
        for section in [Section::Token, Section::SignIn, Section::About] {
            round_trip(ToWindow::Show { section });
        }
        round_trip(ToWindow::Reply {
            id: 7,
            result: Ok(json!({ "header": "🟢 Online · 0/5 slots\nsecond line" })),
        });
        round_trip(ToWindow::Reply {
            id: u64::MAX,
            result: Err("The server refused the token. Nothing was saved.".into()),
        });
        for call in [
            Call::WindowState,
            Call::TestAndSave {
                token: "wg-abc\"\n".into(),
                server_url: "http://127.0.0.1:8000".into(),
            },
            Call::SignIn {
                server_url: "https://w.example".into(),
                user: "admin".into(),
                password: "pa ss\u{1F511}".into(),
            },
            Call::StartDemo,
        ] {
            round_trip(FromWindow::Call { id: 1, call });
        }
    }

    #[test]
    fn the_wire_form_is_plain_json_with_the_section_anchor() {
        assert_eq!(
            encode(&ToWindow::Show {
                section: Section::SignIn
            }),
            "{\"kind\":\"show\",\"section\":\"signin\"}\n"
        );
        assert_eq!(
            encode(&FromWindow::Call {
                id: 3,
                call: Call::WindowState
            }),
            "{\"kind\":\"call\",\"id\":3,\"call\":\"window_state\"}\n"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let call = FromWindow::Call {
            id: 1,
            call: Call::SignIn {
                server_url: "https://w.example".into(),
                user: "admin".into(),
                password: "hunter2-secret".into(),
            },
        };
        let shown = format!("{call:?}");
        assert!(shown.contains("sign_in"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let saved = Call::TestAndSave {
            token: "wg-secret-token".into(),
            server_url: "http://x".into(),
        };
        assert_eq!(format!("{saved:?}"), "test_and_save");
    }

    #[test]
    fn a_broken_message_is_an_error_that_does_not_repeat_it() {
        let err = decode::<FromWindow>(
            br#"{"kind":"call","id":1,"call":{"sign_in":{"password":"hunter2"}}}"#,
        )
        .unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(
            decode::<ToWindow>(b"not json"),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn reading_stops_at_the_end_and_at_an_overlong_line() {
        let two = format!(
            "{}{}",
            encode(&ToWindow::Show {
                section: Section::About
            }),
            encode(&ToWindow::Reply {
                id: 1,
                result: Ok(Value::Null)
            })
        );
        let mut reader = std::io::Cursor::new(two.into_bytes());
        assert!(matches!(
            read::<ToWindow>(&mut reader).unwrap(),
            Some(ToWindow::Show { .. })
        ));
        assert!(matches!(
            read::<ToWindow>(&mut reader).unwrap(),
            Some(ToWindow::Reply { id: 1, .. })
        ));
        assert!(read::<ToWindow>(&mut reader).unwrap().is_none());

        let mut long = std::io::Cursor::new(vec![b'x'; MAX_LINE + 10]);
        assert!(matches!(
            read::<ToWindow>(&mut long),
            Err(ProtocolError::TooLong)
        ));
    }

    #[tokio::test]
    async fn the_async_reader_reads_the_same_lines() {
        let line = encode(&FromWindow::Call {
            id: 9,
            call: Call::StartDemo,
        });
        let mut reader = tokio::io::BufReader::new(line.as_bytes());
        let got: Option<FromWindow> = read_async(&mut reader).await.unwrap();
        assert_eq!(
            got,
            Some(FromWindow::Call {
                id: 9,
                call: Call::StartDemo
            })
        );
        assert!(read_async::<FromWindow>(&mut reader)
            .await
            .unwrap()
            .is_none());
        let long = vec![b'{'; MAX_LINE + 1];
        let mut reader = tokio::io::BufReader::new(&long[..]);
        assert!(matches!(
            read_async::<FromWindow>(&mut reader).await,
            Err(ProtocolError::TooLong)
        ));
    }
}
