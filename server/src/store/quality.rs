//! Worker quality: per-skill records of gold answers, agreement and lead
//! times, and the pause list. Updated in the same transaction as the
//! answer that changes them, so a verdict is never based on an answer that
//! was not committed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crowdroom_work::quality::{
    MIN_GOLD_FOR_VERDICT, QualityRules, accuracy_posterior, accuracy_upper_bound,
};
use crowdroom_work::schema::answers_match;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::Store;
use super::sql;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

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
    pub rules: QualityRules,
}

/// What one answer adds to a record.
#[derive(Clone, Copy, Default)]
struct Counts {
    gold_correct: i64,
    gold_total: i64,
    answers: i64,
    lead_time: i64,
    fast: i64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.gold_correct += other.gold_correct;
        self.gold_total += other.gold_total;
        self.answers += other.answers;
        self.lead_time += other.lead_time;
        self.fast += other.fast;
    }

    fn without(self, other: Counts) -> Counts {
        Counts {
            gold_correct: self.gold_correct - other.gold_correct,
            gold_total: self.gold_total - other.gold_total,
            answers: self.answers - other.answers,
            lead_time: self.lead_time - other.lead_time,
            fast: self.fast - other.fast,
        }
    }
}

/// Most records in one upsert (8 parameters each).
const RECORDS_PER_STATEMENT: usize = 1024;

/// Records a run of answers in their workers' stats (overall and per skill
/// of each task), checks each against gold, and pauses a worker when a rule
/// says so after one of their answers. Set-based: the run's counts are
/// summed per record and written in one upsert, which returns each
/// worker's overall record; the record after each answer is that total
/// less what the worker's later answers in the run added, so every answer
/// is judged as if it had been recorded alone, in order.
pub(super) async fn record_answers(
    conn: &mut AnyConnection,
    facts: &[AnswerFacts<'_>],
) -> Result<Vec<AnswerCheck>> {
    let mut checks = Vec::with_capacity(facts.len());
    let mut adds = Vec::with_capacity(facts.len());
    // (room, worker, scope) -> the run's sum, in key order (a row may not
    // be upserted twice in one statement, and one order of row locks keeps
    // two writers on PostgreSQL from deadlocking).
    let mut sums: BTreeMap<(&str, &str, &str), Counts> = BTreeMap::new();
    for fact in facts {
        let correct = fact.gold.map(|gold| answers_match(gold, fact.answer));
        let too_fast = fact.lead_time_ms < fact.rules.min_lead_time_ms;
        let add = Counts {
            gold_correct: i64::from(correct == Some(true)),
            gold_total: i64::from(correct.is_some()),
            answers: 1,
            lead_time: fact.lead_time_ms,
            fast: i64::from(too_fast),
        };
        let scopes: BTreeSet<&str> = std::iter::once("")
            .chain(fact.skills.iter().map(String::as_str))
            .collect();
        for scope in scopes {
            sums.entry((fact.room.as_str(), fact.worker.as_str(), scope))
                .or_default()
                .add(add);
        }
        adds.push(add);
        checks.push(AnswerCheck {
            correct,
            too_fast,
            paused: None,
            gold_total: 0,
        });
    }
    let rows: Vec<_> = sums.into_iter().collect();
    // Each worker's overall record after the whole run.
    let mut totals: HashMap<(String, String), Counts> = HashMap::new();
    for chunk in rows.chunks(RECORDS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO worker_stats (room_id, worker_id, skill, gold_correct, gold_total, answers, lead_time_total, fast_answers) \
             VALUES {} ON CONFLICT (room_id, worker_id, skill) DO UPDATE SET \
             gold_correct = worker_stats.gold_correct + excluded.gold_correct, \
             gold_total = worker_stats.gold_total + excluded.gold_total, \
             answers = worker_stats.answers + excluded.answers, \
             lead_time_total = worker_stats.lead_time_total + excluded.lead_time_total, \
             fast_answers = worker_stats.fast_answers + excluded.fast_answers \
             RETURNING room_id, worker_id, skill, gold_correct, gold_total, answers, fast_answers",
            sql::rows(chunk.len(), "(?, ?, ?, ?, ?, ?, ?, ?)", ", ")
        );
        let sql = sql::placeholders(conn, sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((room, worker, scope), sum) in chunk {
            query = query
                .bind(*room)
                .bind(*worker)
                .bind(*scope)
                .bind(sum.gold_correct)
                .bind(sum.gold_total)
                .bind(sum.answers)
                .bind(sum.lead_time)
                .bind(sum.fast);
        }
        for row in query.fetch_all(&mut *conn).await? {
            if !row.try_get::<String, _>("skill")?.is_empty() {
                continue;
            }
            totals.insert(
                (row.try_get("room_id")?, row.try_get("worker_id")?),
                Counts {
                    gold_correct: row.try_get("gold_correct")?,
                    gold_total: row.try_get("gold_total")?,
                    answers: row.try_get("answers")?,
                    lead_time: 0,
                    fast: row.try_get("fast_answers")?,
                },
            );
        }
    }
    // Walk the run backwards: the record after an answer is the total less
    // the worker's later answers. The earliest answer after which a rule
    // holds is the one that pauses its worker.
    let mut later: HashMap<(&str, &str), Counts> = HashMap::new();
    let mut pauses: BTreeMap<(&str, &str), (usize, &'static str)> = BTreeMap::new();
    for (index, fact) in facts.iter().enumerate().rev() {
        let key = (fact.room.as_str(), fact.worker.as_str());
        let total = totals
            .get(&(key.0.to_owned(), key.1.to_owned()))
            .copied()
            .ok_or_else(|| Error::Internal("worker_stats upsert returned no overall row".into()))?;
        let after = later.get(&key).copied().unwrap_or_default();
        let record = total.without(after);
        if let (Some(check), Some(add)) = (checks.get_mut(index), adds.get(index)) {
            check.gold_total = record.gold_total;
            later.entry(key).or_default().add(*add);
        }
        if let Some(reason) = pause_reason(record, fact.rules) {
            pauses.insert(key, (index, reason));
        }
    }
    if !pauses.is_empty() {
        let sql = format!(
            "INSERT INTO paused_workers (room_id, worker_id, reason, paused_at) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING room_id, worker_id",
            sql::rows(pauses.len(), "(?, ?, ?, ?)", ", ")
        );
        let sql = sql::placeholders(conn, sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let at = now_ms();
        for ((room, worker), (_, reason)) in &pauses {
            query = query.bind(*room).bind(*worker).bind(*reason).bind(at);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let (room, worker): (String, String) =
                (row.try_get("room_id")?, row.try_get("worker_id")?);
            let paused = pauses.get(&(room.as_str(), worker.as_str()));
            if let Some(check) = paused.and_then(|(index, _)| checks.get_mut(*index)) {
                check.paused = paused.map(|(_, reason)| (*reason).to_owned());
            }
        }
    }
    Ok(checks)
}

/// Why a worker with this overall record should be paused, if they should.
fn pause_reason(record: Counts, rules: QualityRules) -> Option<&'static str> {
    if record.gold_total >= MIN_GOLD_FOR_VERDICT
        && accuracy_upper_bound(record.gold_correct, record.gold_total) < rules.min_accuracy
    {
        Some("accuracy on gold tasks is below the project's minimum")
    } else if record.fast >= MIN_FAST_FOR_VERDICT && record.fast * 2 > record.answers {
        Some("most answers came faster than the project's minimum lead time")
    } else {
        None
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
