//! The readiness check made while the server is unreachable: `GET <server>/health`, the path the
//! Wegent backend serves next to `/socket.io/` (`backend/app/main.py`, `{"status": "healthy"}`,
//! no database access). It is cheap for the server and, unlike the Socket.IO connect, does not
//! count against the connect rate limit (30 per 30 s per IP, protocol.md §1.1), so the device can
//! check every second and connect as soon as the server is back, instead of sleeping out a
//! backoff that grew during a long outage. A bare TCP connect would not do: a proxy in front of a
//! stopped backend accepts connections and answers 502.
//!
//! [`classify`] is the decision (pure); [`Probe`] is the HTTP edge.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::sio::endpoint::endpoint;

/// The readiness path, relative to the base URL's path (next to `socket.io/`).
const HEALTH_PATH: &str = "health";
/// A check that takes longer than this counts as "down" (a stopped host that drops packets).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a readiness check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The backend answered that it is healthy: connect now.
    Ready,
    /// No answer, or a proxy saying the backend is unavailable (502/503/504), or a backend that
    /// says it is shutting down: check again shortly.
    Down,
    /// Something answered that is not a readiness answer (404 from a proxy that routes `/health`
    /// elsewhere, an HTML page): the check tells nothing here, so rely on the backoff alone.
    Unsupported,
}

/// The decision on an HTTP answer: `None` when no answer came (refused, reset, timed out).
pub fn classify(answer: Option<(u16, &[u8])>) -> ProbeOutcome {
    let Some((status, body)) = answer else {
        return ProbeOutcome::Down;
    };
    match status {
        200 => {
            let Ok(json) = serde_json::from_slice::<Value>(body) else {
                return ProbeOutcome::Unsupported;
            };
            // `/api/health` also says `"shutting_down": true` during a graceful shutdown, when
            // connects are refused with "Server is shutting down".
            match (
                json.get("status").and_then(Value::as_str),
                &json["shutting_down"],
            ) {
                (Some("healthy"), Value::Bool(true)) => ProbeOutcome::Down,
                (Some("healthy"), _) => ProbeOutcome::Ready,
                (Some("unhealthy"), _) => ProbeOutcome::Down,
                _ => ProbeOutcome::Unsupported,
            }
        }
        502..=504 => ProbeOutcome::Down,
        _ => ProbeOutcome::Unsupported,
    }
}

/// `http(s)://host[:port][/prefix]/health` for the Socket.IO base URL (the same host, port and
/// path prefix as the `socket.io/` endpoint), or `None` if the URL cannot be connected to anyway.
pub fn health_url(socket_base: &str) -> Option<Url> {
    let endpoint = endpoint(socket_base).ok()?;
    let mut url = endpoint.url;
    url.set_scheme(if endpoint.tls { "https" } else { "http" })
        .ok()?;
    let path = url.path().strip_suffix("socket.io/")?.to_owned();
    url.set_path(&format!("{path}{HEALTH_PATH}"));
    url.set_query(None);
    Some(url)
}

/// The HTTP side of the check: one client per session, no proxy (like the Socket.IO connection,
/// which never uses one either).
#[derive(Debug, Clone)]
pub struct Probe {
    http: reqwest::Client,
    url: Url,
}

impl Probe {
    /// `None` when the URL is unusable or no HTTP client can be built: the session then relies on
    /// its backoff alone.
    pub fn new(socket_base: &str) -> Option<Self> {
        let url = health_url(socket_base)?;
        // One rustls provider (ring) for the whole process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(PROBE_TIMEOUT)
            .user_agent(concat!("wegent-device/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()?;
        Some(Self { http, url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One check. Bodies are small (`{"status":"healthy"}`); a larger one is not a health answer.
    pub async fn check(&self) -> ProbeOutcome {
        const MAX_BODY: usize = 4096;
        let Ok(response) = self.http.get(self.url.clone()).send().await else {
            return classify(None);
        };
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return classify(Some((status, b"")));
        }
        match response.bytes().await {
            Ok(body) if body.len() <= MAX_BODY => classify(Some((status, &body))),
            Ok(_) => classify(Some((status, b""))),
            Err(_) => classify(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backends_health_answer_is_ready() {
        assert_eq!(
            classify(Some((200, br#"{"status":"healthy"}"#))),
            ProbeOutcome::Ready
        );
        assert_eq!(
            classify(Some((
                200,
                br#"{"status":"healthy","shutting_down":false}"#
            ))),
            ProbeOutcome::Ready
        );
    }

    #[test]
    fn no_answer_a_proxy_error_or_a_shutdown_is_down() {
        assert_eq!(classify(None), ProbeOutcome::Down);
        for status in [502, 503, 504] {
            assert_eq!(classify(Some((status, b"Bad Gateway"))), ProbeOutcome::Down);
        }
        assert_eq!(
            classify(Some((200, br#"{"status":"healthy","shutting_down":true}"#))),
            ProbeOutcome::Down
        );
        assert_eq!(
            classify(Some((200, br#"{"status":"unhealthy","database":"error"}"#))),
            ProbeOutcome::Down
        );
    }

    #[test]
    fn other_answers_tell_nothing() {
        assert_eq!(
            classify(Some((404, b"Not Found"))),
            ProbeOutcome::Unsupported
        );
        assert_eq!(
            classify(Some((200, b"<html>welcome</html>"))),
            ProbeOutcome::Unsupported
        );
        assert_eq!(
            classify(Some((200, br#"{"ok":true}"#))),
            ProbeOutcome::Unsupported
        );
        assert_eq!(classify(Some((401, b""))), ProbeOutcome::Unsupported);
    }

    #[test]
    fn the_health_url_sits_next_to_socket_io() {
        let url = |base: &str| health_url(base).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:8000").as_deref(),
            Some("http://127.0.0.1:8000/health")
        );
        assert_eq!(
            url("wss://wegent.example.com/").as_deref(),
            Some("https://wegent.example.com/health")
        );
        assert_eq!(
            url("https://h/prefix/socket.io").as_deref(),
            Some("https://h/prefix/health")
        );
        assert_eq!(url("ftp://h"), None);
    }
}
