//! Starting, restarting and stopping a devserver, and the handle tests and demos hold.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socketioxide::SocketIo;
use tokio::sync::{oneshot, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

use crate::config::DevServerConfig;
use crate::state::{lock, Shared};
use crate::store::Store;

/// Why the devserver could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the devserver database {place}: {source}")]
    Storage {
        place: String,
        source: rusqlite::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// One listening period of the HTTP + Socket.IO server (a restart ends one and starts another).
struct Run {
    io: SocketIo,
    stop: oneshot::Sender<()>,
    serve: JoinHandle<()>,
}

/// Entry point: `DevServer::start(config)`.
pub struct DevServer;

impl DevServer {
    /// Opens storage, creates the demo user, binds, and serves until [`RunningDevServer::shutdown`].
    pub async fn start(cfg: DevServerConfig) -> Result<RunningDevServer, StartError> {
        let place = match &cfg.storage {
            crate::config::Storage::Memory => "(in memory)".to_string(),
            crate::config::Storage::File(path) => path.display().to_string(),
        };
        let storage_error = |source| StartError::Storage {
            place: place.clone(),
            source,
        };
        let store = Store::open(&cfg.storage).map_err(storage_error)?;
        let demo = match &cfg.demo_user {
            Some((name, password)) => {
                Some(store.upsert_user(name, password).map_err(storage_error)?)
            }
            None => None,
        };
        let shared = Shared::new(cfg.clone(), store);
        let (run, addr) = start_run(&shared, cfg.bind).await?;
        let _ = shared.public_url.set(cfg.public_url_for(addr));
        let demo_token =
            demo.map(|u| crate::auth::login_token(&u, &cfg.jwt_secret, cfg.timings.jwt_lifetime));
        let monitor = spawn_monitor(shared.clone());
        tracing::info!(%addr, "devserver listening");
        Ok(RunningDevServer {
            shared,
            addr,
            run: AsyncMutex::new(Some(run)),
            monitor,
            demo_token,
        })
    }
}

fn app(shared: &Arc<Shared>) -> (Router, SocketIo) {
    let t = &shared.cfg.timings;
    let (layer, io) = SocketIo::builder()
        .ping_interval(t.ping_interval)
        .ping_timeout(t.ping_timeout)
        .max_payload(1_000_000)
        .ws_max_message_size(1_000_000)
        .build_layer();
    crate::device_ns::install(&io, shared.clone());
    let router = Router::new()
        .merge(crate::rest::router())
        .merge(crate::console::router())
        .nest_service(
            crate::config::ModelSettings::BUILT_IN_PATH,
            crate::model_mock::router(crate::model_mock::Script::Demo),
        )
        .fallback(crate::rest::not_found)
        .layer(layer)
        // Outermost, so Socket.IO, the console and the REST API are all behind the Host check.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::host_guard::check,
        ))
        .with_state(shared.clone());
    (router, io)
}

async fn start_run(
    shared: &Arc<Shared>,
    bind: SocketAddr,
) -> Result<(Run, SocketAddr), StartError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let (router, io) = app(shared);
    *shared.io.write().unwrap_or_else(|p| p.into_inner()) = Some(io.clone());
    shared.shutting_down.store(false, Ordering::SeqCst);
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = crate::listener::KillableListener {
        inner: listener,
        connections: shared.connections.clone(),
    };
    let service = router.into_make_service_with_connect_info::<crate::listener::PeerAddr>();
    let serve = tokio::spawn(async move {
        let server = axum::serve(listener, service).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::error!("devserver stopped with an error: {e}");
        }
    });
    Ok((Run { io, stop, serve }, addr))
}

/// Drops every socket, stops accepting and frees the port.
async fn stop_run(shared: &Shared, run: Run) {
    shared.shutting_down.store(true, Ordering::SeqCst);
    run.io.close().await;
    let _ = run.stop.send(());
    let mut serve = run.serve;
    // Open HTTP streams (the console's event stream) would hold a graceful shutdown forever.
    if tokio::time::timeout(Duration::from_millis(500), &mut serve)
        .await
        .is_err()
    {
        serve.abort();
        let _ = serve.await;
    }
    *shared.io.write().unwrap_or_else(|p| p.into_inner()) = None;
}

fn spawn_monitor(shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(shared.cfg.timings.monitor_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            crate::tasks::monitor_tick(&shared);
        }
    })
}

/// A running devserver. Dropping it without [`shutdown`](Self::shutdown) leaves the server task running
/// until the runtime ends (fine in tests).
pub struct RunningDevServer {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    run: AsyncMutex<Option<Run>>,
    monitor: JoinHandle<()>,
    demo_token: Option<String>,
}

impl RunningDevServer {
    /// `http://127.0.0.1:<port>`: the backend URL and the Socket.IO URL (`/socket.io/` at the root).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL written into payloads (`backend_url`, the demo model): `DevServerConfig::public_url`,
    /// else [`url`](Self::url).
    pub fn public_url(&self) -> String {
        self.shared.public_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A login JWT of the demo user (if the config has one).
    pub fn demo_token(&self) -> Option<String> {
        self.demo_token.clone()
    }

    /// A one-time link that opens the console signed in as the demo user (`<url>/#login=<code>`,
    /// valid once, for 10 minutes). `None` without a demo user.
    pub fn console_sign_in_url(&self) -> Option<String> {
        let (name, _) = self.shared.cfg.demo_user.as_ref()?;
        let user = self.shared.store().user_by_name(name).ok()??;
        let code = lock(&self.shared.sign_in_links).issue(user, std::time::Instant::now());
        Some(format!("{}/#login={code}", self.shared.public_url()))
    }

    /// The demo account `(user name, password)`.
    pub fn demo_credentials(&self) -> Option<(String, String)> {
        self.shared.cfg.demo_user.clone()
    }

    pub fn config(&self) -> &DevServerConfig {
        &self.shared.cfg
    }

    /// Stops accepting, drops all sockets, and binds the same port again.
    pub async fn restart(&self) -> Result<(), StartError> {
        self.stop_accepting().await;
        self.resume().await
    }

    /// Drops all sockets and closes the port (connects fail until [`resume`](Self::resume)).
    pub async fn stop_accepting(&self) {
        if let Some(run) = self.run.lock().await.take() {
            stop_run(&self.shared, run).await;
        }
    }

    /// Listens again on the same address. No-op if already listening.
    pub async fn resume(&self) -> Result<(), StartError> {
        let mut slot = self.run.lock().await;
        if slot.is_none() {
            let (run, _) = start_run(&self.shared, self.addr).await?;
            *slot = Some(run);
        }
        Ok(())
    }

    /// Stops everything.
    pub async fn shutdown(self) {
        self.stop_accepting().await;
        self.monitor.abort();
    }

    /// Runs one monitor pass now (expire online keys, fail orphaned RUNNING tasks).
    pub fn run_monitor_now(&self) {
        crate::tasks::monitor_tick(&self.shared);
    }

    /// Successful registers of `device_id` so far.
    pub fn register_count(&self, device_id: &str) -> u64 {
        lock(&self.shared.register_counts)
            .get(device_id)
            .copied()
            .unwrap_or(0)
    }
}
