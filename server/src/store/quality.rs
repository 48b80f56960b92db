//! Worker quality as the store keeps it: per-skill records of gold
//! answers, agreement and lead times, and the pause list, for the REST API
//! and the console. The rules that change them are the work crate's
//! (`crowdroom_work::queue`); the room commits their effects.

use crowdroom_work::quality::{MIN_GOLD_FOR_VERDICT, accuracy_posterior};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

/// A worker's record in a room (overall, skill '').
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerQuality {
    pub worker: String,
    pub gold_correct: i64,
    pub gold_total: i64,
    /// Posterior mean of their accuracy on gold.
    pub accuracy: f64,
    /// Whether they have answered enough gold for `accuracy` to count.
    pub verdict: bool,
    pub agree: i64,
    pub disagree: i64,
    pub answers: i64,
    pub mean_lead_time_ms: Option<i64>,
    pub fast_answers: i64,
    pub paused: Option<String>,
}

pub(super) fn quality_row(row: &AnyRow) -> Result<WorkerQuality> {
    let gold_correct: i64 = row.try_get("gold_correct")?;
    let gold_total: i64 = row.try_get("gold_total")?;
    let answers: i64 = row.try_get("answers")?;
    let lead_time_total: i64 = row.try_get("lead_time_total")?;
    Ok(WorkerQuality {
        worker: row.try_get("worker_id")?,
        gold_correct,
        gold_total,
        accuracy: accuracy_posterior(gold_correct, gold_total),
        verdict: gold_total >= MIN_GOLD_FOR_VERDICT,
        agree: row.try_get("agree")?,
        disagree: row.try_get("disagree")?,
        answers,
        mean_lead_time_ms: (answers > 0).then(|| lead_time_total / answers),
        fast_answers: row.try_get("fast_answers")?,
        paused: row.try_get("reason")?,
    })
}

const QUALITY_SELECT: &str = "SELECT s.worker_id, s.gold_correct, s.gold_total, s.agree, s.disagree, s.answers, \
     s.lead_time_total, s.fast_answers, p.reason FROM worker_stats s \
     LEFT JOIN paused_workers p ON p.room_id = s.room_id AND p.worker_id = s.worker_id \
     WHERE s.room_id = $1 AND s.skill = ''";

impl Store {
    /// A worker's overall record (zeros for a worker with no answers yet),
    /// with their pause either way: the record part of their view.
    pub async fn worker_quality(&self, room: &RoomId, worker: &UserId) -> Result<WorkerQuality> {
        let sql = "SELECT $2 AS worker_id, COALESCE(s.gold_correct, 0) AS gold_correct, \
             COALESCE(s.gold_total, 0) AS gold_total, COALESCE(s.agree, 0) AS agree, \
             COALESCE(s.disagree, 0) AS disagree, COALESCE(s.answers, 0) AS answers, \
             COALESCE(s.lead_time_total, 0) AS lead_time_total, \
             COALESCE(s.fast_answers, 0) AS fast_answers, p.reason \
             FROM (SELECT 1 AS one) k \
             LEFT JOIN worker_stats s ON s.room_id = $1 AND s.worker_id = $2 AND s.skill = '' \
             LEFT JOIN paused_workers p ON p.room_id = $1 AND p.worker_id = $2";
        let row = sqlx::query(sql)
            .bind(room.as_str())
            .bind(worker.as_str())
            .fetch_one(&mut *self.conn().await?)
            .await?;
        quality_row(&row)
    }

    /// Every worker's overall record in the room, for moderators.
    pub async fn workers_quality(&self, room: &RoomId) -> Result<Vec<WorkerQuality>> {
        // Workers with a record, and the room's workers without one yet
        // (zeros), so moderators see everyone before their first answer.
        let sql = format!(
            "{QUALITY_SELECT} UNION ALL \
             SELECT m.user_id AS worker_id, CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
             CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), p.reason \
             FROM members m LEFT JOIN paused_workers p ON p.room_id = m.room_id AND p.worker_id = m.user_id \
             WHERE m.room_id = $1 AND m.role = 'worker' AND NOT EXISTS (SELECT 1 FROM worker_stats t \
             WHERE t.room_id = m.room_id AND t.worker_id = m.user_id AND t.skill = '') \
             ORDER BY worker_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(quality_row).collect()
    }

    pub async fn paused_reason(&self, room: &RoomId, worker: &UserId) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT reason FROM paused_workers WHERE room_id = $1 AND worker_id = $2")
                .bind(room.as_str())
                .bind(worker.as_str())
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        row.map(|row| Ok(row.try_get("reason")?)).transpose()
    }

    /// Pauses a worker (a moderator's decision); they get no more tasks.
    pub async fn pause_worker(&self, room: &RoomId, worker: &UserId, reason: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO paused_workers (room_id, worker_id, reason, paused_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, worker_id) DO UPDATE SET reason = excluded.reason, paused_at = excluded.paused_at",
        )
        .bind(room.as_str())
        .bind(worker.as_str())
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Lifts a pause; returns whether the worker was paused.
    pub async fn unpause_worker(&self, room: &RoomId, worker: &UserId) -> Result<bool> {
        let result =
            sqlx::query("DELETE FROM paused_workers WHERE room_id = $1 AND worker_id = $2")
                .bind(room.as_str())
                .bind(worker.as_str())
                .execute(&mut *self.conn().await?)
                .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Reads a JSON text column that may be NULL.
pub(super) fn optional_json(row: &AnyRow, column: &str) -> Result<Option<Value>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| {
        serde_json::from_str(&text)
            .map_err(|error| Error::Internal(format!("stored {column} is not JSON: {error}")))
    })
    .transpose()
}
