//! Settling a task when its answers are in: the live consensus decision
//! ([`crate::work::decide`]) applied inside the submit's transaction, so a
//! task is decided exactly once whatever the concurrency (the submit holds
//! the task row's lock).

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::work::json_column;
use crate::error::Result;
use crate::ids::{RoomId, now_ms};
use crate::work::decide::{Vote, decide};
use crate::work::{SubmitRules, answers_match, vote_accuracy};

/// How a task was settled, for publishing into its shared document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settled {
    pub state: String,
    pub consensus: Option<Value>,
    pub confidence: Option<f64>,
    pub method: Option<String>,
}

/// Decides the task and returns its new state: `complete` (confident
/// consensus), `open` with a raised overlap target (not confident, or a tie,
/// below the maximum), or `review` (still undecided at the maximum).
pub(super) async fn settle(
    conn: &mut AnyConnection,
    room: &RoomId,
    task: i64,
    target: i64,
    rules: &SubmitRules,
) -> Result<Settled> {
    let rows = sqlx::query(
        "SELECT a.worker_id, a.answer, COALESCE(s.gold_correct, 0) AS gold_correct, COALESCE(s.gold_total, 0) AS gold_total, \
         COALESCE(s.agree, 0) AS agree, COALESCE(s.disagree, 0) AS disagree FROM answers a \
         LEFT JOIN worker_stats s ON s.room_id = a.room_id AND s.worker_id = a.worker_id AND s.skill = '' \
         WHERE a.task_id = $1 ORDER BY a.id",
    )
    .bind(task)
    .fetch_all(&mut *conn)
    .await?;
    let mut answers: Vec<(String, Value, f64)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let accuracy = vote_accuracy(
            row.try_get("gold_correct")?,
            row.try_get("gold_total")?,
            row.try_get("agree")?,
            row.try_get("disagree")?,
        );
        answers.push((
            row.try_get("worker_id")?,
            json_column(row, "answer")?,
            accuracy,
        ));
    }
    let votes: Vec<Vote<'_>> = answers
        .iter()
        .map(|(_, answer, accuracy)| Vote {
            answer,
            accuracy: *accuracy,
        })
        .collect();
    let decision = decide(&rules.schema, &votes);
    let confident = decision
        .as_ref()
        .is_some_and(|decision| decision.confidence >= rules.min_confidence);
    if !confident && target < i64::from(rules.overlap_max) {
        // Dynamic overlap: ask for one more independent answer.
        sqlx::query("UPDATE tasks SET overlap_target = overlap_target + 1 WHERE id = $1")
            .bind(task)
            .execute(&mut *conn)
            .await?;
        return Ok(Settled {
            state: "open".to_owned(),
            consensus: None,
            confidence: None,
            method: None,
        });
    }
    let state = if confident { "complete" } else { "review" };
    let (consensus, confidence, method) = match &decision {
        Some(decision) => (
            Some(decision.answer.to_string()),
            Some(decision.confidence),
            Some(decision.method),
        ),
        None => (None, None, None),
    };
    sqlx::query("UPDATE tasks SET state = $1, consensus = $2, confidence = $3, method = $4, completed_at = $5 WHERE id = $6")
        .bind(state)
        .bind(consensus)
        .bind(confidence)
        .bind(method)
        .bind(now_ms())
        .bind(task)
        .execute(&mut *conn)
        .await?;
    // Agreement with a confident consensus is weaker evidence of quality.
    // One statement for those who agreed and one for the others (a worker
    // answers a task once), not one per answer: this runs in the writer.
    if let (true, Some(decision)) = (confident, &decision) {
        let (agreed, disagreed): (Vec<&(String, Value, f64)>, Vec<_>) = answers
            .iter()
            .partition(|(_, answer, _)| answers_match(answer, &decision.answer));
        for (column, workers) in [("agree", agreed), ("disagree", disagreed)] {
            if workers.is_empty() {
                continue;
            }
            let placeholders: Vec<String> =
                (0..workers.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE worker_stats SET {column} = {column} + 1 \
                 WHERE room_id = $1 AND skill = '' AND worker_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_str());
            for (worker, _, _) in workers {
                query = query.bind(worker.as_str());
            }
            query.execute(&mut *conn).await?;
        }
    }
    Ok(Settled {
        state: state.to_owned(),
        consensus: decision.as_ref().map(|decision| decision.answer.clone()),
        confidence: decision.as_ref().map(|decision| decision.confidence),
        method: decision.as_ref().map(|decision| decision.method.to_owned()),
    })
}

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
        let row = sqlx::query("SELECT consensus, gold FROM tasks WHERE id = $1 AND room_id = $2")
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
        sqlx::query("UPDATE tasks SET state = $1, consensus = $2, confidence = $3, method = 'review', completed_at = $4 WHERE id = $5")
            .bind(state)
            .bind(consensus.as_ref().map(Value::to_string))
            .bind(1.0_f64)
            .bind(at)
            .bind(task)
            .execute(&mut *tx)
            .await?;
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
        project: &crate::work::ProjectConfig,
    ) -> Result<crate::work::batch::BatchReport> {
        use std::collections::HashMap;
        let crate::work::AnswerSchema::SingleChoice { options } = &project.answer_schema else {
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
            crate::work::batch::run(names, workers, labels, &triples, &gold)
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
