//! The room actor's documents: y-websocket sync, awareness, durability.
//!
//! An update is applied in memory and relayed to the other connections at
//! once; it is echoed to its sender only when committed, which is what the
//! y-websocket client takes as confirmation. A viewer's update is refused
//! with the protocol's permission-denied message.
//!
//! A repeated request is answered once while its first answer waits in the
//! connection's queue (queued, or in the burst being written: `conn`'s
//! [`ConnTx::unwritten`]). A sync step 2 is the document's diff against the
//! requester's state vector; what the document gains after it is computed
//! reaches every connection as an update, queued behind it. So an answer
//! still waiting covers a sync step 1 with the same state vector, and it is
//! not computed again (600 sync step 1 in one write once held 600 copies of
//! a 4 MiB document). A different state vector gets its own answer: one
//! that only grew would be covered too, but a repeating client sends the
//! same bytes, and a client varying them runs into the byte budget instead.
//! Likewise a query-awareness while the answer to the last one (or the
//! states sent on joining) waits: every change since reaches the connection
//! as an awareness update behind it.
//!
//! Awareness client ids belong to the connection that announced them: an
//! update or removal for a live id another user's connection owns is
//! ignored (not relayed), so no one can rewrite or hide another's cursor
//! (`AwarenessRegistry::apply_accepted_with`). The same user's connection
//! may take its id over: a tab that reconnects keeps its client id, and its
//! old socket may not be noticed as closed yet.

mod checkpoint;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::Message as WsMessage;
use crowdroom_crdt::{AwarenessRegistry, AwarenessUpdate, DocError, Message, SharedDoc, schema};
use serde_json::Value;
use tokio::time::Instant;

use super::actor::{Purpose, RoomActor};
use super::{Decision, DocMessage};
use crate::auth::Principal;
use crate::conn::{ConnTx, Queued};
use crate::error::{CloseCode, Error, Result};
use crate::ids::{ConnId, DocName, now_ms};
use crate::store::{WriteOp, WriteOutcome};

/// The encoding of an empty update: what a client with nothing new sends as sync step 2.
const EMPTY_UPDATE: &[u8] = &[0, 0];

/// One loaded document.
pub(super) struct DocSlot {
    shared: SharedDoc,
    awareness: AwarenessRegistry,
    conns: HashMap<ConnId, DocConn>,
    /// Writes of this document queued and not yet committed: a document is
    /// only unloaded when this is zero, so a reload never misses a write.
    pending: usize,
    /// Updates appended since the last checkpoint.
    since_checkpoint: usize,
    /// After how many the next checkpoint is due (`checkpoint::due_after`).
    checkpoint_after: usize,
    /// Bytes in the store (snapshot plus updates), for the size limit.
    stored_bytes: usize,
    /// When the last connection left.
    idle_since: Option<Instant>,
}

struct DocConn {
    tx: ConnTx,
    principal: Arc<Principal>,
    /// The last sync step 2 sent, where it was queued and the state vector
    /// it answered: a repeat while it waits is not answered again.
    step2: Option<(Queued, Bytes)>,
    /// Where the last full awareness state (on joining, or a query's
    /// answer) was queued: a query while it waits is not answered again.
    awareness: Option<Queued>,
}

impl DocSlot {
    pub(super) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn broadcast(&self, frame: &Bytes, except: Option<ConnId>) {
        for (id, conn) in &self.conns {
            if Some(*id) != except {
                conn.tx.send(WsMessage::Binary(frame.clone()));
            }
        }
    }
}

fn binary(message: &Message<'_>) -> Bytes {
    Bytes::from(message.encode())
}

impl RoomActor {
    /// Loads `doc` from the store if it is not in memory yet.
    async fn ensure_loaded(&mut self, doc: &DocName) -> Result<()> {
        if self.docs.contains_key(doc) {
            return Ok(());
        }
        let stored = self.context.store.load_doc(&self.room, doc).await?;
        let stored_bytes = stored.stored_bytes();
        let shared = SharedDoc::load(
            stored.snapshot.as_deref(),
            stored.updates.iter().map(Vec::as_slice),
        )
        .map_err(|error| {
            Error::Internal(format!(
                "stored document {}/{doc} does not load: {error}",
                self.room
            ))
        })?;
        self.docs.insert(
            doc.clone(),
            DocSlot {
                shared,
                awareness: AwarenessRegistry::new(),
                conns: HashMap::new(),
                pending: 0,
                // A log loaded without a snapshot is compacted at the next checkpoint.
                since_checkpoint: stored.updates.len(),
                checkpoint_after: checkpoint::due_after(self.context.settings.checkpoint_every),
                stored_bytes,
                // Loaded without a connection (a server write): idle from now.
                idle_since: Some(Instant::now()),
            },
        );
        self.context.metrics.docs_loaded.inc();
        Ok(())
    }

