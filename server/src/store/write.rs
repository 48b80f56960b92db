//! The writes that clients wait for, run in batches by the committer: one
//! transaction (one fsync) for many acknowledgements.

use std::collections::HashMap;

use axum::body::Bytes;

use crowdroom_work::quality::SubmitRules;
use serde_json::Value;

use super::answer::{self, Submitted};
use super::gate::Conn;
use super::grant;
use super::reserve::{self as work, WorkAsk};
use super::work::{Reservation, WorkerTask};
use super::{Backend, ChatMessage, Store, chat, docs};
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
    /// Reserves a task for a worker if a slot is free.
    Grant {
        room: RoomId,
        task: i64,
        worker: UserId,
        ttl_ms: i64,
        cap_ms: i64,
    },
    /// Reserves the first of `ranked` (best first, from
    /// [`Store::rank_work`]) that still has a free slot for the worker.
    GrantFirst {
        ask: WorkAsk,
        ranked: Vec<WorkerTask>,
    },
    /// Extends a live reservation.
    Heartbeat {
        room: RoomId,
        task: i64,
        worker: UserId,
        ttl_ms: i64,
    },
    /// Gives a reservation back.
    Skip {
        room: RoomId,
        task: i64,
        worker: UserId,
    },
    /// Records an answer under a live reservation.
    Submit {
        room: RoomId,
        task: i64,
        worker: UserId,
        answer: Value,
        rules: SubmitRules,
    },
    /// Deletes a room's expired reservations.
    Sweep { room: RoomId },
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
    /// A grant: the reservation, or None when the slot was taken meanwhile.
    Granted(Option<Reservation>),
    /// The reservation and task picked by `GrantFirst`, if any.
    Matched(Option<(Reservation, WorkerTask)>),
    /// A heartbeat: the new expiry.
    Extended(i64),
    Skipped,
    Submitted(Submitted),
    /// The (task, worker) of each expired reservation removed.
    Swept(Vec<(i64, UserId)>),
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
/// Most answers whose rows go in one set of multi-row INSERTs (7
/// parameters each).
const SUBMIT_RUN: usize = 256;
/// Most grants decided together (up to 16 ranked tasks each: the tasks
/// once, each with its ask's worker once more, in one statement).
const GRANT_RUN: usize = 128;

impl Store {
    /// Runs `ops` in order in one transaction. The outer error means the
    /// transaction failed and nothing was written; an inner error is a
    /// refusal of that one op (not found, not yours) that wrote nothing.
    pub async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
        // The writer's connection, kept from batch to batch (see
        // `store/hot.rs`); a failed batch drops it, so a connection left in
        // a bad state is not reused, and closes it if the failure broke it.
        let mut writer = self.writer.lock().await;
        let conn = match &mut *writer {
            Some(conn) => conn,
            empty => empty.insert(self.writer_conn().await?),
        };
        let result = self.write_batch_on(conn, ops).await;
        if let Err(error) = &result
            && let Some(conn) = writer.take()
            && matches!(error, Error::Store(error) if super::hot::breaks_connection(error))
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
                WriteOp::AppendUpdate { .. }
                | WriteOp::CreateDoc { .. }
                | WriteOp::GrantFirst { .. }
                | WriteOp::Heartbeat { .. }
                | WriteOp::Submit { .. } => Err(Error::Internal(
                    "a write that goes in runs went alone".into(),
                )),
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
                WriteOp::Grant {
                    room,
                    task,
                    worker,
                    ttl_ms,
                    cap_ms,
                } => work::grant(&mut tx, room, *task, worker, *ttl_ms, *cap_ms)
                    .await
                    .map(WriteOutcome::Granted),
                WriteOp::Skip { room, task, worker } => work::skip(&mut tx, room, *task, worker)
                    .await
                    .map(|()| WriteOutcome::Skipped),
                WriteOp::Sweep { room } => {
                    work::sweep(&mut tx, room).await.map(WriteOutcome::Swept)
                }
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

/// Most heartbeats or document creations in one statement.
const SMALL_RUN: usize = 512;

/// Runs the run of one kind of write that `ops` starts with, if its kind
/// goes in runs (a few statements whatever the run's length): document
/// updates and creations, answers, grants, heartbeats. None for a write
/// that goes alone.
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
        WriteOp::Submit { .. } => submit_run(conn, same(SUBMIT_RUN)).await?,
        WriteOp::GrantFirst { .. } => {
            let asks: Vec<(&WorkAsk, &[WorkerTask])> = same(GRANT_RUN)
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::GrantFirst { ask, ranked } => Some((ask, ranked.as_slice())),
                    _ => None,
                })
                .collect();
            grant::grant_run(conn, &asks)
                .await?
                .into_iter()
                .map(|found| Ok(WriteOutcome::Matched(found)))
                .collect()
        }
        WriteOp::Heartbeat { .. } => {
            let beats: Vec<(&RoomId, i64, &UserId, i64)> = same(SMALL_RUN)
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::Heartbeat {
                        room,
                        task,
                        worker,
                        ttl_ms,
                    } => Some((room, *task, worker, *ttl_ms)),
                    _ => None,
                })
                .collect();
            work::heartbeats(conn, &beats)
                .await?
                .into_iter()
                .map(|extended| extended.map(WriteOutcome::Extended))
                .collect()
        }
        _ => return Ok(None),
    }))
}

