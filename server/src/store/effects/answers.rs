//! The answers of a run of work writes: each answer and its pending ledger
//! entry. An answer's entry has no stored first event: its creation is
//! implied by the entry (`Store::ledger_events`), which saves every answer
//! a row and an index entry.
//!
//! On SQLite the batch holds the one write lock from its `BEGIN IMMEDIATE`,
//! so the answers' ids are numbered here, after the greatest ever given
//! (`sqlite_sequence`, kept by AUTOINCREMENT): the two inserts then need no
//! `RETURNING` (sqlx-sqlite hands each returned row from its thread on its
//! own) and the entries no search for their answers, and both go as one
//! string, one round trip to the SQLite thread. On PostgreSQL several
//! processes insert answers at once (each for the rooms it holds), so the
//! database numbers them: one statement inserts the answers and, in a
//! data-modifying CTE, their entries, and returns the ids.

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

impl NewAnswer<'_> {
    /// Binds the answer's columns in `answers`' order after the id: task,
    /// room, worker, answer, lead time, time, correctness.
    fn bind<'q>(&self, statement: Query<'q>) -> Query<'q> {
        statement
            .bind(self.task)
            .bind(self.room.to_owned())
            .bind(self.worker.to_owned())
            .bind(self.answer.clone())
            .bind(self.lead_time_ms)
            .bind(self.at)
            .bind(self.correct)
    }
}

/// Inserts the answers and one pending ledger entry each; returns the
/// answers' ids in `answers`' order.
pub(super) async fn write_answers(
    conn: &mut AnyConnection,
    answers: &[NewAnswer<'_>],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(answers.len());
    let sqlite = conn.backend_name() == "SQLite";
    for chunk in answers.chunks(CHUNK) {
        ids.extend(if sqlite {
            numbered_here(conn, chunk).await?
        } else {
            numbered_there(conn, chunk).await?
        });
    }
    Ok(ids)
}

/// SQLite: the ids are the next after the greatest ever given.
async fn numbered_here(conn: &mut AnyConnection, answers: &[NewAnswer<'_>]) -> Result<Vec<i64>> {
    let last: i64 = sqlx::query(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'answers'), \
           (SELECT MAX(id) FROM answers), 0) AS last",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("last")?;
    let ids: Vec<i64> = (1..)
        .take(answers.len())
        .map(|step| last.checked_add(step))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Internal("answer ids ran out".into()))?;
    let statements = format!(
        "INSERT INTO answers (id, task_id, room_id, worker_id, answer, lead_time_ms, created_at, correct) \
         VALUES {}; \
         INSERT INTO ledger_entries (room_id, worker_id, kind, answer_id, amount, state, created_by, created_at) \
         VALUES {}",
        sql::rows(answers.len(), "(?, ?, ?, ?, ?, ?, ?, ?)", ", "),
        sql::rows(
            answers.len(),
            "(?, ?, 'answer', ?, ?, 'pending', 'system', ?)",
            ", "
        )
    );
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(statements));
    for (item, id) in answers.iter().zip(&ids) {
        statement = item.bind(statement.bind(*id));
    }
    for (item, id) in answers.iter().zip(&ids) {
        statement = statement
            .bind(item.room.to_owned())
            .bind(item.worker.to_owned())
            .bind(*id)
            .bind(item.pay)
            .bind(item.at);
    }
    statement.execute(&mut *conn).await?;
    Ok(ids)
}

/// PostgreSQL: one statement inserts the answers, their entries (the CTE
/// hands the new ids over) and returns the ids.
async fn numbered_there(conn: &mut AnyConnection, answers: &[NewAnswer<'_>]) -> Result<Vec<i64>> {
    // VALUES columns are column1, column2, ... on both databases.
    let statement = format!(
        "WITH d AS (SELECT * FROM (VALUES {}) AS v), \
         a AS (INSERT INTO answers (task_id, room_id, worker_id, answer, lead_time_ms, created_at, correct) \
           SELECT column1, column2, column3, column4, column5, column6, column7 FROM d \
           RETURNING id, task_id, room_id, worker_id, created_at), \
         e AS (INSERT INTO ledger_entries (room_id, worker_id, kind, answer_id, amount, state, created_by, created_at) \
           SELECT a.room_id, a.worker_id, 'answer', a.id, d.column8, 'pending', 'system', a.created_at \
           FROM a JOIN d ON d.column1 = a.task_id AND d.column3 = a.worker_id) \
         SELECT id, task_id, worker_id FROM a",
        sql::rows(
            answers.len(),
            "(CAST(? AS BIGINT), ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))",
            ", "
        )
    );
    let mut bound: Query<'static> = query(conn, statement);
    for item in answers {
        bound = item.bind(bound).bind(item.pay);
    }
    let rows = bound.fetch_all(&mut *conn).await?;
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
