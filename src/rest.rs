//! The Wegent REST API calls the device needs: sign in, list devices, set the default device,
//! delete a device (protocol.md §1.2, §8). Base URL `backend_url` + `/api`.
//!
//! `/api/devices` accepts a login JWT only; an API key (`wg-…`) gets 401 there. The kind is
//! checked before calling so the user hears why, not just "401".

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::token::{Token, TokenKind};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a REST call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    #[error("this needs a login token (from Sign in / `wegent-executor login`); API keys (wg-…) can connect the device but cannot manage devices")]
    NeedsLoginToken,
    #[error("no token: sign in first (`wegent-executor login --user NAME`)")]
    NoToken,
    #[error("sign-in refused by the server: {0}")]
    LoginRefused(String),
    #[error("the server refused the login token ({0}); it may have expired: sign in again with `wegent-executor login`")]
    Unauthorized(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("cannot reach the Wegent server: {0}")]
    Unreachable(String),
    #[error("the server answered {status}: {detail}")]
    Server { status: u16, detail: String },
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// One device as `GET /api/devices` lists it (protocol.md §8). Fields the device does not use
/// are left out; missing optional fields default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device_id: String,
    pub name: String,
    /// `online`, `busy` or `offline`.
    pub status: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    pub slot_used: u32,
    #[serde(default)]
    pub slot_max: u32,
    #[serde(default)]
    pub last_heartbeat: Option<String>,
    #[serde(default)]
    pub executor_version: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

#[derive(Deserialize)]
struct DeviceList {
    items: Vec<DeviceInfo>,
}

#[derive(Deserialize)]
struct LoginAnswer {
    access_token: String,
}

/// A client for one Wegent backend.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    api_base: String,
    token: Option<Token>,
}

impl RestClient {
    /// `backend_url` is the server root, e.g. `https://wegent.example.com`; `/api` is appended.
    pub fn new(backend_url: &str) -> Result<Self, RestError> {
        let api_base = api_base(backend_url)?;
        // One rustls provider (ring) for the whole process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("wegent-executor/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&api_base) {
            // A local server (devserver, tunnel) is never behind the user's HTTP proxy; the Wegent
            // executor sets NO_PROXY for the same reason (protocol.md §1).
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| RestError::Unreachable(error_chain(&e)))?;
        Ok(Self {
            http,
            api_base,
            token: None,
        })
    }

    /// Calls after this carry `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// `POST /api/auth/login`: trade a user name and password for a login JWT.
    pub async fn login(&self, user: &str, password: &str) -> Result<Token, RestError> {
        let url = format!("{}/auth/login", self.api_base);
        let body = serde_json::json!({ "user_name": user, "password": password });
        let res = self.http.post(&url).json(&body).send().await;
        let res = res.map_err(|e| self.unreachable(&e))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            let answer: LoginAnswer = serde_json::from_str(&text)
                .map_err(|_| bad_answer(status, "the login answer has no access_token".into()))?;
            return Ok(Token::new(&answer.access_token));
        }
        let detail = detail_of(&text);
        Err(match status {
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                RestError::LoginRefused(detail)
            }
            _ => bad_answer(status, detail),
        })
    }

    /// `GET /api/devices`: every device of the user, online or not.
    pub async fn list_devices(&self) -> Result<Vec<DeviceInfo>, RestError> {
        let text = self.device_call(reqwest::Method::GET, "").await?;
        let list: DeviceList = serde_json::from_str(&text)
            .map_err(|e| bad_answer(StatusCode::OK, format!("unexpected device list: {e}")))?;
        Ok(list.items)
    }

    /// Whether the server lists `device_id` as the default (`None`: not listed, e.g. never
    /// registered or deleted). Wegent has no `GET /devices/default`; the list carries the flag.
    pub async fn is_default(&self, device_id: &str) -> Result<Option<bool>, RestError> {
        let list = self.list_devices().await?;
        Ok(list
            .iter()
            .find(|d| d.device_id == device_id)
            .map(|d| d.is_default))
    }

    /// `PUT /api/devices/{id}/default`: make this the user's default device.
    pub async fn set_default(&self, device_id: &str) -> Result<(), RestError> {
        let path = format!("/{}/default", path_segment(device_id));
        self.device_call(reqwest::Method::PUT, &path).await?;
        Ok(())
    }

    /// `DELETE /api/devices/{id}`: hide the device until it registers again.
    pub async fn delete_device(&self, device_id: &str) -> Result<(), RestError> {
        let path = format!("/{}", path_segment(device_id));
        self.device_call(reqwest::Method::DELETE, &path).await?;
        Ok(())
    }

    /// A call under `/api/devices` with the login JWT; returns the body of a 2xx answer.
    async fn device_call(&self, method: reqwest::Method, path: &str) -> Result<String, RestError> {
        let token = self.token.as_ref().ok_or(RestError::NoToken)?;
        if token.kind() == TokenKind::ApiKey {
            return Err(RestError::NeedsLoginToken);
        }
        let url = format!("{}/devices{path}", self.api_base);
        let res = self
            .http
            .request(method, &url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(classify_device_error(
            status,
            detail_of(&text),
            token.kind(),
        ))
    }

    fn unreachable(&self, e: &reqwest::Error) -> RestError {
        let what = if e.is_timeout() {
            "no answer in time".to_owned()
        } else {
            error_chain(e)
        };
        let root = self.api_base.trim_end_matches("/api");
        RestError::Unreachable(format!("{root}: {what}"))
    }
}

