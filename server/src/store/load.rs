//! A room's work state as the store keeps it: everything
//! [`WorkState::load`] is made from, read in two statements of one read
//! transaction (one snapshot), the first while the second is parsed.
//!
//! Why one snapshot: the tasks' counts, the reservations and the answers
//! must agree with each other (a read transaction on SQLite, REPEATABLE
//! READ on PostgreSQL). Each table is a scalar subquery aggregated into one
//! JSON array (as in [`super::sql::json_rows_sql`]): sqlx hands each row of
//! a result over on its own, and a million task rows one by one cost more
//! than the same rows as one text parsed here.
//!
//! Why two statements: the tasks are most of the rows, and turning them
//! into the state is CPU. [`Store::load_state`] parses them and builds the
//! state's tasks on a blocking thread while the database reads the
//! standings (the second statement), so the two cores work at once.
//!
//! Why the standings read as they do: a room of a million answers has a
//! million ledger entries. Their sums come from `ledger_entries_worker`
//! alone (it covers the state and amount), and the answers' task ids and
//! lead times from `answers_worker` alone (it covers both), each grouped by
//! worker as the index is ordered: no row of either table is visited. The
//! lead time of a worker's paid work is that of all their answers less
//! that of their rejected entries' answers (every answer has exactly one
//! entry). The answers of decided tasks are read too and dropped by the
//! queue (it never grants a decided task again): filtering them here would
//! visit each task's row. Skills, tags and gold come as their stored text,
//! parsed here only when not empty.

use std::borrow::Cow;
use std::collections::HashMap;

use crowdroom_work::project::ProjectConfig;
use crowdroom_work::queue::{
    Earnings, Loaded, Record, Reservation, ReservationRow, StoredState, TaskRow, WorkState,
    WorkerRow,
};
use serde::Deserialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

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
    /// pause, answers or skips, or ledger entries.
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

/// The first statement: the project and the tasks. `{rows}(...)` wraps a
/// list of columns as the backend's JSON array aggregate (see
/// [`Statements`]); each subquery names the room, so each reads the room's
/// rows by an index.
const TASKS: &str = "SELECT \
   (SELECT config FROM projects WHERE room_id = $1) AS project, \
   (SELECT {rows}(t.id, t.skills, t.tags, t.gold, t.overlap_target, t.answered, t.state){end} \
      FROM tasks t WHERE t.room_id = $1) AS tasks";

