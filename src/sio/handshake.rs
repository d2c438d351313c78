//! Opening a connection: TCP, TLS, WebSocket upgrade, Engine.IO OPEN, Socket.IO namespace CONNECT.
//! Every failure becomes a typed [`ConnectError`] with a text a developer can act on.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::codec::{self, Frame, OpenInfo, SioPacket};
use super::endpoint::Endpoint;
use super::{ConnectError, ConnectOptions};

pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

const USER_AGENT: &str = concat!("wegent-device/", env!("CARGO_PKG_VERSION"));

/// Connect to `endpoint` and join `opts.namespace`. The caller bounds the time taken.
pub(crate) async fn open(
    endpoint: &Endpoint,
    opts: &ConnectOptions,
) -> Result<(WsStream, OpenInfo), ConnectError> {
    let tcp = connect_tcp(endpoint).await?;
    let stream = if endpoint.tls {
        MaybeTlsStream::Rustls(connect_tls(endpoint, tcp).await?)
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    let mut ws = upgrade(endpoint, stream, opts.max_inbound_frame).await?;
    let open = read_open(&mut ws).await?;
    join_namespace(&mut ws, &opts.namespace, &opts.auth).await?;
    Ok((ws, open))
}

async fn connect_tcp(endpoint: &Endpoint) -> Result<TcpStream, ConnectError> {
    let target = (endpoint.host.as_str(), endpoint.port);
    let addrs = tokio::net::lookup_host(target)
        .await
        .map_err(|e| ConnectError::Unreachable(format!("cannot resolve {}: {e}", endpoint.host)))?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                // Small event frames should leave at once, not wait for Nagle.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(ConnectError::Unreachable(match last_error {
        Some(e) => format!("cannot connect to {}:{}: {e}", endpoint.host, endpoint.port),
        None => format!("{} resolved to no address", endpoint.host),
    }))
}

async fn connect_tls(
    endpoint: &Endpoint,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let server_name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
        ConnectError::Tls(format!(
            "{:?} is not a valid TLS server name",
            endpoint.host
        ))
    })?;
    TlsConnector::from(tls_config()?)
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            let hint = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .and_then(|tls| tls_hint(tls, &endpoint.host));
            ConnectError::Tls(match hint {
                Some(hint) => format!("TLS handshake with {} failed: {e}; {hint}", endpoint.host),
                None => format!("TLS handshake with {} failed: {e}", endpoint.host),
            })
        })
}

/// What the user can do about a certificate the handshake rejected.
pub(crate) fn tls_hint(error: &rustls::Error, host: &str) -> Option<String> {
    use rustls::CertificateError as Cert;
    let rustls::Error::InvalidCertificate(cert) = error else {
        return None;
    };
    Some(match cert {
        Cert::UnknownIssuer | Cert::BadSignature => "the server's certificate is not trusted by \
            this computer; if the server uses a private CA, point SSL_CERT_FILE at the CA's PEM \
            file (or add it to the system trust store)"
            .to_owned(),
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
            format!("the server's certificate is not valid for {host}; check the server URL")
        }
        Cert::Expired
        | Cert::ExpiredContext { .. }
        | Cert::NotValidYet
        | Cert::NotValidYetContext { .. } => "the server's certificate is outside its validity \
            period; check this computer's clock, or renew the server's certificate"
            .to_owned(),
        _ => return None,
    })
}

/// rustls with the `ring` provider (no cmake, no process-wide default needed) and the OS trust
/// store. Loaded once; a failed load is retried next time (the user may fix the store).
fn tls_config() -> Result<Arc<ClientConfig>, ConnectError> {
    static CONFIG: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);
    let mut cached = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(config) = cached.as_ref() {
        return Ok(config.clone());
    }
    let native = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        return Err(ConnectError::Tls(format!(
            "no trusted root certificates found in the operating system's store \
             (install the ca-certificates package){}",
            match native.errors.first() {
                Some(e) => format!("; first error: {e}"),
                None => String::new(),
            }
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    *cached = Some(config.clone());
    Ok(config)
}

async fn upgrade(
    endpoint: &Endpoint,
    stream: MaybeTlsStream<TcpStream>,
    max_inbound: usize,
) -> Result<WsStream, ConnectError> {
    let mut request = endpoint
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    request
        .headers_mut()
        .insert("User-Agent", HeaderValue::from_static(USER_AGENT));
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_inbound))
        .max_frame_size(Some(max_inbound));
    tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map(|(ws, _response)| ws)
        .map_err(|e| upgrade_error(endpoint, e))
}

/// Why the WebSocket upgrade failed, in words that point at the likely mistake. (The
/// [`ConnectError::Handshake`] text already asks "is this a Wegent backend?".)
fn upgrade_error(endpoint: &Endpoint, error: tungstenite::Error) -> ConnectError {
    let path = endpoint.url.path();
    // A TLS server answers a plain HTTP request with TLS records or by hanging up.
    let scheme_hint = if endpoint.tls {
        ""
    } else {
        "; if the server uses TLS, use an https:// URL"
    };
    ConnectError::Handshake(match error {
        tungstenite::Error::Http(response) => http_refusal(endpoint, response.status()),
        tungstenite::Error::Tls(e) => return ConnectError::Tls(e.to_string()),
        tungstenite::Error::Io(e) => {
            format!(
                "the connection broke during the WebSocket upgrade at {path} ({e}){scheme_hint}"
            )
        }
        other => format!("no valid WebSocket answer at {path} ({other}){scheme_hint}"),
    })
}

