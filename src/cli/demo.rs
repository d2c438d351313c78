//! `wegent-executor --demo`: the tray's demo for machines without a display (a server, SSH). The
//! Wegent devserver runs in this process on 127.0.0.1 with its demo account and demo model; the
//! device signs in to it and connects, and the console's URL is printed. The demo token lives in
//! memory only: nothing is written to the keychain or `config.toml`.

use std::net::SocketAddr;

use wegent_devserver::{DevServer, DevServerConfig, Storage};

use super::commands::CliError;
use super::RunArgs;
use crate::settings::{Settings, Source, Sourced};
use crate::token::Token;

pub(super) async fn run(args: &RunArgs, settings: &Settings) -> Result<(), CliError> {
    let config = DevServerConfig::demo(SocketAddr::from(([127, 0, 0, 1], 0)), Storage::Memory);
    let server = DevServer::start(config)
        .await
        .map_err(|e| CliError::failed(format!("could not start the demo server: {e}")))?;
    let url = server.url();
    let token = server
        .demo_token()
        .map(|t| Token::new(&t))
        .ok_or_else(|| CliError::failed("the demo server has no demo account"))?;
    let (user, password) = server.demo_credentials().unwrap_or_default();
    // Random per run; shown once here, never in the log.
    crate::redact::register_secret(&password);
    println!("Wegent demo console: {url}  (user {user}, password {password})");
    println!("{}", ssh_hint(&url));
    let mut settings = settings.clone();
    settings.backend_url = Some(Sourced {
        value: url,
        source: Source::Flag,
    });
    settings.socket_url = None;
    let result = super::run::run_device(args, &settings, token, "the demo server").await;
    server.shutdown().await;
    result
}

/// How to reach a console that listens on this machine's loopback from another computer.
fn ssh_hint(url: &str) -> String {
    let port = url.rsplit(':').next().unwrap_or("PORT");
    format!(
        "Open it in a browser on this machine, or from your computer over SSH: \
         ssh -L {port}:127.0.0.1:{port} <this machine>, then open {url} there. \
         Send a task from the console; Ctrl-C stops the demo."
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ssh_hint_forwards_the_consoles_port() {
        let hint = super::ssh_hint("http://127.0.0.1:43117");
        assert!(hint.contains("ssh -L 43117:127.0.0.1:43117"), "{hint}");
    }
}