    pub(super) async fn doc_join(
        &mut self,
        conn: ConnTx,
        principal: Arc<Principal>,
        doc: DocName,
    ) -> Result<()> {
        self.ensure_loaded(&doc).await?;
        let Some(slot) = self.docs.get_mut(&doc) else {
            return Err(Error::Internal("document vanished while joining".into()));
        };
        // Writers get the server's state vector so they send what the server
        // lacks; viewers are not asked, since their changes would be refused.
        if principal.role.can_write() {
            conn.send(WsMessage::Binary(binary(&Message::SyncStep1(
                &slot.shared.state_vector(),
            ))));
        }
        let awareness = slot.awareness.encode_all().and_then(|states| {
            conn.send_tracked(WsMessage::Binary(binary(&Message::Awareness(&states))))
        });
        slot.idle_since = None;
        slot.conns.insert(
            conn.id,
            DocConn {
                tx: conn,
                principal,
                step2: None,
                awareness,
            },
        );
        Ok(())
    }

    pub(super) async fn doc_message(&mut self, conn: ConnId, doc: &DocName, message: DocMessage) {
        let Some(slot) = self.docs.get_mut(doc) else {
            return;
        };
        let Some(member) = slot.conns.get_mut(&conn) else {
            return;
        };
        match message {
            // A connection closing (as too slow, say) is answered nothing:
            // a document's diff for a socket about to drop is wasted work.
            DocMessage::SyncStep1(_) | DocMessage::QueryAwareness if member.tx.is_closed() => {}
            DocMessage::SyncStep1(state_vector) => {
                let waiting = member.step2.as_ref().is_some_and(|(queued, answered)| {
                    *answered == state_vector && member.tx.unwritten(*queued)
                });
                if waiting {
                    // The answer still waiting covers this one (module docs).
                    return;
                }
                match slot.shared.diff(&state_vector) {
                    Ok(update) => {
                        let sent = WsMessage::Binary(binary(&Message::SyncStep2(&update)));
                        member.step2 = member
                            .tx
                            .send_tracked(sent)
                            .map(|queued| (queued, state_vector));
                    }
                    Err(_) => {
                        let tx = member.tx.clone();
                        self.bad_input(&tx, CloseCode::ProtocolError);
                    }
                }
            }
            DocMessage::SyncStep2(update) | DocMessage::Update(update) => {
                self.doc_update(conn, doc, update).await
            }
            DocMessage::Awareness(bytes) => {
                let decoded = AwarenessUpdate::decode(&bytes);
                let tx = member.tx.clone();
                let principal = member.principal.clone();
                match decoded {
                    Ok(update) => {
                        let now = u64::try_from(now_ms()).unwrap_or(0);
                        // Relay what the registry accepted (never entries it
                        // refused) to everyone, the sender included: the
                        // y-websocket client closes after 30 s without
                        // receiving anything, and its own renewals keep it open.
                        let user = &principal.user;
                        let conns = &slot.conns;
                        // Another connection's ids are the same user's
                        // only to take over (module docs).
                        let same_user = |owner: u64| {
                            conns
                                .get(&ConnId(owner))
                                .is_some_and(|other| &other.principal.user == user)
                        };
                        let accepted = slot
                            .awareness
                            .apply_accepted_with(conn.0, &update, now, same_user);
                        if let Some(accepted) = accepted {
                            slot.broadcast(&binary(&Message::Awareness(&accepted)), None);
                        }
                    }
                    Err(_) => self.bad_input(&tx, CloseCode::ProtocolError),
                }
            }
            DocMessage::QueryAwareness => {
                if member
                    .awareness
                    .is_some_and(|queued| member.tx.unwritten(queued))
                {
                    // The states still waiting, and the changes queued
                    // behind them, answer this query too.
                    return;
                }
                if let Some(states) = slot.awareness.encode_all() {
                    member.awareness = member
                        .tx
                        .send_tracked(WsMessage::Binary(binary(&Message::Awareness(&states))));
                }
            }
        }
    }

