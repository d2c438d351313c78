//! `wss://` end to end: a TLS terminator (tokio-rustls, certificates made at test time with rcgen)
//! in front of a real in-process socketioxide server.
//!
//! The client trusts the test CA through `SSL_CERT_FILE`, the documented way to add a private CA.
//! The trust store is read once per process, so everything runs in one test in this binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Data};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use wegent_executor::sio::{self, ConnectError, ConnectOptions};

const NS: &str = "/local-executor";

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// A server certificate for `names`, with its key.
    fn leaf(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }
}

async fn start_server() -> SocketAddr {
    let (layer, io) = SocketIo::builder().build_layer();
    // Installed in a middleware: socketioxide runs the connect handler in a task spawned *after*
    // sending CONNECT, so a handler installed there can miss the client's first call.
    let install = |s: socketioxide::extract::SocketRef| {
        s.on("echo", async |Data(d): Data<Value>, ack: AckSender| {
            let _ = ack.send(&d);
        });
        std::future::ready(Ok::<(), std::convert::Infallible>(()))
    };
    let on_connect = async |_: socketioxide::extract::SocketRef| {};
    io.ns(NS, on_connect.with(install));
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Terminate TLS with `cert` and forward the plain bytes to `upstream`.
async fn start_tls_proxy(
    upstream: SocketAddr,
    (cert, key): (CertificateDer<'static>, PrivateKeyDer<'static>),
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake is the client refusing our certificate: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut plain = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

fn options(url: String) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url, NS, json!({"token": "tls-test-token"}));
    opts.connect_timeout = Duration::from_secs(5);
    opts
}

fn tls_error(result: Result<impl std::fmt::Debug, ConnectError>) -> String {
    match result {
        Err(ConnectError::Tls(text)) => text,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn wss_works_with_a_trusted_ca_and_certificate_problems_are_typed_with_a_hint() {
    let trusted = Ca::new("Wegent test CA");
    let stranger = Ca::new("Unknown CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, trusted.issuer.pem()).unwrap();
    // Before the first TLS connect of this process: the trust store is loaded once.
    std::env::set_var("SSL_CERT_FILE", &ca_file);

    let server = start_server().await;
    let good = start_tls_proxy(server, trusted.leaf(&["localhost", "127.0.0.1"])).await;

    for url in [
        format!("https://localhost:{good}"),
        format!("wss://127.0.0.1:{good}/"),
    ] {
        let (client, _inbound) = sio::connect(options(url.clone()))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let ack = client
            .call("echo", json!({"over": "tls"}), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ack, vec![json!({"over": "tls"})], "{url}");
        client.disconnect().await;
    }

    let untrusted = start_tls_proxy(server, stranger.leaf(&["localhost"])).await;
    let text = tls_error(sio::connect(options(format!("https://localhost:{untrusted}"))).await);
    assert!(text.contains("SSL_CERT_FILE"), "{text}");

    let wrong_name = start_tls_proxy(server, trusted.leaf(&["wegent.example"])).await;
    let text = tls_error(sio::connect(options(format!("https://localhost:{wrong_name}"))).await);
    assert!(text.contains("not valid for localhost"), "{text}");

    // Plain HTTP spoken to a TLS port is a handshake problem, not a hang.
    let err = sio::connect(options(format!("http://localhost:{good}")))
        .await
        .unwrap_err();
    let ConnectError::Handshake(text) = err else {
        panic!("expected Handshake, got {err:?}");
    };
    assert!(text.contains("use an https:// URL"), "{text}");
}
