//! Logging: `tracing` to stderr and to a daily-rotated file in the executor home's `logs/`
//! (7 files kept). Every line passes through [`crate::redact::redact`] on its way out, so a token
//! or any registered secret is masked in both, whatever code logged it.
//!
//! Level: `RUST_LOG` wins, then the configured `log_level`, then `info` for the file. Stderr is
//! quieter by default (`warn`, or `info`/`debug` with `-v`/`-vv`) because the CLI prints its own
//! status lines there.
//!
//! Whatever the level, the transport libraries never log below [`transport_ceiling`]: at
//! `trace` tungstenite prints every WebSocket frame (a `task:execute` frame carries API keys,
//! before the task's secrets are known to the redactor), and HTTP/TLS libraries print headers.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log files kept (one per day).
pub const KEEP_FILES: usize = 7;
/// Sub-folder of the executor home that holds the logs.
pub const LOG_DIR: &str = "logs";
/// Log lines queued for the file writer thread before new ones are dropped.
const LOG_QUEUE_LINES: usize = 4096;

/// What to set up.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Folder of the log files (`None`: stderr only).
    pub dir: Option<PathBuf>,
    /// File names are `<prefix>.<date>.log`.
    pub file_prefix: String,
    /// Filter directives (`info`, `wegent_executor=debug,warn`, …) for the file and for stderr.
    pub file_filter: String,
    pub stderr_filter: String,
    /// Colours on stderr (off for pipes and files).
    pub ansi: bool,
}

impl LogOptions {
    /// Options for the executor home `home` (logs in `home/logs/`).
    pub fn for_home(home: &Path, file_prefix: &str, levels: Levels) -> Self {
        Self {
            dir: Some(home.join(LOG_DIR)),
            file_prefix: file_prefix.to_owned(),
            file_filter: levels.file,
            stderr_filter: levels.stderr,
            ansi: std::io::IsTerminal::is_terminal(&io::stderr()),
        }
    }
}

/// The filter directives chosen by [`levels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    pub file: String,
    pub stderr: String,
}

/// Pick the filters: `RUST_LOG` > configured `log_level` > defaults (file `info`; stderr `warn`,
/// raised by `verbose`).
pub fn levels(rust_log: Option<&str>, configured: Option<&str>, verbose: u8) -> Levels {
    let explicit = rust_log
        .or(configured)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(directives) = explicit {
        return Levels {
            file: directives.to_owned(),
            stderr: directives.to_owned(),
        };
    }
    // Connection trouble is already printed as status lines; keep stderr for everything else.
    let stderr = match verbose {
        0 => "warn,wegent_executor::session=error",
        1 => "info",
        _ => "debug",
    };
    Levels {
        file: if verbose >= 2 { "debug" } else { "info" }.to_owned(),
        stderr: stderr.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log level {0:?}: use error, warn, info, debug or trace (or RUST_LOG-style directives like `wegent_executor=debug`)")]
    BadLevel(String),
    #[error("logging is already set up in this process")]
    AlreadySet,
}

/// Keep this alive for the life of the program: dropping it flushes the log file.
#[must_use = "dropping the guard stops file logging"]
pub struct LoggingGuard {
    _file: Option<WorkerGuard>,
    /// Where the files go, when file logging works.
    pub log_dir: Option<PathBuf>,
    /// Why file logging is off (the folder could not be created, …); stderr still works.
    pub file_error: Option<String>,
}

/// Install the global subscriber. A log folder that cannot be used is not fatal: logging goes
/// to stderr only and the reason is in [`LoggingGuard::file_error`] (and logged as a warning).
pub fn init(opts: &LogOptions) -> Result<LoggingGuard, LoggingError> {
    let file_filter = parse_filter(&opts.file_filter)?;
    let stderr_filter = parse_filter(&opts.stderr_filter)?;

    let (file_layer, guard, file_error) = match opts.dir.as_deref().map(|d| open_file(d, opts)) {
        Some(Ok(appender)) => {
            // The default queue preallocates 128,000 lines (4 MB, all of it touched at start):
            // the largest item in an idle device's memory. A few thousand lines cover any burst
            // the file writer thread cannot keep up with.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .finish(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(RedactingMakeWriter(writer))
                .with_filter(file_filter.and(filter_fn(transport_allowed)));
            (Some(layer), Some(guard), None)
        }
        Some(Err(e)) => (None, None, Some(e)),
        None => (None, None, None),
    };
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_ansi(opts.ansi)
        .with_writer(RedactingMakeWriter(io::stderr))
        .with_filter(stderr_filter.and(filter_fn(transport_allowed)));

    tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(|_| LoggingError::AlreadySet)?;
    if let Some(e) = &file_error {
        tracing::warn!("file logging is off: {e}");
    }
    Ok(LoggingGuard {
        _file: guard,
        log_dir: file_error.is_none().then(|| opts.dir.clone()).flatten(),
        file_error,
    })
}

/// The most verbose level a library may log at, whatever the user's directives say (a directive
/// like `tungstenite::protocol=trace` would beat a plain `tungstenite=off` in an [`EnvFilter`],
/// so this is a separate filter every layer must also pass). `None`: no ceiling.
pub fn transport_ceiling(target: &str) -> Option<LevelFilter> {
    let crate_name = target.split("::").next().unwrap_or(target);
    match crate_name {
        // Frames, in full, at trace; the handshake request at trace; close frames at debug.
        "tungstenite" | "tokio_tungstenite" => Some(LevelFilter::OFF),
        // Headers and URLs (tokens, cookies) at debug/trace.
        "h2" | "hyper" | "hyper_util" | "reqwest" | "rustls" | "tokio_rustls" => {
            Some(LevelFilter::INFO)
        }
        _ => None,
    }
}

fn transport_allowed(meta: &tracing::Metadata<'_>) -> bool {
    transport_ceiling(meta.target()).is_none_or(|ceiling| *meta.level() <= ceiling)
}

fn parse_filter(directives: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|_| LoggingError::BadLevel(directives.to_owned()))
}