/// The second statement: the reservations and every worker's standing
/// (module docs). `{ids}x{ids_end}` joins a group's integers with commas.
const STANDINGS: &str = "SELECT \
   (SELECT {rows}(r.worker_id, r.task_id, r.created_at, r.expires_at, r.cap_at){end} \
      FROM reservations r WHERE r.room_id = $1) AS reservations, \
   (SELECT {rows}(x.worker_id, x.tasks, x.lead){end} FROM (SELECT a.worker_id, \
      {ids}a.task_id{ids_end} AS tasks, SUM(CAST(a.lead_time_ms AS DOUBLE PRECISION)) AS lead \
      FROM answers a WHERE a.room_id = $1 GROUP BY a.worker_id) x) AS answered, \
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
   (SELECT {rows}(e.worker_id, e.pending, e.approved, e.paid, e.rejected, e.disputed){end} \
      FROM (SELECT l.worker_id, \
        SUM(CASE WHEN l.state = 'pending' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS pending, \
        SUM(CASE WHEN l.state = 'approved' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS approved, \
        SUM(CASE WHEN l.state = 'paid' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS paid, \
        SUM(CASE WHEN l.state NOT IN ('pending', 'approved', 'paid', 'disputed') \
          THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS rejected, \
        SUM(CASE WHEN l.state = 'disputed' THEN CAST(l.amount AS DOUBLE PRECISION) ELSE 0 END) AS disputed \
        FROM ledger_entries l WHERE l.room_id = $1 GROUP BY l.worker_id) e) AS earnings, \
   (SELECT {rows}(x.worker_id, x.lead){end} FROM (SELECT l.worker_id, \
      SUM(CAST(a.lead_time_ms AS DOUBLE PRECISION)) AS lead \
      FROM ledger_entries l JOIN answers a ON a.id = l.answer_id \
      WHERE l.room_id = $1 AND l.state = 'rejected' GROUP BY l.worker_id) x) AS rejected_lead";

/// A task as the first statement gives it: id, then skills, tags and gold
/// as their stored JSON text, overlap target, answers, state. The texts
/// are borrowed from the statement's when they hold no escape (`[]`).
#[derive(Deserialize)]
struct TaskCells<'a>(
    i64,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    i64,
    i64,
    &'a str,
);
/// A worker's record in one skill: worker, skill, then [`Record`]'s fields.
type RecordCells = (String, String, i64, i64, i64, i64, i64, i64, i64);
/// A worker's ledger sums (floating point: no sum can overflow, see
/// store/ledger.rs): pending, approved, paid, rejected, disputed.
type EarningsCells = (String, f64, f64, f64, f64, f64);

/// The statements as the backend takes them.
struct Statements {
    tasks: String,
    standings: String,
    /// Starts the read transaction both run in.
    begin: &'static str,
}

impl Statements {
    fn new(backend: Backend) -> Self {
        let (rows, end, ids, ids_end, begin) = match backend {
            Backend::Sqlite => (
                "json_group_array(json_array",
                ")",
                "group_concat(",
                ")",
                "BEGIN",
            ),
            Backend::Postgres => (
                "COALESCE(CAST(json_agg(json_build_array",
                ") AS TEXT), '[]')",
                "string_agg(CAST(",
                " AS TEXT), ',')",
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            ),
        };
        let fill = |sql: &str| {
            sql.replace("{rows}", rows)
                .replace("{end}", end)
                .replace("{ids}", ids)
                .replace("{ids_end}", ids_end)
        };
        Statements {
            tasks: fill(TASKS),
            standings: fill(STANDINGS),
            begin,
        }
    }
}

impl Store {
    /// The room's work state, loaded from the store: the tasks are parsed
    /// and built into the state on a blocking thread while the standings
    /// are read (module docs).
    pub async fn load_state(&self, room: &RoomId) -> Result<Loaded> {
        let statements = Statements::new(self.backend);
        let mut conn = self.conn().await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, statements.begin).await?;
        let first = fetch(&mut tx, &statements.tasks, room).await?;
        let (project, tasks) = (project(&first)?, text(&first, "tasks")?);
        drop(first);
        let building = tokio::task::spawn_blocking(move || {
            let rows = parse_tasks(&tasks)?;
            drop(tasks);
            Ok::<_, Error>(WorkState::with_tasks(project, rows)?)
        });
        let second = fetch(&mut tx, &statements.standings, room).await;
        tx.rollback().await?;
        drop(conn);
        let (workers, reservations) = parse_standings(&second?)?;
        let mut loaded = building.await.map_err(join_error)??;
        tokio::task::spawn_blocking(move || {
            loaded.state.load_standings(workers, reservations)?;
            Ok(loaded)
        })
        .await
        .map_err(join_error)?
    }

    /// Everything the room's work state is made from, as rows (one
    /// snapshot): what [`Store::load_state`] builds the state from.
    pub async fn load_work(&self, room: &RoomId) -> Result<WorkRows> {
        let statements = Statements::new(self.backend);
        let mut conn = self.conn().await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, statements.begin).await?;
        let first = fetch(&mut tx, &statements.tasks, room).await?;
        let second = fetch(&mut tx, &statements.standings, room).await?;
        tx.rollback().await?;
        let (workers, reservations) = parse_standings(&second)?;
        Ok(WorkRows {
            project: project(&first)?,
            tasks: parse_tasks(&text(&first, "tasks")?)?,
            workers,
            reservations,
        })
    }
}

fn join_error(error: tokio::task::JoinError) -> Error {
    Error::Internal(format!("loading a room's work state failed: {error}"))
}

async fn fetch(conn: &mut sqlx::AnyConnection, sql: &str, room: &RoomId) -> Result<AnyRow> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(room.as_str())
        .fetch_one(&mut *conn)
        .await?)
}

fn text(row: &AnyRow, column: &str) -> Result<String> {
    Ok(row.try_get(column)?)
}

fn project(row: &AnyRow) -> Result<ProjectConfig> {
    Ok(match row.try_get::<Option<String>, _>("project")? {
        Some(config) => serde_json::from_str(&config)
            .map_err(|error| Error::Internal(format!("stored project does not parse: {error}")))?,
        None => ProjectConfig::default(),
    })
}

