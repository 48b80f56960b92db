//! Answers, in the committer's batch: a run of answers consumes its
//! reservations together, checks each answer in turn, then writes the rows
//! of the whole run together.
//!
//! An answer was about seven statements, each a round trip to the SQLite
//! thread, and the one writer is what limits a crowd. The live reservations
//! a run consumes are deleted in one statement ([`consume`]). The task's
//! counter and the worker's record and pause rules go one answer at a time
//! ([`check`]). The rows they produce (the answer, its ledger entry and
//! that entry's first event) do not depend on each other: [`finish`] writes
//! them for the run in three multi-row statements, then settles the tasks
//! those answers completed. Settling after the inserts sees the same
//! answers as settling at each answer did: within a run, the answer that
//! reaches a task's target is that task's last (reserved + answered never
//! exceeds the target).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::consensus::{Settled, settle};
use super::quality::{AnswerCheck, AnswerFacts, optional_json, record_answer};
use super::work::json_column;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};
use crate::work::SubmitRules;

/// What a committed answer did.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    pub answer_id: i64,
    pub task_id: i64,
    pub lead_time_ms: i64,
    /// The task's state after this answer.
    pub task_state: String,
    /// What checking the answer found (gold, speed, pause).
    pub check: AnswerCheck,
    /// Set when this answer settled the task (complete or review).
    pub settled: Option<Settled>,
}

/// One answer that passed its checks, waiting for its rows.
pub(super) struct Checked<'a> {
    room: &'a RoomId,
    task: i64,
    worker: &'a UserId,
    answer: &'a Value,
    rules: &'a SubmitRules,
    lead_time_ms: i64,
    at: i64,
    task_state: String,
    check: AnswerCheck,
    /// The task's overlap target when this answer reached it (a regular
    /// task only): the task is settled after the run's rows are written.
    settles_at: Option<i64>,
}

/// The live reservations a run of answers consumes, deleted in one
/// statement: when each (task, worker) was granted.
pub(super) struct Consumed {
    at: i64,
    granted: HashMap<(i64, String), i64>,
}

/// Deletes the live reservations of `keys` (task, worker) at once.
pub(super) async fn consume(conn: &mut AnyConnection, keys: &[(i64, &UserId)]) -> Result<Consumed> {
    let at = now_ms();
    let mut granted = HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(Consumed { at, granted });
    }
    let sql = format!(
        "DELETE FROM reservations WHERE expires_at > $1 AND ({}) RETURNING task_id, worker_id, created_at",
        numbered(2, keys.len(), "(task_id = ? AND worker_id = ?)", " OR ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at);
    for (task, worker) in keys {
        query = query.bind(*task).bind(worker.as_str());
    }
    for row in query.fetch_all(&mut *conn).await? {
        granted.insert(
            (row.try_get("task_id")?, row.try_get("worker_id")?),
            row.try_get("created_at")?,
        );
    }
    Ok(Consumed { at, granted })
}

/// Takes the worker's reservation of `task` out of `consumed`, counts the
/// answer on the task, and records it in the worker's quality record
/// (which may pause them). Refused with `ReservationLost` (writing
/// nothing) when the reservation was not live (or a second answer of the
/// same run wanted it).
pub(super) async fn check<'a>(
    conn: &mut AnyConnection,
    consumed: &mut Consumed,
    room: &'a RoomId,
    task: i64,
    worker: &'a UserId,
    answer: &'a Value,
    rules: &'a SubmitRules,
) -> Result<Checked<'a>> {
    let now = consumed.at;
    let Some(reserved_at) = consumed.granted.remove(&(task, worker.as_str().to_owned())) else {
        return Err(Error::ReservationLost);
    };
    let row = sqlx::query(
        "UPDATE tasks SET reserved = reserved - 1, answered = answered + 1 \
         WHERE id = $1 AND room_id = $2 RETURNING state, gold, skills, answered, overlap_target",
    )
    .bind(task)
    .bind(room.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let task_state: String = row.try_get("state")?;
    let gold = optional_json(&row, "gold")?;
    let skills: Vec<String> =
        serde_json::from_value(json_column(&row, "skills")?).unwrap_or_default();
    let (answered, target): (i64, i64) = (row.try_get("answered")?, row.try_get("overlap_target")?);
    let lead_time_ms = now.saturating_sub(reserved_at);
    let facts = AnswerFacts {
        room,
        worker,
        skills: &skills,
        gold: gold.as_ref(),
        answer,
        lead_time_ms,
    };
    let check = record_answer(conn, facts, rules.quality).await?;
    Ok(Checked {
        room,
        task,
        worker,
        answer,
        rules,
        lead_time_ms,
        at: now,
        task_state,
        check,
        settles_at: (gold.is_none() && answered >= target).then_some(target),
    })
}

