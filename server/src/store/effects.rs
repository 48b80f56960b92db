//! The rows of the work queue's decisions: a run of the committer's
//! [`WriteOp::Work`](super::WriteOp::Work) writes, each a room's
//! [`Effect`]s, written as their net change in a few set-based statements
//! whatever the run's length.
//!
//! The room decided every effect in memory ([`crowdroom_work::queue`]), so
//! nothing here reads or decides: a reservation granted and answered in
//! the same batch is never inserted, a task's counters move by their sum,
//! a worker's record by the sum of its deltas. The SQL constraints (one
//! reservation and one answer per task and worker, non-negative amounts)
//! stay as a second line of defence: a write that breaks one fails the
//! batch, the committer retries each write alone, and the room whose write
//! failed reloads its state from the store.

use std::collections::BTreeMap;

use crowdroom_work::queue::{Effect, Record, Reservation, TaskState};
use sqlx::AnyConnection;

use super::sql;

mod answers;
mod no_fault;

use crate::error::{Error, Result};
use crate::ids::RoomId;
use answers::{NewAnswer, write_answers};

/// Most rows in one statement (8 parameters at most each: far below
/// SQLite's and PostgreSQL's limits).
const CHUNK: usize = 1024;

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// A reservation's net change in the run.
enum Net {
    Insert(Reservation),
    Delete,
    Extend(i64),
}

/// A decided task's row.
struct Decided<'a> {
    task: i64,
    state: &'static str,
    consensus: Option<String>,
    confidence: Option<f64>,
    method: Option<&'a str>,
    at: i64,
}

