//! Documents: a snapshot plus the updates appended after it.
//!
//! Every acknowledged update is one row in `doc_updates`. A checkpoint
//! writes the merged state as the snapshot and deletes the rows it covers,
//! in one transaction, so loading is always "snapshot, then updates with a
//! greater id", whatever moment a crash picks.

use sqlx::AnyConnection;
use sqlx::Row;

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{DocName, RoomId, now_ms};

/// What is stored of one document.
#[derive(Debug, Default)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    /// Updates after the snapshot, in commit order.
    pub updates: Vec<Vec<u8>>,
}

impl StoredDoc {
    /// Bytes stored, the measure the document size limit applies to.
    pub fn stored_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.updates.iter().map(Vec::len).sum::<usize>()
    }
}

impl Store {
    /// Registers a document name in a room; returns whether it was new.
    pub async fn create_doc(&self, room: &RoomId, doc: &DocName) -> Result<bool> {
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

    /// The names of a room's documents.
    pub async fn docs(&self, room: &RoomId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM docs WHERE room_id = $1 ORDER BY name")
            .bind(room.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("name")?)).collect()
    }

    /// Loads a document's snapshot and the updates after it.
    pub async fn load_doc(&self, room: &RoomId, doc: &DocName) -> Result<StoredDoc> {
        let (room, doc) = (room.clone(), doc.clone());
        self.offload(move |store| async move { store.read_doc(&room, &doc).await })
            .await
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
            "SELECT data FROM doc_updates WHERE room_id = $1 AND doc = $2 AND id > $3 ORDER BY id",
        )
        .bind(room.as_str())
        .bind(doc.as_str())
        .bind(upto)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let updates = rows
            .iter()
            .map(|row| row.try_get::<Vec<u8>, _>("data"))
            .collect::<Result<_, _>>()?;
        Ok(StoredDoc { snapshot, updates })
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

/// Folds the stored updates of a document into `snapshot`, inside a batch
/// transaction. The stored updates are merged in too (merging is idempotent),
/// so a checkpoint can never drop an update the snapshot's taker had not
/// seen, whatever the timing of reloads or other writers.
pub(super) async fn checkpoint(
    conn: &mut AnyConnection,
    room: &RoomId,
    doc: &DocName,
    snapshot: &[u8],
) -> Result<()> {
    let rows =
        sqlx::query("SELECT id, data FROM doc_updates WHERE room_id = $1 AND doc = $2 ORDER BY id")
            .bind(room.as_str())
            .bind(doc.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let mut upto = 0i64;
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        upto = upto.max(row.try_get("id")?);
        stored.push(row.try_get::<Vec<u8>, _>("data")?);
    }
    let previous = sqlx::query("SELECT data FROM doc_snapshots WHERE room_id = $1 AND doc = $2")
        .bind(room.as_str())
        .bind(doc.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.try_get::<Vec<u8>, _>("data"))
        .transpose()?;
    let mut parts: Vec<&[u8]> = Vec::with_capacity(stored.len() + 2);
    parts.extend(previous.as_deref());
    parts.extend(stored.iter().map(Vec::as_slice));
    parts.push(snapshot);
    let merged = crowdroom_crdt::doc::merge_updates(&parts).map_err(|error| {
        Error::Internal(format!("checkpoint of {room}/{doc} cannot merge: {error}"))
    })?;
    sqlx::query(
        "INSERT INTO doc_snapshots (room_id, doc, upto_id, data, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (room_id, doc) DO UPDATE SET upto_id = excluded.upto_id, data = excluded.data, \
         updated_at = excluded.updated_at",
    )
    .bind(room.as_str())
    .bind(doc.as_str())
    .bind(upto)
    .bind(merged)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM doc_updates WHERE room_id = $1 AND doc = $2 AND id <= $3")
        .bind(room.as_str())
        .bind(doc.as_str())
        .bind(upto)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
