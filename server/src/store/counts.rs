//! A room's queue counts as the store has them, for the REST API and the
//! console (a live room pushes its own, from memory): one statement, and
//! rooms asking together share one ([`super::batch`]).

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, batch};
use crate::error::Result;
use crate::ids::RoomId;
use crowdroom_work::queue::Counts;

/// The rooms' tasks by state, then each room's live reservations (the row
/// with a NULL state).
const COUNTS: &str = "SELECT k.room_id, t.state, COUNT(*) AS n, \
     CAST(SUM(t.answered) AS BIGINT) AS answers \
     FROM {rooms} JOIN tasks t ON t.room_id = k.room_id GROUP BY k.room_id, t.state \
     UNION ALL \
     SELECT k.room_id, NULL, (SELECT COUNT(*) FROM reservations r \
        WHERE r.room_id = k.room_id AND r.expires_at > $2), CAST(0 AS BIGINT) \
     FROM {rooms}";

/// The batch read of queue counts.
pub(super) fn read_counts(store: Store, rooms: Vec<RoomId>) -> batch::Found<RoomId, Counts> {
    Box::pin(async move { store.read_queue_counts(&rooms).await })
}

impl Store {
    /// The room's tasks by state and its live reservations.
    pub async fn queue_counts(&self, room: &RoomId) -> Result<Counts> {
        self.counts.get(self, room.clone()).await
    }

    async fn read_queue_counts(&self, rooms: &[RoomId]) -> Result<HashMap<RoomId, Counts>> {
        let sql = COUNTS.replace("{rooms}", batch::rooms_from(self.backend));
        let rows = self.read_keys(sql, &rooms).await?;
        // A room without tasks has no row of the first kind: zeros.
        let mut found: HashMap<RoomId, Counts> = rooms
            .iter()
            .map(|room| (room.clone(), Counts::default()))
            .collect();
        for row in &rows {
            let room = RoomId::parse(&row.try_get::<String, _>("room_id")?)?;
            let counts = found.entry(room).or_default();
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
        Ok(found)
    }
}
