//! A room's queue counts as the store has them, for the REST API, the
//! console and the operator's overview (a live room pushes its own, from
//! memory): one statement.

use sqlx::Row;

use super::Store;
use crate::error::Result;
use crate::ids::{RoomId, now_ms};
use crowdroom_work::queue::Counts;

/// The room's tasks by state, then its live reservations (the row with a
/// NULL state).
const COUNTS: &str = "SELECT t.state, COUNT(*) AS n, CAST(SUM(t.answered) AS BIGINT) AS answers \
     FROM tasks t WHERE t.room_id = $1 GROUP BY t.state \
     UNION ALL \
     SELECT NULL, (SELECT COUNT(*) FROM reservations r \
        WHERE r.room_id = $1 AND r.expires_at > $2), CAST(0 AS BIGINT)";

impl Store {
    /// The room's tasks by state and its live reservations.
    pub async fn queue_counts(&self, room: &RoomId) -> Result<Counts> {
        let rows = sqlx::query(COUNTS)
            .bind(room.as_str())
            .bind(now_ms())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut counts = Counts::default();
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            let Some(state) = row.try_get::<Option<String>, _>("state")? else {
                counts.reserved = n;
                continue;
            };
            // SUM is NUMERIC on PostgreSQL (which the Any driver cannot read): the query casts it.
            counts.total += n;
            counts.answers += row.try_get::<i64, _>("answers")?;
            match state.as_str() {
                "open" => counts.open += n,
                "complete" => counts.complete += n,
                _ => counts.review += n,
            }
        }
        Ok(counts)
    }
}
