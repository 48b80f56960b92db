//! The writes that clients wait for, run in batches by the committer: one
//! transaction (one fsync) for many acknowledgements.

use std::collections::HashMap;

use axum::body::Bytes;

use serde_json::Value;

use super::answer::{self, Submitted};
use super::grant;
use super::reserve::{self as work, WorkAsk};
use super::work::{Reservation, WorkerTask};
use super::{ChatMessage, Store, chat, docs};
use crate::error::{Error, Result};
use crate::ids::{DocName, RoomId, UserId};
use crate::work::SubmitRules;

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
    /// Replaces a document's stored updates by one snapshot.
    Checkpoint {
        room: RoomId,
        doc: DocName,
        snapshot: Vec<u8>,
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
        task: i64,
        worker: UserId,
        ttl_ms: i64,
    },
    /// Gives a reservation back.
    Skip { task: i64, worker: UserId },
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
}

/// Most document updates in one multi-row INSERT (3 parameters each, far
/// below SQLite's and PostgreSQL's parameter limits).
const APPEND_RUN: usize = 256;
/// Most answers whose rows go in one set of multi-row INSERTs (7
/// parameters each).
const SUBMIT_RUN: usize = 256;
/// Most grants decided together (up to 16 ranked tasks each, listed
/// twice in one statement).
const GRANT_RUN: usize = 128;

impl Store {
    /// Runs `ops` in order in one transaction. The outer error means the
    /// transaction failed and nothing was written; an inner error is a
    /// refusal of that one op (not found, not yours) that wrote nothing.
    pub async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
        let order = run_order(ops);
        let ops: Vec<&WriteOp> = order.iter().filter_map(|&at| ops.get(at)).collect();
        let mut tx = self.begin_write().await?;
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
                } => docs::checkpoint(&mut tx, room, doc, snapshot)
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
                WriteOp::Skip { task, worker } => work::skip(&mut tx, *task, worker)
                    .await
                    .map(|()| WriteOutcome::Skipped),
                WriteOp::Sweep { room } => {
                    work::sweep(&mut tx, room).await.map(WriteOutcome::Swept)
                }
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
            let beats: Vec<(i64, &UserId, i64)> = same(SMALL_RUN)
                .iter()
                .filter_map(|&op| match op {
                    WriteOp::Heartbeat {
                        task,
                        worker,
                        ttl_ms,
                    } => Some((*task, worker, *ttl_ms)),
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
/// thing: a write never runs before an earlier write of the same worker
/// (answers, grants, heartbeats, skips) or of the same document (updates,
/// creation, checkpoints). It goes in its kind's group, or in the latest
/// group such an earlier write went in if that one is later. Writes of one
/// group keep their order among themselves.
fn run_order(ops: &[WriteOp]) -> Vec<usize> {
    const GROUPS: usize = 6;
    let mut groups: [Vec<usize>; GROUPS] = Default::default();
    // The latest group a worker's or a document's writes went in so far.
    let mut workers: HashMap<&str, usize> = HashMap::new();
    let mut docs: HashMap<(&str, &str), usize> = HashMap::new();
    for (at, op) in ops.iter().enumerate() {
        let (kind, worker, doc) = match op {
            WriteOp::Submit { worker, .. } => (0, Some(worker.as_str()), None),
            WriteOp::CreateDoc { room, doc } => (1, None, Some((room.as_str(), doc.as_str()))),
            WriteOp::AppendUpdate { room, doc, .. } => {
                (2, None, Some((room.as_str(), doc.as_str())))
            }
            WriteOp::GrantFirst { ask, .. } => (3, Some(ask.worker.as_str()), None),
            WriteOp::Heartbeat { worker, .. } => (4, Some(worker.as_str()), None),
            WriteOp::Grant { worker, .. } | WriteOp::Skip { worker, .. } => {
                (GROUPS - 1, Some(worker.as_str()), None)
            }
            WriteOp::Checkpoint { room, doc, .. } => {
                (GROUPS - 1, None, Some((room.as_str(), doc.as_str())))
            }
            _ => (GROUPS - 1, None, None),
        };
        let mut group = kind;
        if let Some(worker) = worker {
            let latest = workers.entry(worker).or_insert(group);
            group = group.max(*latest);
            *latest = group;
        }
        if let Some(doc) = doc {
            let latest = docs.entry(doc).or_insert(group);
            group = group.max(*latest);
            *latest = group;
        }
        if let Some(members) = groups.get_mut(group) {
            members.push(at);
        }
    }
    groups.into_iter().flatten().collect()
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