/// Writes a run of rooms' effects; returns, per room's write, the ids of
/// its answers in the order of its `AnswerRecorded` effects.
pub(super) async fn write(
    conn: &mut AnyConnection,
    run: &[(&RoomId, &[Effect])],
) -> Result<Vec<Vec<i64>>> {
    let mut reservations: BTreeMap<(i64, &str), (&str, Net)> = BTreeMap::new();
    let mut counters: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut targets: BTreeMap<i64, i64> = BTreeMap::new();
    let mut decided: BTreeMap<i64, Decided<'_>> = BTreeMap::new();
    let mut records: BTreeMap<(&str, &str, &str), Record> = BTreeMap::new();
    let mut skips: Vec<(i64, &str, i64)> = Vec::new();
    let mut answers: Vec<NewAnswer<'_>> = Vec::new();
    // (room, worker) -> the last pause change: Some((reason, at)) or None.
    let mut pauses: BTreeMap<(&str, &str), Option<(&str, i64)>> = BTreeMap::new();
    let mut tags: Vec<(&str, &str, &'static str, &[String])> = Vec::new();
    let mut no_fault: Vec<no_fault::NoFault<'_>> = Vec::new();
    for (room, effects) in run {
        let room = room.as_str();
        for effect in effects.iter() {
            no_fault.extend(no_fault::of(room, effect));
            match effect {
                Effect::ReservationInserted {
                    worker,
                    reservation,
                } => {
                    let key = (reservation.task_id, &**worker);
                    reservations.insert(key, (room, Net::Insert(*reservation)));
                    counters.entry(reservation.task_id).or_default().0 += 1;
                }
                Effect::ReservationExtended {
                    task,
                    worker,
                    expires_at,
                } => {
                    let entry = reservations
                        .entry((*task, &**worker))
                        .or_insert((room, Net::Extend(*expires_at)));
                    match &mut entry.1 {
                        Net::Insert(reservation) => reservation.expires_at = *expires_at,
                        Net::Extend(at) => *at = *expires_at,
                        Net::Delete => {}
                    }
                }
                Effect::ReservationDeleted { task, worker, .. } => {
                    reservations.insert((*task, &**worker), (room, Net::Delete));
                    counters.entry(*task).or_default().0 -= 1;
                }
                Effect::SkipRecorded { task, worker, at } => skips.push((*task, worker, *at)),
                Effect::AnswerRecorded {
                    task,
                    worker,
                    answer,
                    at,
                    lead_time_ms,
                    correct,
                    pay,
                } => {
                    reservations.insert((*task, &**worker), (room, Net::Delete));
                    let counter = counters.entry(*task).or_default();
                    counter.0 -= 1;
                    counter.1 += 1;
                    answers.push(NewAnswer {
                        room,
                        task: *task,
                        worker,
                        answer: answer.to_string(),
                        at: *at,
                        lead_time_ms: *lead_time_ms,
                        correct: correct.map(i64::from),
                        pay: (*pay).max(0),
                    });
                }
                Effect::RecordChanged {
                    worker,
                    skill,
                    delta,
                } => records.entry((room, worker, skill)).or_default().add(delta),
                Effect::WorkerPaused { worker, reason, at } => {
                    pauses.insert((room, worker), Some((reason, *at)));
                }
                Effect::WorkerUnpaused { worker } => {
                    pauses.insert((room, worker), None);
                }
                Effect::SkillsSet { worker, skills } => {
                    tags.push((room, worker, "member_skills", skills))
                }
                Effect::InterestsSet { worker, interests } => {
                    tags.push((room, worker, "member_interests", interests))
                }
                Effect::TaskStateChanged {
                    task,
                    state,
                    consensus,
                    at,
                } => {
                    decided.insert(
                        *task,
                        Decided {
                            task: *task,
                            state: stored_state(*state)?,
                            consensus: consensus.as_ref().map(|c| c.answer.to_string()),
                            confidence: consensus.as_ref().map(|c| c.confidence),
                            method: consensus.as_ref().map(|c| c.method),
                            at: *at,
                        },
                    );
                }
                Effect::OverlapRaised { task, target } => {
                    targets.insert(*task, i64::from(*target));
                }
            }
        }
    }
    write_reservations(conn, &reservations).await?;
    write_counters(conn, &counters, &targets).await?;
    write_skips(conn, &skips).await?;
    let ids = write_answers(conn, &answers).await?;
    write_records(conn, &records).await?;
    write_pauses(conn, &pauses).await?;
    write_tags(conn, &tags).await?;
    no_fault::write(conn, &no_fault).await?;
    write_decided(conn, &decided.into_values().collect::<Vec<_>>()).await?;
    // Each room's answer ids, in its effects' order.
    let mut ids = ids.into_iter();
    run.iter()
        .map(|(_, effects)| {
            let count = effects
                .iter()
                .filter(|effect| matches!(effect, Effect::AnswerRecorded { .. }))
                .count();
            let mine: Vec<i64> = ids.by_ref().take(count).collect();
            if mine.len() == count {
                Ok(mine)
            } else {
                Err(Error::Internal(
                    "an inserted answer was not returned".into(),
                ))
            }
        })
        .collect()
}

/// The store's name of a decided state (`tasks.state`).
fn stored_state(state: TaskState) -> Result<&'static str> {
    match state {
        TaskState::Complete => Ok("complete"),
        TaskState::Review => Ok("review"),
        TaskState::Rejected => Ok("rejected"),
        TaskState::Open => Ok("open"),
        TaskState::Deciding => Err(Error::Internal(
            "a task waiting for its decision is stored open, not changed".into(),
        )),
    }
}

fn query<'q>(conn: &AnyConnection, sql: String) -> Query<'q> {
    sqlx::query(sqlx::AssertSqlSafe(sql::placeholders(conn, sql)))
}

