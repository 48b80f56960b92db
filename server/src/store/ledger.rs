//! The fair-pay ledger: append-only, in integer micro-units.
//!
//! Every answer earns an entry (gold and onboarding included) in the
//! answer's own transaction. An entry moves pending → approved (by a
//! moderator, or by the project's auto-approve delay) → paid; a rejection
//! needs a reason the worker sees, can be disputed by the worker and is
//! resolved by a moderator, and can be reversed. Each move is an appended
//! event (who, when, why); the entry's `state` column mirrors the latest.
//!
//! Sums are read as floating point (`DOUBLE PRECISION`) and brought back
//! to micro-units saturating ([`saturating_round`]): an integer `SUM`
//! raises an overflow error on SQLite and returns `numeric` on PostgreSQL
//! (which a cast back to `BIGINT` makes an error too), and one worker's
//! totals must never make a read fail. They are exact up to 2^53
//! micro-units (about 9 billion currency units).

use crowdroom_work::project::ProjectConfig;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Backend, Store, sql};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

/// The largest bonus, in micro-units (1,000,000 currency units): beyond any
/// real bonus, and millions of them still sum within an `i64`.
pub const MAX_BONUS: i64 = 1_000_000_000_000;

/// Entries one auto-approval transaction moves at most: the write lock is
/// held for a few short statements, and the rest go in the next ones.
const AUTO_APPROVE_BATCH: usize = 256;

/// The auto-approval event's reason.
const AUTO_APPROVE_REASON: &str = "auto-approved after the project's delay";

/// An entry with its current state.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub worker: String,
    pub kind: String,
    pub answer_id: Option<i64>,
    pub amount: i64,
    pub reason: Option<String>,
    pub state: String,
    /// The reason given with the latest change (a rejection's, a dispute's...).
    pub state_reason: Option<String>,
    /// Rejected through no fault of the worker: the pay floor counts its time.
    pub no_fault: bool,
    pub created_at: i64,
}

/// One step of an entry's audit trail: the state it moved to, why, who
/// moved it (`system` for automatic moves), and when.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerEvent {
    pub state: String,
    pub reason: Option<String>,
    pub actor: String,
    pub at: i64,
}

/// A change a person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// pending → approved (moderator).
    Approve,
    /// pending → rejected, with a reason (moderator).
    Reject,
    /// rejected → approved, with a reason (moderator).
    Reverse,
    /// rejected → disputed, with the worker's message (the worker).
    Dispute,
    /// disputed → approved or rejected, with a reason (moderator).
    Uphold,
    Deny,
    /// approved → paid (owner or moderator).
    Pay,
}

impl Action {
    /// The state the action moves from, and to.
    fn transition(self) -> (&'static str, &'static str) {
        match self {
            Action::Approve => ("pending", "approved"),
            Action::Reject => ("pending", "rejected"),
            Action::Reverse => ("rejected", "approved"),
            Action::Dispute => ("rejected", "disputed"),
            Action::Uphold => ("disputed", "approved"),
            Action::Deny => ("disputed", "rejected"),
            Action::Pay => ("approved", "paid"),
        }
    }

    /// Whether the change must say why.
    pub fn needs_reason(self) -> bool {
        !matches!(self, Action::Approve | Action::Pay)
    }
}

const ENTRY_COLUMNS: &str = "e.id, e.worker_id, e.kind, e.answer_id, e.amount, e.reason, e.state, e.no_fault, e.created_at, \
     (SELECT v.reason FROM ledger_events v WHERE v.entry_id = e.id ORDER BY v.id DESC LIMIT 1) AS state_reason";

fn entry(row: &AnyRow) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        id: row.try_get("id")?,
        worker: row.try_get("worker_id")?,
        kind: row.try_get("kind")?,
        answer_id: row.try_get("answer_id")?,
        amount: row.try_get("amount")?,
        reason: row.try_get("reason")?,
        state: row.try_get("state")?,
        state_reason: row.try_get("state_reason")?,
        no_fault: row.try_get::<i64, _>("no_fault")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

