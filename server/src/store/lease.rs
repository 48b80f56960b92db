//! Room leases: which process runs a room (`rooms/lease.rs` says why).
//!
//! Each is one conditional statement, so two processes racing for a room
//! cannot both win: the row's primary key and the condition on its expiry
//! decide, under the row's lock (PostgreSQL) or the one writer (SQLite).

use sqlx::Row;

use super::Store;
use crate::error::Result;
use crate::ids::RoomId;

impl Store {
    /// Takes `room`'s lease for `owner` until `expires_at` (ms) if nobody
    /// holds it, it expired by `now`, or `owner` holds it already (this
    /// process's previous actor of the room, which could not release it).
    /// Returns the new epoch, one more than the row's last one, or None
    /// when another owner holds a lease that has not expired.
    pub async fn take_lease(
        &self,
        room: &RoomId,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "INSERT INTO room_leases (room_id, owner, epoch, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (room_id) DO UPDATE SET owner = excluded.owner, \
                 epoch = room_leases.epoch + 1, expires_at = excluded.expires_at \
             WHERE room_leases.expires_at <= $4 OR room_leases.owner = excluded.owner \
             RETURNING epoch",
        )
        .bind(room.as_str())
        .bind(owner)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<i64, _>("epoch")?),
            None => None,
        })
    }

    /// Pushes the lease `(owner, epoch)` of `room` to `expires_at`. False
    /// when the lease is no longer that one: another process took it over
    /// after it expired (this process stalled or could not reach the
    /// database for longer than the lease's life).
    pub async fn renew_lease(
        &self,
        room: &RoomId,
        owner: &str,
        epoch: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let renewed = sqlx::query(
            "UPDATE room_leases SET expires_at = $1 \
             WHERE room_id = $2 AND owner = $3 AND epoch = $4",
        )
        .bind(expires_at)
        .bind(room.as_str())
        .bind(owner)
        .bind(epoch)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Lets go of the lease `(owner, epoch)` of `room`, if it is still
    /// that one: it expires now, so any process may take it at once. The
    /// row stays, so the next take's epoch is greater than every earlier
    /// one (an epoch names one owner's tenure, never two).
    pub async fn release_lease(&self, room: &RoomId, owner: &str, epoch: i64) -> Result<()> {
        sqlx::query(
            "UPDATE room_leases SET expires_at = 0 \
             WHERE room_id = $1 AND owner = $2 AND epoch = $3",
        )
        .bind(room.as_str())
        .bind(owner)
        .bind(epoch)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }
}
