//! Grants, a run at a time: a run of the committer's `GrantFirst` writes
//! reads the state of every task it ranks (one statement on SQLite, two on
//! PostgreSQL: see [`read_slots`]), decides every grant in memory, in
//! order, and writes them all in at most three statements (the last two
//! in one round trip on SQLite).
//!
//! One writer commits everything a client waits for, and each statement is
//! a round trip to the database thread that waits for a turn on a busy
//! machine. A grant was two or three statements (the conditional slot
//! update for each ranked task tried, then the insert), the largest share
//! of the writer's statements under a crowd once answers went a run at a
//! time (`store/answer.rs`).
//!
//! Deciding in memory is safe because the batch holds the write lock: a
//! SQLite database has one writer at a time, and on PostgreSQL the task
//! rows are read `FOR UPDATE`, in id order, so the committers of two
//! servers lock them in the same order. The rules are those of
//! `reserve::grant`: the task is open, in the worker's room, has a free
//! slot (reserved + answered < target), and the worker has neither
//! answered nor reserved it; a task that looks full first drops its
//! expired reservations (the room's sweep reports the others).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::reserve::WorkAsk;
use super::sql::{self, Query};
use super::work::{Reservation, WorkerTask};
use crate::error::{Error, Result};
use crate::ids::now_ms;

/// A ranked task as the run sees it.
struct Slot {
    room: String,
    open: bool,
    /// Reserved + answered, with the run's grants so far.
    taken: i64,
    target: i64,
    /// Workers whose reservation of it has expired (dropped only when the
    /// task looks full).
    expired: Vec<String>,
}

