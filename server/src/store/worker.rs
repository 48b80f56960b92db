//! A worker's whole standing in a room, read in one statement.
//!
//! Asking for work needs the worker's reservation, pause, skills and
//! record, and every reply and `queue.mine` push carries their progress and
//! earnings. Read one by one that was seven reads per grant, each a round
//! trip to a SQLite worker thread on a connection of its own (and sqlx pings
//! each connection on its way back to the pool): under a crowd the thread
//! hand-offs, not the SQL, were most of the server's time. The view is one
//! statement: one hand-off. It carries what the ranking weighs too (the
//! record per skill, the interests), so ranking a worker's work after
//! reading their view is one more statement, not three.

use serde_json::{Value, json};
use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::ledger::Earnings;
use super::quality::{WorkerQuality, quality_row};
use super::reserve::Standing;
use super::work::{Reservation, WorkerTask, json_column};
use super::{Backend, Store, batch};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};

/// What the work engine knows about one worker in one room.
#[derive(Debug, Clone)]
pub struct WorkerView {
    /// Their live reservation and its task, if they hold one.
    pub reservation: Option<(Reservation, WorkerTask)>,
    /// Their overall record, with the pause if they are paused; its
    /// `answers` is every answer they gave in the room.
    pub quality: WorkerQuality,
    pub skills: Vec<String>,
    pub earnings: Earnings,
    /// Their record per skill and interests, for ranking their work.
    pub standing: Standing,
}

impl WorkerView {
    /// The `progress` object of replies and `queue.mine`.
    pub fn progress(&self) -> Value {
        json!({
            "answers": self.quality.answers,
            "pending_earnings": self.earnings.pending,
            "earnings": self.earnings,
        })
    }

    /// The `mine` object: the reservation with its task, or null.
    pub fn mine(&self) -> Value {
        self.reservation.as_ref().map_or(
            Value::Null,
            |(reservation, task)| json!({ "reservation": reservation, "task": task }),
        )
    }
}

impl WorkerQuality {
    /// The record as `GET /workers/{user}` shows it. Moderators see it all;
    /// a worker looking at their own record does not see their gold counts,
    /// accuracy or verdict: read before and after a submit, they would say
    /// whether the task was gold and whether the answer was right, and a
    /// worker who knows which tasks are gold can answer those with care and
    /// the rest at random. What the worker learns of gold is the onboarding
    /// feedback (training, by design) and a pause, which ends their work.
    pub fn seen_by(self, moderator: bool) -> Value {
        json!({
            "worker": self.worker,
            "gold_correct": moderator.then_some(self.gold_correct),
            "gold_total": moderator.then_some(self.gold_total),
            "accuracy": moderator.then_some(self.accuracy),
            "verdict": moderator.then_some(self.verdict),
            "agree": self.agree,
            "disagree": self.disagree,
            "answers": self.answers,
            "mean_lead_time_ms": self.mean_lead_time_ms,
            "fast_answers": self.fast_answers,
            "paused": self.paused,
        })
    }
}

/// The views' statement, one row per (room, worker) of `$1` (a JSON array
/// of pairs, unpacked by the backend's `{keys}`); `{skills}`, `{stats}`
/// and `{interests}` are the backend's JSON array aggregates, `{earnings}`
/// its JSON array of values (the earnings summed in floating point, so no
/// total can overflow: see store/ledger.rs). The lists and the earnings
/// are scalar subqueries, not joined derived tables: SQLite materialized
/// each of those in a temporary table of its own, five per view
/// (`sqlite3BtreeOpen` was 4% of the server's time under a crowd, which
/// reads a view for every grant and answer).
const VIEWS: &str = "SELECT k.room_id, k.worker_id, COALESCE(s.gold_correct, 0) AS gold_correct, \
     COALESCE(s.gold_total, 0) AS gold_total, COALESCE(s.agree, 0) AS agree, \
     COALESCE(s.disagree, 0) AS disagree, COALESCE(s.answers, 0) AS answers, \
     COALESCE(s.lead_time_total, 0) AS lead_time_total, COALESCE(s.fast_answers, 0) AS fast_answers, \
     p.reason, r.task_id, r.created_at, r.expires_at, r.cap_at, t.external_id, t.data, \
     (SELECT {skills} FROM (SELECT skill FROM member_skills \
        WHERE room_id = k.room_id AND user_id = k.worker_id ORDER BY skill) m) AS skills, \
     (SELECT {stats} FROM worker_stats w WHERE w.room_id = k.room_id AND w.worker_id = k.worker_id) AS stats, \
     (SELECT {interests} FROM member_interests i WHERE i.room_id = k.room_id AND i.user_id = k.worker_id) AS interests, \
     (SELECT {earnings}( \
        COALESCE(SUM(CASE WHEN e.state = 'pending' THEN CAST(e.amount AS DOUBLE PRECISION) ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN e.state = 'approved' THEN CAST(e.amount AS DOUBLE PRECISION) ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN e.state = 'paid' THEN CAST(e.amount AS DOUBLE PRECISION) ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN e.state = 'disputed' THEN CAST(e.amount AS DOUBLE PRECISION) ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN e.state NOT IN ('pending', 'approved', 'paid', 'disputed') \
          THEN CAST(e.amount AS DOUBLE PRECISION) ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN e.state <> 'rejected' THEN CAST(e.amount AS DOUBLE PRECISION) ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN e.state <> 'rejected' \
          THEN CAST(COALESCE(a.lead_time_ms, 0) AS DOUBLE PRECISION) ELSE 0 END), 0)){earnings_end} \
        FROM ledger_entries e LEFT JOIN answers a ON a.id = e.answer_id \
        WHERE e.room_id = k.room_id AND e.worker_id = k.worker_id) AS earnings \
     FROM {keys} \
     LEFT JOIN worker_stats s ON s.room_id = k.room_id AND s.worker_id = k.worker_id AND s.skill = '' \
     LEFT JOIN paused_workers p ON p.room_id = k.room_id AND p.worker_id = k.worker_id \
     LEFT JOIN reservations r ON r.room_id = k.room_id AND r.worker_id = k.worker_id AND r.task_id = \
        (SELECT task_id FROM reservations WHERE room_id = k.room_id AND worker_id = k.worker_id \
         AND expires_at > $2 ORDER BY created_at LIMIT 1) \
     LEFT JOIN tasks t ON t.id = r.task_id";

