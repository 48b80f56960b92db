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

/// Decides the task and returns its new state: `complete` (confident
/// consensus), `open` with a raised overlap target (not confident, or a tie,
/// below the maximum), or `review` (still undecided at the maximum).
pub(super) async fn settle(conn: &mut AnyConnection, room: &RoomId, task: i64, target: i64, rules: &SubmitRules) -> Result<String> {
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
        let accuracy = vote_accuracy(row.try_get("gold_correct")?, row.try_get("gold_total")?, row.try_get("agree")?, row.try_get("disagree")?);
        answers.push((row.try_get("worker_id")?, json_column(row, "answer")?, accuracy));
    }
    let votes: Vec<Vote<'_>> = answers.iter().map(|(_, answer, accuracy)| Vote { answer, accuracy: *accuracy }).collect();
    let decision = decide(&rules.schema, &votes);
    let confident = decision.as_ref().is_some_and(|decision| decision.confidence >= rules.min_confidence);
    if !confident && target < i64::from(rules.overlap_max) {
        // Dynamic overlap: ask for one more independent answer.
        sqlx::query("UPDATE tasks SET overlap_target = overlap_target + 1 WHERE id = $1").bind(task).execute(&mut *conn).await?;
        return Ok("open".to_owned());
    }
    let state = if confident { "complete" } else { "review" };
    let (consensus, confidence, method) = match &decision {
        Some(decision) => (Some(decision.answer.to_string()), Some(decision.confidence), Some(decision.method)),
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
    if let (true, Some(decision)) = (confident, &decision) {
        for (worker, answer, _) in &answers {
            let agreed = answers_match(answer, &decision.answer);
            sqlx::query(
                "UPDATE worker_stats SET agree = agree + $1, disagree = disagree + $2 \
                 WHERE room_id = $3 AND worker_id = $4 AND skill = ''",
            )
            .bind(i64::from(agreed))
            .bind(i64::from(!agreed))
            .bind(room.as_str())
            .bind(worker)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(state.to_owned())
}