async fn append_event(
    conn: &mut AnyConnection,
    entry: i64,
    state: &str,
    reason: Option<&str>,
    actor: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO ledger_events (entry_id, state, reason, actor, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(entry)
        .bind(state)
        .bind(reason)
        .bind(actor)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// A room's entries, newest first (one worker's with `worker`, those
    /// in one state with `state`).
    pub async fn ledger(
        &self,
        room: &RoomId,
        worker: Option<&UserId>,
        state: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>> {
        // Each filter is written out so the search uses the (room, worker,
        // id) or (room, state) index; "$2 IS NULL OR ..." read the whole
        // room's ledger.
        let by_worker = match worker {
            Some(_) => "e.worker_id = $2",
            None => "CAST($2 AS TEXT) IS NULL",
        };
        let by_state = match state {
            Some(_) => "e.state = $5",
            None => "CAST($5 AS TEXT) IS NULL",
        };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e WHERE e.room_id = $1 AND {by_worker} \
             AND {by_state} AND e.id < $3 ORDER BY e.id DESC LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .bind(worker.map(UserId::as_str))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit.clamp(1, 1000))
            .bind(state)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(entry).collect()
    }

    /// An entry's audit trail: every state it went through, oldest first.
    /// An answer's entry starts pending, by its creator, when it was
    /// created: that first event is implied by the entry, not stored (one
    /// row less per answer); the moves after it are stored.
    pub async fn ledger_events(&self, entry: i64) -> Result<Vec<LedgerEvent>> {
        let rows = sqlx::query(
            "SELECT 'pending' AS state, NULL AS reason, e.created_by AS actor, e.created_at AS at, \
               0 AS seq FROM ledger_entries e WHERE e.id = $1 AND e.kind = 'answer' \
             UNION ALL SELECT state, reason, actor, at, id AS seq FROM ledger_events \
               WHERE entry_id = $1 ORDER BY seq",
        )
        .bind(entry)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LedgerEvent {
                    state: row.try_get("state")?,
                    reason: row.try_get("reason")?,
                    actor: row.try_get("actor")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    pub async fn ledger_entry(&self, room: &RoomId, id: i64) -> Result<LedgerEntry> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries e WHERE e.room_id = $1 AND e.id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        entry(&row.ok_or(Error::NotFound("ledger entry"))?)
    }

    /// Moves an entry by `action`, recording who and why. `no_fault` marks
    /// a rejection that was not the worker's fault: the pay floor still
    /// counts the answer's time (`crowdroom_work::floor`).
    pub async fn ledger_act(
        &self,
        room: &RoomId,
        id: i64,
        action: Action,
        actor: &UserId,
        reason: Option<&str>,
        no_fault: bool,
    ) -> Result<LedgerEntry> {
        if action.needs_reason() && reason.is_none_or(|reason| reason.trim().is_empty()) {
            return Err(Error::BadRequest("this change needs a reason".into()));
        }
        let (from, to) = action.transition();
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE ledger_entries SET state = $1, no_fault = $5 WHERE id = $2 AND room_id = $3 \
             AND state = $4",
        )
        .bind(to)
        .bind(id)
        .bind(room.as_str())
        .bind(from)
        .bind(i64::from(no_fault && to == "rejected"))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Err(Error::InvalidState(format!("the entry is not {from}")));
        }
        if action == Action::Dispute && disputed_before(&mut tx, id).await? {
            // Dropping the transaction rolls the move back.
            return Err(Error::InvalidState(
                "a rejection is disputed once: this entry's dispute was already decided".into(),
            ));
        }
        append_event(&mut tx, id, to, reason.map(str::trim), actor.as_str()).await?;
        tx.commit().await?;
        self.ledger_entry(room, id).await
    }

    /// Grants a bonus (approved at once). The same idempotency key in the
    /// same room returns the first bonus instead of paying twice.
    pub async fn ledger_bonus(
        &self,
        room: &RoomId,
        worker: &UserId,
        amount: i64,
        reason: &str,
        key: &str,
        actor: &UserId,
    ) -> Result<(LedgerEntry, bool)> {
        if amount <= 0 || reason.trim().is_empty() || key.trim().is_empty() {
            return Err(Error::BadRequest(
                "a bonus needs a positive amount, a reason and an idempotency key".into(),
            ));
        }
        if amount > MAX_BONUS {
            return Err(Error::BadRequest(format!(
                "a bonus is at most {MAX_BONUS} micro-units"
            )));
        }
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO ledger_entries (room_id, worker_id, kind, amount, reason, idempotency_key, state, created_by, created_at) \
             VALUES ($1, $2, 'bonus', $3, $4, $5, 'approved', $6, $7) ON CONFLICT (room_id, idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(room.as_str())
        .bind(worker.as_str())
        .bind(amount)
        .bind(reason.trim())
        .bind(key)
        .bind(actor.as_str())
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let created = inserted.is_some();
        if let Some(row) = inserted {
            append_event(
                &mut tx,
                row.try_get("id")?,
                "approved",
                Some(reason.trim()),
                actor.as_str(),
            )
            .await?;
        }
        tx.commit().await?;
        let row = sqlx::query(
            "SELECT id FROM ledger_entries WHERE room_id = $1 AND idempotency_key = $2",
        )
        .bind(room.as_str())
        .bind(key)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok((self.ledger_entry(room, row.try_get("id")?).await?, created))
    }

    /// Approves the pending entries of every room that have waited out
    /// their project's `auto_approve_seconds`, as the `system` actor;
    /// returns how many. The rooms due are found in one statement (an
    /// index probe per project); only they are written.
    pub async fn ledger_auto_approve_due(&self) -> Result<Vec<(RoomId, u64)>> {
        let delay = match self.backend {
            Backend::Sqlite => "json_extract(p.config, '$.auto_approve_seconds')",
            Backend::Postgres => "CAST(p.config AS JSON) ->> 'auto_approve_seconds'",
        };
        // In floating point: a delay of u64::MAX seconds must not overflow.
        let statement = format!(
            "SELECT q.room_id, q.delay_ms FROM (SELECT p.room_id, \
             COALESCE(CAST({delay} AS DOUBLE PRECISION), {default}.0) * 1000.0 AS delay_ms, \
             (SELECT MIN(e.created_at) FROM ledger_entries e \
              WHERE e.room_id = p.room_id AND e.state = 'pending') AS oldest \
             FROM projects p) q WHERE q.oldest IS NOT NULL AND q.oldest <= $1 - q.delay_ms",
            default = ProjectConfig::default().auto_approve_seconds,
        );
        let due = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(now_ms())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut approved = Vec::new();
        for row in &due {
            let room = RoomId::parse(&row.try_get::<String, _>("room_id")?)?;
            let delay_ms = saturating_round(row.try_get("delay_ms")?);
            let count = self.ledger_auto_approve(&room, delay_ms).await?;
            if count > 0 {
                approved.push((room, count));
            }
        }
        Ok(approved)
    }

    /// Approves `room`'s pending entries older than `delay_ms`, a batch per
    /// transaction; returns how many.
    async fn ledger_auto_approve(&self, room: &RoomId, delay_ms: i64) -> Result<u64> {
        let cutoff = now_ms().saturating_sub(delay_ms);
        let mut approved = 0u64;
        loop {
            let mut tx = self.begin_write().await?;
            // `state = 'pending'` again outside: on PostgreSQL a row a
            // moderator moved meanwhile is checked again and left alone.
            let rows = sqlx::query(
                "UPDATE ledger_entries SET state = 'approved' WHERE state = 'pending' AND id IN \
                 (SELECT id FROM ledger_entries WHERE room_id = $1 AND state = 'pending' \
                  AND created_at <= $2 ORDER BY created_at LIMIT $3) RETURNING id",
            )
            .bind(room.as_str())
            .bind(cutoff)
            .bind(AUTO_APPROVE_BATCH as i64)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(approved);
            }
            let ids = rows
                .iter()
                .map(|row| row.try_get::<i64, _>("id"))
                .collect::<Result<Vec<_>, _>>()?;
            let values = sql::rows(ids.len(), "(?, 'approved', ?, 'system', ?)", ", ");
            let statement = sql::placeholders(
                &tx,
                format!(
                    "INSERT INTO ledger_events (entry_id, state, reason, actor, at) VALUES {values}"
                ),
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(statement));
            let at = now_ms();
            for id in &ids {
                insert = insert.bind(*id).bind(AUTO_APPROVE_REASON).bind(at);
            }
            insert.execute(&mut *tx).await?;
            tx.commit().await?;
            approved = approved.saturating_add(ids.len() as u64);
            if ids.len() < AUTO_APPROVE_BATCH {
                return Ok(approved);
            }
        }
    }
}

/// A sum read as floating point, back in whole (micro-)units: rounded,
/// and saturating at `i64`'s bounds (`as` saturates; NaN, which a sum of
/// integers never is, would be 0).
pub(super) fn saturating_round(value: f64) -> i64 {
    value.round() as i64
}

/// Whether the entry was disputed before (its dispute then decided).
async fn disputed_before(conn: &mut AnyConnection, entry: i64) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS disputes FROM ledger_events WHERE entry_id = $1 AND state = 'disputed'",
    )
    .bind(entry)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("disputes")? > 0)
}
