//! Builders for unit tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wegent_executor::status::{Connection, DeviceStatus, RunningTask, Slots};
use wegent_executor::token::TokenKind;

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn task(id: i64, title: &str, started: SystemTime) -> RunningTask {
    RunningTask {
        task_id: id,
        subtask_id: id * 10,
        title: title.to_owned(),
        agent: wegent_executor::task::agent::AgentKind::Claude,
        started_at: started,
        project: None,
        folder: None,
    }
}

/// A status with `used` running tasks (started at t=1000) out of `max` slots and a login token.
pub fn status(connection: Connection, max: u8, used: usize) -> DeviceStatus {
    DeviceStatus {
        connection,
        device_id: "device-abc".into(),
        device_name: "Linux - build-box".into(),
        server_url: "http://127.0.0.1:8000".into(),
        web_url: "http://127.0.0.1:8000".into(),
        slots: Slots {
            max,
            running: (0..used)
                .map(|i| task(i as i64 + 1, &format!("Task {}", i + 1), at(1000)))
                .collect(),
            queued: 0,
            waiting: Vec::new(),
            max_queued: 100,
        },
        token_kind: Some(TokenKind::Jwt),
        token_expires_at: Some(at(10_000_000)),
        is_default: Some(false),
        last_error: None,
        insecure_transport: false,
        paused: false,
        draining: false,
        recent: Vec::new(),
    }
}