fn parse_tasks(text: &str) -> Result<Vec<TaskRow>> {
    parse::<Vec<TaskCells>>(text, "tasks")?
        .into_iter()
        .map(task_row)
        .collect()
}

/// The workers' standings and the reservations, from the second statement.
fn parse_standings(row: &AnyRow) -> Result<(Vec<WorkerRow>, Vec<ReservationRow>)> {
    let reservations =
        parse::<Vec<(String, i64, i64, i64, i64)>>(&text(row, "reservations")?, "reservations")?
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
    // Lead times in ms, as sums that cannot overflow.
    let mut leads: HashMap<String, f64> = HashMap::new();
    for (id, tasks, lead) in
        parse::<Vec<(String, String, f64)>>(&text(row, "answered")?, "answers")?
    {
        let standing = standing(&mut workers, id.clone());
        for task in tasks.split(',').filter(|task| !task.is_empty()) {
            let task = task.parse().map_err(|_| {
                Error::Internal(format!(
                    "a stored answer's task id does not parse: {task:?}"
                ))
            })?;
            standing.answered.push(task);
        }
        leads.insert(id, lead);
    }
    for (id, lead) in parse::<Vec<(String, f64)>>(&text(row, "rejected_lead")?, "rejections")? {
        *leads.entry(id).or_default() -= lead;
    }
    for (id, task) in parse::<Vec<(String, i64)>>(&text(row, "skipped")?, "skips")? {
        standing(&mut workers, id).skipped.push(task);
    }
    for cells in parse::<Vec<RecordCells>>(&text(row, "records")?, "worker stats")? {
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
    for (id, skill) in parse::<Vec<(String, String)>>(&text(row, "skills")?, "member skills")? {
        standing(&mut workers, id).skills.push(skill);
    }
    let interests = parse::<Vec<(String, String)>>(&text(row, "interests")?, "member interests")?;
    for (id, interest) in interests {
        standing(&mut workers, id).interests.push(interest);
    }
    for (id, reason) in parse::<Vec<(String, String)>>(&text(row, "paused")?, "pauses")? {
        standing(&mut workers, id).paused = Some(reason);
    }
    let round = super::ledger::saturating_round;
    for cells in parse::<Vec<EarningsCells>>(&text(row, "earnings")?, "earnings")? {
        let (id, pending, approved, paid, rejected, disputed) = cells;
        let lead = leads.get(&id).copied().unwrap_or(0.0);
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
    Ok((workers, reservations))
}

/// The row of worker `id`, made empty on first sight.
fn standing(workers: &mut HashMap<String, WorkerRow>, id: String) -> &mut WorkerRow {
    workers.entry(id).or_insert_with_key(|id| WorkerRow {
        id: id.clone(),
        ..WorkerRow::default()
    })
}

/// `text`, one of the statements' JSON arrays, as `T`.
fn parse<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|error| Error::Internal(format!("stored {what} do not parse: {error}")))
}

/// A stored JSON list of names (`[]` most often).
fn names(text: &str, id: i64, what: &str) -> Result<Vec<String>> {
    if text == "[]" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text)
        .map_err(|error| Error::Internal(format!("task {id}'s {what} do not parse: {error}")))
}

fn task_row(cells: TaskCells<'_>) -> Result<TaskRow> {
    let TaskCells(id, skills, tags, gold, overlap_target, answered, state) = cells;
    let count = |value: i64, what: &str| {
        u32::try_from(value)
            .map_err(|_| Error::Internal(format!("task {id}'s {what} is out of range: {value}")))
    };
    let gold = match gold {
        Some(gold) => serde_json::from_str::<Value>(&gold).map_err(|error| {
            Error::Internal(format!("task {id}'s gold answer does not parse: {error}"))
        })?,
        None => Value::Null,
    };
    // A stored JSON null is no gold answer, as a NULL is.
    let gold = (!gold.is_null()).then_some(gold);
    Ok(TaskRow {
        id,
        skills: names(&skills, id, "skills")?,
        tags: names(&tags, id, "tags")?,
        gold,
        overlap_target: count(overlap_target, "overlap target")?,
        answered: count(answered, "answer count")?,
        state: StoredState::parse(state)
            .ok_or_else(|| Error::Internal(format!("task {id} has an unknown state {state:?}")))?,
    })
}
