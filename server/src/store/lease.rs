//! Room leases: which process runs a room (`rooms/lease.rs` says why).
//!
//! Each is one conditional statement, so two processes racing for a room
//! cannot both win: the row's primary key and the condition on its expiry
//! decide, under the row's lock (PostgreSQL) or the one writer (SQLite).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{AnyConnection, Row};

use super::Store;
use crate::error::Result;
use crate::ids::RoomId;

/// The random id this server process takes leases under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessId(Arc<str>);

impl ProcessId {
    /// 128 random bits, in hex: unique among the processes of a database.
    pub fn random() -> Self {
        let bits: u128 = rand::random();
        ProcessId(format!("{bits:032x}").into())
    }

    /// A process id chosen elsewhere (a test's, a tool's).
    pub fn new(id: &str) -> Self {
        ProcessId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room's tenure in this process: who holds the lease, and which take
/// of it. `epoch` is 0 until the lease is taken.
#[derive(Debug, Clone)]
pub struct RoomLease {
    pub owner: ProcessId,
    pub epoch: i64,
}

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

/// The current lease of each of `rooms`, read inside the committer's
/// transaction before a run of work writes (the per-batch fence): a write
/// made under a lease that is no longer current is refused. On PostgreSQL
/// the rows stay share-locked until the batch commits, so a take waits for
/// the batch, and no batch commits under an epoch that is no longer
/// current; on SQLite the transaction already holds the one write lock.
pub(super) async fn current(
    conn: &mut AnyConnection,
    rooms: &[&str],
) -> Result<HashMap<String, (String, i64)>> {
    let mut rooms = rooms.to_vec();
    rooms.sort_unstable();
    rooms.dedup();
    let lock = if conn.backend_name() == "SQLite" {
        ""
    } else {
        " FOR SHARE"
    };
    let mut current = HashMap::with_capacity(rooms.len());
    for chunk in rooms.chunks(512) {
        let sql = format!(
            "SELECT room_id, owner, epoch FROM room_leases WHERE room_id IN ({}){lock}",
            super::sql::rows(chunk.len(), "?", ", ")
        );
        let sql = super::sql::placeholders(conn, sql);
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
        for room in chunk {
            statement = statement.bind(*room);
        }
        for row in statement.fetch_all(&mut *conn).await? {
            let room: String = row.try_get("room_id")?;
            current.insert(room, (row.try_get("owner")?, row.try_get("epoch")?));
        }
    }
    Ok(current)
}
