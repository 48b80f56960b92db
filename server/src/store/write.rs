//! The writes that clients wait for, run in batches by the committer: one
//! transaction (one fsync) for many acknowledgements.

use axum::body::Bytes;

use super::{ChatMessage, Store, chat, docs};
use crate::error::{Error, Result};
use crate::ids::{DocName, RoomId, UserId};

/// One durable write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Appends a document update.
    AppendUpdate { room: RoomId, doc: DocName, data: Bytes },
    /// Replaces a document's stored updates by one snapshot.
    Checkpoint { room: RoomId, doc: DocName, snapshot: Vec<u8> },
    /// Posts a chat message.
    ChatPost { room: RoomId, user: UserId, body: String, at: i64 },
    /// Edits the author's own chat message.
    ChatEdit { room: RoomId, id: i64, author: UserId, body: String, at: i64 },
    /// Deletes a chat message (any author's with `any_author`).
    ChatDelete { room: RoomId, id: i64, by: UserId, any_author: bool, at: i64 },
}

/// What a committed write produced.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    UpdateId(i64),
    Checkpointed,
    Chat(ChatMessage),
}

impl Store {
    /// Runs `ops` in order in one transaction. The outer error means the
    /// transaction failed and nothing was written; an inner error is a
    /// refusal of that one op (not found, not yours) that wrote nothing.
    pub async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
        let mut tx = self.pool().begin().await?;
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let outcome = match op {
                WriteOp::AppendUpdate { room, doc, data } => {
                    docs::append_update(&mut tx, room, doc, data).await.map(WriteOutcome::UpdateId)
                }
                WriteOp::Checkpoint { room, doc, snapshot } => {
                    docs::checkpoint(&mut tx, room, doc, snapshot).await.map(|()| WriteOutcome::Checkpointed)
                }
                WriteOp::ChatPost { room, user, body, at } => {
                    chat::post(&mut tx, room, user, body, *at).await.map(WriteOutcome::Chat)
                }
                WriteOp::ChatEdit { room, id, author, body, at } => {
                    chat::edit(&mut tx, room, *id, author, body, *at).await.map(WriteOutcome::Chat)
                }
                WriteOp::ChatDelete { room, id, by, any_author, at } => {
                    chat::delete(&mut tx, room, *id, by, *any_author, *at).await.map(WriteOutcome::Chat)
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
        Ok(outcomes)
    }
}
