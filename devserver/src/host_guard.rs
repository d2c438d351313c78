//! The `Host` header check that blocks DNS rebinding: a web page on `evil.example` whose DNS name
//! is re-pointed at 127.0.0.1 can make the victim's browser talk to this devserver, but the
//! browser still sends `Host: evil.example`. Only loopback names (and the names the operator
//! allowed) are answered; everything else gets 421 with a message saying how to allow a name.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::rest::AppState;

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`), lowercased,
/// without a trailing dot. `None` if it is malformed.
pub fn host_name(header: &str) -> Option<String> {
    let header = header.trim();
    let name = if let Some(rest) = header.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        inside
    } else {
        match header.rsplit_once(':') {
            Some((name, port)) if valid_port(port) && !name.contains(':') => name,
            Some(_) => return None,
            None => header,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a request with this `Host` header may be answered: loopback names (`localhost`,
/// 127.0.0.0/8, `::1`) always, plus the configured `allowed` names (`*` allows any host).
pub fn host_allowed(header: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == "*") {
        return true;
    }
    let Some(name) = host_name(header) else {
        return false;
    };
    if name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    allowed
        .iter()
        .filter_map(|a| host_name(a))
        .any(|a| a == name)
}

/// The middleware: refuses requests whose `Host` is not allowed, before any route runs.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    match host {
        Some(h) if host_allowed(&h, &state.allowed_hosts) => next.run(req).await,
        Some(h) => refuse(&format!(
            "Host '{h}' is not allowed: this devserver answers only to loopback names \
             (127.0.0.1, localhost, [::1]) and the names given with --allowed-host. \
             If you reach it under this name on purpose, start it with --allowed-host {}",
            host_name(&h).unwrap_or_else(|| "<name>".into())
        )),
        None => refuse("The request has no Host header; this devserver needs one (HTTP/1.1)."),
    }
}

fn refuse(detail: &str) -> Response {
    tracing::warn!("refused a request: {detail}");
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(json!({"detail": detail})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_names() {
        assert_eq!(host_name("127.0.0.1:8000").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_name("LocalHost").as_deref(), Some("localhost"));
        assert_eq!(host_name("localhost.:1").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:8000").as_deref(), Some("::1"));
        assert_eq!(host_name("[::1]").as_deref(), Some("::1"));
        assert_eq!(host_name("[::1]x"), None);
        assert_eq!(host_name("evil.example:80:80"), None);
        assert_eq!(host_name("a:b"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn loopback_only_unless_allowed() {
        let none: Vec<String> = vec![];
        for ok in [
            "127.0.0.1:8000",
            "127.0.0.1",
            "localhost:1",
            "[::1]:9",
            "127.1.2.3:5",
        ] {
            assert!(host_allowed(ok, &none), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.5:8000",
            "[fe80::1]:8000",
            "0.0.0.0:8000",
            "",
        ] {
            assert!(!host_allowed(bad, &none), "{bad}");
        }
        let lan = vec!["devbox.lan".to_string(), "10.0.0.5:8000".to_string()];
        assert!(host_allowed("devbox.lan:8000", &lan));
        assert!(host_allowed("DEVBOX.lan", &lan));
        assert!(host_allowed("10.0.0.5:1234", &lan));
        assert!(!host_allowed("evil.example", &lan));
        assert!(host_allowed("anything.example", &["*".to_string()]));
    }
}
