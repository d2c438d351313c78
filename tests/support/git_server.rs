//! Real git repositories served on loopback for the checkout tests and the projects bench: a bare
//! repo on disk (`file://`), `git daemon` (`git://`), and smart HTTP (`git http-backend` behind
//! a tiny axum server, with a Basic-auth route, a route that always answers 401, and one that
//! never answers).

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

/// Credentials the `/auth/` route accepts.
pub const HTTP_USER: &str = "alice";
pub const HTTP_PASSWORD: &str = "s3cret-pass-42";

/// Run git synchronously in `dir`; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Fixture",
            "-c",
            "user.email=fixture@example.com",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("git is needed for these tests");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository `<root>/<name>.git`: `main` holds `README.md`, `only-in-repo.txt` and
/// `files` generated files; `feature` adds `feature.txt`.
pub fn bare_repo(root: &Path, name: &str, files: usize) -> PathBuf {
    let work = root.join(format!("{name}-src"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "# demo\n").unwrap();
    std::fs::write(
        work.join("only-in-repo.txt"),
        "marker-7f3e91 from the cloned repository\n",
    )
    .unwrap();
    if files > 0 {
        let src = work.join("src");
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..files {
            std::fs::write(
                src.join(format!("file_{i:04}.txt")),
                format!("file {i}\n{}\n", "line of text ".repeat(20)),
            )
            .unwrap();
        }
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    git(&work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(work.join("feature.txt"), "on the feature branch\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "feature"]);
    let bare = root.join(format!("{name}.git"));
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    // The default branch is `main`, as on a typical server.
    git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    bare
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `git daemon` exporting every repository under `base`, killed (with its connection children)
/// on drop.
pub struct GitDaemon {
    child: std::process::Child,
    pub port: u16,
}

impl GitDaemon {
    pub async fn start(base: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg(format!("--base-path={}", base.display()))
            .arg("--export-all")
            .arg(format!("--port={port}"))
            .arg("--listen=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("git daemon could not start");
        let daemon = Self { child, port };
        await_listening(port).await;
        daemon
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        // SAFETY: killpg only sends a signal to the group this struct started.
        unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Probe the port until something accepts (bounded), instead of sleeping a guessed time.
pub async fn await_listening(port: u16) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "nothing listens on port {port}");
}

/// Smart HTTP on loopback. Routes: `/git/<repo>` (open), `/auth/<repo>` (Basic
/// `HTTP_USER:HTTP_PASSWORD`), `/locked/<repo>` (always 401 with `WWW-Authenticate: Basic`),
/// `/stall/<repo>` (accepts, then never answers; `stalled` is notified).
pub struct HttpGit {
    pub base_url: String,
    pub stalled: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct HttpState {
    root: PathBuf,
    stalled: Arc<Notify>,
}

impl HttpGit {
    pub async fn start(root: &Path) -> Self {
        let stalled = Arc::new(Notify::new());
        let state = HttpState {
            root: root.to_owned(),
            stalled: stalled.clone(),
        };
        let app = axum::Router::new().fallback(route).with_state(state);
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url,
            stalled,
            server,
        }
    }

    pub fn url(&self, route: &str, repo: &str) -> String {
        format!("{}/{route}/{repo}", self.base_url)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn route(State(state): State<HttpState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let Some((kind, rest)) = path.trim_start_matches('/').split_once('/') else {
        return status(StatusCode::NOT_FOUND);
    };
    let rest = format!("/{rest}");
    match kind {
        "git" => cgi(&state.root, &rest, req).await,
        "auth" if authorized(req.headers()) => cgi(&state.root, &rest, req).await,
        "auth" | "locked" => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Basic realm=\"test\"")
            .body(Body::empty())
            .unwrap(),
        "stall" => {
            state.stalled.notify_one();
            std::future::pending().await
        }
        _ => status(StatusCode::NOT_FOUND),
    }
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap()
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{HTTP_USER}:{HTTP_PASSWORD}"));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

/// `git http-backend` as a CGI program: request in env + stdin, headers + body out.
async fn cgi(root: &Path, path_info: &str, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = req.headers().clone();
    let body: Bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let header_env = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header_env(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_CONTENT_ENCODING",
            header_env(header::CONTENT_ENCODING),
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(protocol) = headers.get("git-protocol").and_then(|v| v.to_str().ok()) {
        cmd.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cmd.spawn().expect("git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.expect("git http-backend");
    let _ = writer.await;
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("CGI headers");
    let head = String::from_utf8_lossy(&out.stdout[..split]).into_owned();
    let mut response = Response::builder();
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("200");
            response = response.status(code.parse::<u16>().unwrap_or(200));
        } else {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(out.stdout[split + 4..].to_vec()))
        .unwrap()
}
