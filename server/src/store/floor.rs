//! The pay floor's bookings (the rule is `crowdroom_work::floor`): each
//! floor check of a room closes a period, counts each worker's earnings
//! and time in it, and books the top-ups it owes as approved `topup`
//! entries whose reason (and first audit event) is the computation. A
//! payout is a floor check and the payment of every approved entry, in one
//! transaction: the top-ups are paid with the rest.
//!
//! A period ends [`GRACE_MS`] before the check: an answer is stamped when
//! its room decides it and stored a moment later, so a period ending at the
//! check's own instant could close before a decided answer is visible, and
//! the next period, starting there, would never see it.

use std::collections::BTreeMap;

use crowdroom_work::floor::{self, TopUp};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::ledger::saturating_round;
use super::{Backend, Store, sql};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

/// How far before a check its period ends.
pub const GRACE_MS: i64 = 2_000;
/// The longest a room's work waits for a floor check: a day.
pub const DAILY_MS: i64 = 24 * 3_600_000;
/// Rows per statement when a payout moves and records many entries.
const CHUNK: usize = 256;

/// Why a floor check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorReason {
    /// Approved entries were paid.
    Payout,
    /// A day passed since the oldest work not yet checked.
    Daily,
}

impl FloorReason {
    fn as_str(self) -> &'static str {
        match self {
            FloorReason::Payout => "payout",
            FloorReason::Daily => "daily",
        }
    }
}

/// One worker's top-up, as booked.
#[derive(Debug, Clone, Serialize)]
pub struct TopUpLine {
    pub worker: String,
    pub entry_id: i64,
    pub amount: i64,
    pub earned: i64,
    pub counted_ms: i64,
    pub no_fault_ms: i64,
    pub due: i64,
}

/// A floor check: the period it closed and the top-ups it booked.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRun {
    pub id: i64,
    /// The period: after `from`, up to and including `to` (ms).
    pub from: i64,
    pub to: i64,
    pub reason: &'static str,
    pub target_hourly_rate: i64,
    pub top_ups: Vec<TopUpLine>,
}

/// What one worker was paid by a payout.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PayoutLine {
    pub worker: String,
    pub entries: i64,
    /// Everything paid to them, top-up included.
    pub amount: i64,
    /// Of which the pay floor's top-up.
    pub top_up: i64,
}

/// A payout: the floor check before it and what each worker was paid.
#[derive(Debug, Clone, Serialize)]
pub struct Payout {
    pub floor: FloorRun,
    pub lines: Vec<PayoutLine>,
    /// Approved entries of the caller's own, left for another moderator.
    pub skipped_own: i64,
}

