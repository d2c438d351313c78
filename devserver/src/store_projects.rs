//! Project rows of the [`Store`]: a name and the validated `config` JSON, per user.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{now_iso, DbResult, Store};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: String,
    /// The project config as validated (`projects::ProjectConfig`), stored as JSON.
    pub config: Value,
    pub created_at: String,
    pub updated_at: String,
}

const PROJECT_COLS: &str = "id, user_id, name, description, config, created_at, updated_at";

fn project_from_row(r: &Row<'_>) -> DbResult<ProjectRecord> {
    let config: String = r.get(4)?;
    Ok(ProjectRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        config: serde_json::from_str(&config).unwrap_or(Value::Null),
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

impl Store {
    pub fn insert_project(
        &self,
        user_id: i64,
        name: &str,
        description: &str,
        config: &Value,
    ) -> DbResult<ProjectRecord> {
        let now = now_iso();
        self.conn.execute(
            "INSERT INTO projects (user_id, name, description, config, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![user_id, name, description, config.to_string(), now],
        )?;
        Ok(self
            .project(user_id, self.conn.last_insert_rowid())?
            .expect("project just written"))
    }

    /// An active project of the user.
    pub fn project(&self, user_id: i64, project_id: i64) -> DbResult<Option<ProjectRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ?1 AND user_id = ?2 AND is_active = 1"),
                params![project_id, user_id],
                project_from_row,
            )
            .optional()
    }

    pub fn projects(&self, user_id: i64) -> DbResult<Vec<ProjectRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE user_id = ?1 AND is_active = 1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([user_id], project_from_row)?;
        rows.collect()
    }

    /// Hides a project (the backend deactivates a project whose clone failed).
    pub fn deactivate_project(&self, project_id: i64) -> DbResult<()> {
        self.conn.execute(
            "UPDATE projects SET is_active = 0, updated_at = ?2 WHERE id = ?1",
            params![project_id, now_iso()],
        )?;
        Ok(())
    }

    /// `(id, title, status)` of the project's visible tasks, newest first.
    pub fn project_tasks(&self, project_id: i64) -> DbResult<Vec<(i64, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, title, status FROM tasks WHERE project_id = ?1 AND deleted = 0 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([project_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    }
}
