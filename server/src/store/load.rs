//! A room's work state as the store keeps it: everything
//! [`WorkState::load`] is made from, read in one statement.
//!
//! Why one statement: it is one snapshot on both backends (a statement
//! sees one snapshot on PostgreSQL even under READ COMMITTED, and one read
//! transaction on SQLite), so the tasks' counts, the reservations and the
//! answers agree with each other without a transaction of their own. Each
//! table is a scalar subquery aggregated into one JSON array (as in
//! [`super::sql::json_rows_sql`]): sqlx hands each row of a result over
//! on its own, and a million task rows one by one cost more than the
//! same rows as one text parsed here.
//!
//! Answers and skips are read for open tasks only: the queue does not
//! keep those of decided tasks (they are never granted again).

use std::collections::HashMap;

use crowdroom_work::project::ProjectConfig;
use crowdroom_work::queue::{
    Earnings, Loaded, Record, Reservation, ReservationRow, StoredState, TaskRow, WorkState,
    WorkerRow,
};
use serde::Deserialize;
use serde_json::Value;
use sqlx::Row;

use super::{Backend, Store};
use crate::error::{Error, Result};
use crate::ids::RoomId;

/// What a room's work state is made from: the rows of
/// [`WorkState::load`], read in one snapshot by [`Store::load_work`].
#[derive(Debug, Clone)]
pub struct WorkRows {
    /// The room's project, the defaults if none was set.
    pub project: ProjectConfig,
    /// Every task of the room, decided ones included (the counts show them).
    pub tasks: Vec<TaskRow>,
    /// Everyone with a standing in the room: stats, skills, interests, a
    /// pause, answers or skips of open tasks, or ledger entries.
    pub workers: Vec<WorkerRow>,
    /// Every reservation, expired ones not swept included.
    pub reservations: Vec<ReservationRow>,
}

impl WorkRows {
    /// The room's work state made from these rows.
    pub fn into_state(self) -> Result<Loaded> {
        Ok(WorkState::load(
            self.project,
            self.tasks,
            self.workers,
            self.reservations,
        )?)
    }
}

/// The load's statement: one row, a column per table. `{rows}(...)` wraps
/// a list of columns as the backend's JSON array aggregate and
/// `{json}x{as_json}` embeds a JSON text column as JSON (see [`Store::load_work`]). Each
/// subquery names the room, so each reads the room's rows by an index.
const LOAD: &str = "SELECT \
   (SELECT config FROM projects WHERE room_id = $1) AS project, \
   (SELECT {rows}(t.id, {json}t.skills{as_json}, {json}t.tags{as_json}, {json}t.gold{as_json}, t.overlap_target, \
      t.answered, t.state){end} FROM tasks t WHERE t.room_id = $1) AS tasks, \
   (SELECT {rows}(r.worker_id, r.task_id, r.created_at, r.expires_at, r.cap_at){end} \
      FROM reservations r WHERE r.room_id = $1) AS reservations, \
   (SELECT {rows}(a.worker_id, a.task_id){end} FROM answers a JOIN tasks t ON t.id = a.task_id \
      WHERE a.room_id = $1 AND t.state = 'open') AS answered, \
   (SELECT {rows}(s.worker_id, s.task_id){end} FROM skips s JOIN tasks t ON t.id = s.task_id \
      WHERE t.room_id = $1 AND t.state = 'open') AS skipped, \
   (SELECT {rows}(w.worker_id, w.skill, w.gold_correct, w.gold_total, w.agree, w.disagree, \
      w.answers, w.lead_time_total, w.fast_answers){end} \
      FROM worker_stats w WHERE w.room_id = $1) AS records, \
   (SELECT {rows}(m.user_id, m.skill){end} FROM member_skills m WHERE m.room_id = $1) AS skills, \
   (SELECT {rows}(i.user_id, i.interest){end} FROM member_interests i WHERE i.room_id = $1) \
      AS interests, \
   (SELECT {rows}(p.worker_id, p.reason){end} FROM paused_workers p WHERE p.room_id = $1) \
      AS paused, \
   (SELECT {rows}(e.worker_id, e.pending, e.approved, e.paid, e.rejected, e.disputed, e.lead){end} \
      FROM (SELECT l.worker_id, \
        SUM(CASE WHEN l.state = 'pending' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS pending, \
        SUM(CASE WHEN l.state = 'approved' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS approved, \
        SUM(CASE WHEN l.state = 'paid' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS paid, \
        SUM(CASE WHEN l.state NOT IN ('pending', 'approved', 'paid', 'disputed') \
          THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS rejected, \
        SUM(CASE WHEN l.state = 'disputed' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS disputed, \
        SUM(CASE WHEN l.state <> 'rejected' \
          THEN CAST(COALESCE(a.lead_time_ms, 0) AS DOUBLE PRECISION) ELSE 0 END) AS lead \
        FROM ledger_entries l LEFT JOIN answers a ON a.id = l.answer_id \
        WHERE l.room_id = $1 GROUP BY l.worker_id) e) AS earnings";