/// The order a batch runs in: the answers first, then the documents'
/// creations, their updates, the grants, the heartbeats, then the rest as
/// queued, so that each kind goes in as few long runs as possible (a run
/// costs a few statements whatever its length).
///
/// Writes of a batch were queued concurrently, so any order is one the
/// clients could have seen, except between writes that touch the same
/// thing: a write never runs before an earlier write of the same worker in
/// the same room (answers, grants, heartbeats, skips: everything a store
/// keeps of a worker is the room's) or of the same document (updates,
/// creation, checkpoints). So the batch runs in rounds, each in the kinds'
/// order; a write goes in the first round where it comes after every
/// earlier write it must follow, and a round's writes of one kind keep
/// their order. Most writes land in the first round; a worker's heartbeat
/// and then answer put the answer in the second, beside the other answers
/// that had to wait, not in a run of its own among the heartbeats.
fn run_order(ops: &[WriteOp]) -> Vec<usize> {
    const REST: u8 = 5;
    // Where the latest write of a worker or a document so far runs:
    // (round, kind).
    let mut workers: HashMap<(&str, &str), (usize, u8)> = HashMap::new();
    let mut docs: HashMap<(&str, &str), (usize, u8)> = HashMap::new();
    let mut placed: Vec<(usize, u8, usize)> = Vec::with_capacity(ops.len());
    for (at, op) in ops.iter().enumerate() {
        let (kind, worker, doc) = match op {
            WriteOp::Submit { room, worker, .. } => (0, Some((room, worker)), None),
            WriteOp::CreateDoc { room, doc } => (1, None, Some((room, doc))),
            WriteOp::AppendUpdate { room, doc, .. } => (2, None, Some((room, doc))),
            WriteOp::GrantFirst { ask, .. } => (3, Some((&ask.room, &ask.worker)), None),
            WriteOp::Heartbeat { room, worker, .. } => (4, Some((room, worker)), None),
            WriteOp::Grant { room, worker, .. } | WriteOp::Skip { room, worker, .. } => {
                (REST, Some((room, worker)), None)
            }
            WriteOp::Checkpoint { room, doc, .. } => (REST, None, Some((room, doc))),
            _ => (REST, None, None),
        };
        let worker = worker.map(|(room, worker)| (room.as_str(), worker.as_str()));
        let doc = doc.map(|(room, doc)| (room.as_str(), doc.as_str()));
        // After the latest write it must follow: in that write's round if
        // its kind runs earlier in a round (or is this one's), else in the next.
        let earlier = [
            worker.and_then(|key| workers.get(&key)),
            doc.and_then(|key| docs.get(&key)),
        ];
        let round = earlier
            .into_iter()
            .flatten()
            .map(|&(round, before)| if before <= kind { round } else { round + 1 })
            .max()
            .unwrap_or(0);
        if let Some(key) = worker {
            workers.insert(key, (round, kind));
        }
        if let Some(key) = doc {
            docs.insert(key, (round, kind));
        }
        placed.push((round, kind, at));
    }
    placed.sort_unstable();
    placed.into_iter().map(|(_, _, at)| at).collect()
}

