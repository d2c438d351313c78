//! `wegent-devserver`: runs a Wegent-compatible backend locally and prints how to use it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use wegent_devserver::{DevServer, DevServerConfig, ModelSettings, Storage};

/// A Wegent-compatible local backend for development and demos.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Data directory for the SQLite database.
    #[arg(long, default_value = ".wegent-devserver")]
    data_dir: PathBuf,
    /// Keep everything in memory (nothing is written to disk).
    #[arg(long)]
    in_memory: bool,
    /// Demo account user name.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Demo account password. Default: a random one per run, printed at start.
    #[arg(long, env = "WEGENT_DEVSERVER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The URL devices reach this server at (for `backend_url` and the demo model URL in task
    /// payloads). Default: http://<bound address>.
    #[arg(long, env = "WEGENT_DEVSERVER_PUBLIC_URL")]
    public_url: Option<String>,
    /// A Host name to answer besides 127.0.0.1, localhost and [::1] (repeatable; `*` for any).
    /// Needed when devices or browsers reach this server under another name (DNS-rebinding guard).
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// Model base URL written into task:execute `model_config`: an Anthropic-compatible API, or
    /// `builtin` for this server's demo model (scripted answers, no AI, no account needed).
    #[arg(long, default_value = ModelSettings::BUILT_IN)]
    model_base_url: String,
    /// Model id written into `model_config`.
    #[arg(long, default_value = "claude-sonnet-4-5")]
    model_id: String,
    /// Model base URL for Codex bots: an OpenAI Responses API (codex POSTs `<url>/responses`),
    /// or `builtin` for this server's demo model.
    #[arg(long, default_value = ModelSettings::BUILT_IN)]
    codex_model_base_url: String,
    /// Model id written into a Codex bot's `model_config`.
    #[arg(long, default_value = ModelSettings::CODEX_MODEL_ID)]
    codex_model_id: String,
    /// HS256 secret for login tokens. Default: kept in `<data-dir>/jwt-secret` (random per start with --in-memory).
    #[arg(long, env = "WEGENT_DEVSERVER_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let storage = if args.in_memory {
        Storage::Memory
    } else {
        if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
            eprintln!(
                "error: cannot create the data directory {}: {e}",
                args.data_dir.display()
            );
            return std::process::ExitCode::FAILURE;
        }
        Storage::File(args.data_dir.join("devserver.sqlite3"))
    };
    let mut cfg = DevServerConfig::demo(args.bind, storage);
    let password = args
        .password
        .clone()
        .unwrap_or_else(wegent_devserver::config::demo_password);
    cfg.demo_user = Some((args.user.clone(), password.clone()));
    cfg.public_url = args.public_url.clone();
    cfg.allowed_hosts = args.allowed_hosts.clone();
    // The model key is a placeholder: the built-in demo model and mock APIs ignore it.
    cfg.model = ModelSettings {
        base_url: args.model_base_url,
        model_id: args.model_id,
        ..ModelSettings::default()
    };
    cfg.codex_model = ModelSettings {
        base_url: args.codex_model_base_url,
        model_id: args.codex_model_id,
        ..ModelSettings::codex()
    };
    match (args.jwt_secret, args.in_memory) {
        (Some(secret), _) => cfg.jwt_secret = secret,
        (None, false) => {
            match persistent_secret(&args.data_dir.join("jwt-secret"), &cfg.jwt_secret) {
                Ok(secret) => cfg.jwt_secret = secret,
                Err(e) => {
                    eprintln!(
                        "error: cannot read or create {}: {e}",
                        args.data_dir.join("jwt-secret").display()
                    );
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        (None, true) => {}
    }
    let server = match DevServer::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("Wegent devserver listening on {}", server.url());
    println!("  console:   {}/", server.url());
    if let Some(link) = server.console_sign_in_url() {
        // One use, 10 minutes: the quickest way in for whoever started the server.
        println!("  sign in:   {link}");
    }
    if server.public_url() != server.url() {
        println!("  public:    {}", server.public_url());
    }
    if args.password.is_some() {
        println!(
            "  account:   {} (password from --password / WEGENT_DEVSERVER_PASSWORD)",
            args.user
        );
    } else {
        // Random per run and shown only here, so the person who started the server can sign in.
        println!("  account:   {} / password: {password}", args.user);
    }
    println!("  token:     {}", server.demo_token().unwrap_or_default());
    println!(
        "  connect:   WEGENT_BACKEND_URL={} WEGENT_AUTH_TOKEN=<token> wegent-executor",
        server.url()
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("shutting down");
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}

/// The token-signing secret kept in the data directory, so printed tokens survive a restart.
fn persistent_secret(path: &std::path::Path, fresh: &str) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, fresh.as_bytes())?;
    Ok(fresh.to_string())
}
