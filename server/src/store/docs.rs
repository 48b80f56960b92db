//! Documents: a snapshot plus the updates appended after it.
//!
//! Every acknowledged update is one row in `doc_updates`. A checkpoint
//! writes the merged state as the snapshot and deletes the rows it covers,
//! in one transaction, so loading is always "snapshot, then updates with a
//! greater id", whatever moment a crash picks.

use sqlx::AnyConnection;
use sqlx::Row;

use super::{Store, WriteOp};
use crate::error::{Error, Result};
use crate::ids::{DocName, RoomId, now_ms};

/// What is stored of one document.
#[derive(Debug, Default)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    /// The id of the last update the snapshot covers (0 without one).
    pub upto: i64,
    /// Updates after the snapshot, in commit order.
    pub updates: Vec<Vec<u8>>,
    /// The id of the last of `updates` (`upto` when there are none).
    pub last_id: i64,
}

/// Documents a room may hold besides its tasks' (names not starting with
/// `task-`): a team's notes and pages, tens in practice. Each may grow to
/// the document size limit, so the count bounds what one room can store.
pub const MAX_DOCS_PER_ROOM: i64 = 1_000;
/// Task documents a room may hold (`task-{id}` and the working copies
/// `task-{id}:{user}`): one per task plus one per answer in the web client,
/// so 50,000 tasks at an overlap of three fit.
pub const MAX_TASK_DOCS_PER_ROOM: i64 = 200_000;
/// Names one page of the document listing holds at most.
pub const MAX_DOCS_PAGE: i64 = 1_000;

/// The prefix of task documents' names, counted under their own cap
/// (five bytes: the SQL below compares `substr(name, 1, 5)`, which is
/// case-sensitive on both backends, unlike SQLite's `LIKE`).
const TASK_DOC_PREFIX: &str = "task-";
/// The refusals past each cap (the numbers are the constants above).
const DOCS_FULL: &str = "the room holds the most documents it may (1000 besides its tasks')";
const TASK_DOCS_FULL: &str = "the room holds the most task documents it may (200000)";

impl StoredDoc {
    /// Bytes stored, the measure the document size limit applies to.
    pub fn stored_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.updates.iter().map(Vec::len).sum::<usize>()
    }
}

impl Store {
    /// Registers a document name in a room; returns whether it was new.
    /// Every way a client creates a document comes here (the API, and
    /// opening an unknown name over y-websocket), so this is where the
    /// room's caps hold: [`MAX_DOCS_PER_ROOM`] and [`MAX_TASK_DOCS_PER_ROOM`]
    /// (`413 too_large` past them). The count and the insert are separate
    /// statements (a count inside the insert would hold SQLite's write lock
    /// while it scans), so racing creators may pass a cap by a few.
    pub async fn create_doc(&self, room: &RoomId, doc: &DocName) -> Result<bool> {
        if self.doc_exists(room, doc).await? {
            return Ok(false);
        }
        let task_doc = doc.as_str().starts_with(TASK_DOC_PREFIX);
        let (cap, full) = if task_doc {
            (MAX_TASK_DOCS_PER_ROOM, TASK_DOCS_FULL)
        } else {
            (MAX_DOCS_PER_ROOM, DOCS_FULL)
        };
        let sql = if task_doc {
            "SELECT COUNT(*) AS n FROM docs WHERE room_id = $1 AND substr(name, 1, 5) = $2"
        } else {
            "SELECT COUNT(*) AS n FROM docs WHERE room_id = $1 AND substr(name, 1, 5) <> $2"
        };
        let count: i64 = sqlx::query(sql)
            .bind(room.as_str())
            .bind(TASK_DOC_PREFIX)
            .fetch_one(&mut *self.conn().await?)
            .await?
            .try_get("n")?;
        if count >= cap {
            return Err(Error::TooLarge(full));
        }
        let result = sqlx::query(
            "INSERT INTO docs (room_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (room_id, name) DO NOTHING",
        )
        .bind(room.as_str())
        .bind(doc.as_str())
        .bind(now_ms())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn doc_exists(&self, room: &RoomId, doc: &DocName) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM docs WHERE room_id = $1 AND name = $2")
            .bind(room.as_str())
            .bind(doc.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.is_some())
    }

