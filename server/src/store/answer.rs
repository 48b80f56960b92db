//! Answers, in the committer's batch, a run at a time: the statements of a
//! run do not grow with its length.
//!
//! An answer was about seven statements, each a round trip to the SQLite
//! thread, and the one writer is what limits a crowd. A run of answers
//! now deletes the reservations it consumes in one statement
//! ([`consume`]), moves them to the tasks' answer counts in one
//! ([`count_on_tasks`]), records every answer in its worker's stats in one
//! upsert (`quality::record_answers`, which judges each answer on the
//! record as it stood after it), and writes the answers, their ledger
//! entries and those entries' first events in three multi-row statements,
//! sent to SQLite as one ([`write_rows`]), then settles the tasks those
//! answers completed, all together (`consensus::settle_all`).
//! Settling after the inserts sees the same answers as settling at each
//! answer did: within a run, the answer that reaches a task's target is
//! that task's last (reserved + answered never exceeds the target).

use std::collections::{BTreeMap, HashMap};

use crowdroom_work::quality::SubmitRules;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::consensus::{Due, Settled, settle_all};
use super::quality::{AnswerCheck, AnswerFacts, optional_json, record_answers};
use super::sql::{self, Query};
use super::work::json_column;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

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

/// One answer of a run, as the committer's batch holds it.
pub(super) struct Answer<'a> {
    pub room: &'a RoomId,
    pub task: i64,
    pub worker: &'a UserId,
    pub answer: &'a Value,
    pub rules: &'a SubmitRules,
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

