//! The token window process: `wegent-device --token-window=<section>`, started by the tray
//! (`host.rs`). A Tauri app with the one webview window and nothing else (no tray, no core, no
//! single-instance lock). The page's calls that need the tray (its state, the keychain, the core)
//! go over the pipe; the pure checks are answered here. The process exits when its window closes
//! or when the tray goes away (end of its stdin), and WebKit's processes go with it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;
use tauri::ipc::Invoke;
use tauri::{AppHandle, Manager, Runtime, State, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::oneshot;

use super::protocol::{self, Call, FromWindow, ToWindow};
use super::{Section, WINDOW_LABEL};
use crate::commands;

/// What the page shows when the tray does not answer (it quit while the window was open).
const TRAY_GONE: &str = "Wegent Device is no longer running; close this window and start it again.";

/// Runs the window process to its end; returns the exit code.
pub fn run(section: Section) -> i32 {
    let link = match TrayLink::from_stdout() {
        Ok(link) => link,
        Err(e) => {
            eprintln!("wegent-device: the token window has no pipe to the tray: {e}");
            return 2;
        }
    };
    let built = tauri::Builder::default()
        .manage(link)
        .invoke_handler(handler())
        .setup(move |app| {
            build_window(app.handle(), section)?;
            listen_to_tray(app.handle().clone());
            Ok(())
        })
        .build(crate::context());
    match built {
        // Closing the only window ends the event loop, and with it the process.
        Ok(app) => {
            app.run(|_, _| {});
            0
        }
        Err(e) => {
            eprintln!("wegent-device: could not open the token window: {e}");
            1
        }
    }
}

/// The page's commands (`window_commands.rs` lists them): the checks that need nothing are
/// answered here, the rest are forwarded to the tray as they are.
pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        window_state,
        close_window,
        commands::check_token,
        commands::check_server_url,
        test_and_save,
        sign_in,
        start_demo,
    ]
}

fn build_window<R: Runtime>(app: &AppHandle<R>, section: Section) -> tauri::Result<()> {
    let url = WebviewUrl::App(format!("index.html#{}", section.anchor()).into());
    WebviewWindowBuilder::new(app, WINDOW_LABEL, url)
        .title("Wegent Device")
        .inner_size(480.0, 600.0)
        .min_inner_size(400.0, 480.0)
        .center()
        .focused(true)
        .build()?;
    Ok(())
}

fn show<R: Runtime>(app: &AppHandle<R>, section: Section) {
    if let Some(window) = app.get_webview_window(WINDOW_LABEL) {
        let _ = window.eval(format!(
            "window.showSection && showSection('{}')",
            section.anchor()
        ));
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Reads the tray's messages (stdin) on a thread of its own until the tray closes the pipe.
fn listen_to_tray<R: Runtime>(app: AppHandle<R>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            match protocol::read::<ToWindow>(&mut stdin) {
                Ok(Some(ToWindow::Show { section })) => show(&app, section),
                Ok(Some(ToWindow::Reply { id, result })) => {
                    app.state::<TrayLink>().answered(id, result)
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("wegent-device: token window: from the tray: {e}");
                    break;
                }
            }
        }
        // The tray quit (or broke the pipe): a window without its tray has nothing to do.
        app.exit(0);
    });
}

/// The window process's end of the pipe: numbered calls, answered in any order.
pub struct TrayLink {
    to_tray: Mutex<Box<dyn Write + Send>>,
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
}

impl TrayLink {
    fn from_stdout() -> std::io::Result<Self> {
        Ok(Self {
            to_tray: Mutex::new(take_stdout()?),
            next_id: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    async fn call(&self, call: Call) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id, tx);
        let line = protocol::encode(&FromWindow::Call { id, call });
        let sent = {
            let mut out = lock(&self.to_tray);
            out.write_all(line.as_bytes()).and_then(|()| out.flush())
        };
        if sent.is_err() {
            lock(&self.waiting).remove(&id);
            return Err(TRAY_GONE.into());
        }
        rx.await.unwrap_or_else(|_| Err(TRAY_GONE.into()))
    }

    fn answered(&self, id: u64, result: Result<Value, String>) {
        if let Some(waiting) = lock(&self.waiting).remove(&id) {
            let _ = waiting.send(result);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pipe to the tray is this process's stdout. On Unix it is moved to a descriptor of its
/// own and stdout pointed at stderr, so that whatever GTK or WebKit print cannot garble it.
fn take_stdout() -> std::io::Result<Box<dyn Write + Send>> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let pipe = std::io::stdout().as_fd().try_clone_to_owned()?;
        // SAFETY: dup2 on two descriptors this process owns; nothing else writes to fd 1 yet.
        if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Box::new(std::fs::File::from(pipe)))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::new(std::io::stdout()))
    }
}

// The commands the tray answers: forwarded as they are; the tray's errors reach the page as
// its sentences.

#[tauri::command]
async fn window_state(link: State<'_, TrayLink>) -> Result<Value, String> {
    link.call(Call::WindowState).await
}

#[tauri::command]
async fn test_and_save(
    link: State<'_, TrayLink>,
    token: String,
    server_url: String,
) -> Result<Value, String> {
    link.call(Call::TestAndSave { token, server_url }).await
}

#[tauri::command]
async fn sign_in(
    link: State<'_, TrayLink>,
    server_url: String,
    user: String,
    password: String,
) -> Result<Value, String> {
    link.call(Call::SignIn {
        server_url,
        user,
        password,
    })
    .await
}

#[tauri::command]
async fn start_demo(link: State<'_, TrayLink>) -> Result<Value, String> {
    link.call(Call::StartDemo).await
}

/// Destroys the window, which ends this process; the tray keeps running.
#[tauri::command]
fn close_window<R: Runtime>(window: tauri::WebviewWindow<R>) {
    if let Err(e) = window.destroy() {
        eprintln!("wegent-device: could not close the token window: {e}");
    }
}
