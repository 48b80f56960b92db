//! The writes that clients wait for, run in batches by the committer: one
//! transaction (one fsync) for many acknowledgements.
//!
//! The committer keeps its connection from batch to batch. In WAL mode a
//! SQLite connection drops its whole page cache at the start of every
//! transaction that follows another connection's commit, and with the file
//! mapped it unmaps the file and faults its pages back in: a connection
//! taken from the pool for each batch started every batch cold (a quarter
//! of the SQLite threads' time at 5,000 crowd workers, docs/BENCHMARKS.md,
//! "third session"). A kept connection that fails a batch is dropped, and
//! closed if the failure broke it ([`breaks_connection`]), so a connection
//! left in a bad state is never reused.

use std::collections::HashMap;

use axum::body::Bytes;

use crowdroom_work::queue::Effect;

use super::gate::Conn;
use super::{Backend, ChatMessage, RoomLease, Store, chat, docs, effects, lease};
use crate::error::{Error, Result};
use crate::ids::{DocName, RoomId, UserId};

/// One durable write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Appends a document update.
    AppendUpdate {
        room: RoomId,
        doc: DocName,
        data: Bytes,
    },
    /// Lists a document (idempotent); the server's own writes create the
    /// documents of tasks this way, in the group commit.
    CreateDoc { room: RoomId, doc: DocName },
    /// Replaces a document's stored updates by one snapshot; made by
    /// [`Store::prepare_checkpoint`], which says what `upto` and `replaces` are.
    Checkpoint {
        room: RoomId,
        doc: DocName,
        snapshot: Vec<u8>,
        upto: i64,
        replaces: i64,
    },
    /// Posts a chat message.
    ChatPost {
        room: RoomId,
        user: UserId,
        body: String,
        at: i64,
    },
    /// Edits the author's own chat message.
    ChatEdit {
        room: RoomId,
        id: i64,
        author: UserId,
        body: String,
        at: i64,
    },
    /// Deletes a chat message (any author's with `any_author`).
    ChatDelete {
        room: RoomId,
        id: i64,
        by: UserId,
        any_author: bool,
        at: i64,
    },
    /// A room's work decisions, made in its memory: their rows
    /// (`store/effects.rs`), written only if `lease` is still the room's
    /// current lease when the batch commits (refused with
    /// [`Error::RoomElsewhere`] otherwise).
    Work {
        room: RoomId,
        lease: RoomLease,
        effects: Vec<Effect>,
    },
    /// Writes nothing: completes once every write queued before it has
    /// (a room reloading its work state waits for its own writes so).
    Barrier,
    /// Deletes at most `most` of the document updates with ids up to `upto`
    /// that snapshots cover, oldest first (the committer's own upkeep).
    PruneLog { upto: i64, most: i64 },
}

/// What a committed write produced.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// A document update was appended.
    Appended,
    DocCreated,
    Checkpointed,
    Chat(ChatMessage),
    /// A room's work decisions were written: the ids of its answers, in
    /// the order of its `AnswerRecorded` effects.
    Worked(Vec<i64>),
    Barrier,
    /// How many covered updates were deleted, and the greatest update id
    /// stored.
    Pruned {
        deleted: u64,
        last_id: i64,
    },
}

/// Most document updates in one multi-row INSERT (3 parameters each, far
/// below SQLite's and PostgreSQL's parameter limits).
const APPEND_RUN: usize = 256;
/// Most rooms' work writes in one run (`store/effects.rs` chunks the rows).
const WORK_RUN: usize = 2048;

