//! Where to connect: the user's server URL turned into the Engine.IO WebSocket URL (pure).

use url::{Host, Url};

use super::ConnectError;

/// The Engine.IO path, appended to any path prefix of the base URL.
const SOCKET_IO_PATH: &str = "socket.io/";
const QUERY: &str = "EIO=4&transport=websocket";

/// A resolved WebSocket endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `ws(s)://host[:port][/prefix]/socket.io/?EIO=4&transport=websocket`
    pub url: Url,
    /// Host for DNS and TLS server name (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// True when the base URL had a path before `/socket.io/` (a hint for 404 errors).
    pub has_prefix: bool,
}

impl Endpoint {
    /// `scheme://host[:port]` of the server, for error hints.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match self.url.port() {
            Some(port) => format!("{scheme}://{}:{port}", self.url.host_str().unwrap_or("")),
            None => format!("{scheme}://{}", self.url.host_str().unwrap_or("")),
        }
    }
}

/// Turn `http(s)://` or `ws(s)://` `host[:port][/prefix]` into the Engine.IO WebSocket endpoint.
/// A base that already ends in `/socket.io` is used as is. Query and fragment are dropped.
pub fn endpoint(base: &str) -> Result<Endpoint, ConnectError> {
    let invalid = |reason: &str| ConnectError::InvalidUrl {
        url: display_without_credentials(base),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(base.trim()).map_err(|e| invalid(&e.to_string()))?;
    let tls = match parsed.scheme() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        _ => return Err(invalid("use an http://, https://, ws:// or wss:// URL")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not supported; the token is sent separately",
        ));
    }
    let host = match parsed.host() {
        Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(invalid("the URL has no host")),
    };
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| invalid("the URL has no port"))?;

    let prefix = parsed.path().trim_end_matches('/');
    let prefix = prefix.strip_suffix("/socket.io").unwrap_or(prefix);
    let mut url = parsed.clone();
    url.set_scheme(if tls { "wss" } else { "ws" })
        .map_err(|()| invalid("cannot use this URL for a WebSocket"))?;
    url.set_path(&format!("{prefix}/{SOCKET_IO_PATH}"));
    url.set_query(Some(QUERY));
    url.set_fragment(None);
    Ok(Endpoint {
        url,
        host,
        port,
        tls,
        has_prefix: !prefix.is_empty(),
    })
}

/// The URL for error messages, with any `user:password@` removed.
fn display_without_credentials(base: &str) -> String {
    match Url::parse(base.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => base.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str) -> String {
        endpoint(base).unwrap().url.to_string()
    }

    #[test]
    fn maps_http_schemes_to_websocket_and_appends_the_engine_io_path() {
        assert_eq!(
            url("http://localhost:8000"),
            "ws://localhost:8000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            url("https://wegent.example.com/"),
            "wss://wegent.example.com/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            url("ws://127.0.0.1:9/"),
            "ws://127.0.0.1:9/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            url("wss://h"),
            "wss://h/socket.io/?EIO=4&transport=websocket"
        );
    }

    #[test]
    fn keeps_a_path_prefix_and_accepts_a_full_socket_io_url() {
        assert_eq!(
            url("https://h/wegent/"),
            "wss://h/wegent/socket.io/?EIO=4&transport=websocket"
        );
        assert!(endpoint("https://h/wegent").unwrap().has_prefix);
        assert!(!endpoint("https://h/").unwrap().has_prefix);
        assert_eq!(
            url("wss://h/socket.io/?EIO=3&x=1#frag"),
            "wss://h/socket.io/?EIO=4&transport=websocket"
        );
    }

    #[test]
    fn resolves_host_port_and_tls() {
        let e = endpoint("https://example.com").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("example.com", 443, true));
        let e = endpoint("http://[::1]:8080/").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("::1", 8080, false));
        assert_eq!(e.origin(), "http://[::1]:8080");
        assert_eq!(endpoint("ws://h").unwrap().port, 80);
    }

    #[test]
    fn rejects_unusable_urls_with_a_reason_and_no_credentials() {
        for bad in ["ftp://h", "localhost:8000", "", "http://"] {
            assert!(
                matches!(endpoint(bad), Err(ConnectError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        let err = endpoint("https://user:hunter2secret@h/").unwrap_err();
        assert!(!err.to_string().contains("hunter2secret"), "{err}");
        assert!(err.to_string().contains("credentials"), "{err}");
    }
}
