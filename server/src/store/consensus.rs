//! Settling a task when its answers are in: the live consensus decision
//! ([`crowdroom_work::decide`]) applied inside the transaction of the answer
//! that completed it, so a task is decided exactly once whatever the
//! concurrency (that transaction holds the task row's lock). The committer
//! settles all the tasks a run of answers completed together.

use std::collections::HashMap;

use crowdroom_work::batch::{self, BatchReport};
use crowdroom_work::decide::{Vote, decide};
use crowdroom_work::project::ProjectConfig;
use crowdroom_work::quality::{SubmitRules, vote_accuracy};
use crowdroom_work::schema::{AnswerSchema, answers_match};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::sql;
use super::work::json_column;
use crate::error::Result;
use crate::ids::{RoomId, now_ms};

/// How a task was settled, for publishing into its shared document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settled {
    pub state: String,
    pub consensus: Option<Value>,
    pub confidence: Option<f64>,
    pub method: Option<String>,
}

/// A task whose answers are in, to be settled.
pub(super) struct Due<'a> {
    pub room: &'a RoomId,
    pub task: i64,
    /// Its overlap target, which its answers reached.
    pub target: i64,
    pub rules: &'a SubmitRules,
}

/// Most tasks settled per statement (six parameters each).
const SETTLE_CHUNK: usize = 512;