impl Store {
    /// Runs `ops` in order in one transaction. The outer error means the
    /// transaction failed and nothing was written; an inner error is a
    /// refusal of that one op (not found, not yours) that wrote nothing.
    pub async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
        // The writer's connection, kept from batch to batch (see the
        // module doc); a failed batch drops it, and closes it if it broke.
        let mut writer = self.writer.lock().await;
        let conn = match &mut *writer {
            Some(conn) => conn,
            empty => empty.insert(self.writer_conn().await?),
        };
        let result = self.write_batch_on(conn, ops).await;
        if let Err(error) = &result
            && let Some(conn) = writer.take()
            && matches!(error, Error::Store(error) if breaks_connection(error))
        {
            conn.close().await;
        }
        result
    }

    /// Forgets the writer's kept connection (after a batch panicked with
    /// it mid-transaction): the next batch opens a fresh one.
    pub(crate) async fn drop_writer(&self) {
        if let Some(conn) = self.writer.lock().await.take() {
            conn.close().await;
        }
    }

    async fn write_batch_on(
        &self,
        conn: &mut Conn,
        ops: &[WriteOp],
    ) -> Result<Vec<Result<WriteOutcome>>> {
        let order = run_order(ops);
        let ops: Vec<&WriteOp> = order.iter().filter_map(|&at| ops.get(at)).collect();
        let mut tx = match self.backend {
            Backend::Sqlite => sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?,
            Backend::Postgres => sqlx::Connection::begin(&mut **conn).await?,
        };
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut index = 0;
        while let Some(&op) = ops.get(index) {
            if let Some(done) = run_at(&mut tx, &ops[index..]).await? {
                index += done.len();
                outcomes.extend(done);
                continue;
            }
            index += 1;
            let outcome = match op {
                // `run_at` takes these, alone or not.
                WriteOp::AppendUpdate { .. } | WriteOp::CreateDoc { .. } | WriteOp::Work { .. } => {
                    Err(Error::Internal(
                        "a write that goes in runs went alone".into(),
                    ))
                }
                WriteOp::Checkpoint {
                    room,
                    doc,
                    snapshot,
                    upto,
                    replaces,
                } => docs::checkpoint(&mut tx, room, doc, snapshot, *upto, *replaces)
                    .await
                    .map(|()| WriteOutcome::Checkpointed),
                WriteOp::ChatPost {
                    room,
                    user,
                    body,
                    at,
                } => chat::post(&mut tx, room, user, body, *at)
                    .await
                    .map(WriteOutcome::Chat),
                WriteOp::ChatEdit {
                    room,
                    id,
                    author,
                    body,
                    at,
                } => chat::edit(&mut tx, room, *id, author, body, *at)
                    .await
                    .map(WriteOutcome::Chat),
                WriteOp::ChatDelete {
                    room,
                    id,
                    by,
                    any_author,
                    at,
                } => chat::delete(&mut tx, room, *id, by, *any_author, *at)
                    .await
                    .map(WriteOutcome::Chat),
                WriteOp::Barrier => Ok(WriteOutcome::Barrier),
                WriteOp::PruneLog { upto, most } => docs::prune_log(&mut tx, *upto, *most)
                    .await
                    .map(|(deleted, last_id)| WriteOutcome::Pruned { deleted, last_id }),
            };
            match outcome {
                // A database error aborts the transaction: fail the batch so
                // the committer can retry each op on its own.
                Err(error @ (Error::Store(_) | Error::Internal(_))) => return Err(error),
                other => outcomes.push(other),
            }
        }
        tx.commit().await?;
        // Back in the order the writes were queued in.
        let mut placed: Vec<Option<Result<WriteOutcome>>> =
            (0..order.len()).map(|_| None).collect();
        for (at, outcome) in order.into_iter().zip(outcomes) {
            if let Some(slot) = placed.get_mut(at) {
                *slot = Some(outcome);
            }
        }
        placed
            .into_iter()
            .map(|outcome| {
                outcome.ok_or_else(|| Error::Internal("a write's outcome is missing".into()))
            })
            .collect()
    }
}

/// Most document creations in one statement.
const SMALL_RUN: usize = 512;

/// Runs the run of one kind of write that `ops` starts with, if its kind
/// goes in runs (a few statements whatever the run's length): document
/// updates and creations, and rooms' work. None for a write that goes alone.
async fn run_at(
    conn: &mut sqlx::AnyConnection,
    ops: &[&WriteOp],
) -> Result<Option<Vec<Result<WriteOutcome>>>> {
    let Some(&first) = ops.first() else {
        return Ok(None);
    };
    let same = |most: usize| {
        let kind = std::mem::discriminant(first);
        &ops[..ops
            .iter()
            .take(most)
            .take_while(|op| std::mem::discriminant(**op) == kind)
            .count()]
    };
    Ok(Some(match first {
        WriteOp::AppendUpdate { .. } => {
            let run = same(APPEND_RUN);
            let updates: Vec<(&RoomId, &DocName, &[u8])> = run
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::AppendUpdate { room, doc, data } => Some((room, doc, data.as_ref())),
                    _ => None,
                })
                .collect();
            docs::append_updates(conn, &updates).await?;
            run.iter().map(|_| Ok(WriteOutcome::Appended)).collect()
        }
        WriteOp::CreateDoc { .. } => {
            let run = same(SMALL_RUN);
            let created: Vec<(&RoomId, &DocName)> = run
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::CreateDoc { room, doc } => Some((room, doc)),
                    _ => None,
                })
                .collect();
            docs::create_docs(conn, &created).await?;
            run.iter().map(|_| Ok(WriteOutcome::DocCreated)).collect()
        }
        WriteOp::Work { .. } => {
            let run = same(WORK_RUN);
            let rooms: Vec<&str> = run
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::Work { room, .. } => Some(room.as_str()),
                    _ => None,
                })
                .collect();
            let current = lease::current(conn, &rooms).await?;
            let held = |room: &RoomId, lease: &RoomLease| {
                current.get(room.as_str()).is_some_and(|(owner, epoch)| {
                    owner == lease.owner.as_str() && *epoch == lease.epoch
                })
            };
            let fenced: Vec<(&RoomId, &[Effect])> = run
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::Work {
                        room,
                        lease,
                        effects,
                    } if held(room, lease) => Some((room, effects.as_slice())),
                    _ => None,
                })
                .collect();
            let mut written = effects::write(conn, &fenced).await?.into_iter();
            run.iter()
                .map(|&op| match op {
                    WriteOp::Work { room, lease, .. } if held(room, lease) => written
                        .next()
                        .map(WriteOutcome::Worked)
                        .ok_or_else(|| Error::Internal("a work write's outcome is missing".into())),
                    _ => Err(Error::RoomElsewhere),
                })
                .collect()
        }
        _ => return Ok(None),
    }))
}

