//! Online state with TTLs: the devserver's stand-in for the Redis keys
//! `device:online:{user_id}:{device_id}` (protocol.md §2 step 3, §3, §4). Pure: the clock is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::schema::{HeartbeatPayload, RuntimeCapacity};

/// (user id, device id)
pub type DeviceKey = (i64, String);

#[derive(Debug, Clone)]
pub struct OnlineEntry {
    pub socket_id: String,
    pub name: String,
    /// `online` or `busy` (set by `device:status`).
    pub status: String,
    pub last_heartbeat: String,
    pub expires_at: Instant,
    pub executor_version: Option<String>,
    pub client_ip: String,
    pub runtime_transfer_host: Option<String>,
    pub runtime_instance_id: Option<String>,
    pub runtime_features: Option<Value>,
    pub running_task_ids: Vec<i64>,
    pub runtime_capacity: Option<RuntimeCapacity>,
}

impl OnlineEntry {
    /// `(slot_used, slot_max)`: from `runtime_capacity`, else `(0, 0)`.
    pub fn slots(&self) -> (i64, i64) {
        self.runtime_capacity
            .as_ref()
            .map(|c| (c.active, c.limit))
            .unwrap_or((0, 0))
    }
}

/// What a heartbeat refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    Refreshed,
    /// The key had expired (or was gone) and was recreated: "ghost-offline recovery".
    Recreated,
}

#[derive(Debug, Default)]
pub struct OnlineRegistry {
    entries: HashMap<DeviceKey, OnlineEntry>,
}

impl OnlineRegistry {
    /// The entry if it has not expired at `now`.
    pub fn live(&self, key: &DeviceKey, now: Instant) -> Option<&OnlineEntry> {
        self.entries.get(key).filter(|e| e.expires_at > now)
    }

    pub fn live_mut(&mut self, key: &DeviceKey, now: Instant) -> Option<&mut OnlineEntry> {
        self.entries.get_mut(key).filter(|e| e.expires_at > now)
    }

    pub fn set(&mut self, key: DeviceKey, entry: OnlineEntry) {
        self.entries.insert(key, entry);
    }

    pub fn remove(&mut self, key: &DeviceKey) -> Option<OnlineEntry> {
        self.entries.remove(key)
    }

    /// `refresh_heartbeat`: reset the TTL, overwrite the heartbeat fields, replace the runtime fields.
    pub fn refresh(
        &mut self,
        key: &DeviceKey,
        template: impl FnOnce() -> OnlineEntry,
        hb: &HeartbeatPayload,
        ttl: Duration,
        now: Instant,
    ) -> Refresh {
        let outcome = if self.live(key, now).is_some() {
            Refresh::Refreshed
        } else {
            Refresh::Recreated
        };
        if outcome == Refresh::Recreated {
            self.entries.insert(key.clone(), template());
        }
        let e = self.entries.get_mut(key).expect("entry present");
        e.expires_at = now + ttl;
        e.last_heartbeat = crate::store::now_iso();
        e.running_task_ids = hb.running_task_ids.clone();
        if hb.executor_version.is_some() {
            e.executor_version = hb.executor_version.clone();
        }
        e.runtime_instance_id = hb.runtime_instance_id.clone();
        e.runtime_capacity = hb.runtime_capacity.clone();
        e.runtime_features = hb.runtime_features.clone();
        if hb.runtime_transfer_host.is_some() {
            e.runtime_transfer_host = hb.runtime_transfer_host.clone();
        }
        outcome
    }

    /// Removes and returns the keys whose TTL ran out.
    pub fn purge_expired(&mut self, now: Instant) -> Vec<DeviceKey> {
        let expired: Vec<DeviceKey> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.entries.remove(k);
        }
        expired
    }

    /// Live keys of one socket (used when a socket disconnects or is dropped by a fault).
    pub fn keys_of_socket(&self, socket_id: &str) -> Vec<DeviceKey> {
        self.entries
            .iter()
            .filter(|(_, e)| e.socket_id == socket_id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(now: Instant) -> OnlineEntry {
        OnlineEntry {
            socket_id: "s1".into(),
            name: "n".into(),
            status: "online".into(),
            last_heartbeat: String::new(),
            expires_at: now + Duration::from_secs(90),
            executor_version: Some("1.0".into()),
            client_ip: "127.0.0.1".into(),
            runtime_transfer_host: None,
            runtime_instance_id: None,
            runtime_features: None,
            running_task_ids: vec![],
            runtime_capacity: None,
        }
    }

    fn hb() -> HeartbeatPayload {
        crate::schema::validate_heartbeat(&serde_json::json!({"device_id":"d",
            "runtime_capacity":{"limit":5,"active":1,"active_task_ids":["7"],"queued":0}}))
        .unwrap()
    }

    #[test]
    fn ttl_expiry_and_ghost_recovery() {
        let t0 = Instant::now();
        let key = (1, "d".to_string());
        let mut reg = OnlineRegistry::default();
        reg.set(key.clone(), entry(t0));
        assert!(reg.live(&key, t0 + Duration::from_secs(89)).is_some());
        assert!(reg.live(&key, t0 + Duration::from_secs(90)).is_none());
        let later = t0 + Duration::from_secs(100);
        assert_eq!(
            reg.refresh(&key, || entry(later), &hb(), Duration::from_secs(90), later),
            Refresh::Recreated
        );
        assert_eq!(reg.live(&key, later).unwrap().slots(), (1, 5));
        assert_eq!(
            reg.refresh(&key, || entry(later), &hb(), Duration::from_secs(90), later),
            Refresh::Refreshed
        );
    }

    #[test]
    fn purge_returns_only_expired() {
        let t0 = Instant::now();
        let mut reg = OnlineRegistry::default();
        reg.set((1, "a".into()), entry(t0));
        let mut short = entry(t0);
        short.expires_at = t0 + Duration::from_secs(1);
        reg.set((1, "b".into()), short);
        assert_eq!(
            reg.purge_expired(t0 + Duration::from_secs(2)),
            vec![(1, "b".to_string())]
        );
        assert_eq!(reg.keys_of_socket("s1"), vec![(1, "a".to_string())]);
    }
}