fn open_file(dir: &Path, opts: &LogOptions) -> Result<RollingFileAppender, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the log folder {}: {e}", dir.display()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(&opts.file_prefix)
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(dir)
        .map_err(|e| format!("cannot open a log file in {}: {e}", dir.display()))
}

/// Wraps a [`MakeWriter`] so everything written through it is redacted.
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.0.make_writer_for(meta))
    }
}

/// Buffers up to the end of a line, then writes the redacted line. Secrets contain no newline,
/// so a secret split over several `write` calls is still seen whole.
pub struct RedactingWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    fn write_redacted(&mut self, upto: usize) -> io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&chunk);
        self.inner
            .write_all(crate::redact::redact(&text).as_bytes())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.write_redacted(last_newline + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.write_redacted(self.pending.len())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn a_registered_secret_logged_through_the_writer_is_masked() {
        crate::redact::register_secret("sk-log-secret-4242");
        let token = crate::token::Token::new("wg-log-token-abcdef");
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(RedactingMakeWriter(move || sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                key = "sk-log-secret-4242",
                "connecting with {}",
                token.expose()
            );
        });
        let text = out.text();
        assert!(text.contains("connecting with [REDACTED]"), "{text}");
        assert!(text.contains("key=\"[REDACTED]\""), "{text}");
        assert!(
            !text.contains("sk-log-secret") && !text.contains("wg-log-token"),
            "{text}"
        );
    }

    #[test]
    fn a_secret_split_across_writes_is_still_masked() {
        crate::redact::register_secret("split-secret-value");
        let out = Captured::default();
        {
            let mut w = RedactingWriter::new(out.clone());
            w.write_all(b"a split-sec").unwrap();
            w.write_all(b"ret-value b\nnext ").unwrap();
            assert_eq!(out.text(), "a [REDACTED] b\n");
        }
        assert_eq!(out.text(), "a [REDACTED] b\nnext ");
    }

    #[test]
    fn transport_libraries_never_log_frames_or_headers() {
        use tracing::Level;
        for target in ["tungstenite::protocol::frame", "tokio_tungstenite"] {
            assert_eq!(
                transport_ceiling(target),
                Some(LevelFilter::OFF),
                "{target}"
            );
        }
        for target in [
            "h2::codec",
            "hyper_util::client",
            "reqwest::connect",
            "rustls",
        ] {
            let ceiling = transport_ceiling(target).unwrap();
            assert!(Level::INFO <= ceiling && Level::DEBUG > ceiling, "{target}");
        }
        assert_eq!(transport_ceiling("wegent_executor::sio"), None);
        assert_eq!(transport_ceiling("tungstenite_lookalike"), None);
    }

    #[test]
    fn levels_follow_precedence() {
        assert_eq!(levels(Some("debug"), Some("warn"), 0).file, "debug");
        assert_eq!(levels(None, Some("trace"), 0).stderr, "trace");
        let quiet = levels(None, None, 0);
        assert_eq!(
            (quiet.file.as_str(), quiet.stderr.as_str()),
            ("info", "warn,wegent_executor::session=error")
        );
        assert_eq!(levels(None, Some(" "), 1).stderr, "info");
        assert!(parse_filter("wegent_executor=debug,warn").is_ok());
        assert!(matches!(
            parse_filter("lots=of=noise"),
            Err(LoggingError::BadLevel(_))
        ));
    }
}