    async fn doc_update(&mut self, conn: ConnId, doc: &DocName, update: Bytes) {
        let max_doc_bytes = self.context.settings.max_doc_bytes;
        let locked = self.moderation.locked;
        let Some(slot) = self.docs.get_mut(doc) else {
            return;
        };
        let Some(member) = slot.conns.get(&conn) else {
            return;
        };
        if update.as_ref() == EMPTY_UPDATE {
            return;
        }
        let tx = member.tx.clone();
        if !member.principal.role.can_write() {
            tx.send(WsMessage::Binary(binary(&Message::PermissionDenied(
                "read-only role: viewers cannot edit",
            ))));
            return;
        }
        if locked && !member.principal.role.can_moderate() {
            tx.send(WsMessage::Binary(binary(&Message::PermissionDenied(
                "the room is locked",
            ))));
            return;
        }
        if slot.stored_bytes.saturating_add(update.len()) > max_doc_bytes {
            tx.send(WsMessage::Binary(binary(&Message::PermissionDenied(
                "document size limit reached",
            ))));
            return;
        }
        let applied = match slot.shared.apply(&update) {
            Ok(applied) => applied,
            Err(DocError::Panicked) => {
                // yrs state may be inconsistent: drop the document; everyone
                // reconnects and it reloads from the store.
                tracing::error!(room_id = %self.room, doc = %doc, "yrs panicked; reloading document");
                self.drop_doc(doc, CloseCode::TryLater);
                return;
            }
            Err(DocError::Malformed(_) | DocError::Rejected(_)) => {
                self.bad_input(&tx, CloseCode::InvalidUpdate);
                return;
            }
        };
        let frame = binary(&Message::Update(&update));
        if applied.changed {
            slot.broadcast(&frame, Some(conn));
        }
        slot.pending += 1;
        slot.since_checkpoint += 1;
        slot.stored_bytes += update.len();
        let checkpoint_due = slot.since_checkpoint >= slot.checkpoint_after;
        let op = WriteOp::AppendUpdate {
            room: self.room.clone(),
            doc: doc.clone(),
            data: update,
        };
        if !self
            .submit(
                op,
                Purpose::DocUpdate {
                    doc: doc.clone(),
                    conn,
                    frame,
                },
            )
            .await
        {
            self.undo_pending(doc);
            tx.close(CloseCode::TryLater);
        }
        if checkpoint_due {
            self.checkpoint(doc);
        }
    }

    /// Writes a settled task's consensus (and review state) into its shared
    /// document `task-{id}` as a CRDT peer: applied, relayed to everyone
    /// editing it, and persisted like any client's update.
    pub(super) async fn publish_decision(&mut self, task: i64, decision: &Decision) {
        let Ok(doc) = DocName::parse(&format!("task-{task}")) else {
            return;
        };
        // Listed through the group commit, ahead of the update itself: the
        // room never waits on the database's write lock.
        let listing = WriteOp::CreateDoc {
            room: self.room.clone(),
            doc: doc.clone(),
        };
        if !self
            .submit(listing, Purpose::DocListed { doc: doc.clone() })
            .await
        {
            return;
        }
        if let Err(error) = self.ensure_loaded(&doc).await {
            tracing::warn!(room_id = %self.room, task, %error, "cannot publish a decision into the task's document");
            return;
        }
        let Some(slot) = self.docs.get_mut(&doc) else {
            return;
        };
        let shared = slot.shared.doc();
        let mut updates = vec![
            schema::set_label(
                shared,
                "consensus",
                decision.consensus.clone().unwrap_or(Value::Null),
            ),
            schema::set_label(
                shared,
                "confidence",
                decision.confidence.map_or(Value::Null, Value::from),
            ),
            schema::set_label(
                shared,
                "method",
                decision.method.clone().map_or(Value::Null, Value::from),
            ),
            schema::set_label(shared, "state", Value::from(decision.state.clone())),
        ];
        if let Some(review) = &decision.review {
            updates.push(schema::set_review(shared, review));
        }
        for update in &updates {
            slot.broadcast(&binary(&Message::Update(update)), None);
            slot.pending += 1;
            slot.since_checkpoint += 1;
            slot.stored_bytes += update.len();
        }
        for update in updates {
            let op = WriteOp::AppendUpdate {
                room: self.room.clone(),
                doc: doc.clone(),
                data: Bytes::from(update),
            };
            if !self
                .submit(op, Purpose::ServerUpdate { doc: doc.clone() })
                .await
            {
                // Shutting down: the in-memory state is checkpointed instead.
                self.undo_pending(&doc);
            }
        }
    }