/// A run of answers (`store/answer.rs`). A refused answer (its reservation
/// gone) wrote nothing and does not stop the others; a database error
/// fails the batch.
async fn submit_run(
    conn: &mut sqlx::AnyConnection,
    ops: &[&WriteOp],
) -> Result<Vec<Result<WriteOutcome>>> {
    let answers: Vec<answer::Answer<'_>> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Submit {
                room,
                task,
                worker,
                answer,
                rules,
            } => Some(answer::Answer {
                room,
                task: *task,
                worker,
                answer,
                rules,
            }),
            _ => None,
        })
        .collect();
    if answers.len() != ops.len() {
        return Err(Error::Internal(
            "a run of answers holds another write".into(),
        ));
    }
    Ok(answer::run(conn, &answers)
        .await?
        .into_iter()
        .map(|outcome| outcome.map(WriteOutcome::Submitted))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crowdroom_work::project::ProjectConfig;

    fn room(name: &str) -> RoomId {
        RoomId::parse(name).unwrap()
    }

    fn answer(room_name: &str, worker: &str, task: i64) -> WriteOp {
        WriteOp::Submit {
            room: room(room_name),
            task,
            worker: UserId::parse(worker).unwrap(),
            answer: Value::Null,
            rules: ProjectConfig::default().submit_rules(),
        }
    }

    fn beat(room_name: &str, worker: &str, task: i64) -> WriteOp {
        WriteOp::Heartbeat {
            room: room(room_name),
            task,
            worker: UserId::parse(worker).unwrap(),
            ttl_ms: 1,
        }
    }

    fn update(doc: &str) -> WriteOp {
        WriteOp::AppendUpdate {
            room: room("r"),
            doc: DocName::parse(doc).unwrap(),
            data: Bytes::from_static(b"u"),
        }
    }

    /// How many runs of one kind the ordered batch has.
    fn runs(ops: &[WriteOp], order: &[usize]) -> usize {
        order
            .chunk_by(|&a, &b| std::mem::discriminant(&ops[a]) == std::mem::discriminant(&ops[b]))
            .count()
    }

    #[test]
    fn answers_that_must_wait_run_together_after_the_first_round() {
        // Workers a..d each heartbeat then answer; e and f only answer.
        let mut ops = Vec::new();
        for worker in ["a", "b", "c", "d"] {
            ops.push(beat("r", worker, 1));
        }
        for worker in ["a", "e", "b", "f", "c", "d"] {
            ops.push(answer("r", worker, 1));
        }
        let order = run_order(&ops);
        // e and f's answers, then the heartbeats, then the four answers
        // that follow a heartbeat, in their queued order.
        assert_eq!(order, vec![5, 7, 0, 1, 2, 3, 4, 6, 8, 9]);
        assert_eq!(runs(&ops, &order), 3);
    }

    #[test]
    fn the_same_worker_in_another_room_is_not_held_back() {
        // One user works in two rooms: their heartbeat in r2 says nothing
        // about their answer in r1.
        let ops = [beat("r2", "a", 2), answer("r1", "a", 1)];
        assert_eq!(run_order(&ops), vec![1, 0]);
        let ops = [beat("r1", "a", 2), answer("r1", "a", 1)];
        assert_eq!(run_order(&ops), vec![0, 1]);
    }

    #[test]
    fn every_chain_keeps_its_order() {
        // A document's updates around its creation, a worker's answer,
        // heartbeat, answer: each chain stays in its queued order.
        let ops = [
            update("d1"),
            WriteOp::CreateDoc {
                room: room("r"),
                doc: DocName::parse("d1").unwrap(),
            },
            update("d1"),
            answer("r", "a", 1),
            beat("r", "a", 2),
            answer("r", "a", 2),
            update("d2"),
            WriteOp::Sweep { room: room("r") },
        ];
        let order = run_order(&ops);
        let position = |at: usize| order.iter().position(|&x| x == at).unwrap();
        for chain in [&[0, 1, 2][..], &[3, 4, 5]] {
            for pair in chain.windows(2) {
                assert!(position(pair[0]) < position(pair[1]), "{order:?}");
            }
        }
        // Unrelated writes go in the first round: d2 with d1's first update.
        assert!(position(6) < position(1), "{order:?}");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..ops.len()).collect::<Vec<_>>());
    }
}
