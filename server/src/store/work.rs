//! Projects, tasks, reservations and answers.
//!
//! The invariants live in the SQL, so they hold across processes:
//! `tasks.reserved` counts the task's reservation rows (live or expired but
//! not yet swept) and `tasks.answered` its answers; a CHECK constraint keeps
//! `reserved + answered <= overlap_target`, and a grant is a conditional
//! UPDATE that only succeeds while a slot is free. A grant that finds the
//! task full deletes its expired reservations (and lowers the counter)
//! and tries once more, so an expired slot is free again at once. Every
//! transaction touches existing reservation rows before the task row (a
//! grant's first, failed update locks nothing), so concurrent ones cannot
//! deadlock each other.

use crowdroom_work::project::{GOLD_OVERLAP, NewTask, ProjectConfig};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::quality::optional_json;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

/// A task as listed to the core team.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub id: i64,
    pub external_id: String,
    pub data: Value,
    pub skills: Vec<String>,
    pub gold: Option<Value>,
    pub overlap_target: i64,
    pub reserved: i64,
    pub answered: i64,
    pub state: String,
    pub consensus: Option<Value>,
    pub confidence: Option<f64>,
    pub method: Option<String>,
    pub created_at: i64,
}

/// The two kinds of labels a member carries in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberTags {
    Skills,
    Interests,
}

impl MemberTags {
    /// The JSON field and the word for it in messages.
    pub fn name(self) -> &'static str {
        match self {
            MemberTags::Skills => "skills",
            MemberTags::Interests => "interests",
        }
    }

    /// Table and column (constants: never client input).
    fn table(self) -> (&'static str, &'static str) {
        match self {
            MemberTags::Skills => ("member_skills", "skill"),
            MemberTags::Interests => ("member_interests", "interest"),
        }
    }
}

/// A task as a worker sees it: no gold answer, no counts.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerTask {
    pub id: i64,
    pub external_id: String,
    pub data: Value,
}

/// What importing a batch of tasks did.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub inserted: u64,
    /// Tasks whose id already existed in the room (skipped).
    pub duplicates: u64,
}

pub(super) fn json_column(row: &AnyRow, column: &str) -> Result<Value> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|error| Error::Internal(format!("stored {column} is not JSON: {error}")))
}

fn task_row(row: &AnyRow) -> Result<TaskRow> {
    let gold: Option<String> = row.try_get("gold")?;
    Ok(TaskRow {
        id: row.try_get("id")?,
        external_id: row.try_get("external_id")?,
        data: json_column(row, "data")?,
        skills: serde_json::from_value(json_column(row, "skills")?).unwrap_or_default(),
        gold: gold
            .map(|gold| serde_json::from_str(&gold))
            .transpose()
            .map_err(|error| Error::Internal(error.to_string()))?,
        overlap_target: row.try_get("overlap_target")?,
        reserved: row.try_get("reserved")?,
        answered: row.try_get("answered")?,
        state: row.try_get("state")?,
        consensus: optional_json(row, "consensus")?,
        confidence: row.try_get("confidence")?,
        method: row.try_get("method")?,
        created_at: row.try_get("created_at")?,
    })
}

const TASK_COLUMNS: &str = "id, external_id, data, skills, gold, overlap_target, reserved, answered, state, consensus, confidence, method, created_at";