    pub(super) fn server_update_committed(&mut self, doc: &DocName, outcome: Result<WriteOutcome>) {
        self.undo_pending(doc);
        if let Err(error) = outcome {
            tracing::warn!(room_id = %self.room, doc = %doc, %error, "server update not committed; the next checkpoint keeps it");
        }
    }

    pub(super) fn update_committed(
        &mut self,
        doc: &DocName,
        conn: ConnId,
        frame: Bytes,
        outcome: Result<WriteOutcome>,
    ) {
        let Some(slot) = self.docs.get_mut(doc) else {
            return;
        };
        slot.pending = slot.pending.saturating_sub(1);
        let Some(member) = slot.conns.get(&conn) else {
            return;
        };
        match outcome {
            // The echo is the acknowledgement: the update is now durable.
            Ok(_) => {
                member.tx.send(WsMessage::Binary(frame));
            }
            Err(error) => {
                // Not durable, so not acknowledged: the client reconnects and
                // sends it again in its sync step 2.
                tracing::warn!(room_id = %self.room, doc = %doc, %error, "update not committed");
                member.tx.close(CloseCode::Internal);
            }
        }
    }

    fn undo_pending(&mut self, doc: &DocName) {
        if let Some(slot) = self.docs.get_mut(doc) {
            slot.pending = slot.pending.saturating_sub(1);
        }
    }

    pub(super) fn doc_leave(&mut self, conn: ConnId, doc: &DocName) {
        let Some(slot) = self.docs.get_mut(doc) else {
            return;
        };
        if slot.conns.remove(&conn).is_none() {
            return;
        }
        if let Some(removal) = slot.awareness.remove_owner(conn.0) {
            slot.broadcast(&binary(&Message::Awareness(&removal)), None);
        }
        if slot.conns.is_empty() {
            slot.idle_since = Some(Instant::now());
        }
    }

    /// Expires stale awareness; checkpoints, then unloads, documents idle
    /// for `doc_idle` with no write in flight.
    pub(super) fn docs_housekeeping(&mut self) {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let timeout =
            u64::try_from(self.context.settings.awareness_timeout.as_millis()).unwrap_or(u64::MAX);
        let doc_idle = self.context.settings.doc_idle;
        let mut to_checkpoint = Vec::new();
        let mut to_unload = Vec::new();
        for (name, slot) in &mut self.docs {
            if let Some(removal) = slot.awareness.expire(now, timeout) {
                slot.broadcast(&binary(&Message::Awareness(&removal)), None);
            }
            let idle = slot
                .idle_since
                .is_some_and(|since| since.elapsed() >= doc_idle);
            if idle && slot.pending == 0 {
                if slot.since_checkpoint > 0 {
                    to_checkpoint.push(name.clone());
                } else {
                    to_unload.push(name.clone());
                }
            }
        }
        for name in to_checkpoint {
            self.checkpoint(&name);
        }
        for name in to_unload {
            self.docs.remove(&name);
            self.context.metrics.docs_loaded.dec();
            tracing::debug!(room_id = %self.room, doc = %name, "document unloaded");
        }
    }

    /// Drops a document from memory, closing its connections with `code`.
    fn drop_doc(&mut self, doc: &DocName, code: CloseCode) {
        if let Some(slot) = self.docs.remove(doc) {
            for conn in slot.conns.values() {
                conn.tx.close(code);
            }
            self.context.metrics.docs_loaded.dec();
        }
    }

    pub(super) fn bad_input(&self, tx: &ConnTx, code: CloseCode) {
        self.context.metrics.bad_input_closed.inc();
        tx.close(code);
    }

    /// Closes every document connection of `user` with `code`.
    /// Open document connections of `user`.
    pub(super) fn doc_connections_of(&self, user: &crate::ids::UserId) -> usize {
        self.docs
            .values()
            .flat_map(|slot| slot.conns.values())
            .filter(|conn| &conn.principal.user == user)
            .count()
    }

    /// Closes every document connection with `code`.
    pub(super) fn disconnect_all_docs(&self, code: CloseCode) {
        for conn in self.docs.values().flat_map(|slot| slot.conns.values()) {
            conn.tx.close(code);
        }
    }

    pub(super) fn disconnect_docs(&self, user: &crate::ids::UserId, code: CloseCode) {
        for slot in self.docs.values() {
            for conn in slot
                .conns
                .values()
                .filter(|conn| &conn.principal.user == user)
            {
                conn.tx.close(code);
            }
        }
    }
}