/// A (room, worker) pair, the key of a view.
type ViewKey = (RoomId, UserId);

/// The batch read of views (see [`super::batch`]).
pub(super) fn read_views(store: Store, keys: Vec<ViewKey>) -> batch::Found<ViewKey, WorkerView> {
    Box::pin(async move { store.read_worker_views(&keys).await })
}

impl Store {
    /// The worker's reservation, record, skills and earnings, read on the
    /// store's thread in one statement with the other views asked for
    /// meanwhile (see [`super::batch`]).
    pub async fn worker_view(&self, room: &RoomId, worker: &UserId) -> Result<WorkerView> {
        self.views.get(self, (room.clone(), worker.clone())).await
    }

    /// The views of `keys`, in one statement.
    async fn read_worker_views(&self, keys: &[ViewKey]) -> Result<HashMap<ViewKey, WorkerView>> {
        let (skills, stats, interests, earnings, earnings_end) = match self.backend {
            Backend::Sqlite => (
                "json_group_array(m.skill)",
                "json_group_array(json_array(w.skill, w.gold_correct, w.gold_total, w.agree, w.disagree))",
                "json_group_array(i.interest)",
                "json_array",
                "",
            ),
            Backend::Postgres => (
                "COALESCE(CAST(json_agg(m.skill) AS TEXT), '[]')",
                "COALESCE(CAST(json_agg(json_build_array(w.skill, w.gold_correct, w.gold_total, w.agree, w.disagree)) AS TEXT), '[]')",
                "COALESCE(CAST(json_agg(i.interest) AS TEXT), '[]')",
                "CAST(json_build_array",
                " AS TEXT)",
            ),
        };
        let sql = VIEWS
            .replace("{keys}", batch::pairs_from(self.backend))
            .replace("{skills}", skills)
            .replace("{stats}", stats)
            .replace("{interests}", interests)
            .replace("{earnings}", earnings)
            .replace("{earnings_end}", earnings_end);
        let pairs: Vec<[&str; 2]> = keys
            .iter()
            .map(|(room, worker)| [room.as_str(), worker.as_str()])
            .collect();
        let rows = self.read_keys(sql, &pairs).await?;
        rows.iter().map(view_row).collect()
    }
}

/// One row of [`VIEWS`], with its key.
fn view_row(row: &AnyRow) -> Result<(ViewKey, WorkerView)> {
    let room: String = row.try_get("room_id")?;
    let worker: String = row.try_get("worker_id")?;
    let reservation = match row.try_get::<Option<i64>, _>("task_id")? {
        Some(task_id) => Some((
            Reservation {
                task_id,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                cap_at: row.try_get("cap_at")?,
            },
            WorkerTask {
                id: task_id,
                external_id: row.try_get("external_id")?,
                data: json_column(row, "data")?,
            },
        )),
        None => None,
    };
    let skills: Vec<String> = serde_json::from_value(json_column(row, "skills")?)
        .map_err(|error| Error::Internal(format!("member skills do not parse: {error}")))?;
    let stats: Vec<(String, i64, i64, i64, i64)> =
        serde_json::from_value(json_column(row, "stats")?)
            .map_err(|error| Error::Internal(format!("worker stats do not parse: {error}")))?;
    let interests: Vec<String> = serde_json::from_value(json_column(row, "interests")?)
        .map_err(|error| Error::Internal(format!("member interests do not parse: {error}")))?;
    let sums: [f64; 7] = serde_json::from_value(json_column(row, "earnings")?)
        .map_err(|error| Error::Internal(format!("earnings do not parse: {error}")))?;
    let [pending, approved, paid, disputed, rejected, earned, lead] =
        sums.map(super::ledger::saturating_round);
    let earnings = Earnings {
        worker: worker.clone(),
        pending,
        approved,
        paid,
        rejected,
        disputed,
        hourly_rate: super::ledger::hourly_rate(earned, lead),
    };
    let view = WorkerView {
        reservation,
        quality: quality_row(row)?,
        skills,
        earnings,
        standing: Standing::new(&stats, interests),
    };
    Ok(((RoomId::parse(&room)?, UserId::parse(&worker)?), view))
}