impl Store {
    /// The room's project, or the defaults if none was set. Reused for up
    /// to [`super::PROJECT_CACHE_TTL`] after it was read.
    pub async fn project(&self, room: &RoomId) -> Result<ProjectConfig> {
        let cached = self
            .projects
            .get(room)
            .filter(|entry| entry.0.elapsed() < super::PROJECT_CACHE_TTL)
            .map(|entry| entry.1.clone());
        if let Some(project) = cached {
            return Ok(project);
        }
        let row = sqlx::query("SELECT config FROM projects WHERE room_id = $1")
            .bind(room.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        let project = match row {
            Some(row) => serde_json::from_value(json_column(&row, "config")?).map_err(|error| {
                Error::Internal(format!("stored project does not parse: {error}"))
            })?,
            None => ProjectConfig::default(),
        };
        self.projects
            .insert(room.clone(), (std::time::Instant::now(), project.clone()));
        Ok(project)
    }

    pub async fn put_project(&self, room: &RoomId, config: &ProjectConfig) -> Result<()> {
        let text =
            serde_json::to_string(config).map_err(|error| Error::Internal(error.to_string()))?;
        sqlx::query(
            "INSERT INTO projects (room_id, config, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
        )
        .bind(room.as_str())
        .bind(text)
        .bind(now_ms())
        .execute(&mut *self.conn().await?)
        .await?;
        self.projects
            .insert(room.clone(), (std::time::Instant::now(), config.clone()));
        Ok(())
    }

    /// Inserts tasks in one transaction; ids already in the room are skipped.
    pub async fn insert_tasks(
        &self,
        room: &RoomId,
        tasks: &[NewTask],
        overlap_target: u32,
    ) -> Result<ImportReport> {
        let mut tx = self.begin_write().await?;
        let mut report = ImportReport::default();
        let created_at = now_ms();
        for task in tasks {
            let data = task.data.to_string();
            let skills = serde_json::to_string(&task.skills)
                .map_err(|error| Error::Internal(error.to_string()))?;
            let gold = task.gold.as_ref().map(Value::to_string);
            let tags = serde_json::to_string(&task.tags)
                .map_err(|error| Error::Internal(error.to_string()))?;
            let result = sqlx::query(
                "INSERT INTO tasks (room_id, external_id, data, skills, gold, overlap_target, created_at, tags) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (room_id, external_id) DO NOTHING",
            )
            .bind(room.as_str())
            .bind(&task.id)
            .bind(data)
            .bind(skills)
            .bind(gold)
            .bind(i64::from(if task.gold.is_some() { GOLD_OVERLAP } else { overlap_target }))
            .bind(created_at)
            .bind(tags)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() == 1 {
                report.inserted += 1;
            } else {
                report.duplicates += 1;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    /// A task as the worker it is granted to sees it, by id (its `data` is
    /// also what a spans answer is checked against).
    pub async fn worker_task(&self, room: &RoomId, task: i64) -> Result<Option<WorkerTask>> {
        let row =
            sqlx::query("SELECT id, external_id, data FROM tasks WHERE room_id = $1 AND id = $2")
                .bind(room.as_str())
                .bind(task)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        row.map(|row| {
            Ok(WorkerTask {
                id: row.try_get("id")?,
                external_id: row.try_get("external_id")?,
                data: json_column(&row, "data")?,
            })
        })
        .transpose()
    }

    /// Tasks of a room, by id, optionally in one state.
    pub async fn tasks(
        &self,
        room: &RoomId,
        state: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE room_id = $1 AND id > $2 AND ($3 IS NULL OR state = $3) \
             ORDER BY id LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .bind(after)
            .bind(state)
            .bind(limit.clamp(1, 1000))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(task_row).collect()
    }

    /// A member's skills (what tasks they may take).
    pub async fn member_skills(&self, room: &RoomId, user: &UserId) -> Result<Vec<String>> {
        self.member_tags(MemberTags::Skills, room, user).await
    }

    pub async fn set_member_skills(
        &self,
        room: &RoomId,
        user: &UserId,
        skills: &[String],
    ) -> Result<()> {
        self.set_member_tags(MemberTags::Skills, room, user, skills)
            .await
    }

    /// A member's interests (topics matched against task tags).
    pub async fn member_interests(&self, room: &RoomId, user: &UserId) -> Result<Vec<String>> {
        self.member_tags(MemberTags::Interests, room, user).await
    }

    pub async fn set_member_interests(
        &self,
        room: &RoomId,
        user: &UserId,
        interests: &[String],
    ) -> Result<()> {
        self.set_member_tags(MemberTags::Interests, room, user, interests)
            .await
    }

    pub async fn member_tags(
        &self,
        kind: MemberTags,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Vec<String>> {
        let (table, column) = kind.table();
        let sql = format!(
            "SELECT {column} FROM {table} WHERE room_id = $1 AND user_id = $2 ORDER BY {column}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .bind(user.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| Ok(row.try_get(column)?)).collect()
    }

    /// Replaces a member's tags of one kind, in one transaction.
    pub async fn set_member_tags(
        &self,
        kind: MemberTags,
        room: &RoomId,
        user: &UserId,
        tags: &[String],
    ) -> Result<()> {
        let (table, column) = kind.table();
        let mut tx = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE room_id = $1 AND user_id = $2"
        )))
        .bind(room.as_str())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        let insert = format!(
            "INSERT INTO {table} (room_id, user_id, {column}) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        );
        for tag in tags {
            sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                .bind(room.as_str())
                .bind(user.as_str())
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