async fn write_reservations(
    conn: &mut AnyConnection,
    reservations: &BTreeMap<(i64, &str), (&str, Net)>,
) -> Result<()> {
    let replaced: Vec<&(i64, &str)> = reservations
        .iter()
        .filter(|(_, (_, net))| !matches!(net, Net::Extend(_)))
        .map(|(key, _)| key)
        .collect();
    for chunk in replaced.chunks(CHUNK) {
        // The task ids first: SQLite scans the whole table for a row value
        // IN (VALUES ...) alone, and searches the key with them.
        let sql = format!(
            "DELETE FROM reservations WHERE task_id IN ({}) AND (task_id, worker_id) IN (VALUES {})",
            sql::rows(chunk.len(), "?", ", "),
            sql::rows(chunk.len(), "(?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (task, _) in chunk {
            statement = statement.bind(*task);
        }
        for (task, worker) in chunk {
            statement = statement.bind(*task).bind(worker.to_string());
        }
        statement.execute(&mut *conn).await?;
    }
    let inserted: Vec<(&str, &str, &Reservation)> = reservations
        .iter()
        .filter_map(|((_, worker), (room, net))| match net {
            Net::Insert(reservation) => Some((*room, *worker, reservation)),
            _ => None,
        })
        .collect();
    for chunk in inserted.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO reservations (task_id, worker_id, room_id, created_at, expires_at, cap_at) VALUES {}",
            sql::rows(chunk.len(), "(?, ?, ?, ?, ?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (room, worker, reservation) in chunk {
            statement = statement
                .bind(reservation.task_id)
                .bind(worker.to_string())
                .bind(room.to_string())
                .bind(reservation.created_at)
                .bind(reservation.expires_at)
                .bind(reservation.cap_at);
        }
        statement.execute(&mut *conn).await?;
    }
    let extended: Vec<(i64, &str, i64)> = reservations
        .iter()
        .filter_map(|((task, worker), (_, net))| match net {
            Net::Extend(at) => Some((*task, *worker, *at)),
            _ => None,
        })
        .collect();
    for chunk in extended.chunks(CHUNK) {
        // VALUES columns are column1, column2, ... on both databases.
        let sql = format!(
            "UPDATE reservations SET expires_at = d.column3 FROM (VALUES {}) AS d \
             WHERE reservations.task_id = d.column1 AND reservations.worker_id = d.column2",
            sql::rows(chunk.len(), "(?, ?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (task, worker, at) in chunk {
            statement = statement.bind(*task).bind(worker.to_string()).bind(*at);
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn write_counters(
    conn: &mut AnyConnection,
    counters: &BTreeMap<i64, (i64, i64)>,
    targets: &BTreeMap<i64, i64>,
) -> Result<()> {
    // Raised targets first: a slot a raise opened may be taken in the same
    // run, and the tasks' CHECK holds after every statement.
    let targets: Vec<(&i64, &i64)> = targets.iter().collect();
    for chunk in targets.chunks(CHUNK) {
        let sql = format!(
            "UPDATE tasks SET overlap_target = d.column2 FROM (VALUES {}) AS d WHERE tasks.id = d.column1",
            sql::rows(chunk.len(), "(?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (task, target) in chunk {
            statement = statement.bind(**task).bind(**target);
        }
        statement.execute(&mut *conn).await?;
    }
    let moved: Vec<(&i64, &(i64, i64))> = counters
        .iter()
        .filter(|(_, (reserved, answered))| *reserved != 0 || *answered != 0)
        .collect();
    for chunk in moved.chunks(CHUNK) {
        let sql = format!(
            "UPDATE tasks SET reserved = reserved + d.column2, answered = answered + d.column3 \
             FROM (VALUES {}) AS d WHERE tasks.id = d.column1",
            sql::rows(chunk.len(), "(?, ?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (task, (reserved, answered)) in chunk {
            statement = statement.bind(**task).bind(*reserved).bind(*answered);
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn write_skips(conn: &mut AnyConnection, skips: &[(i64, &str, i64)]) -> Result<()> {
    for chunk in skips.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO skips (task_id, worker_id, created_at) VALUES {} ON CONFLICT DO NOTHING",
            sql::rows(chunk.len(), "(?, ?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (task, worker, at) in chunk {
            statement = statement.bind(*task).bind(worker.to_string()).bind(*at);
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn write_records(
    conn: &mut AnyConnection,
    records: &BTreeMap<(&str, &str, &str), Record>,
) -> Result<()> {
    let rows: Vec<_> = records.iter().collect();
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO worker_stats (room_id, worker_id, skill, gold_correct, gold_total, agree, disagree, \
             answers, lead_time_total, fast_answers) VALUES {} \
             ON CONFLICT (room_id, worker_id, skill) DO UPDATE SET \
             gold_correct = worker_stats.gold_correct + excluded.gold_correct, \
             gold_total = worker_stats.gold_total + excluded.gold_total, \
             agree = worker_stats.agree + excluded.agree, \
             disagree = worker_stats.disagree + excluded.disagree, \
             answers = worker_stats.answers + excluded.answers, \
             lead_time_total = worker_stats.lead_time_total + excluded.lead_time_total, \
             fast_answers = worker_stats.fast_answers + excluded.fast_answers",
            sql::rows(chunk.len(), "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for ((room, worker, skill), record) in chunk {
            statement = statement
                .bind(room.to_string())
                .bind(worker.to_string())
                .bind(skill.to_string())
                .bind(record.gold_correct)
                .bind(record.gold_total)
                .bind(record.agree)
                .bind(record.disagree)
                .bind(record.answers)
                .bind(record.lead_time_total)
                .bind(record.fast_answers);
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn write_pauses(
    conn: &mut AnyConnection,
    pauses: &BTreeMap<(&str, &str), Option<(&str, i64)>>,
) -> Result<()> {
    for ((room, worker), pause) in pauses {
        let statement = match pause {
            Some((reason, at)) => query(
                conn,
                "INSERT INTO paused_workers (room_id, worker_id, reason, paused_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING"
                    .to_owned(),
            )
            .bind(room.to_string())
            .bind(worker.to_string())
            .bind(reason.to_string())
            .bind(*at),
            None => query(
                conn,
                "DELETE FROM paused_workers WHERE room_id = ? AND worker_id = ?".to_owned(),
            )
            .bind(room.to_string())
            .bind(worker.to_string()),
        };
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn write_tags(
    conn: &mut AnyConnection,
    tags: &[(&str, &str, &'static str, &[String])],
) -> Result<()> {
    for (room, worker, table, names) in tags {
        let column = if *table == "member_skills" {
            "skill"
        } else {
            "interest"
        };
        query(
            conn,
            format!("DELETE FROM {table} WHERE room_id = ? AND user_id = ?"),
        )
        .bind(room.to_string())
        .bind(worker.to_string())
        .execute(&mut *conn)
        .await?;
        for name in names.iter() {
            query(
                conn,
                format!(
                    "INSERT INTO {table} (room_id, user_id, {column}) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
                ),
            )
            .bind(room.to_string())
            .bind(worker.to_string())
            .bind(name.clone())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The decided tasks' states and consensus, in one statement per chunk. A
/// missing consensus, confidence or method is a typed literal NULL, never
/// bound: sqlx's Any driver binds a None with a type of its own, which
/// PostgreSQL's prepared statement keeps, and the next float then failed
/// with "incorrect binary data format in bind parameter 4".
async fn write_decided(conn: &mut AnyConnection, decided: &[Decided<'_>]) -> Result<()> {
    for chunk in decided.chunks(CHUNK) {
        let values: Vec<String> = chunk
            .iter()
            .map(|row| {
                let or_null = |present: bool, kind: &str| {
                    if present {
                        "?".to_owned()
                    } else {
                        format!("CAST(NULL AS {kind})")
                    }
                };
                format!(
                    "(?, ?, {}, {}, {}, ?)",
                    or_null(row.consensus.is_some(), "TEXT"),
                    or_null(row.confidence.is_some(), "DOUBLE PRECISION"),
                    or_null(row.method.is_some(), "TEXT"),
                )
            })
            .collect();
        let sql = format!(
            "UPDATE tasks SET state = d.column2, consensus = d.column3, confidence = d.column4, \
             method = d.column5, completed_at = d.column6 FROM (VALUES {}) AS d WHERE tasks.id = d.column1",
            values.join(", ")
        );
        let mut statement = query(conn, sql);
        for row in chunk {
            statement = statement.bind(row.task).bind(row.state);
            if let Some(consensus) = &row.consensus {
                statement = statement.bind(consensus.clone());
            }
            if let Some(confidence) = row.confidence {
                statement = statement.bind(confidence);
            }
            if let Some(method) = row.method {
                statement = statement.bind(method.to_owned());
            }
            statement = statement.bind(row.at);
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}
