//! Worker quality: per-skill records of gold answers, agreement and lead
//! times, and the pause list. Updated in the same transaction as the
//! answer that changes them, so a verdict is never based on an answer that
//! was not committed.

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};
use crate::work::{
    MIN_GOLD_FOR_VERDICT, QualityRules, accuracy_posterior, accuracy_upper_bound, answers_match,
};

/// Fast answers a worker may give before the fast-answer rule can pause them.
const MIN_FAST_FOR_VERDICT: i64 = 5;

/// What checking one answer found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnswerCheck {
    /// For a gold task: whether the answer matched the gold answer.
    pub correct: Option<bool>,
    /// Whether it came faster than the project's minimum lead time.
    pub too_fast: bool,
    /// Set when this answer got the worker paused, with the reason.
    pub paused: Option<String>,
    /// The worker's gold answers so far, this one included. Not serialized:
    /// after onboarding it would tell a worker which of their tasks was gold.
    #[serde(skip)]
    pub gold_total: i64,
}

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
        Ok(self.worker_view(room, worker).await?.quality)
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

/// One answer as the quality record sees it.
pub(super) struct AnswerFacts<'a> {
    pub room: &'a RoomId,
    pub worker: &'a UserId,
    /// The task's skills: the answer counts for each, and overall.
    pub skills: &'a [String],
    pub gold: Option<&'a Value>,
    pub answer: &'a Value,
    pub lead_time_ms: i64,
}

/// Records one answer in the worker's stats (overall and per skill of the
/// task), checks it against gold, and pauses the worker if a rule says so.
pub(super) async fn record_answer(
    conn: &mut AnyConnection,
    facts: AnswerFacts<'_>,
    rules: QualityRules,
) -> Result<AnswerCheck> {
    let AnswerFacts {
        room,
        worker,
        skills,
        gold,
        answer,
        lead_time_ms,
    } = facts;
    let correct = gold.map(|gold| answers_match(gold, answer));
    let too_fast = lead_time_ms < rules.min_lead_time_ms;
    let (gold_correct, gold_total) = match correct {
        Some(true) => (1i64, 1i64),
        Some(false) => (0, 1),
        None => (0, 0),
    };
    // Overall ('') and each of the task's skills, once each (a row may
    // not be upserted twice in one statement), in one statement that
    // returns the overall record as it now is.
    let scopes: std::collections::BTreeSet<&str> = std::iter::once("")
        .chain(skills.iter().map(String::as_str))
        .collect();
    let rows: Vec<String> = (0..scopes.len())
        .map(|i| format!("($1, $2, ${}, $3, $4, 1, $5, $6)", i + 7))
        .collect();
    let sql = format!(
        "INSERT INTO worker_stats (room_id, worker_id, skill, gold_correct, gold_total, answers, lead_time_total, fast_answers) \
         VALUES {} ON CONFLICT (room_id, worker_id, skill) DO UPDATE SET \
         gold_correct = worker_stats.gold_correct + excluded.gold_correct, \
         gold_total = worker_stats.gold_total + excluded.gold_total, \
         answers = worker_stats.answers + 1, \
         lead_time_total = worker_stats.lead_time_total + excluded.lead_time_total, \
         fast_answers = worker_stats.fast_answers + excluded.fast_answers \
         RETURNING skill, gold_correct, gold_total, answers, fast_answers",
        rows.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(room.as_str())
        .bind(worker.as_str())
        .bind(gold_correct)
        .bind(gold_total)
        .bind(lead_time_ms)
        .bind(i64::from(too_fast));
    for scope in &scopes {
        query = query.bind(*scope);
    }
    let returned = query.fetch_all(&mut *conn).await?;
    let mut overall = None;
    for row in returned {
        if row.try_get::<String, _>("skill")?.is_empty() {
            overall = Some(row);
        }
    }
    let row = overall
        .ok_or_else(|| Error::Internal("worker_stats upsert returned no overall row".into()))?;
    let (correct_total, gold_answers): (i64, i64) =
        (row.try_get("gold_correct")?, row.try_get("gold_total")?);
    let (answers, fast): (i64, i64) = (row.try_get("answers")?, row.try_get("fast_answers")?);
    let reason = if gold_answers >= MIN_GOLD_FOR_VERDICT
        && accuracy_upper_bound(correct_total, gold_answers) < rules.min_accuracy
    {
        Some("accuracy on gold tasks is below the project's minimum")
    } else if fast >= MIN_FAST_FOR_VERDICT && fast * 2 > answers {
        Some("most answers came faster than the project's minimum lead time")
    } else {
        None
    };
    let mut paused = None;
    if let Some(reason) = reason {
        let inserted = sqlx::query(
            "INSERT INTO paused_workers (room_id, worker_id, reason, paused_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(room.as_str())
        .bind(worker.as_str())
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            paused = Some(reason.to_owned());
        }
    }
    Ok(AnswerCheck {
        correct,
        too_fast,
        paused,
        gold_total: gold_answers,
    })
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
