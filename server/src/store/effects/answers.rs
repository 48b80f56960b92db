//! The answers of a run of work writes: each answer and its pending ledger
//! entry, in two multi-row statements sent to SQLite as one string (one
//! round trip to its thread). An answer's entry has no stored first event:
//! its creation is implied by the entry (`Store::ledger_events`), which
//! saves every answer a row and an index entry.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::{CHUNK, Query, query};
use crate::error::{Error, Result};
use crate::store::sql;

/// An answer to insert, with its pending ledger entry.
pub(super) struct NewAnswer<'a> {
    pub room: &'a str,
    pub task: i64,
    pub worker: &'a str,
    pub answer: String,
    pub at: i64,
    pub lead_time_ms: i64,
    pub correct: Option<i64>,
    pub pay: i64,
}

/// Inserts the answers and one pending ledger entry each; returns the
/// answers' ids in `answers`' order. The entries find their answers by
/// (task, worker), which answers keeps unique, so on SQLite the two go as
/// one string: one round trip to its thread.
pub(super) async fn write_answers(
    conn: &mut AnyConnection,
    answers: &[NewAnswer<'_>],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(answers.len());
    for chunk in answers.chunks(CHUNK) {
        ids.extend(write_answer_chunk(conn, chunk).await?);
    }
    Ok(ids)
}

async fn write_answer_chunk(
    conn: &mut AnyConnection,
    answers: &[NewAnswer<'_>],
) -> Result<Vec<i64>> {
    let insert = format!(
        "INSERT INTO answers (task_id, room_id, worker_id, answer, lead_time_ms, created_at, correct) \
         VALUES {} RETURNING id, task_id, worker_id",
        sql::rows(answers.len(), "(?, ?, ?, ?, ?, ?, ?)", ", ")
    );
    // VALUES columns are column1, column2, ... on both databases.
    let entries = format!(
        "INSERT INTO ledger_entries (room_id, worker_id, kind, answer_id, amount, state, created_by, created_at) \
         SELECT a.room_id, a.worker_id, 'answer', a.id, d.column3, 'pending', 'system', a.created_at \
         FROM (VALUES {}) AS d JOIN answers a ON a.task_id = d.column1 AND a.worker_id = d.column2",
        sql::rows(answers.len(), "(?, ?, ?)", ", ")
    );
    let bind_answers = |mut statement: Query<'static>| {
        for item in answers {
            statement = statement
                .bind(item.task)
                .bind(item.room.to_owned())
                .bind(item.worker.to_owned())
                .bind(item.answer.clone())
                .bind(item.lead_time_ms)
                .bind(item.at)
                .bind(item.correct);
        }
        statement
    };
    let bind_entries = |mut statement: Query<'static>| {
        for item in answers {
            statement = statement
                .bind(item.task)
                .bind(item.worker.to_owned())
                .bind(item.pay);
        }
        statement
    };
    let rows = if conn.backend_name() == "SQLite" {
        let statement = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{insert}; {entries}"
        )));
        bind_entries(bind_answers(statement))
            .fetch_all(&mut *conn)
            .await?
    } else {
        let rows = bind_answers(query(conn, insert))
            .fetch_all(&mut *conn)
            .await?;
        bind_entries(query(conn, entries))
            .execute(&mut *conn)
            .await?;
        rows
    };
    // RETURNING's order is not promised: match rows by (task, worker).
    let mut returned: HashMap<(i64, String), i64> = HashMap::with_capacity(answers.len());
    for row in rows {
        returned.insert(
            (row.try_get("task_id")?, row.try_get("worker_id")?),
            row.try_get("id")?,
        );
    }
    answers
        .iter()
        .map(|item| {
            returned
                .get(&(item.task, item.worker.to_owned()))
                .copied()
                .ok_or_else(|| Error::Internal("an inserted answer was not returned".into()))
        })
        .collect()
}
