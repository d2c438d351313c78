//! Durable state in SQLite: users, API keys, devices (the Device CRD) and tasks/subtasks.
//! Online state lives in memory (`online.rs`), as it lives in Redis on the real server.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Storage;
use crate::settle::TaskStatus;

pub type DbResult<T> = Result<T, rusqlite::Error>;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub user_name: String,
}

/// The Device CRD fields the devserver keeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRecord {
    pub id: i64,
    pub user_id: i64,
    pub device_id: String,
    pub name: String,
    pub device_type: String,
    pub bind_shell: String,
    pub is_default: bool,
    pub is_active: bool,
    pub client_ip: Option<String>,
    pub runtime_transfer_host: Option<String>,
    pub runtime_instance_id: Option<String>,
    pub app_device_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub id: i64,
    pub user_id: i64,
    pub device_id: String,
    /// The workspace project the task belongs to (0: none).
    pub project_id: i64,
    /// The bot's agent, kept for the task's follow-ups.
    pub agent: crate::bots::Agent,
    pub title: String,
    pub status: TaskStatus,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubtaskRecord {
    pub id: i64,
    pub task_id: i64,
    pub role: String,
    pub message_id: i64,
    pub prompt: String,
    pub status: TaskStatus,
    pub result: Option<String>,
    pub error_message: Option<String>,
    pub executor_name: String,
    pub executor_namespace: String,
}

/// Fields of a register that reach the CRD.
pub struct DeviceUpsert<'a> {
    pub user_id: i64,
    pub device_id: &'a str,
    pub name: &'a str,
    pub device_type: &'a str,
    pub bind_shell: &'a str,
    pub client_ip: &'a str,
    pub runtime_transfer_host: Option<&'a str>,
    pub runtime_instance_id: Option<&'a str>,
    pub app_device_id: Option<&'a str>,
}

pub struct Store {
    pub(crate) conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, user_name TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL, salt TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS api_keys (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, name TEXT NOT NULL,
  description TEXT, key_hash TEXT NOT NULL UNIQUE, key_prefix TEXT NOT NULL, key_type TEXT NOT NULL DEFAULT 'personal',
  is_active INTEGER NOT NULL DEFAULT 1, expires_at TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT);
CREATE TABLE IF NOT EXISTS devices (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, device_id TEXT NOT NULL,
  name TEXT NOT NULL, device_type TEXT NOT NULL, bind_shell TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0,
  is_active INTEGER NOT NULL DEFAULT 1, client_ip TEXT, runtime_transfer_host TEXT, runtime_instance_id TEXT,
  app_device_id TEXT, UNIQUE(user_id, device_id));
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, device_id TEXT NOT NULL,
  title TEXT NOT NULL, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  project_id INTEGER NOT NULL DEFAULT 0, shell_type TEXT NOT NULL DEFAULT 'ClaudeCode');
CREATE TABLE IF NOT EXISTS projects (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', config TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subtasks (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, role TEXT NOT NULL,
  message_id INTEGER NOT NULL, prompt TEXT NOT NULL, status TEXT NOT NULL, result TEXT, error_message TEXT,
  executor_name TEXT NOT NULL DEFAULT '', executor_namespace TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
";

/// ISO-8601 UTC timestamp without an offset, as the server's naive datetimes print.
pub fn now_iso() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_from_unix(d.as_secs() as i64, d.subsec_micros())
}

/// Civil-from-days conversion (Howard Hinnant's algorithm), so no date crate is needed.
pub fn iso_from_unix(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn sha256_hex(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn device_from_row(r: &Row<'_>) -> DbResult<DeviceRecord> {
    Ok(DeviceRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        device_id: r.get(2)?,
        name: r.get(3)?,
        device_type: r.get(4)?,
        bind_shell: r.get(5)?,
        is_default: r.get(6)?,
        is_active: r.get(7)?,
        client_ip: r.get(8)?,
        runtime_transfer_host: r.get(9)?,
        runtime_instance_id: r.get(10)?,
        app_device_id: r.get(11)?,
    })
}

const DEVICE_COLS: &str = "id, user_id, device_id, name, device_type, bind_shell, is_default, is_active, client_ip, runtime_transfer_host, runtime_instance_id, app_device_id";

pub(crate) fn subtask_from_row(r: &Row<'_>) -> DbResult<SubtaskRecord> {
    Ok(SubtaskRecord {
        id: r.get(0)?,
        task_id: r.get(1)?,
        role: r.get(2)?,
        message_id: r.get(3)?,
        prompt: r.get(4)?,
        status: TaskStatus::parse(&r.get::<_, String>(5)?),
        result: r.get(6)?,
        error_message: r.get(7)?,
        executor_name: r.get(8)?,
        executor_namespace: r.get(9)?,
    })
}

/// Schema upgrade for databases written by an older devserver (`CREATE TABLE IF NOT EXISTS`
/// keeps an existing table as it is).
fn add_column_if_missing(conn: &Connection, table: &str, column: &str, decl: &str) -> DbResult<()> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(());
        }
    }
    conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))
}