/// The text for an HTTP status instead of `101 Switching Protocols`.
pub(crate) fn http_refusal(endpoint: &Endpoint, status: StatusCode) -> String {
    let path = endpoint.url.path();
    let hint = match status.as_u16() {
        404 if endpoint.has_prefix => format!(
            "no Socket.IO endpoint here; Wegent serves it at the server root, try {}",
            endpoint.origin()
        ),
        404 => "no Socket.IO endpoint here".to_owned(),
        300..=399 => "the server redirects; use the final URL (http vs https?)".to_owned(),
        400 => "the server rejected the Engine.IO v4 request (Socket.IO v5 expected)".to_owned(),
        401 | 403 => "a proxy or firewall in front of the server refused the connection".to_owned(),
        502..=504 => "a proxy in front of the server could not reach it".to_owned(),
        _ => "expected a WebSocket upgrade".to_owned(),
    };
    format!("HTTP {status} at {path}: {hint}")
}

async fn next_frame(ws: &mut WsStream, stage: &str) -> Result<String, ConnectError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => {
                return Err(ConnectError::Handshake(format!(
                    "the server closed the connection {stage}"
                )))
            }
            Some(Ok(Message::Binary(_))) => {
                tracing::debug!("skipping a binary frame {stage}");
            }
            Some(Ok(_)) => {} // WebSocket ping/pong: answered by tungstenite.
            Some(Err(e)) => {
                return Err(ConnectError::Handshake(format!(
                    "the connection failed {stage}: {e}"
                )))
            }
        }
    }
}

async fn read_open(ws: &mut WsStream) -> Result<OpenInfo, ConnectError> {
    let stage = "before the Engine.IO handshake";
    match codec::decode(&next_frame(ws, stage).await?) {
        Ok(Frame::Open(open)) => Ok(open),
        Ok(other) => Err(ConnectError::Handshake(format!(
            "expected the Engine.IO OPEN packet, got {}; is this a Socket.IO v5 server?",
            other.kind()
        ))),
        Err(e) => Err(ConnectError::Handshake(format!(
            "not an Engine.IO v4 handshake ({e}); is this a Socket.IO v5 server?"
        ))),
    }
}

async fn join_namespace(
    ws: &mut WsStream,
    namespace: &str,
    auth: &serde_json::Value,
) -> Result<(), ConnectError> {
    let stage = "during the namespace connect";
    // The auth object holds the token: the frame is never logged.
    ws.send(Message::text(codec::encode_connect(namespace, auth)))
        .await
        .map_err(|e| {
            ConnectError::Handshake(format!("could not send the namespace connect: {e}"))
        })?;
    loop {
        let frame = match codec::decode(&next_frame(ws, stage).await?) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(error = %e, "skipping a malformed frame {stage}");
                continue;
            }
        };
        match frame {
            Frame::Ping(payload) => {
                let _ = ws.send(Message::text(codec::encode_pong(&payload))).await;
            }
            Frame::Close => {
                return Err(ConnectError::Handshake(format!(
                    "the server closed the connection {stage}"
                )))
            }
            Frame::Message(packet) if packet.namespace() == namespace => match packet {
                SioPacket::Connect { .. } => return Ok(()),
                SioPacket::ConnectError { message, .. } => {
                    return Err(ConnectError::from_refusal(&message))
                }
                SioPacket::Disconnect { .. } => {
                    return Err(ConnectError::Handshake(format!(
                        "the server disconnected the namespace {stage}"
                    )))
                }
                other => tracing::debug!(kind = other.kind(), "skipping a packet {stage}"),
            },
            other => tracing::debug!(kind = other.kind(), "skipping a frame {stage}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sio::endpoint::endpoint;

    #[test]
    fn http_refusals_point_at_the_likely_mistake() {
        let root = endpoint("http://h:1").unwrap();
        let text = http_refusal(&root, StatusCode::NOT_FOUND);
        assert_eq!(
            text,
            "HTTP 404 Not Found at /socket.io/: no Socket.IO endpoint here"
        );
        let shown = ConnectError::Handshake(text).to_string();
        assert_eq!(
            shown.matches("is this a Wegent backend?").count(),
            1,
            "{shown}"
        );

        let prefixed = endpoint("https://h/api").unwrap();
        let text = http_refusal(&prefixed, StatusCode::NOT_FOUND);
        assert!(text.contains("try https://h"), "{text}");

        let text = http_refusal(&root, StatusCode::MOVED_PERMANENTLY);
        assert!(text.contains("redirects"), "{text}");
        let text = http_refusal(&root, StatusCode::BAD_GATEWAY);
        assert!(text.contains("proxy"), "{text}");
    }

    #[test]
    fn tls_hints_say_what_to_do() {
        use rustls::CertificateError as Cert;
        let hint = |e: Cert| tls_hint(&rustls::Error::InvalidCertificate(e), "wegent.example");
        assert!(hint(Cert::UnknownIssuer).unwrap().contains("SSL_CERT_FILE"));
        assert!(hint(Cert::NotValidForName)
            .unwrap()
            .contains("not valid for wegent.example"));
        assert!(hint(Cert::Expired).unwrap().contains("clock"));
        assert_eq!(hint(Cert::Revoked), None);
        assert_eq!(tls_hint(&rustls::Error::DecryptError, "h"), None);
    }

    #[test]
    fn tls_config_uses_the_os_trust_store() {
        // The CI image has ca-certificates; without it the error must say what to install.
        match tls_config() {
            Ok(config) => assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]),
            Err(e) => assert!(e.to_string().contains("ca-certificates"), "{e}"),
        }
    }
}