/// Decides each due task and returns its new state, in `due`'s order:
/// `complete` (confident consensus), `open` with a raised overlap target
/// (not confident, or a tie, below the maximum), or `review` (still
/// undecided at the maximum).
///
/// Set-based, for the committer's runs of answers: one read of all their
/// answers (with each worker's record, for the weights), one update for
/// the raised targets, one for the decided tasks, and one for the
/// workers' agreement changes. Every task is decided on the records as they
/// were before this call: a worker's agreement with another task settled
/// in the same call counts from the next one on.
pub(super) async fn settle_all(conn: &mut AnyConnection, due: &[Due<'_>]) -> Result<Vec<Settled>> {
    let mut settled = Vec::with_capacity(due.len());
    for chunk in due.chunks(SETTLE_CHUNK) {
        settled.extend(settle_chunk(conn, chunk).await?);
    }
    Ok(settled)
}

/// One answer as consensus weighs it.
/// Most workers' agreement changes in one statement (4 parameters each).
const AGREEMENT_CHUNK: usize = 1024;

struct Weighed {
    worker: String,
    answer: Value,
    accuracy: f64,
}

async fn settle_chunk(conn: &mut AnyConnection, due: &[Due<'_>]) -> Result<Vec<Settled>> {
    let sql = format!(
        "SELECT a.task_id, a.worker_id, a.answer, COALESCE(s.gold_correct, 0) AS gold_correct, \
         COALESCE(s.gold_total, 0) AS gold_total, COALESCE(s.agree, 0) AS agree, \
         COALESCE(s.disagree, 0) AS disagree FROM answers a \
         LEFT JOIN worker_stats s ON s.room_id = a.room_id AND s.worker_id = a.worker_id AND s.skill = '' \
         WHERE a.task_id IN ({}) ORDER BY a.task_id, a.id",
        sql::rows(due.len(), "?", ", ")
    );
    let sql = sql::placeholders(conn, sql);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for item in due {
        query = query.bind(item.task);
    }
    let mut answers: HashMap<i64, Vec<Weighed>> = HashMap::with_capacity(due.len());
    for row in query.fetch_all(&mut *conn).await? {
        let accuracy = vote_accuracy(
            row.try_get("gold_correct")?,
            row.try_get("gold_total")?,
            row.try_get("agree")?,
            row.try_get("disagree")?,
        );
        answers
            .entry(row.try_get("task_id")?)
            .or_default()
            .push(Weighed {
                worker: row.try_get("worker_id")?,
                answer: json_column(&row, "answer")?,
                accuracy,
            });
    }
    let at = now_ms();
    let mut raised = Vec::new();
    let mut decided: Vec<(i64, &Settled)> = Vec::new();
    let mut outcomes = Vec::with_capacity(due.len());
    // (room, worker) -> how many more agreed and disagreed.
    let mut changes: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
    let empty = Vec::new();
    for item in due {
        let weighed = answers.get(&item.task).unwrap_or(&empty);
        let votes: Vec<Vote<'_>> = weighed
            .iter()
            .map(|vote| Vote {
                answer: &vote.answer,
                accuracy: vote.accuracy,
            })
            .collect();
        let decision = decide(&item.rules.schema, &votes);
        let confident = decision
            .as_ref()
            .is_some_and(|decision| decision.confidence >= item.rules.min_confidence);
        if !confident && item.target < i64::from(item.rules.overlap_max) {
            // Dynamic overlap: ask for one more independent answer.
            raised.push(item.task);
            outcomes.push(Settled {
                state: "open".to_owned(),
                consensus: None,
                confidence: None,
                method: None,
            });
            continue;
        }
        // Agreement with a confident consensus is weaker evidence of quality.
        if let (true, Some(decision)) = (confident, &decision) {
            for vote in weighed {
                let change = changes
                    .entry((item.room.as_str(), vote.worker.as_str()))
                    .or_default();
                if answers_match(&vote.answer, &decision.answer) {
                    change.0 += 1;
                } else {
                    change.1 += 1;
                }
            }
        }
        outcomes.push(Settled {
            state: (if confident { "complete" } else { "review" }).to_owned(),
            consensus: decision.as_ref().map(|decision| decision.answer.clone()),
            confidence: decision.as_ref().map(|decision| decision.confidence),
            method: decision.as_ref().map(|decision| decision.method.to_owned()),
        });
    }
    for (item, outcome) in due.iter().zip(&outcomes) {
        if outcome.state != "open" {
            decided.push((item.task, outcome));
        }
    }
    if !raised.is_empty() {
        let sql = format!(
            "UPDATE tasks SET overlap_target = overlap_target + 1 WHERE id IN ({})",
            sql::rows(raised.len(), "?", ", ")
        );
        let sql = sql::placeholders(conn, sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for task in &raised {
            query = query.bind(*task);
        }
        query.execute(&mut *conn).await?;
    }
    if !decided.is_empty() {
        // VALUES columns are column1, column2, ... on both databases. A
        // missing consensus, confidence or method is written as a typed
        // literal NULL, never bound: sqlx's Any driver binds a None with a
        // type of its own, PostgreSQL's prepared statement kept that type,
        // and the next settle's float confidence then failed with
        // "incorrect binary data format in bind parameter 4", and with it
        // the whole batch (found by the randomized hostile client).
        let values: Vec<String> = decided
            .iter()
            .map(|(_, outcome)| {
                let or_null = |present: bool, kind: &str| {
                    if present {
                        "?".to_owned()
                    } else {
                        format!("CAST(NULL AS {kind})")
                    }
                };
                format!(
                    "(?, ?, {}, {}, {}, ?)",
                    or_null(outcome.consensus.is_some(), "TEXT"),
                    or_null(outcome.confidence.is_some(), "DOUBLE PRECISION"),
                    or_null(outcome.method.is_some(), "TEXT"),
                )
            })
            .collect();
        let sql = format!(
            "UPDATE tasks SET state = d.column2, consensus = d.column3, confidence = d.column4, \
             method = d.column5, completed_at = d.column6 FROM (VALUES {}) AS d WHERE tasks.id = d.column1",
            values.join(", ")
        );
        let sql = sql::placeholders(conn, sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (task, outcome) in &decided {
            query = query.bind(*task).bind(outcome.state.as_str());
            if let Some(consensus) = &outcome.consensus {
                query = query.bind(consensus.to_string());
            }
            if let Some(confidence) = outcome.confidence {
                query = query.bind(confidence);
            }
            if let Some(method) = &outcome.method {
                query = query.bind(method.as_str());
            }
            query = query.bind(at);
        }
        query.execute(&mut *conn).await?;
    }
    // Every worker's change in one statement (one per room and kind of
    // change was a hundred statements in a crowd's batch), in a fixed
    // order.
    let mut changes: Vec<_> = changes.into_iter().collect();
    changes.sort_unstable_by(|left, right| left.0.cmp(&right.0));
    for chunk in changes.chunks(AGREEMENT_CHUNK) {
        // VALUES columns are column1, column2, ... on both databases.
        let sql = format!(
            "UPDATE worker_stats SET agree = agree + d.column3, disagree = disagree + d.column4 \
             FROM (VALUES {}) AS d WHERE worker_stats.room_id = d.column1 \
             AND worker_stats.worker_id = d.column2 AND worker_stats.skill = ''",
            sql::rows(chunk.len(), "(?, ?, ?, ?)", ", ")
        );
        let sql = sql::placeholders(conn, sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((room, worker), (agreed, disagreed)) in chunk {
            query = query
                .bind(*room)
                .bind(*worker)
                .bind(*agreed)
                .bind(*disagreed);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(outcomes)
}

/// The refusal of a second review: the first one is final.
const REVIEW_IS_FINAL: &str =
    "this task's review is final: it was already reviewed (see its review trail)";

/// A reviewer's decision on a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// The consensus stands.
    Accept,
    /// The reviewer's answer replaces it.
    Correct,
    /// The task's answers are unusable; a reason is required.
    Reject,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Accept => "accepted",
            ReviewDecision::Correct => "corrected",
            ReviewDecision::Reject => "rejected",
        }
    }
}

impl super::Store {
    /// Records a reviewer's decision (final: the task's method becomes
    /// `review`) and appends it to the task's review trail.
    pub async fn review_task(
        &self,
        room: &RoomId,
        task: i64,
        reviewer: &crate::ids::UserId,
        decision: ReviewDecision,
        answer: Option<&Value>,
        reason: Option<&str>,
    ) -> Result<Settled> {
        let mut tx = self.begin_write().await?;
        let row =
            sqlx::query("SELECT consensus, gold, method FROM tasks WHERE id = $1 AND room_id = $2")
                .bind(task)
                .bind(room.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(crate::error::Error::NotFound("task"))?;
        if super::quality::optional_json(&row, "gold")?.is_some() {
            return Err(crate::error::Error::BadRequest(
                "gold tasks are not reviewed".into(),
            ));
        }
        // Final means final: a second review would silently overwrite the
        // first reviewer's decision (and what the task's document shows).
        if row.try_get::<Option<String>, _>("method")?.as_deref() == Some("review") {
            return Err(crate::error::Error::InvalidState(REVIEW_IS_FINAL.into()));
        }
        let previous = super::quality::optional_json(&row, "consensus")?;
        let (state, consensus) = match decision {
            ReviewDecision::Accept => match &previous {
                Some(consensus) => ("complete", Some(consensus.clone())),
                None => {
                    return Err(crate::error::Error::InvalidState(
                        "there is no consensus to accept: correct it instead".into(),
                    ));
                }
            },
            ReviewDecision::Correct => ("complete", answer.cloned()),
            ReviewDecision::Reject => ("rejected", previous.clone()),
        };
        let at = now_ms();
        // The condition again, for a review racing this one on PostgreSQL
        // (the row lock makes the second re-read it after the first commits).
        let updated = sqlx::query(
            "UPDATE tasks SET state = $1, consensus = $2, confidence = $3, method = 'review', completed_at = $4 \
             WHERE id = $5 AND (method IS NULL OR method <> 'review')",
        )
        .bind(state)
        .bind(consensus.as_ref().map(Value::to_string))
        .bind(1.0_f64)
        .bind(at)
        .bind(task)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(crate::error::Error::InvalidState(REVIEW_IS_FINAL.into()));
        }
        sqlx::query(
            "INSERT INTO task_reviews (task_id, room_id, reviewer, decision, answer, previous, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(task)
        .bind(room.as_str())
        .bind(reviewer.as_str())
        .bind(decision.as_str())
        .bind(answer.map(Value::to_string))
        .bind(previous.as_ref().map(Value::to_string))
        .bind(reason)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Settled {
            state: state.to_owned(),
            consensus,
            confidence: Some(1.0),
            method: Some("review".to_owned()),
        })
    }

    /// A task's review trail, oldest first.
    pub async fn task_reviews(&self, room: &RoomId, task: i64) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT reviewer, decision, answer, previous, reason, at FROM task_reviews WHERE task_id = $1 AND room_id = $2 ORDER BY id",
        )
        .bind(task)
        .bind(room.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(serde_json::json!({
                    "reviewer": row.try_get::<String, _>("reviewer")?,
                    "decision": row.try_get::<String, _>("decision")?,
                    "answer": super::quality::optional_json(row, "answer")?,
                    "previous": super::quality::optional_json(row, "previous")?,
                    "reason": row.try_get::<Option<String>, _>("reason")?,
                    "at": row.try_get::<i64, _>("at")?,
                }))
            })
            .collect()
    }
}

impl super::Store {
    /// Runs the project's batch consensus (single-choice projects): Dawid-
    /// Skene and weighted voting scored on gold, and Dawid-Skene's labels
    /// written to decided tasks where it wins. Reviewed tasks are final and
    /// never rewritten.
    pub async fn batch_consensus(
        &self,
        room: &RoomId,
        project: &ProjectConfig,
    ) -> Result<BatchReport> {
        use std::collections::HashMap;
        let AnswerSchema::SingleChoice { options } = &project.answer_schema else {
            return Err(crate::error::Error::BadRequest(
                "batch consensus runs on single-choice projects".into(),
            ));
        };
        let rows = sqlx::query(
            "SELECT a.task_id, a.worker_id, a.answer, t.gold FROM answers a JOIN tasks t ON t.id = a.task_id \
             WHERE a.room_id = $1 ORDER BY a.task_id, a.id",
        )
        .bind(room.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let label_of = |value: &Value| {
            value
                .as_str()
                .and_then(|label| options.iter().position(|option| option == label))
                .and_then(|index| u32::try_from(index).ok())
        };
        let (mut task_ids, mut task_index) = (Vec::new(), HashMap::new());
        let (mut workers, mut worker_index) = (Vec::new(), HashMap::new());
        let mut triples = Vec::with_capacity(rows.len());
        let mut gold = Vec::new();
        for row in &rows {
            let task: i64 = row.try_get("task_id")?;
            let worker: String = row.try_get("worker_id")?;
            let Some(label) = label_of(&json_column(row, "answer")?) else {
                continue;
            };
            let next_task = u32::try_from(task_ids.len()).unwrap_or(u32::MAX);
            let item = *task_index.entry(task).or_insert_with(|| {
                task_ids.push(task);
                next_task
            });
            let first_answer = item == next_task;
            if let (true, Some(truth)) = (first_answer, super::quality::optional_json(row, "gold")?)
            {
                gold.push((item, label_of(&truth)));
            }
            let next_worker = u32::try_from(workers.len()).unwrap_or(u32::MAX);
            let worker = *worker_index.entry(worker.clone()).or_insert_with(|| {
                workers.push(worker);
                next_worker
            });
            triples.push((item, worker, label));
        }
        let names: Vec<String> = task_ids.iter().map(i64::to_string).collect();
        let labels = options.clone();
        let (mut report, relabels) = tokio::task::spawn_blocking(move || {
            // The triples are the store's own answers: a refusal is a bug here.
            batch::run(names, workers, labels, &triples, &gold)
                .map_err(|error| crate::error::Error::Internal(format!("batch consensus: {error}")))
        })
        .await
        .map_err(|error| crate::error::Error::Internal(format!("batch consensus: {error}")))??;
        if relabels.is_empty() {
            return Ok(report);
        }
        let mut tx = self.begin_write().await?;
        for (item, label, confidence) in relabels {
            let (Some(task), Some(answer)) = (task_ids.get(item), options.get(label as usize))
            else {
                continue;
            };
            let updated = sqlx::query(
                "UPDATE tasks SET consensus = $1, confidence = $2, method = 'ds', \
                 state = CASE WHEN $2 >= $3 THEN 'complete' ELSE state END \
                 WHERE id = $4 AND gold IS NULL AND state IN ('complete', 'review') AND (method IS NULL OR method <> 'review')",
            )
            .bind(Value::String(answer.clone()).to_string())
            .bind(confidence)
            .bind(project.min_confidence)
            .bind(*task)
            .execute(&mut *tx)
            .await?;
            report.updated += usize::try_from(updated.rows_affected()).unwrap_or(0);
        }
        tx.commit().await?;
        Ok(report)
    }
}