/// A task as the statement gives it: id, skills, tags, gold, overlap
/// target, answers, state.
type TaskCells<'a> = (
    i64,
    Vec<String>,
    Vec<String>,
    Option<Value>,
    i64,
    i64,
    &'a str,
);
/// A worker's record in one skill: worker, skill, then [`Record`]'s fields.
type RecordCells = (String, String, i64, i64, i64, i64, i64, i64, i64);
/// A worker's ledger sums (floating point: no sum can overflow, see
/// store/ledger.rs): pending, approved, paid, rejected, disputed, lead time.
type EarningsCells = (String, f64, f64, f64, f64, f64, f64);

impl Store {
    /// Everything the room's work state is made from, in one statement
    /// (one snapshot): see the module docs.
    pub async fn load_work(&self, room: &RoomId) -> Result<WorkRows> {
        let (rows, end, json, as_json) = match self.backend {
            Backend::Sqlite => ("json_group_array(json_array", ")", "json(", ")"),
            Backend::Postgres => (
                "COALESCE(CAST(json_agg(json_build_array",
                ") AS TEXT), '[]')",
                "CAST(",
                " AS JSON)",
            ),
        };
        let sql = LOAD
            .replace("{rows}", rows)
            .replace("{end}", end)
            .replace("{json}", json)
            .replace("{as_json}", as_json);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .fetch_one(&mut *self.conn().await?)
            .await?;
        let text = |column: &str| -> Result<String> { Ok(row.try_get(column)?) };

        let project = match row.try_get::<Option<String>, _>("project")? {
            Some(config) => serde_json::from_str(&config).map_err(|error| {
                Error::Internal(format!("stored project does not parse: {error}"))
            })?,
            None => ProjectConfig::default(),
        };
        let tasks_text = text("tasks")?;
        let tasks = parse::<Vec<TaskCells>>(&tasks_text, "tasks")?
            .into_iter()
            .map(task_row)
            .collect::<Result<Vec<_>>>()?;
        drop(tasks_text);
        let reservations =
            parse::<Vec<(String, i64, i64, i64, i64)>>(&text("reservations")?, "reservations")?
                .into_iter()
                .map(
                    |(worker, task_id, created_at, expires_at, cap_at)| ReservationRow {
                        worker,
                        reservation: Reservation {
                            task_id,
                            created_at,
                            expires_at,
                            cap_at,
                        },
                    },
                )
                .collect();

        let mut workers: HashMap<String, WorkerRow> = HashMap::new();
        for (id, task) in parse::<Vec<(String, i64)>>(&text("answered")?, "answers")? {
            standing(&mut workers, id).answered.push(task);
        }
        for (id, task) in parse::<Vec<(String, i64)>>(&text("skipped")?, "skips")? {
            standing(&mut workers, id).skipped.push(task);
        }
        for cells in parse::<Vec<RecordCells>>(&text("records")?, "worker stats")? {
            let (id, skill, gold_correct, gold_total, agree, disagree, answers, lead, fast) = cells;
            let record = Record {
                gold_correct,
                gold_total,
                agree,
                disagree,
                answers,
                lead_time_total: lead,
                fast_answers: fast,
            };
            standing(&mut workers, id).records.push((skill, record));
        }
        for (id, skill) in parse::<Vec<(String, String)>>(&text("skills")?, "member skills")? {
            standing(&mut workers, id).skills.push(skill);
        }
        let interests = parse::<Vec<(String, String)>>(&text("interests")?, "member interests")?;
        for (id, interest) in interests {
            standing(&mut workers, id).interests.push(interest);
        }
        for (id, reason) in parse::<Vec<(String, String)>>(&text("paused")?, "pauses")? {
            standing(&mut workers, id).paused = Some(reason);
        }
        for cells in parse::<Vec<EarningsCells>>(&text("earnings")?, "earnings")? {
            let (id, pending, approved, paid, rejected, disputed, lead) = cells;
            let round = super::ledger::saturating_round;
            standing(&mut workers, id).earnings = Earnings {
                pending: round(pending),
                approved: round(approved),
                paid: round(paid),
                rejected: round(rejected),
                disputed: round(disputed),
                lead_time_ms: round(lead),
            };
        }
        let mut workers: Vec<WorkerRow> = workers.into_values().collect();
        workers.sort_unstable_by(|left, right| left.id.cmp(&right.id));
        Ok(WorkRows {
            project,
            tasks,
            workers,
            reservations,
        })
    }
}

/// The row of worker `id`, made empty on first sight.
fn standing(workers: &mut HashMap<String, WorkerRow>, id: String) -> &mut WorkerRow {
    workers.entry(id).or_insert_with_key(|id| WorkerRow {
        id: id.clone(),
        ..WorkerRow::default()
    })
}

/// `text`, one of the statement's JSON arrays, as `T`.
fn parse<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|error| Error::Internal(format!("stored {what} do not parse: {error}")))
}

fn task_row(cells: TaskCells<'_>) -> Result<TaskRow> {
    let (id, skills, tags, gold, overlap_target, answered, state) = cells;
    let count = |value: i64, what: &str| {
        u32::try_from(value)
            .map_err(|_| Error::Internal(format!("task {id}'s {what} is out of range: {value}")))
    };
    Ok(TaskRow {
        id,
        skills,
        tags,
        gold,
        overlap_target: count(overlap_target, "overlap target")?,
        answered: count(answered, "answer count")?,
        state: StoredState::parse(state)
            .ok_or_else(|| Error::Internal(format!("task {id} has an unknown state {state:?}")))?,
    })
}
