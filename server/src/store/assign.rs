//! What batch assignment reads: the open tasks most in need, and what
//! each member already did with them.

use std::collections::HashSet;

use sqlx::Row;

use super::Store;
use super::work::json_column;
use crate::error::Result;
use crate::ids::{RoomId, UserId};

/// An open task that still has free slots.
#[derive(Debug, Clone)]
pub struct OpenTask {
    pub id: i64,
    pub free: u32,
    /// How close to completion it is, in (0, 1]: the expected-gain term.
    pub need: f64,
    pub skills: Vec<String>,
}

impl Store {
    /// Up to `limit` open, non-gold tasks with free slots, nearest to completion first.
    pub async fn open_tasks(&self, room: &RoomId, limit: i64) -> Result<Vec<OpenTask>> {
        let rows = sqlx::query(
            "SELECT id, answered, reserved, overlap_target, skills FROM tasks \
             WHERE room_id = $1 AND state = 'open' AND gold IS NULL AND reserved + answered < overlap_target \
             ORDER BY answered DESC, id LIMIT $2",
        )
        .bind(room.as_str())
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                let (answered, reserved, target): (i64, i64, i64) = (
                    row.try_get("answered")?,
                    row.try_get("reserved")?,
                    row.try_get("overlap_target")?,
                );
                Ok(OpenTask {
                    id: row.try_get("id")?,
                    free: u32::try_from(target - answered - reserved).unwrap_or(0),
                    need: (answered + 1) as f64 / target.max(1) as f64,
                    skills: serde_json::from_value(json_column(row, "skills")?).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The tasks among ids `first..=last` that `worker` answered, holds or skipped.
    pub async fn touched_tasks(
        &self,
        room: &RoomId,
        worker: &UserId,
        first: i64,
        last: i64,
    ) -> Result<HashSet<i64>> {
        let rows = sqlx::query(
            "SELECT task_id FROM answers WHERE room_id = $1 AND worker_id = $2 AND task_id BETWEEN $3 AND $4 \
             UNION SELECT task_id FROM reservations WHERE room_id = $1 AND worker_id = $2 AND task_id BETWEEN $3 AND $4 \
             UNION SELECT s.task_id FROM skips s JOIN tasks t ON t.id = s.task_id \
             WHERE t.room_id = $1 AND s.worker_id = $2 AND s.task_id BETWEEN $3 AND $4",
        )
        .bind(room.as_str())
        .bind(worker.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<i64, _>("task_id")?))
            .collect()
    }
}
