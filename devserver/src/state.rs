//! The state shared by the Socket.IO handlers, the REST routes and the monitor.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use socketioxide::extract::SocketRef;
use socketioxide::SocketIo;
use tokio::sync::broadcast;

use crate::auth::{AuthType, RateLimiter};
use crate::config::DevServerConfig;
use crate::events::ServerEvent;
use crate::faults::Faults;
use crate::online::{DeviceKey, OnlineRegistry};
use crate::store::{Store, User};

/// One `/local-executor` socket's session (the server's `sio.save_session` fields).
#[derive(Clone)]
pub struct Session {
    pub socket: SocketRef,
    pub user: User,
    pub auth_type: AuthType,
    pub client_ip: String,
    /// The TCP peer (address and port), to cut the connection on a fault.
    pub peer: Option<std::net::SocketAddr>,
    pub device_id: Option<String>,
    pub registered: bool,
    /// The `runtime_instance_id` sent at register; heartbeats must repeat it.
    pub runtime_instance_id: Option<String>,
}

pub struct Shared {
    pub cfg: DevServerConfig,
    pub store: Mutex<Store>,
    pub online: Mutex<OnlineRegistry>,
    pub sessions: Mutex<HashMap<String, Session>>,
    pub events: broadcast::Sender<ServerEvent>,
    pub faults: Mutex<Faults>,
    pub rate: Mutex<RateLimiter>,
    /// Last successful register per (user, device), for the upsert debounce.
    pub last_register: Mutex<HashMap<DeviceKey, Instant>>,
    /// Successful registers per device id.
    pub register_counts: Mutex<HashMap<String, u64>>,
    /// Answer text streamed so far per subtask.
    pub deltas: Mutex<HashMap<i64, String>>,
    /// The Socket.IO server of the current run (replaced on restart).
    pub io: RwLock<Option<SocketIo>>,
    pub shutting_down: AtomicBool,
    /// Live TCP connections, for the "drop a device's socket" fault.
    pub connections: Arc<crate::listener::Connections>,
    /// The URL for payloads (`DevServerConfig::public_url_for` the bound address), set once bound.
    pub public_url: std::sync::OnceLock<String>,
    /// `Host` names accepted besides loopback: the configured ones plus the public URL's host.
    pub allowed_hosts: Vec<String>,
    /// Open one-time console sign-in links.
    pub sign_in_links: Mutex<crate::sign_in_links::SignInLinks>,
}

/// Locks a mutex, recovering from poisoning: a panicked request must not take the server down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(cfg: DevServerConfig, store: Store) -> Arc<Self> {
        let (events, _) = broadcast::channel(8192);
        Arc::new(Self {
            store: Mutex::new(store),
            online: Mutex::new(OnlineRegistry::default()),
            sessions: Mutex::new(HashMap::new()),
            events,
            faults: Mutex::new(Faults::default()),
            rate: Mutex::new(RateLimiter::default()),
            last_register: Mutex::new(HashMap::new()),
            register_counts: Mutex::new(HashMap::new()),
            deltas: Mutex::new(HashMap::new()),
            io: RwLock::new(None),
            shutting_down: AtomicBool::new(false),
            connections: Arc::default(),
            public_url: std::sync::OnceLock::new(),
            allowed_hosts: allowed_hosts(&cfg),
            sign_in_links: Mutex::default(),
            cfg,
        })
    }

    /// The URL devices reach this server at (see `DevServerConfig::public_url`).
    pub fn public_url(&self) -> String {
        self.public_url
            .get()
            .cloned()
            .unwrap_or_else(|| self.cfg.public_url_for(self.cfg.bind))
    }

    pub fn emit(&self, event: ServerEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn io(&self) -> Option<SocketIo> {
        self.io.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn session(&self, sid: &str) -> Option<Session> {
        lock(&self.sessions).get(sid).cloned()
    }

    /// The socket currently recorded online for (user, device), if any.
    pub fn device_socket(&self, user_id: i64, device_id: &str) -> Option<SocketRef> {
        let sid = lock(&self.online)
            .live(&(user_id, device_id.to_string()), Instant::now())?
            .socket_id
            .clone();
        self.session(&sid).map(|s| s.socket)
    }

    /// Sockets of any user that registered `device_id`.
    pub fn sockets_of_device(&self, device_id: &str) -> Vec<SocketRef> {
        self.sessions_of_device(device_id)
            .into_iter()
            .map(|s| s.socket)
            .collect()
    }

    pub fn sessions_of_device(&self, device_id: &str) -> Vec<Session> {
        lock(&self.sessions)
            .values()
            .filter(|s| s.device_id.as_deref() == Some(device_id))
            .cloned()
            .collect()
    }
}

/// The configured extra `Host` names plus the host of the configured public URL.
fn allowed_hosts(cfg: &DevServerConfig) -> Vec<String> {
    let public_host = cfg
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string));
    cfg.allowed_hosts
        .iter()
        .cloned()
        .chain(public_host)
        .collect()
}

/// Room of a registered device: `device:{user_id}:{device_id}`.
pub fn device_room(user_id: i64, device_id: &str) -> String {
    format!("device:{user_id}:{device_id}")
}

pub const NAMESPACE: &str = "/local-executor";