    /// A page of a room's document names, sorted, those after `after`, and
    /// the name to continue after (none on the last page). `limit` is
    /// clamped to 1..=[`MAX_DOCS_PAGE`], which is also the default.
    pub async fn docs(
        &self,
        room: &RoomId,
        after: Option<&DocName>,
        limit: Option<i64>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let limit = limit.unwrap_or(MAX_DOCS_PAGE).clamp(1, MAX_DOCS_PAGE);
        let rows = sqlx::query(
            "SELECT name FROM docs WHERE room_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(room.as_str())
        .bind(after.map_or("", DocName::as_str))
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let names = rows
            .iter()
            .map(|row| Ok(row.try_get("name")?))
            .collect::<Result<Vec<String>>>()?;
        let full = i64::try_from(names.len()).is_ok_and(|len| len >= limit);
        let next_after = names.last().filter(|_| full).cloned();
        Ok((names, next_after))
    }

    /// Loads a document's snapshot and the updates after it.
    pub async fn load_doc(&self, room: &RoomId, doc: &DocName) -> Result<StoredDoc> {
        self.read_doc(room, doc).await
    }

    async fn read_doc(&self, room: &RoomId, doc: &DocName) -> Result<StoredDoc> {
        let mut conn = self.conn().await?;
        // Read snapshot and updates in one transaction so a concurrent
        // checkpoint cannot slip between the two reads.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let snapshot =
            sqlx::query("SELECT upto_id, data FROM doc_snapshots WHERE room_id = $1 AND doc = $2")
                .bind(room.as_str())
                .bind(doc.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let (upto, snapshot) = match snapshot {
            Some(row) => (
                row.try_get::<i64, _>("upto_id")?,
                Some(row.try_get::<Vec<u8>, _>("data")?),
            ),
            None => (0, None),
        };
        let rows = sqlx::query(
            "SELECT id, data FROM doc_updates WHERE room_id = $1 AND doc = $2 AND id > $3 ORDER BY id",
        )
        .bind(room.as_str())
        .bind(doc.as_str())
        .bind(upto)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut last_id = upto;
        let mut updates = Vec::with_capacity(rows.len());
        for row in &rows {
            last_id = last_id.max(row.try_get("id")?);
            updates.push(row.try_get::<Vec<u8>, _>("data")?);
        }
        Ok(StoredDoc {
            snapshot,
            upto,
            updates,
            last_id,
        })
    }

    /// Prepares a checkpoint of `doc` from the room's `snapshot`, off the
    /// committer: reads what is stored and checks which of it the snapshot
    /// holds. Usually all, and then the snapshot stands as it is: the room's
    /// own encoding, with deleted content garbage-collected. What it lacks
    /// (updates committed after it was taken, or written behind the room's
    /// back by a reload racing a write or another process) is merged into
    /// it, so a checkpoint can never drop an update the room had not seen.
    /// The check and the merge cost milliseconds of CPU for a log of a
    /// thousand updates, so they run on the blocking pool; done inside the
    /// batch, as they once were, a burst of checkpoints held every
    /// acknowledgement behind it for seconds (docs/BENCHMARKS.md,
    /// "Checkpoints off the committer").
    ///
    /// The write it returns replaces the stored snapshot only if no other
    /// checkpoint committed since this read, and covers only the updates
    /// that were read (a document's updates are appended by its room's one
    /// committer, in id order, so those committed after the read have
    /// greater ids and stay uncovered). [`prune_log`] deletes covered updates.
    pub async fn prepare_checkpoint(
        &self,
        room: &RoomId,
        doc: &DocName,
        snapshot: Vec<u8>,
    ) -> Result<WriteOp> {
        let stored = self.load_doc(room, doc).await?;
        let (upto, replaces) = (stored.last_id, stored.upto);
        let label = format!("{room}/{doc}");
        let merged = tokio::task::spawn_blocking(move || {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(stored.updates.len() + 1);
            parts.extend(stored.snapshot.as_deref());
            parts.extend(stored.updates.iter().map(Vec::as_slice));
            let unreadable =
                |error| Error::Internal(format!("checkpoint of {label} cannot read: {error}"));
            let lacking =
                crowdroom_crdt::doc::not_covered(&snapshot, &parts).map_err(unreadable)?;
            if lacking.is_empty() {
                return Ok(snapshot);
            }
            tracing::debug!(doc = %label, lacking = lacking.len(), "merging what the snapshot lacks");
            // Usually updates committed after the snapshot was taken; only
            // those are merged in, the rest being in the snapshot already.
            let mut merged: Vec<&[u8]> = vec![&snapshot];
            merged.extend(lacking.iter().filter_map(|&at| parts.get(at).copied()));
            crowdroom_crdt::doc::merge_updates(&merged).map_err(unreadable)
        })
        .await
        .map_err(|error| Error::Internal(format!("checkpoint preparation failed: {error}")))??;
        Ok(WriteOp::Checkpoint {
            room: room.clone(),
            doc: doc.clone(),
            snapshot: merged,
            upto,
            replaces,
        })
    }

    /// The number of updates stored after the snapshot (for tests and the
    /// compaction policy).
    pub async fn pending_updates(&self, room: &RoomId, doc: &DocName) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM doc_updates u WHERE u.room_id = $1 AND u.doc = $2 AND u.id > \
             COALESCE((SELECT s.upto_id FROM doc_snapshots s WHERE s.room_id = $1 AND s.doc = $2), 0)",
        )
        .bind(room.as_str())
        .bind(doc.as_str())
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row.try_get("n")?)
    }
}