pub(crate) const SUBTASK_COLS: &str = "id, task_id, role, message_id, prompt, status, result, error_message, executor_name, executor_namespace";

impl Store {
    pub fn open(storage: &Storage) -> DbResult<Self> {
        let conn = match storage {
            Storage::Memory => Connection::open_in_memory()?,
            Storage::File(path) => Connection::open(path)?,
        };
        conn.execute_batch(SCHEMA)?;
        add_column_if_missing(&conn, "tasks", "project_id", "INTEGER NOT NULL DEFAULT 0")?;
        add_column_if_missing(
            &conn,
            "tasks",
            "shell_type",
            "TEXT NOT NULL DEFAULT 'ClaudeCode'",
        )?;
        Ok(Self { conn })
    }

    // ---- users ------------------------------------------------------------------------------

    /// Creates a user, or resets the password of an existing one; returns it.
    pub fn upsert_user(&self, user_name: &str, password: &str) -> DbResult<User> {
        let salt = crate::random_token(12);
        let hash = sha256_hex(&format!("{salt}:{password}"));
        self.conn.execute(
            "INSERT INTO users (user_name, password_hash, salt) VALUES (?1, ?2, ?3)
             ON CONFLICT(user_name) DO UPDATE SET password_hash = excluded.password_hash, salt = excluded.salt",
            params![user_name, hash, salt],
        )?;
        Ok(self.user_by_name(user_name)?.expect("user just written"))
    }

