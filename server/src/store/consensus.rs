//! Consensus as the store serves it: the answers of due tasks for the
//! consensus actor (`rooms/decider.rs`, which decides them with
//! [`crowdroom_work::queue::settle`]), reviews, and the batch re-estimation
//! of a whole project with Dawid-Skene.

use std::collections::HashMap;

use crowdroom_work::batch::{self, BatchReport};
use crowdroom_work::project::ProjectConfig;
use crowdroom_work::quality::vote_accuracy;
use crowdroom_work::queue::DueAnswer;
use crowdroom_work::schema::AnswerSchema;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::work::json_column;
use super::{Store, sql};
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

/// Most tasks whose answers one statement reads.
const DUE_CHUNK: usize = 512;

/// One step of a task's review trail: who decided what, over which
/// answer, and why.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReview {
    pub reviewer: String,
    pub decision: String,
    pub answer: Option<Value>,
    /// The decision's answer before the review, if any.
    pub previous: Option<Value>,
    pub reason: Option<String>,
    pub at: i64,
}

impl Store {
    /// The answers of due tasks, each with its worker's accuracy as the
    /// store has it (overall record), in answer order: what the consensus
    /// actor decides them by (`rooms/decider.rs`).
    pub async fn due_answers(&self, tasks: &[i64]) -> Result<HashMap<i64, Vec<DueAnswer>>> {
        let mut answers: HashMap<i64, Vec<DueAnswer>> = HashMap::with_capacity(tasks.len());
        for chunk in tasks.chunks(DUE_CHUNK) {
            let sql = format!(
                "SELECT a.task_id, a.worker_id, a.answer, COALESCE(s.gold_correct, 0) AS gold_correct, \
                 COALESCE(s.gold_total, 0) AS gold_total, COALESCE(s.agree, 0) AS agree, \
                 COALESCE(s.disagree, 0) AS disagree FROM answers a \
                 LEFT JOIN worker_stats s ON s.room_id = a.room_id AND s.worker_id = a.worker_id AND s.skill = '' \
                 WHERE a.task_id IN ({}) ORDER BY a.task_id, a.id",
                sql::rows(chunk.len(), "?", ", ")
            );
            let mut conn = self.conn().await?;
            let sql = sql::placeholders(&conn, sql);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for task in chunk {
                query = query.bind(*task);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            for row in rows {
                let accuracy = vote_accuracy(
                    row.try_get("gold_correct")?,
                    row.try_get("gold_total")?,
                    row.try_get("agree")?,
                    row.try_get("disagree")?,
                );
                answers
                    .entry(row.try_get("task_id")?)
                    .or_default()
                    .push(DueAnswer {
                        worker: row.try_get("worker_id")?,
                        answer: json_column(&row, "answer")?,
                        accuracy,
                    });
            }
        }
        Ok(answers)
    }
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
    pub async fn task_reviews(&self, room: &RoomId, task: i64) -> Result<Vec<TaskReview>> {
        let rows = sqlx::query(
            "SELECT reviewer, decision, answer, previous, reason, at FROM task_reviews WHERE task_id = $1 AND room_id = $2 ORDER BY id",
        )
        .bind(task)
        .bind(room.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TaskReview {
                    reviewer: row.try_get("reviewer")?,
                    decision: row.try_get("decision")?,
                    answer: super::quality::optional_json(row, "answer")?,
                    previous: super::quality::optional_json(row, "previous")?,
                    reason: row.try_get("reason")?,
                    at: row.try_get("at")?,
                })
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
