//! Downloads from the backend for a task (skills, attachments): bearer auth, a size cap enforced
//! while streaming to disk, a time limit, and the task's stop signal.
//!
//! A download lands in `<dest>.part` and is renamed when complete, so a cancelled or oversized
//! download never leaves a truncated file under its real name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::runner::{stopped, StopSignal};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a download did not produce a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("it is larger than the download limit of {0} bytes")]
    TooLarge(u64),
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("the server could not be reached: {0}")]
    Network(String),
    #[error("could not write {0}")]
    Io(String),
    /// The task was stopped; the message is the stop reason.
    #[error("{0}")]
    Cancelled(String),
}

/// One GET to a file.
pub struct Download<'a> {
    pub url: &'a str,
    pub token: Option<&'a str>,
    /// An ETag from an earlier download: a 304 answer means "keep yours".
    pub if_none_match: Option<&'a str>,
    pub dest: &'a Path,
    pub max_bytes: u64,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Saved { bytes: u64, etag: Option<String> },
    NotModified,
}

/// A client for `backend_url`; loopback servers bypass the user's proxy (as `RestClient` does).
pub fn client(backend_url: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("wegent-executor/", env!("CARGO_PKG_VERSION")));
    if crate::rest::is_loopback(backend_url) {
        builder = builder.no_proxy();
    }
    builder.build().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not build the download client; using defaults");
        reqwest::Client::new()
    })
}

pub async fn download(
    http: &reqwest::Client,
    spec: &Download<'_>,
    stop: &mut StopSignal,
) -> Result<Fetched, FetchError> {
    let part = part_path(spec.dest);
    let result = tokio::select! {
        r = tokio::time::timeout(spec.timeout, fetch_to(http, spec, &part)) => match r {
            Ok(r) => r,
            Err(_) => Err(FetchError::TimedOut(spec.timeout)),
        },
        message = stopped(stop) => Err(FetchError::Cancelled(message)),
    };
    match result {
        Ok(Fetched::Saved { bytes, etag }) => {
            tokio::fs::rename(&part, spec.dest)
                .await
                .map_err(|e| FetchError::Io(format!("{}: {e}", spec.dest.display())))?;
            Ok(Fetched::Saved { bytes, etag })
        }
        other => {
            let _ = tokio::fs::remove_file(&part).await;
            other
        }
    }
}

/// A GET whose JSON answer is small (a lookup): same auth, timeout and stop signal.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    timeout: Duration,
    stop: &mut StopSignal,
) -> Result<serde_json::Value, FetchError> {
    let request = async {
        let res = authorized(http.get(url), token)
            .send()
            .await
            .map_err(network)?;
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        res.json().await.map_err(network)
    };
    tokio::select! {
        r = tokio::time::timeout(timeout, request) => r.unwrap_or(Err(FetchError::TimedOut(timeout))),
        message = stopped(stop) => Err(FetchError::Cancelled(message)),
    }
}

fn authorized(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

fn network(e: reqwest::Error) -> FetchError {
    FetchError::Network(crate::rest::error_chain(&e))
}

async fn fetch_to(
    http: &reqwest::Client,
    spec: &Download<'_>,
    part: &Path,
) -> Result<Fetched, FetchError> {
    let mut req = authorized(http.get(spec.url), spec.token);
    if let Some(tag) = spec.if_none_match {
        req = req.header(reqwest::header::IF_NONE_MATCH, tag);
    }
    let mut res = req.send().await.map_err(network)?;
    let status = res.status();
    if status == reqwest::StatusCode::NOT_MODIFIED && spec.if_none_match.is_some() {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    if res.content_length().is_some_and(|n| n > spec.max_bytes) {
        return Err(FetchError::TooLarge(spec.max_bytes));
    }
    let etag = res
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let io = |e: std::io::Error| FetchError::Io(format!("{}: {e}", part.display()));
    let mut file = tokio::fs::File::create(part).await.map_err(io)?;
    let mut bytes = 0u64;
    // The length header may lie or be absent: count what actually arrives.
    while let Some(chunk) = res.chunk().await.map_err(network)? {
        bytes += chunk.len() as u64;
        if bytes > spec.max_bytes {
            return Err(FetchError::TooLarge(spec.max_bytes));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(Fetched::Saved { bytes, etag })
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}