    pub fn user_by_name(&self, user_name: &str) -> DbResult<Option<User>> {
        self.conn
            .query_row(
                "SELECT id, user_name FROM users WHERE user_name = ?1 AND is_active = 1",
                [user_name],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        user_name: r.get(1)?,
                    })
                },
            )
            .optional()
    }

    pub fn check_password(&self, user_name: &str, password: &str) -> DbResult<Option<User>> {
        let row: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT id, password_hash, salt FROM users WHERE user_name = ?1 AND is_active = 1",
                [user_name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.and_then(|(id, hash, salt)| {
            (sha256_hex(&format!("{salt}:{password}")) == hash).then(|| User {
                id,
                user_name: user_name.to_string(),
            })
        }))
    }

    // ---- API keys ---------------------------------------------------------------------------

    /// Stores the SHA-256 of a new `wg-` key; returns the row as the REST API shows it (without the key).
    pub fn insert_api_key(
        &self,
        user_id: i64,
        name: &str,
        description: Option<&str>,
        key: &str,
    ) -> DbResult<serde_json::Value> {
        let now = now_iso();
        let prefix: String = key.chars().take(11).collect::<String>() + "...";
        self.conn.execute(
            "INSERT INTO api_keys (user_id, name, description, key_hash, key_prefix, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, '9999-12-31T23:59:59', ?6)",
            params![user_id, name, description, sha256_hex(key), prefix, now],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok(
            serde_json::json!({"id": id, "name": name, "key_prefix": prefix, "description": description,
            "expires_at": "9999-12-31T23:59:59", "last_used_at": null, "created_at": now, "is_active": true}),
        )
    }

    /// The active personal key's user, and marks it used (`verify_api_key`).
    pub fn user_by_api_key(&self, key: &str) -> DbResult<Option<User>> {
        let user = self
            .conn
            .query_row(
                "SELECT u.id, u.user_name FROM api_keys k JOIN users u ON u.id = k.user_id
                 WHERE k.key_hash = ?1 AND k.is_active = 1 AND k.key_type = 'personal'
                   AND k.expires_at > ?2 AND u.is_active = 1",
                params![sha256_hex(key), now_iso()],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        user_name: r.get(1)?,
                    })
                },
            )
            .optional()?;
        if user.is_some() {
            self.conn.execute(
                "UPDATE api_keys SET last_used_at = ?1 WHERE key_hash = ?2",
                params![now_iso(), sha256_hex(key)],
            )?;
        }
        Ok(user)
    }

    pub fn list_api_keys(&self, user_id: i64) -> DbResult<Vec<serde_json::Value>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, key_prefix, description, expires_at, last_used_at, created_at, is_active
             FROM api_keys WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([user_id], |r| {
            Ok(serde_json::json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?, "key_prefix": r.get::<_, String>(2)?,
                "description": r.get::<_, Option<String>>(3)?, "expires_at": r.get::<_, String>(4)?,
                "last_used_at": r.get::<_, Option<String>>(5)?, "created_at": r.get::<_, String>(6)?,
                "is_active": r.get::<_, bool>(7)?}))
        })?;
        rows.collect()
    }

    // ---- devices ----------------------------------------------------------------------------

    /// `upsert_device_crd`: insert (default if it is the user's first active local device) or
    /// reactivate and refresh; the first stored name wins.
    pub fn upsert_device(&self, d: &DeviceUpsert<'_>) -> DbResult<DeviceRecord> {
        let existing = self.device_any(d.user_id, d.device_id)?;
        if existing.is_some() {
            self.conn.execute(
                "UPDATE devices SET is_active = 1, client_ip = ?3, runtime_transfer_host = ?4, runtime_instance_id = ?5,
                 app_device_id = ?6, device_type = ?7, bind_shell = ?8 WHERE user_id = ?1 AND device_id = ?2",
                params![d.user_id, d.device_id, d.client_ip, d.runtime_transfer_host, d.runtime_instance_id,
                    d.app_device_id, d.device_type, d.bind_shell],
            )?;
        } else {
            let has_local: bool = self.conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM devices WHERE user_id = ?1 AND is_active = 1 AND device_type = 'local')",
                [d.user_id],
                |r| r.get(0),
            )?;
            let is_default = d.device_type == "local" && !has_local;
            self.conn.execute(
                &format!("INSERT INTO devices ({}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9, ?10)", DEVICE_COLS),
                params![d.user_id, d.device_id, d.name, d.device_type, d.bind_shell, is_default, d.client_ip,
                    d.runtime_transfer_host, d.runtime_instance_id, d.app_device_id],
            )?;
        }
        Ok(self
            .device_any(d.user_id, d.device_id)?
            .expect("device just written"))
    }

    /// A device row whether active or soft-deleted.
    pub fn device_any(&self, user_id: i64, device_id: &str) -> DbResult<Option<DeviceRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {DEVICE_COLS} FROM devices WHERE user_id = ?1 AND device_id = ?2"),
                params![user_id, device_id],
                device_from_row,
            )
            .optional()
    }

    pub fn active_device(&self, user_id: i64, device_id: &str) -> DbResult<Option<DeviceRecord>> {
        Ok(self.device_any(user_id, device_id)?.filter(|d| d.is_active))
    }

    pub fn active_devices(&self, user_id: i64) -> DbResult<Vec<DeviceRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE user_id = ?1 AND is_active = 1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([user_id], device_from_row)?;
        rows.collect()
    }

    /// Sets the default and clears it on the user's other devices of the same type. `false` if not found.
    pub fn set_default(&self, user_id: i64, device_id: &str) -> DbResult<bool> {
        let Some(device) = self.active_device(user_id, device_id)? else {
            return Ok(false);
        };
        self.conn.execute(
            "UPDATE devices SET is_default = (device_id = ?2) WHERE user_id = ?1 AND device_type = ?3",
            params![user_id, device_id, device.device_type],
        )?;
        Ok(true)
    }

    /// Soft delete. `false` if there was no active device.
    pub fn soft_delete_device(&self, user_id: i64, device_id: &str) -> DbResult<bool> {
        let n = self.conn.execute(
            "UPDATE devices SET is_active = 0 WHERE user_id = ?1 AND device_id = ?2 AND is_active = 1",
            params![user_id, device_id],
        )?;
        Ok(n > 0)
    }

    /// The default device for dispatch: the flagged one, else the only local device.
    pub fn default_device(&self, user_id: i64) -> DbResult<Option<DeviceRecord>> {
        let devices: Vec<DeviceRecord> = self
            .active_devices(user_id)?
            .into_iter()
            .filter(|d| d.device_type == "local")
            .collect();
        if let Some(d) = devices.iter().find(|d| d.is_default) {
            return Ok(Some(d.clone()));
        }
        Ok((devices.len() == 1).then(|| devices[0].clone()))
    }
}

#[path = "store_tasks.rs"]
mod tasks;

#[path = "store_projects.rs"]
mod projects;
pub use projects::ProjectRecord;

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