/// Runs a run of answers: consumes their reservations, counts them on
/// their tasks, records them in their workers' stats, writes their rows and
/// settles the tasks they completed. An answer whose reservation was not
/// live (or that a second answer of the run also wanted) is refused with
/// `ReservationLost` and writes nothing; the outer error is a database
/// error, which fails the batch.
pub(super) async fn run(
    conn: &mut AnyConnection,
    answers: &[Answer<'_>],
) -> Result<Vec<Result<Submitted>>> {
    let mut consumed = consume(conn, answers).await?;
    // The answers whose reservation this run consumed, with its grant time.
    let mut live = Vec::with_capacity(answers.len());
    let mut per_task: BTreeMap<i64, i64> = BTreeMap::new();
    let mut accepted = Vec::with_capacity(answers.len());
    for item in answers {
        let key = (
            item.task,
            item.worker.as_str().to_owned(),
            item.room.as_str().to_owned(),
        );
        let reserved_at = consumed.granted.remove(&key);
        if let Some(reserved_at) = reserved_at {
            *per_task.entry(item.task).or_default() += 1;
            live.push((item, reserved_at));
        }
        accepted.push(reserved_at.is_some());
    }
    let tasks = count_on_tasks(conn, &per_task).await?;
    let mut counted = Vec::with_capacity(live.len());
    for (item, reserved_at) in &live {
        let task = tasks
            .get(&item.task)
            .ok_or_else(|| Error::Internal("a counted task was not returned".into()))?;
        // The run's answers to one task are counted in order: this one saw
        // the count less the run's later answers to it.
        let remaining = per_task.get_mut(&item.task).map_or(0, |left| {
            *left -= 1;
            *left
        });
        let answered = task.answered - remaining;
        let settles_at = (task.gold.is_none() && answered >= task.target).then_some(task.target);
        counted.push((task.state.clone(), settles_at, consumed.at - reserved_at));
    }
    let facts: Vec<AnswerFacts<'_>> = live
        .iter()
        .zip(&counted)
        .map(|((item, _), (_, _, lead_time_ms))| {
            let task = tasks.get(&item.task);
            AnswerFacts {
                room: item.room,
                worker: item.worker,
                skills: task.map_or(&[], |task| task.skills.as_slice()),
                gold: task.and_then(|task| task.gold.as_ref()),
                answer: item.answer,
                lead_time_ms: *lead_time_ms,
                rules: item.rules.quality,
            }
        })
        .collect();
    let checks = record_answers(conn, &facts).await?;
    let checked: Vec<Checked<'_>> = live
        .iter()
        .zip(counted)
        .zip(checks)
        .map(
            |(((item, _), (task_state, settles_at, lead_time_ms)), check)| Checked {
                room: item.room,
                task: item.task,
                worker: item.worker,
                answer: item.answer,
                rules: item.rules,
                lead_time_ms,
                at: consumed.at,
                task_state,
                check,
                settles_at,
            },
        )
        .collect();
    let mut submitted = finish(conn, checked).await?.into_iter();
    // Back in the run's order, refusals in their places.
    accepted
        .into_iter()
        .map(|accepted| match accepted {
            true => submitted
                .next()
                .map(Ok)
                .ok_or_else(|| Error::Internal("an answer's outcome is missing".into())),
            false => Ok(Err(Error::ReservationLost)),
        })
        .collect()
}

/// The live reservations a run of answers consumes, deleted in one
/// statement: when each (task, worker, room) was granted.
struct Consumed {
    at: i64,
    granted: HashMap<(i64, String, String), i64>,
}

/// Deletes the live reservations the answers hold (task, worker, and the
/// room the answer came from) at once.
async fn consume(conn: &mut AnyConnection, answers: &[Answer<'_>]) -> Result<Consumed> {
    let at = now_ms();
    let mut granted = HashMap::with_capacity(answers.len());
    if answers.is_empty() {
        return Ok(Consumed { at, granted });
    }
    let sql = format!(
        "DELETE FROM reservations WHERE expires_at > ? AND ({}) RETURNING task_id, worker_id, room_id, created_at",
        sql::rows(
            answers.len(),
            "(task_id = ? AND worker_id = ? AND room_id = ?)",
            " OR "
        )
    );
    let sql = sql::placeholders(conn, sql);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at);
    for item in answers {
        query = query
            .bind(item.task)
            .bind(item.worker.as_str())
            .bind(item.room.as_str());
    }
    for row in query.fetch_all(&mut *conn).await? {
        granted.insert(
            (
                row.try_get("task_id")?,
                row.try_get("worker_id")?,
                row.try_get("room_id")?,
            ),
            row.try_get("created_at")?,
        );
    }
    Ok(Consumed { at, granted })
}

/// A task as a run of answers left it.
struct Counted {
    state: String,
    gold: Option<Value>,
    skills: Vec<String>,
    /// Its answers, the run's included.
    answered: i64,
    target: i64,
}

/// Moves each task's consumed reservations to its answers, `per_task`
/// (task, answers) in one statement, and returns the tasks as they now are.
async fn count_on_tasks(
    conn: &mut AnyConnection,
    per_task: &BTreeMap<i64, i64>,
) -> Result<HashMap<i64, Counted>> {
    let mut tasks = HashMap::with_capacity(per_task.len());
    if per_task.is_empty() {
        return Ok(tasks);
    }
    // VALUES columns are column1, column2, ... on both databases.
    let sql = format!(
        "UPDATE tasks SET reserved = reserved - d.column2, answered = answered + d.column2 \
         FROM (VALUES {}) AS d WHERE tasks.id = d.column1 \
         RETURNING id, state, gold, skills, answered, overlap_target",
        sql::rows(per_task.len(), "(?, ?)", ", ")
    );
    let sql = sql::placeholders(conn, sql);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (task, count) in per_task {
        query = query.bind(*task).bind(*count);
    }
    for row in query.fetch_all(&mut *conn).await? {
        tasks.insert(
            row.try_get("id")?,
            Counted {
                state: row.try_get("state")?,
                gold: optional_json(&row, "gold")?,
                skills: serde_json::from_value(json_column(&row, "skills")?).unwrap_or_default(),
                answered: row.try_get("answered")?,
                target: row.try_get("overlap_target")?,
            },
        );
    }
    Ok(tasks)
}

/// Writes the answers of a run of checked answers, their ledger entries
/// (every answer is paid, pending, gold and onboarding included) and the
/// entries' first events, then settles the tasks they completed.
async fn finish(conn: &mut AnyConnection, checked: Vec<Checked<'_>>) -> Result<Vec<Submitted>> {
    if checked.is_empty() {
        return Ok(Vec::new());
    }
    let ids = write_rows(conn, &checked).await?;
    let due: Vec<Due<'_>> = checked
        .iter()
        .filter_map(|item| {
            item.settles_at.map(|target| Due {
                room: item.room,
                task: item.task,
                target,
                rules: item.rules,
            })
        })
        .collect();
    let mut outcomes = settle_all(conn, &due).await?.into_iter();
    let mut submitted = Vec::with_capacity(checked.len());
    for (item, answer_id) in checked.into_iter().zip(ids) {
        let mut task_state = item.task_state;
        let mut settled = None;
        if item.settles_at.is_some() {
            let outcome = outcomes
                .next()
                .ok_or_else(|| Error::Internal("a settled task's outcome is missing".into()))?;
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

/// Inserts the answers, one ledger entry each and each entry's first
/// event; returns each answer's id, in `checked`'s order.
///
/// The entries find their answers, and the events their entries, by
/// (task, worker), which answers keeps unique: no statement needs another's
/// result, so on SQLite the three go as one string, one round trip to the
/// SQLite thread (under a crowd the writer's time goes to its round trips:
/// docs/BENCHMARKS.md, "fourth session"). PostgreSQL's extended protocol
/// takes one statement at a time.
async fn write_rows(conn: &mut AnyConnection, checked: &[Checked<'_>]) -> Result<Vec<i64>> {
    let answers = format!(
        "INSERT INTO answers (task_id, room_id, worker_id, answer, lead_time_ms, created_at, correct) \
         VALUES {} RETURNING id, task_id, worker_id",
        sql::rows(checked.len(), "(?, ?, ?, ?, ?, ?, ?)", ", ")
    );
    // VALUES columns are column1, column2, ... on both databases.
    let entries = format!(
        "INSERT INTO ledger_entries (room_id, worker_id, kind, answer_id, amount, state, created_by, created_at) \
         SELECT a.room_id, a.worker_id, 'answer', a.id, d.column3, 'pending', 'system', a.created_at \
         FROM (VALUES {}) AS d JOIN answers a ON a.task_id = d.column1 AND a.worker_id = d.column2",
        sql::rows(checked.len(), "(?, ?, ?)", ", ")
    );
    let events = format!(
        "INSERT INTO ledger_events (entry_id, state, reason, actor, at) \
         SELECT e.id, 'pending', NULL, 'system', e.created_at FROM (VALUES {}) AS d \
         JOIN answers a ON a.task_id = d.column1 AND a.worker_id = d.column2 \
         JOIN ledger_entries e ON e.answer_id = a.id",
        sql::rows(checked.len(), "(?, ?)", ", ")
    );
    let bind_answers = |mut query: Query| {
        for item in checked {
            query = query
                .bind(item.task)
                .bind(item.room.as_str().to_owned())
                .bind(item.worker.as_str().to_owned())
                .bind(item.answer.to_string())
                .bind(item.lead_time_ms)
                .bind(item.at)
                .bind(item.check.correct.map(i64::from));
        }
        query
    };
    let bind_entries = |mut query: Query| {
        for item in checked {
            query = query
                .bind(item.task)
                .bind(item.worker.as_str().to_owned())
                .bind(item.rules.pay_per_answer.max(0));
        }
        query
    };
    let bind_events = |mut query: Query| {
        for item in checked {
            query = query.bind(item.task).bind(item.worker.as_str().to_owned());
        }
        query
    };
    let rows = if conn.backend_name() == "SQLite" {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{answers}; {entries}; {events}"
        )));
        let query = bind_events(bind_entries(bind_answers(query)));
        query.fetch_all(&mut *conn).await?
    } else {
        let [answers, entries, events] = [answers, entries, events]
            .map(|sql| sqlx::query(sqlx::AssertSqlSafe(sql::placeholders(conn, sql))));
        let rows = bind_answers(answers).fetch_all(&mut *conn).await?;
        bind_entries(entries).execute(&mut *conn).await?;
        bind_events(events).execute(&mut *conn).await?;
        rows
    };
    // RETURNING's order is not promised: match rows by (task, worker),
    // which answers keeps unique.
    let mut returned: HashMap<(i64, String), i64> = HashMap::with_capacity(checked.len());
    for row in rows {
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
