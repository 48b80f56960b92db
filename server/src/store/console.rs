//! What the review view and the moderator console read that no other
//! part of the store needs: one task's answers, and a room's recent
//! throughput and agreement.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::Result;
use crate::ids::{RoomId, now_ms};

/// One answer of a task, as the review view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskAnswer {
    pub answer_id: i64,
    pub worker: String,
    pub answer: serde_json::Value,
    pub lead_time_ms: i64,
    pub created_at: i64,
}

/// The figures of the moderator console that come from the store.
#[derive(Debug, Clone, Serialize)]
pub struct RoomActivity {
    pub answers_last_minute: i64,
    /// Mean answers per minute over the last ten minutes.
    pub answers_per_minute: f64,
    /// Mean confidence of the room's decided tasks.
    pub agreement: Option<f64>,
}

impl Store {
    /// Every answer of one task, oldest first.
    pub async fn task_answers(&self, room: &RoomId, task: i64) -> Result<Vec<TaskAnswer>> {
        let rows = sqlx::query(
            "SELECT id, worker_id, answer, lead_time_ms, created_at FROM answers \
             WHERE room_id = $1 AND task_id = $2 ORDER BY id",
        )
        .bind(room.as_str())
        .bind(task)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TaskAnswer {
                    answer_id: row.try_get("id")?,
                    worker: row.try_get("worker_id")?,
                    answer: super::work::json_column(row, "answer")?,
                    lead_time_ms: row.try_get("lead_time_ms")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Answers per minute and agreement, for the moderator console.
    pub async fn room_activity(&self, room: &RoomId) -> Result<RoomActivity> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT \
               COUNT(CASE WHEN created_at > $2 THEN 1 END) AS last_minute, \
               COUNT(*) AS last_ten \
             FROM answers WHERE room_id = $1 AND created_at > $3",
        )
        .bind(room.as_str())
        .bind(now - 60_000)
        .bind(now - 600_000)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let agreement = sqlx::query(
            "SELECT AVG(confidence) AS agreement FROM tasks \
             WHERE room_id = $1 AND confidence IS NOT NULL AND gold IS NULL",
        )
        .bind(room.as_str())
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let last_ten: i64 = row.try_get("last_ten")?;
        Ok(RoomActivity {
            answers_last_minute: row.try_get("last_minute")?,
            answers_per_minute: last_ten as f64 / 10.0,
            agreement: agreement.try_get("agreement")?,
        })
    }
}
