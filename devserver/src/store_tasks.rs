//! Task and subtask rows of the [`Store`].

use rusqlite::{params, OptionalExtension};

use super::{now_iso, subtask_from_row, DbResult, Store, SubtaskRecord, TaskRecord, SUBTASK_COLS};
use crate::bots::Agent;
use crate::settle::TaskStatus;

impl Store {
    pub fn insert_task(
        &self,
        user_id: i64,
        device_id: &str,
        title: &str,
        project_id: i64,
        agent: Agent,
    ) -> DbResult<i64> {
        let now = now_iso();
        self.conn.execute(
            "INSERT INTO tasks (user_id, device_id, title, status, created_at, updated_at, project_id, shell_type) VALUES (?1, ?2, ?3, 'PENDING', ?4, ?4, ?5, ?6)",
            params![user_id, device_id, title, now, project_id, agent.shell_type()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn task(&self, task_id: i64) -> DbResult<Option<TaskRecord>> {
        self.conn
            .query_row(
                "SELECT id, user_id, device_id, title, status, created_at, updated_at, project_id, shell_type FROM tasks WHERE id = ?1 AND deleted = 0",
                [task_id],
                |r| {
                    Ok(TaskRecord {
                        id: r.get(0)?,
                        user_id: r.get(1)?,
                        device_id: r.get(2)?,
                        title: r.get(3)?,
                        status: TaskStatus::parse(&r.get::<_, String>(4)?),
                        created_at: r.get(5)?,
                        updated_at: r.get(6)?,
                        project_id: r.get(7)?,
                        agent: Agent::from_shell_type(&r.get::<_, String>(8)?),
                    })
                },
            )
            .optional()
    }

    pub fn set_task_status(&self, task_id: i64, status: TaskStatus) -> DbResult<()> {
        self.conn.execute(
            "UPDATE tasks SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![task_id, status.as_str(), now_iso()],
        )?;
        Ok(())
    }

    pub fn mark_task_deleted(&self, task_id: i64) -> DbResult<()> {
        self.conn
            .execute("UPDATE tasks SET deleted = 1 WHERE id = ?1", [task_id])?;
        Ok(())
    }

    /// Adds a subtask; its message id is the next in the task.
    pub fn insert_subtask(
        &self,
        task_id: i64,
        role: &str,
        prompt: &str,
        status: TaskStatus,
    ) -> DbResult<SubtaskRecord> {
        let message_id: i64 = self.conn.query_row(
            "SELECT COUNT(*) + 1 FROM subtasks WHERE task_id = ?1",
            [task_id],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "INSERT INTO subtasks (task_id, role, message_id, prompt, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![task_id, role, message_id, prompt, status.as_str(), now_iso()],
        )?;
        Ok(self
            .subtask(self.conn.last_insert_rowid())?
            .expect("subtask just written"))
    }

    pub fn subtask(&self, subtask_id: i64) -> DbResult<Option<SubtaskRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {SUBTASK_COLS} FROM subtasks WHERE id = ?1"),
                [subtask_id],
                subtask_from_row,
            )
            .optional()
    }

    pub fn subtasks_of(&self, task_id: i64) -> DbResult<Vec<SubtaskRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SUBTASK_COLS} FROM subtasks WHERE task_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([task_id], subtask_from_row)?;
        rows.collect()
    }

    pub fn set_subtask_running(
        &self,
        subtask_id: i64,
        executor_name: &str,
        executor_namespace: &str,
    ) -> DbResult<()> {
        self.conn.execute(
            "UPDATE subtasks SET status = 'RUNNING', executor_name = ?2, executor_namespace = ?3 WHERE id = ?1",
            params![subtask_id, executor_name, executor_namespace],
        )?;
        Ok(())
    }

    pub fn set_subtask_status(
        &self,
        subtask_id: i64,
        status: TaskStatus,
        result: Option<&str>,
        error: Option<&str>,
    ) -> DbResult<()> {
        self.conn.execute(
            "UPDATE subtasks SET status = ?2, result = COALESCE(?3, result), error_message = COALESCE(?4, error_message) WHERE id = ?1",
            params![subtask_id, status.as_str(), result, error],
        )?;
        Ok(())
    }

    /// RUNNING (or CANCELLING) assistant subtasks whose executor is `device-{device_id}`.
    pub fn running_subtasks_of_executor(
        &self,
        executor_name: &str,
    ) -> DbResult<Vec<SubtaskRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SUBTASK_COLS} FROM subtasks WHERE executor_name = ?1 AND status IN ('RUNNING', 'CANCELLING')"
        ))?;
        let rows = stmt.query_map([executor_name], subtask_from_row)?;
        rows.collect()
    }

    /// All RUNNING device subtasks (the monitor's scan).
    pub fn running_device_subtasks(&self) -> DbResult<Vec<SubtaskRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SUBTASK_COLS} FROM subtasks WHERE executor_name LIKE 'device-%' AND status IN ('RUNNING', 'CANCELLING')"
        ))?;
        let rows = stmt.query_map([], subtask_from_row)?;
        rows.collect()
    }
}