/// Appends updates inside a batch transaction, in order, with one statement.
/// Lists a document inside a write transaction (nothing if it exists).
/// Lists documents (idempotent), a run of them in one statement.
pub(super) async fn create_docs(
    conn: &mut sqlx::AnyConnection,
    docs: &[(&RoomId, &DocName)],
) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO docs (room_id, name, created_at) VALUES {} ON CONFLICT (room_id, name) DO NOTHING",
        super::sql::rows(docs.len(), "(?, ?, ?)", ", ")
    );
    let sql = super::sql::placeholders(conn, sql);
    let at = now_ms();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (room, doc) in docs {
        query = query.bind(room.as_str()).bind(doc.as_str()).bind(at);
    }
    query.execute(conn).await?;
    Ok(())
}

pub(super) async fn append_updates(
    conn: &mut AnyConnection,
    updates: &[(&RoomId, &DocName, &[u8])],
) -> Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO doc_updates (room_id, doc, data) VALUES {}",
        super::sql::rows(updates.len(), "(?, ?, ?)", ", ")
    );
    let sql = super::sql::placeholders(conn, sql);
    // Ids follow the VALUES order in practice on both backends; loading
    // does not depend on it anyway, since CRDT updates commute.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (room, doc, data) in updates {
        query = query.bind(room.as_str()).bind(doc.as_str()).bind(*data);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Stores a checkpoint made by [`Store::prepare_checkpoint`], inside a
/// batch transaction: the snapshot, covering the updates up to `upto`, in
/// place of the one that covered `replaces`. Refused, writing nothing, when
/// another checkpoint of the document committed since the preparation read
/// the stored one. The updates it covers are left for [`prune_log`].
pub(super) async fn checkpoint(
    conn: &mut AnyConnection,
    room: &RoomId,
    doc: &DocName,
    snapshot: &[u8],
    upto: i64,
    replaces: i64,
) -> Result<()> {
    let stored = sqlx::query(
        "INSERT INTO doc_snapshots (room_id, doc, upto_id, data, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (room_id, doc) DO UPDATE SET upto_id = excluded.upto_id, data = excluded.data, \
         updated_at = excluded.updated_at WHERE doc_snapshots.upto_id = $6",
    )
    .bind(room.as_str())
    .bind(doc.as_str())
    .bind(upto)
    .bind(snapshot)
    .bind(now_ms())
    .bind(replaces)
    .execute(&mut *conn)
    .await?;
    if stored.rows_affected() == 0 {
        return Err(Error::InvalidState(format!(
            "a newer checkpoint of {room}/{doc} committed first"
        )));
    }
    Ok(())
}

/// Deletes, oldest first, at most `most` of the updates with ids up to
/// `upto` that their document's snapshot covers, inside a batch
/// transaction; returns how many it deleted and the greatest update id
/// stored (the committer's next bound, some time later).
///
/// Why later and many documents at once: the log's rows are in id order, so
/// the rows of 200 busy documents are interleaved page by page, and one
/// checkpoint deleting its own thousand rows wrote a thousand pages. With
/// `upto` a minute old, nearly every row below it is covered by then, and
/// deleting them in id order frees whole pages (docs/BENCHMARKS.md,
/// "Checkpoints off the committer").
///
/// On PostgreSQL two processes' committers may prune at once: each skips
/// the rows the other has locked rather than wait for them, so their
/// deletes cannot deadlock (and abort the batches they ride in).
pub(super) async fn prune_log(
    conn: &mut AnyConnection,
    upto: i64,
    most: i64,
) -> Result<(u64, i64)> {
    let lock = if conn.backend_name() == "SQLite" {
        ""
    } else {
        " FOR UPDATE OF u SKIP LOCKED"
    };
    let sql = format!(
        "DELETE FROM doc_updates WHERE id IN (SELECT u.id FROM doc_updates u \
         JOIN doc_snapshots s ON s.room_id = u.room_id AND s.doc = u.doc \
         WHERE u.id <= $1 AND u.id <= s.upto_id ORDER BY u.id LIMIT $2{lock})"
    );
    let pruned = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(upto)
        .bind(most)
        .execute(&mut *conn)
        .await?;
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM doc_updates")
        .fetch_one(&mut *conn)
        .await?;
    Ok((pruned.rows_affected(), last.unwrap_or(upto)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusals_name_the_caps() {
        assert!(DOCS_FULL.contains(&format!("({MAX_DOCS_PER_ROOM} ")));
        assert!(TASK_DOCS_FULL.contains(&format!("({MAX_TASK_DOCS_PER_ROOM})")));
        assert_eq!(
            TASK_DOC_PREFIX.len(),
            5,
            "the SQL compares substr(name, 1, 5)"
        );
    }
}
