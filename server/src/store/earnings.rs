//! Earnings at a glance: each worker's totals per state, the pay floor's
//! top-ups among them, and effective hourly rates, for the ledger summary
//! and the moderator console.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::Store;
use super::ledger::saturating_round;
use crate::error::Result;
use crate::ids::RoomId;

/// Totals per state for one worker, and their effective hourly rate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Earnings {
    pub worker: String,
    pub pending: i64,
    pub approved: i64,
    pub paid: i64,
    pub rejected: i64,
    pub disputed: i64,
    /// Of all the above, the pay floor's top-ups (`store/floor.rs`), in
    /// the ledger summary; the live channel's progress leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_ups: Option<i64>,
    /// Earnings not rejected, per hour of lead time (reservation to
    /// submit); None before any answer.
    pub hourly_rate: Option<i64>,
}

/// The ledger of a room at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerSummary {
    pub workers: Vec<Earnings>,
    pub hourly_rate: Option<i64>,
    pub target_hourly_rate: i64,
    pub below_target: bool,
    /// The pay floor's top-ups booked in the room, in all.
    pub top_ups: i64,
}

impl Store {
    /// Totals per worker and effective hourly rates (earnings not rejected
    /// over the lead time of the answers behind them).
    pub async fn ledger_summary(
        &self,
        room: &RoomId,
        target_hourly_rate: i64,
    ) -> Result<LedgerSummary> {
        summary_in(&mut *self.conn().await?, room, target_hourly_rate).await
    }
}

/// The room's ledger summed per worker and state. (One worker's earnings
/// are part of their `WorkerView`, `store/worker.rs`.)
async fn summary_in(
    conn: &mut AnyConnection,
    room: &RoomId,
    target_hourly_rate: i64,
) -> Result<LedgerSummary> {
    let rows = sqlx::query(
        "SELECT e.worker_id, e.state, SUM(CAST(e.amount AS DOUBLE PRECISION)) AS total, \
         SUM(CASE WHEN e.kind = 'topup' THEN CAST(e.amount AS DOUBLE PRECISION) \
         ELSE CAST(0 AS DOUBLE PRECISION) END) AS top_up, \
         SUM(CAST(COALESCE(a.lead_time_ms, 0) AS DOUBLE PRECISION)) AS lead FROM ledger_entries e \
         LEFT JOIN answers a ON a.id = e.answer_id WHERE e.room_id = $1 \
         GROUP BY e.worker_id, e.state ORDER BY e.worker_id",
    )
    .bind(room.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut workers: Vec<(Earnings, i64, i64)> = Vec::new();
    for row in &rows {
        let worker: String = row.try_get("worker_id")?;
        let (state, total, lead): (String, i64, i64) = (
            row.try_get("state")?,
            saturating_round(row.try_get("total")?),
            saturating_round(row.try_get("lead")?),
        );
        if workers
            .last()
            .is_none_or(|(earnings, _, _)| earnings.worker != worker)
        {
            workers.push((
                Earnings {
                    worker,
                    ..Earnings::default()
                },
                0,
                0,
            ));
        }
        let Some((earnings, earned, hours)) = workers.last_mut() else {
            continue;
        };
        let sum = match state.as_str() {
            "pending" => &mut earnings.pending,
            "approved" => &mut earnings.approved,
            "paid" => &mut earnings.paid,
            "disputed" => &mut earnings.disputed,
            _ => &mut earnings.rejected,
        };
        *sum = sum.saturating_add(total);
        let top_up = saturating_round(row.try_get("top_up")?);
        earnings.top_ups = Some(earnings.top_ups.unwrap_or(0).saturating_add(top_up));
        if state != "rejected" {
            *earned = earned.saturating_add(total);
            *hours = hours.saturating_add(lead);
        }
    }
    let (mut earned_total, mut lead_total) = (0i64, 0i64);
    let workers: Vec<Earnings> = workers
        .into_iter()
        .map(|(mut earnings, earned, lead)| {
            earned_total = earned_total.saturating_add(earned);
            lead_total = lead_total.saturating_add(lead);
            earnings.hourly_rate = hourly_rate(earned, lead);
            earnings
        })
        .collect();
    let top_ups = workers.iter().fold(0i64, |sum, earnings| {
        sum.saturating_add(earnings.top_ups.unwrap_or(0))
    });
    let rate = hourly_rate(earned_total, lead_total);
    let below_target = rate.is_some_and(|rate| rate < target_hourly_rate);
    Ok(LedgerSummary {
        workers,
        hourly_rate: rate,
        target_hourly_rate,
        below_target,
        top_ups,
    })
}

/// Earnings per hour of lead time (reservation to submit); None before any.
pub(super) fn hourly_rate(earned: i64, lead_ms: i64) -> Option<i64> {
    (lead_ms > 0).then(|| ((earned as f64) * 3_600_000.0 / lead_ms as f64) as i64)
}