/// Grants each ask the first of its ranked tasks that still has a free
/// slot for its worker, in order; None for an ask that found none.
pub(super) async fn grant_run(
    conn: &mut AnyConnection,
    asks: &[(&WorkAsk, &[WorkerTask])],
) -> Result<Vec<Option<(Reservation, WorkerTask)>>> {
    let now = now_ms();
    let mut ids: Vec<i64> = asks
        .iter()
        .flat_map(|(_, ranked)| ranked.iter().map(|task| task.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    // The (task, worker) pairs the run asks about: each ask's ranked tasks
    // and its worker (not every task with every worker of the run: that
    // cross product was most of a run's time).
    let mut pairs: Vec<(i64, &str)> = asks
        .iter()
        .flat_map(|(ask, ranked)| ranked.iter().map(|task| (task.id, ask.worker.as_str())))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    if ids.is_empty() {
        return Ok(asks.iter().map(|_| None).collect());
    }
    let (mut slots, mut held) = read_slots(conn, &ids, &pairs, now).await?;

    let mut granted = Vec::with_capacity(asks.len());
    // Per task: how many the run grants, and the expired holds it drops.
    let mut grants: BTreeMap<i64, i64> = BTreeMap::new();
    let mut drops: BTreeMap<i64, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    for (ask, ranked) in asks {
        let worker = ask.worker.as_str();
        let mut found = None;
        for task in *ranked {
            let Some(slot) = slots.get_mut(&task.id) else {
                continue;
            };
            if !slot.open
                || slot.room != ask.room.as_str()
                || held.contains(&(task.id, worker.to_owned()))
            {
                continue;
            }
            if slot.taken >= slot.target && !slot.expired.is_empty() {
                let expired = std::mem::take(&mut slot.expired);
                slot.taken -= i64::try_from(expired.len()).unwrap_or(i64::MAX);
                for gone in &expired {
                    held.remove(&(task.id, gone.clone()));
                }
                *drops.entry(task.id).or_default() += expired.len();
            }
            if slot.taken >= slot.target {
                continue;
            }
            slot.taken += 1;
            held.insert((task.id, worker.to_owned()));
            *grants.entry(task.id).or_default() += 1;
            let reservation = Reservation {
                task_id: task.id,
                created_at: now,
                expires_at: now.saturating_add(ask.ttl_ms.min(ask.cap_ms)),
                cap_at: now.saturating_add(ask.cap_ms),
            };
            rows.push((*ask, reservation.clone()));
            found = Some((reservation, task.clone()));
            break;
        }
        granted.push(found);
    }
    write_run(conn, now, &grants, &drops, &rows).await?;
    Ok(granted)
}

type Held = HashSet<(i64, String)>;

/// The ranked tasks (locked on PostgreSQL) and which of the run's workers
/// already answered or reserved each.
///
/// On SQLite both reads go in one statement, one round trip to the SQLite
/// thread (the writer's round trips are what its time goes to under a
/// crowd: docs/BENCHMARKS.md, "fourth session"); the batch holds the write
/// lock, so no other write can come between them anyway. On PostgreSQL
/// they stay two: the first locks the tasks, and the second must read the
/// reservations in a snapshot taken after those locks were granted, which
/// one statement's single snapshot would not be.
async fn read_slots(
    conn: &mut AnyConnection,
    ids: &[i64],
    pairs: &[(i64, &str)],
    now: i64,
) -> Result<(HashMap<i64, Slot>, Held)> {
    let sqlite = conn.backend_name() == "SQLite";
    let lock = if sqlite { "" } else { " FOR UPDATE" };
    // Each read comes back as one JSON cell (`sql::json_rows_sql`): a run
    // reads a few thousand rows.
    let tasks = sql::json_rows_sql(
        conn,
        &format!(
            "SELECT id, room_id, state, reserved, answered, overlap_target FROM tasks \
             WHERE id IN ({}) ORDER BY id{lock}",
            sql::rows(ids.len(), "?", ", ")
        ),
        &[
            "id",
            "room_id",
            "state",
            "reserved",
            "answered",
            "overlap_target",
        ],
    );
    // Every reservation of those tasks (a few each), and which of the
    // asked pairs are answered. VALUES columns are column1, column2, ...
    // on both databases.
    let holders = sql::json_rows_sql(
        conn,
        &format!(
            "SELECT task_id, worker_id, expires_at FROM reservations WHERE task_id IN ({}) \
             UNION ALL SELECT a.task_id, a.worker_id, NULL FROM answers a \
             JOIN (VALUES {}) AS d ON a.task_id = d.column1 AND a.worker_id = d.column2",
            sql::rows(ids.len(), "?", ", "),
            sql::rows(pairs.len(), "(?, ?)", ", "),
        ),
        &["task_id", "worker_id", "expires_at"],
    );
    let bind_tasks = |mut query: Query| {
        for id in ids {
            query = query.bind(*id);
        }
        query
    };
    let bind_holders = |mut query: Query| {
        query = bind_tasks(query);
        for (task, worker) in pairs {
            query = query.bind(*task).bind((*worker).to_owned());
        }
        query
    };
    let (tasks, holders) = if sqlite {
        let sql = format!("SELECT ({tasks}) AS tasks, ({holders}) AS holders");
        let query = bind_holders(bind_tasks(sqlx::query(sqlx::AssertSqlSafe(sql))));
        let row = query.fetch_one(&mut *conn).await?;
        (
            sql::json_rows_in(&row, "tasks")?,
            sql::json_rows_in(&row, "holders")?,
        )
    } else {
        let [tasks, holders] = [tasks, holders]
            .map(|sql| sqlx::query(sqlx::AssertSqlSafe(sql::placeholders(conn, sql))));
        let tasks = sql::json_rows(&bind_tasks(tasks).fetch_one(&mut *conn).await?)?;
        let holders = sql::json_rows(&bind_holders(holders).fetch_one(&mut *conn).await?)?;
        (tasks, holders)
    };
    let mut slots = HashMap::with_capacity(ids.len());
    for task in tasks {
        let cell = |at: usize| task.get(at);
        slots.insert(
            sql::int(cell(0))?,
            Slot {
                room: sql::text(cell(1))?.to_owned(),
                open: sql::text(cell(2))? == "open",
                taken: sql::int(cell(3))? + sql::int(cell(4))?,
                target: sql::int(cell(5))?,
                expired: Vec::new(),
            },
        );
    }
    let mut held = HashSet::new();
    for holder in holders {
        let task = sql::int(holder.first())?;
        let worker = sql::text(holder.get(1))?.to_owned();
        if let (Some(expires_at), Some(slot)) =
            (sql::optional_int(holder.get(2))?, slots.get_mut(&task))
            && expires_at <= now
        {
            slot.expired.push(worker.clone());
        }
        held.insert((task, worker));
    }
    Ok((slots, held))
}

/// Drops the expired reservations the run decided to, moves the tasks'
/// counts, and inserts the run's reservations.
async fn write_run(
    conn: &mut AnyConnection,
    now: i64,
    grants: &BTreeMap<i64, i64>,
    drops: &BTreeMap<i64, usize>,
    rows: &[(&WorkAsk, Reservation)],
) -> Result<()> {
    let mut deltas: BTreeMap<i64, i64> = grants.clone();
    if !drops.is_empty() {
        let expected: usize = drops.values().sum();
        let sql = format!(
            "DELETE FROM reservations WHERE expires_at <= ? AND task_id IN ({}) RETURNING task_id",
            sql::rows(drops.len(), "?", ", ")
        );
        let sql = sql::placeholders(conn, sql);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for task in drops.keys() {
            query = query.bind(*task);
        }
        let dropped = query.fetch_all(&mut *conn).await?;
        if dropped.len() != expected {
            // Another writer swept some of them meanwhile (PostgreSQL): the
            // decisions may overbook; fail the batch, which runs again.
            return Err(Error::Internal(
                "expired reservations changed under a run of grants".into(),
            ));
        }
        for row in dropped {
            *deltas.entry(row.try_get("task_id")?).or_default() -= 1;
        }
    }
    deltas.retain(|_, delta| *delta != 0);
    // VALUES columns are column1, column2, ... on both databases.
    let counts = format!(
        "UPDATE tasks SET reserved = reserved + d.column2 FROM (VALUES {}) AS d \
         WHERE tasks.id = d.column1",
        sql::rows(deltas.len(), "(?, ?)", ", ")
    );
    let inserts = format!(
        "INSERT INTO reservations (task_id, worker_id, room_id, created_at, expires_at, cap_at) VALUES {}",
        sql::rows(rows.len(), "(?, ?, ?, ?, ?, ?)", ", ")
    );
    let bind_counts = |mut query: Query| {
        for (task, delta) in &deltas {
            query = query.bind(*task).bind(*delta);
        }
        query
    };
    let bind_inserts = |mut query: Query| {
        for (ask, reservation) in rows {
            query = query
                .bind(reservation.task_id)
                .bind(ask.worker.as_str().to_owned())
                .bind(ask.room.as_str().to_owned())
                .bind(reservation.created_at)
                .bind(reservation.expires_at)
                .bind(reservation.cap_at);
        }
        query
    };
    match (deltas.is_empty(), rows.is_empty()) {
        (true, true) => {}
        // Both at once on SQLite: one round trip (see `read_slots`).
        (false, false) if conn.backend_name() == "SQLite" => {
            let query = sqlx::query(sqlx::AssertSqlSafe(format!("{counts}; {inserts}")));
            bind_inserts(bind_counts(query)).execute(&mut *conn).await?;
        }
        (no_counts, no_inserts) => {
            let [counts, inserts] = [counts, inserts]
                .map(|sql| sqlx::query(sqlx::AssertSqlSafe(sql::placeholders(conn, sql))));
            if !no_counts {
                bind_counts(counts).execute(&mut *conn).await?;
            }
            if !no_inserts {
                bind_inserts(inserts).execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}