/// The order a batch runs in: the rooms' work first, then the documents'
/// creations, their updates, then the rest as queued, so that each kind
/// goes in as few long runs as possible (a run costs a few statements
/// whatever its length).
///
/// Writes of a batch were queued concurrently, so any order is one the
/// clients could have seen, except between writes that touch the same
/// thing: the work writes keep their order (a room's decisions follow each
/// other), and a document's writes (updates, creation, checkpoints) keep
/// theirs. So the batch runs in rounds, each in the kinds' order; a write
/// goes in the first round where it comes after every earlier write of its
/// document, and a round's writes of one kind keep their order.
fn run_order(ops: &[WriteOp]) -> Vec<usize> {
    const REST: u8 = 3;
    // Where the latest write of a document so far runs: (round, kind).
    let mut docs: HashMap<(&str, &str), (usize, u8)> = HashMap::new();
    let mut placed: Vec<(usize, u8, usize)> = Vec::with_capacity(ops.len());
    for (at, op) in ops.iter().enumerate() {
        let (kind, doc) = match op {
            WriteOp::Work { .. } => (0, None),
            WriteOp::CreateDoc { room, doc } => (1, Some((room, doc))),
            WriteOp::AppendUpdate { room, doc, .. } => (2, Some((room, doc))),
            WriteOp::Checkpoint { room, doc, .. } => (REST, Some((room, doc))),
            _ => (REST, None),
        };
        let doc = doc.map(|(room, doc)| (room.as_str(), doc.as_str()));
        // After the latest write it must follow: in that write's round if
        // its kind runs earlier in a round (or is this one's), else in the next.
        let round = doc
            .and_then(|key| docs.get(&key))
            .map(|&(round, before)| if before <= kind { round } else { round + 1 })
            .unwrap_or(0);
        if let Some(key) = doc {
            docs.insert(key, (round, kind));
        }
        placed.push((round, kind, at));
    }
    placed.sort_unstable();
    placed.into_iter().map(|(_, _, at)| at).collect()
}

/// Whether an error leaves the connection unusable, rather than failing
/// one statement: the driver lost its SQLite thread or the server, or
/// SQLite reported an I/O error, a corrupt or unopenable file.
pub(super) fn breaks_connection(error: &sqlx::Error) -> bool {
    // SQLite's primary result codes (the low byte of an extended code).
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_CORRUPT: i32 = 11;
    const SQLITE_CANTOPEN: i32 = 14;
    const SQLITE_NOTADB: i32 = 26;
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| {
                matches!(
                    code & 0xff,
                    SQLITE_IOERR | SQLITE_CORRUPT | SQLITE_CANTOPEN | SQLITE_NOTADB
                )
            }),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomId {
        RoomId::parse(name).unwrap()
    }

    fn work(room_name: &str) -> WriteOp {
        WriteOp::Work {
            room: room(room_name),
            lease: RoomLease {
                owner: crate::store::ProcessId::random(),
                epoch: 1,
            },
            effects: Vec::new(),
        }
    }

    fn update(doc: &str) -> WriteOp {
        WriteOp::AppendUpdate {
            room: room("r"),
            doc: DocName::parse(doc).unwrap(),
            data: Bytes::from_static(b"u"),
        }
    }

    #[test]
    fn work_runs_first_and_keeps_its_order() {
        let ops = [
            update("d1"),
            work("r1"),
            update("d2"),
            work("r2"),
            work("r1"),
        ];
        assert_eq!(run_order(&ops), vec![1, 3, 4, 0, 2]);
    }

    #[test]
    fn every_document_chain_keeps_its_order() {
        // A document's updates around its creation stay in queued order.
        let ops = [
            update("d1"),
            WriteOp::CreateDoc {
                room: room("r"),
                doc: DocName::parse("d1").unwrap(),
            },
            update("d1"),
            update("d2"),
            WriteOp::Barrier,
        ];
        let order = run_order(&ops);
        let position = |at: usize| order.iter().position(|&x| x == at).unwrap();
        assert!(position(0) < position(1), "{order:?}");
        assert!(position(1) < position(2), "{order:?}");
        // Unrelated writes go in the first round: d2 with d1's first update.
        assert!(position(3) < position(1), "{order:?}");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..ops.len()).collect::<Vec<_>>());
    }
}