/// Decide the error of a failed `/api/devices` call (pure; unit-tested).
pub fn classify_device_error(status: StatusCode, detail: String, kind: TokenKind) -> RestError {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if kind == TokenKind::ApiKey => {
            RestError::NeedsLoginToken
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RestError::Unauthorized(detail),
        StatusCode::NOT_FOUND => RestError::NotFound(detail),
        _ => bad_answer(status, detail),
    }
}

/// `backend_url` + `/api`, checked: http(s) only, no query, no trailing slash.
pub fn api_base(backend_url: &str) -> Result<String, RestError> {
    let bad = |reason: &str| RestError::BadUrl {
        url: backend_url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(backend_url.trim()).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        "ws" | "wss" => return Err(bad("use the http(s):// address of the server for the backend URL; ws(s):// belongs in the socket URL")),
        _ => return Err(bad("the URL must start with http:// or https://")),
    }
    if parsed.host_str().is_none() {
        return Err(bad("the URL has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("the URL must not have a query or fragment"));
    }
    let root = parsed.as_str().trim_end_matches('/');
    let root = root.strip_suffix("/api").unwrap_or(root);
    Ok(format!("{root}/api"))
}

/// Whether the URL's host is this machine.
pub fn is_loopback(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The server's `{"detail": "..."}` (FastAPI style), else the body text, shortened.
pub fn detail_of(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match v.get("detail") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
            None => v.get("message").and_then(|m| m.as_str()).map(str::to_owned),
        });
    let text = match from_json {
        Some(text) => text,
        // An HTML error page (proxy, wrong URL) says nothing useful in a terminal.
        None if body.trim_start().starts_with('<') => {
            "an HTML page instead of the API (is the URL the Wegent server?)".to_owned()
        }
        None => body.to_owned(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = crate::redact::redact(&text).into_owned();
    if text.is_empty() {
        "(no details)".to_owned()
    } else if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

fn bad_answer(status: StatusCode, detail: String) -> RestError {
    RestError::Server {
        status: status.as_u16(),
        detail,
    }
}

/// Percent-encode a device id for use as one path segment.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `e` and its sources, e.g. "error sending request: tcp connect error: Connection refused".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    crate::redact::redact(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_is_checked_and_normalised() {
        assert_eq!(
            api_base("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000/api"
        );
        assert_eq!(
            api_base("https://w.example/").unwrap(),
            "https://w.example/api"
        );
        assert_eq!(
            api_base("https://w.example/api/").unwrap(),
            "https://w.example/api"
        );
        assert_eq!(
            api_base("https://w.example/wegent").unwrap(),
            "https://w.example/wegent/api"
        );
        assert!(matches!(
            api_base("wss://w.example"),
            Err(RestError::BadUrl { .. })
        ));
        assert!(matches!(
            api_base("w.example"),
            Err(RestError::BadUrl { .. })
        ));
    }

    #[test]
    fn loopback_hosts_bypass_the_proxy() {
        assert!(is_loopback("http://127.0.0.1:8000/api"));
        assert!(is_loopback("http://localhost:8000/api"));
        assert!(is_loopback("http://[::1]:8000/api"));
        assert!(!is_loopback("https://wegent.example.com/api"));
    }

    #[test]
    fn errors_are_classified_by_status_and_token_kind() {
        let d = || "Could not validate credentials".to_owned();
        assert_eq!(
            classify_device_error(StatusCode::UNAUTHORIZED, d(), TokenKind::ApiKey),
            RestError::NeedsLoginToken
        );
        assert_eq!(
            classify_device_error(StatusCode::UNAUTHORIZED, d(), TokenKind::Jwt),
            RestError::Unauthorized(d())
        );
        assert!(matches!(
            classify_device_error(StatusCode::NOT_FOUND, "x".into(), TokenKind::Jwt),
            RestError::NotFound(_)
        ));
        assert_eq!(
            classify_device_error(StatusCode::BAD_GATEWAY, "x".into(), TokenKind::Jwt),
            RestError::Server {
                status: 502,
                detail: "x".into()
            }
        );
    }

    #[test]
    fn details_come_from_fastapi_bodies() {
        assert_eq!(
            detail_of(r#"{"detail":"Device 'x' not found"}"#),
            "Device 'x' not found"
        );
        assert_eq!(detail_of("  Bad\n Gateway "), "Bad Gateway");
        assert!(detail_of("<!DOCTYPE html>\n<p>501</p>").starts_with("an HTML page"));
        assert_eq!(detail_of(""), "(no details)");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn api_key_is_refused_before_any_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Port 9 (discard) on loopback: if a request were made it would fail as Unreachable.
        let client = RestClient::new("http://127.0.0.1:9")
            .unwrap()
            .with_token(Token::new("wg-an-api-key-123"));
        let err = rt.block_on(client.list_devices()).unwrap_err();
        assert_eq!(err, RestError::NeedsLoginToken);
        assert!(err.to_string().contains("API keys (wg-…)"));
        let none = RestClient::new("http://127.0.0.1:9").unwrap();
        assert_eq!(
            rt.block_on(none.set_default("d")).unwrap_err(),
            RestError::NoToken
        );
    }
}