/// Writes the answers of a run of checked answers, their ledger entries
/// (every answer is paid, pending, gold and onboarding included) and the
/// entries' first events, then settles the tasks they completed.
pub(super) async fn finish(
    conn: &mut AnyConnection,
    checked: Vec<Checked<'_>>,
) -> Result<Vec<Submitted>> {
    if checked.is_empty() {
        return Ok(Vec::new());
    }
    let ids = insert_answers(conn, &checked).await?;
    let entries = book_answers(conn, &checked, &ids).await?;
    let sql = format!(
        "INSERT INTO ledger_events (entry_id, state, reason, actor, at) VALUES {}",
        numbered(1, entries.len(), "(?, 'pending', NULL, 'system', ?)", ", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (entry, at) in &entries {
        query = query.bind(*entry).bind(*at);
    }
    query.execute(&mut *conn).await?;
    let mut submitted = Vec::with_capacity(checked.len());
    for (item, answer_id) in checked.into_iter().zip(ids) {
        let mut task_state = item.task_state;
        let mut settled = None;
        if let Some(target) = item.settles_at {
            let outcome = settle(conn, item.room, item.task, target, item.rules).await?;
            task_state.clone_from(&outcome.state);
            settled = (outcome.state != "open").then_some(outcome);
        }
        submitted.push(Submitted {
            answer_id,
            task_id: item.task,
            lead_time_ms: item.lead_time_ms,
            task_state,
            check: item.check,
            settled,
        });
    }
    Ok(submitted)
}

/// One multi-row insert; returns each answer's id, in `checked`'s order.
async fn insert_answers(conn: &mut AnyConnection, checked: &[Checked<'_>]) -> Result<Vec<i64>> {
    let sql = format!(
        "INSERT INTO answers (task_id, room_id, worker_id, answer, lead_time_ms, created_at, correct) \
         VALUES {} RETURNING id, task_id, worker_id",
        numbered(1, checked.len(), "(?, ?, ?, ?, ?, ?, ?)", ", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for item in checked {
        query = query
            .bind(item.task)
            .bind(item.room.as_str())
            .bind(item.worker.as_str())
            .bind(item.answer.to_string())
            .bind(item.lead_time_ms)
            .bind(item.at)
            .bind(item.check.correct.map(i64::from));
    }
    // RETURNING's order is not promised: match rows by (task, worker),
    // which answers keeps unique.
    let mut returned: HashMap<(i64, String), i64> = HashMap::with_capacity(checked.len());
    for row in query.fetch_all(&mut *conn).await? {
        returned.insert(
            (row.try_get("task_id")?, row.try_get("worker_id")?),
            row.try_get("id")?,
        );
    }
    checked
        .iter()
        .map(|item| {
            returned
                .get(&(item.task, item.worker.as_str().to_owned()))
                .copied()
                .ok_or_else(|| Error::Internal("an inserted answer was not returned".into()))
        })
        .collect()
}

/// Books each answer's pay, pending; returns (entry id, at) per answer.
async fn book_answers(
    conn: &mut AnyConnection,
    checked: &[Checked<'_>],
    ids: &[i64],
) -> Result<Vec<(i64, i64)>> {
    let sql = format!(
        "INSERT INTO ledger_entries (room_id, worker_id, kind, answer_id, amount, state, created_by, created_at) \
         VALUES {} RETURNING id, answer_id, created_at",
        numbered(
            1,
            checked.len(),
            "(?, ?, 'answer', ?, ?, 'pending', 'system', ?)",
            ", "
        )
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (item, answer_id) in checked.iter().zip(ids) {
        query = query
            .bind(item.room.as_str())
            .bind(item.worker.as_str())
            .bind(*answer_id)
            .bind(item.rules.pay_per_answer.max(0))
            .bind(item.at);
    }
    let mut entries = Vec::with_capacity(checked.len());
    for row in query.fetch_all(&mut *conn).await? {
        entries.push((row.try_get("id")?, row.try_get("created_at")?));
    }
    Ok(entries)
}

/// `count` copies of `row` joined by `separator`, with every `?` numbered
/// in turn from `$first` across all of them (`row` holds no other `?`).
fn numbered(first: usize, count: usize, row: &str, separator: &str) -> String {
    let mut sql = String::with_capacity(count * (row.len() + 8));
    let mut next = first;
    for i in 0..count {
        if i > 0 {
            sql.push_str(separator);
        }
        for piece in row.split_inclusive('?') {
            match piece.strip_suffix('?') {
                Some(text) => {
                    sql.push_str(text);
                    sql.push('$');
                    sql.push_str(&next.to_string());
                    next += 1;
                }
                None => sql.push_str(piece),
            }
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_number_every_placeholder_in_turn() {
        assert_eq!(
            super::numbered(1, 2, "(?, 'x', ?)", ", "),
            "($1, 'x', $2), ($3, 'x', $4)"
        );
        assert_eq!(
            super::numbered(2, 2, "(a = ?)", " OR "),
            "(a = $2) OR (a = $3)"
        );
        assert_eq!(super::numbered(1, 0, "(?)", ", "), "");
    }
}