impl Store {
    /// Runs a floor check of `room` (see the module doc) as `actor`.
    pub async fn pay_floor(
        &self,
        room: &RoomId,
        reason: FloorReason,
        actor: &str,
        target_hourly_rate: i64,
    ) -> Result<FloorRun> {
        let mut tx = self.begin_write().await?;
        let run = floor_in(
            &mut tx,
            self.backend,
            room,
            reason,
            actor,
            target_hourly_rate,
        )
        .await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Pays every approved entry of `room` but the caller's own, after a
    /// floor check whose top-ups are paid with them.
    pub async fn payout(
        &self,
        room: &RoomId,
        actor: &UserId,
        target_hourly_rate: i64,
    ) -> Result<Payout> {
        let mut tx = self.begin_write().await?;
        let run = floor_in(
            &mut tx,
            self.backend,
            room,
            FloorReason::Payout,
            actor.as_str(),
            target_hourly_rate,
        )
        .await?;
        let paid = sqlx::query(
            "UPDATE ledger_entries SET state = 'paid' WHERE room_id = $1 AND state = 'approved' \
             AND worker_id <> $2 RETURNING id, worker_id, kind, amount",
        )
        .bind(room.as_str())
        .bind(actor.as_str())
        .fetch_all(&mut *tx)
        .await?;
        // Each worker's line, in worker order.
        let mut lines: BTreeMap<String, PayoutLine> = BTreeMap::new();
        let mut ids = Vec::with_capacity(paid.len());
        for row in &paid {
            let worker: String = row.try_get("worker_id")?;
            let (kind, amount): (String, i64) = (row.try_get("kind")?, row.try_get("amount")?);
            ids.push(row.try_get::<i64, _>("id")?);
            let line = lines.entry(worker).or_insert_with_key(|worker| PayoutLine {
                worker: worker.clone(),
                ..PayoutLine::default()
            });
            line.entries = line.entries.saturating_add(1);
            line.amount = line.amount.saturating_add(amount);
            if kind == "topup" {
                line.top_up = line.top_up.saturating_add(amount);
            }
        }
        let lines: Vec<PayoutLine> = lines.into_values().collect();
        let at = now_ms();
        for chunk in ids.chunks(CHUNK) {
            let values = sql::rows(chunk.len(), "(?, 'paid', NULL, ?, ?)", ", ");
            let statement = sql::placeholders(
                &tx,
                format!(
                    "INSERT INTO ledger_events (entry_id, state, reason, actor, at) VALUES {values}"
                ),
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(statement));
            for id in chunk {
                insert = insert.bind(*id).bind(actor.as_str()).bind(at);
            }
            insert.execute(&mut *tx).await?;
        }
        let own = sqlx::query(
            "SELECT COUNT(*) AS own FROM ledger_entries WHERE room_id = $1 AND state = 'approved' \
             AND worker_id = $2",
        )
        .bind(room.as_str())
        .bind(actor.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Payout {
            floor: run,
            lines,
            skipped_own: own.try_get("own")?,
        })
    }

    /// The rooms whose oldest work not yet checked by the floor is at least
    /// a day older than `now`, with their project's target rate. (Top-ups
    /// are booked after the period they close: they are not new work.)
    pub async fn pay_floor_due(&self, now: i64) -> Result<Vec<(RoomId, i64)>> {
        let target = match self.backend {
            Backend::Sqlite => "json_extract(p.config, '$.target_hourly_rate')",
            Backend::Postgres => "CAST(p.config AS JSON) ->> 'target_hourly_rate'",
        };
        let statement = format!(
            "SELECT q.room_id, q.target FROM (SELECT p.room_id, \
             CAST(COALESCE(CAST({target} AS DOUBLE PRECISION), {default}.0) AS DOUBLE PRECISION) AS target, \
             (SELECT MIN(e.created_at) FROM ledger_entries e WHERE e.room_id = p.room_id \
              AND e.state IN ('pending', 'approved', 'paid') AND e.kind IN ('answer', 'bonus') \
              AND e.created_at > COALESCE( \
              (SELECT MAX(r.at) FROM pay_floor_runs r WHERE r.room_id = p.room_id), 0)) AS oldest \
             FROM projects p) q WHERE q.oldest IS NOT NULL AND q.oldest <= $1",
            default = crowdroom_work::project::ProjectConfig::default().target_hourly_rate,
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(now.saturating_sub(DAILY_MS))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|row| {
                let room = RoomId::parse(&row.try_get::<String, _>("room_id")?)?;
                Ok((room, saturating_round(row.try_get("target")?)))
            })
            .collect()
    }
}

/// The floor check itself, in the caller's write transaction.
async fn floor_in(
    conn: &mut AnyConnection,
    backend: Backend,
    room: &RoomId,
    reason: FloorReason,
    actor: &str,
    target_hourly_rate: i64,
) -> Result<FloorRun> {
    if backend == Backend::Postgres {
        // One check of a room at a time: the second starts where the first ended.
        sqlx::query("SELECT id FROM rooms WHERE id = $1 FOR UPDATE")
            .bind(room.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let last = sqlx::query("SELECT MAX(at) AS at FROM pay_floor_runs WHERE room_id = $1")
        .bind(room.as_str())
        .fetch_one(&mut *conn)
        .await?;
    let from = last.try_get::<Option<i64>, _>("at")?.unwrap_or(0);
    let to = now_ms().saturating_sub(GRACE_MS).max(from);
    let run = sqlx::query(
        "INSERT INTO pay_floor_runs (room_id, at, reason, actor) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(room.as_str())
    .bind(to)
    .bind(reason.as_str())
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    let id: i64 = run.try_get("id")?;
    let counted = sqlx::query(
        "SELECT worker_id, SUM(earned) AS earned, SUM(answer_ms) AS answer_ms, \
         SUM(no_fault_ms) AS no_fault_ms FROM ( \
           SELECT e.worker_id, CAST(e.amount AS DOUBLE PRECISION) AS earned, CAST(0 AS DOUBLE PRECISION) AS answer_ms, \
             CAST(0 AS DOUBLE PRECISION) AS no_fault_ms FROM ledger_entries e WHERE e.room_id = $1 AND e.created_at > $2 \
             AND e.created_at <= $3 AND e.kind IN ('answer', 'bonus') \
             AND e.state IN ('pending', 'approved', 'paid') \
           UNION ALL SELECT a.worker_id, CAST(0 AS DOUBLE PRECISION), CAST(a.lead_time_ms AS DOUBLE PRECISION), \
             CAST(0 AS DOUBLE PRECISION) \
             FROM answers a JOIN ledger_entries e ON e.answer_id = a.id WHERE a.room_id = $1 \
             AND a.created_at > $2 AND a.created_at <= $3 \
             AND (e.state IN ('pending', 'approved', 'paid') OR e.no_fault = 1) \
           UNION ALL SELECT n.worker_id, CAST(0 AS DOUBLE PRECISION), CAST(0 AS DOUBLE PRECISION), \
             CAST(n.ms AS DOUBLE PRECISION) \
             FROM no_fault_time n WHERE n.room_id = $1 AND n.at > $2 AND n.at <= $3 \
         ) t GROUP BY worker_id ORDER BY worker_id",
    )
    .bind(room.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut top_ups = Vec::new();
    for row in &counted {
        let worker: String = row.try_get("worker_id")?;
        let top = floor::top_up(
            target_hourly_rate,
            saturating_round(row.try_get("earned")?),
            saturating_round(row.try_get("answer_ms")?),
            saturating_round(row.try_get("no_fault_ms")?),
        );
        if top.amount > 0 {
            let entry_id = book(conn, room, id, &worker, &top, target_hourly_rate).await?;
            top_ups.push(TopUpLine {
                worker,
                entry_id,
                amount: top.amount,
                earned: top.earned,
                counted_ms: top.counted_ms,
                no_fault_ms: top.no_fault_ms,
                due: top.due,
            });
        }
    }
    Ok(FloorRun {
        id,
        from,
        to,
        reason: reason.as_str(),
        target_hourly_rate,
        top_ups,
    })
}

/// Books one top-up, approved, its computation as its reason and as the
/// reason of its first audit event. The key names the check and the
/// worker: a check books each worker's top-up once.
async fn book(
    conn: &mut AnyConnection,
    room: &RoomId,
    run: i64,
    worker: &str,
    top: &TopUp,
    target_hourly_rate: i64,
) -> Result<i64> {
    let reason = floor::explain(top, target_hourly_rate);
    let at = now_ms();
    let row = sqlx::query(
        "INSERT INTO ledger_entries (room_id, worker_id, kind, amount, reason, idempotency_key, state, \
         created_by, created_at) VALUES ($1, $2, 'topup', $3, $4, $5, 'approved', 'system', $6) RETURNING id",
    )
    .bind(room.as_str())
    .bind(worker)
    .bind(top.amount)
    .bind(reason.as_str())
    .bind(format!("floor-{run}-{worker}"))
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    let entry: i64 = row
        .ok_or_else(|| Error::Internal("a top-up was not booked".into()))?
        .try_get("id")?;
    sqlx::query(
        "INSERT INTO ledger_events (entry_id, state, reason, actor, at) VALUES ($1, 'approved', $2, 'system', $3)",
    )
    .bind(entry)
    .bind(reason.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(entry)
}
