//! The room actor's live channel: presence, chat, and the replies and
//! events of the JSON protocol (see [`crate::protocol`]).
//!
//! A chat message is acknowledged (and announced) only once committed.
//! Moderators get some events in a fuller form than everyone else (a deleted
//! message's body and who deleted it): the audience is chosen here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Message as WsMessage;

use super::actor::{ChatKind, Purpose, RoomActor};
use crate::auth::Principal;
use crate::conn::ConnTx;
use crate::error::{CloseCode, Error, Result};
use crate::ids::{ConnId, UserId, now_ms};
use crate::protocol::{
    self, ChatPage, ChatWritten, Event, Hello, MAX_CHAT_CHARS, MAX_STATUS_CHARS, NoTask, Op,
    PROTOCOL_VERSION, Pong, Presence, Request, RequestId, StatusSet, You,
};
use crate::store::{WriteOp, WriteOutcome};

/// Default page size of `chat.history`.
const DEFAULT_HISTORY_PAGE: i64 = 50;

/// Who is on the live channel.
#[derive(Default)]
pub(super) struct LiveState {
    conns: HashMap<ConnId, LiveConn>,
    presence: HashMap<UserId, Presence>,
}

struct LiveConn {
    tx: ConnTx,
    principal: Arc<Principal>,
}

impl LiveState {
    pub(super) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub(super) fn online_users(&self) -> usize {
        self.presence.len()
    }

    /// Queues `frame` to every live connection.
    pub(super) fn broadcast_all(&self, frame: &WsMessage) {
        self.broadcast(frame);
    }

    /// Queues `frame` to every owner's and moderator's live connection.
    pub(super) fn send_to_moderators(&self, frame: &WsMessage) {
        for conn in self
            .conns
            .values()
            .filter(|conn| conn.principal.role.can_moderate())
        {
            conn.tx.send(frame.clone());
        }
    }

    /// Queues `frame` to every live connection but the owners' and
    /// moderators'.
    pub(super) fn send_to_non_moderators(&self, frame: &WsMessage) {
        for conn in self
            .conns
            .values()
            .filter(|conn| !conn.principal.role.can_moderate())
        {
            conn.tx.send(frame.clone());
        }
    }

    /// Whether an owner or moderator is connected.
    pub(super) fn moderators_online(&self) -> bool {
        self.conns
            .values()
            .any(|conn| conn.principal.role.can_moderate())
    }

    /// Queues `frame` to every live connection of `user`.
    pub(super) fn send_to_user(&self, user: &UserId, frame: &WsMessage) {
        for conn in self
            .conns
            .values()
            .filter(|conn| &conn.principal.user == user)
        {
            conn.tx.send(frame.clone());
        }
    }

    /// Queues `frame` to every live connection.
    fn broadcast(&self, frame: &WsMessage) {
        for conn in self.conns.values() {
            conn.tx.send(frame.clone());
        }
    }

    /// Queues `moderators` to moderators and `others` to everyone else.
    fn broadcast_split(&self, moderators: &WsMessage, others: &WsMessage) {
        for conn in self.conns.values() {
            let frame = if conn.principal.role.can_moderate() {
                moderators
            } else {
                others
            };
            conn.tx.send(frame.clone());
        }
    }

    /// Queues `frame` to one connection, if it is still open.
    pub(super) fn reply(&self, conn: ConnId, frame: WsMessage) {
        if let Some(conn) = self.conns.get(&conn) {
            conn.tx.send(frame);
        }
    }

    /// Open live connections of `user`.
    pub(super) fn connections_of(&self, user: &UserId) -> usize {
        self.conns
            .values()
            .filter(|conn| &conn.principal.user == user)
            .count()
    }

    /// Records a mute (or its end) in `user`'s presence, if they are online.
    pub(super) fn set_muted(&mut self, user: &UserId, until: Option<i64>) {
        if let Some(presence) = self.presence.get_mut(user) {
            presence.muted_until = until;
        }
    }
}

fn validate_body(body: &str) -> Result<String> {
    let body = body.trim();
    if body.is_empty() {
        return Err(Error::BadRequest("a chat message cannot be empty".into()));
    }
    protocol::check_text(body, MAX_CHAT_CHARS, "a chat message")?;
    Ok(body.to_owned())
}

impl RoomActor {
    pub(super) fn live_join(&mut self, conn: ConnTx, principal: Arc<Principal>) {
        let user = principal.user.clone();
        let first = !self.live.presence.contains_key(&user);
        let presence = self
            .live
            .presence
            .entry(user.clone())
            .or_insert_with(|| Presence {
                user: user.clone(),
                display_name: principal.display_name.clone(),
                role: principal.role,
                status: "online".to_owned(),
                connections: 0,
                since: now_ms(),
                muted_until: None,
            });
        presence.muted_until = self.moderation.muted_until(&user);
        presence.connections += 1;
        let joined = presence.clone();
        let everyone: Vec<&Presence> = self.live.presence.values().collect();
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            room: &self.room,
            connection_id: conn.id,
            you: You {
                user: &principal.user,
                display_name: &principal.display_name,
                role: principal.role,
                token_expires_at: principal.expires_at,
                muted_until: self.moderation.muted_until(&principal.user),
            },
            presence: everyone,
            state: self.moderation.state(),
        };
        conn.send(hello.frame());
        if first {
            self.live.broadcast(&Event::PresenceJoined(&joined).frame());
        }
        self.live.conns.insert(
            conn.id,
            LiveConn {
                tx: conn,
                principal,
            },
        );
    }

    pub(super) fn live_leave(&mut self, conn: ConnId) {
        let Some(left) = self.live.conns.remove(&conn) else {
            return;
        };
        let user = &left.principal.user;
        let gone = match self.live.presence.get_mut(user) {
            Some(presence) => {
                presence.connections = presence.connections.saturating_sub(1);
                presence.connections == 0
            }
            None => false,
        };
        if gone {
            self.live.presence.remove(user);
            self.live.broadcast(&Event::PresenceLeft { user }.frame());
        }
    }

    pub(super) async fn live_request(&mut self, conn: ConnId, request: Request) {
        let Some(principal) = self
            .live
            .conns
            .get(&conn)
            .map(|conn| conn.principal.clone())
        else {
            return;
        };
        let Request { id, op } = request;
        let result = match op {
            Op::Ping {} => Ok(Some(protocol::ok_reply(&id, &Pong { pong: true }))),
            op @ (Op::ModMute { .. }
            | Op::ModUnmute { .. }
            | Op::ModKick { .. }
            | Op::ModBan { .. }
            | Op::ModLock { .. }
            | Op::ModAnnounce { .. }
            | Op::ModRelease { .. }) => self
                .moderate(conn, principal.clone(), id.clone(), op)
                .map(|()| None),
            // Locked: no new work; a held reservation can still be answered.
            Op::TaskRequest {}
                if principal.role.can_write() && !self.moderation.may_write(principal.role) =>
            {
                let refused = NoTask {
                    reservation: None,
                    reason: "locked",
                };
                Ok(Some(protocol::ok_reply(&id, &refused)))
            }
            op @ (Op::QueueGet {}
            | Op::TaskRequest {}
            | Op::TaskHeartbeat { .. }
            | Op::TaskSubmit { .. }
            | Op::TaskSkip { .. }) => {
                if let Some(tx) = self.live.conns.get(&conn).map(|conn| conn.tx.clone()) {
                    self.work_request(principal.clone(), tx, id.clone(), op)
                        .await;
                }
                Ok(None)
            }
            Op::PresenceSet { status } => self
                .presence_set(conn, &id, &principal, status)
                .map(|()| None),
            Op::ChatHistory { before, limit } => {
                self.chat_history(conn, &principal, id.clone(), before, limit);
                Ok(None)
            }
            Op::ChatSend { body } => {
                match (self.moderation.may_chat(&principal), validate_body(&body)) {
                    (Err(error), _) | (Ok(()), Err(error)) => Err(error),
                    (Ok(()), Ok(body)) => {
                        let op = WriteOp::ChatPost {
                            room: self.room.clone(),
                            user: principal.user.clone(),
                            body,
                            at: now_ms(),
                        };
                        self.submit_chat(conn, id.clone(), ChatKind::Post, op).await
                    }
                }
            }
            Op::ChatEdit { message_id, body } => {
                match (self.moderation.may_chat(&principal), validate_body(&body)) {
                    (Err(error), _) | (Ok(()), Err(error)) => Err(error),
                    (Ok(()), Ok(body)) => {
                        let op = WriteOp::ChatEdit {
                            room: self.room.clone(),
                            id: message_id,
                            author: principal.user.clone(),
                            body,
                            at: now_ms(),
                        };
                        self.submit_chat(conn, id.clone(), ChatKind::Edit, op).await
                    }
                }
            }
            Op::ChatDelete { message_id } => {
                if principal.role.can_write() {
                    let op = WriteOp::ChatDelete {
                        room: self.room.clone(),
                        id: message_id,
                        by: principal.user.clone(),
                        any_author: principal.role.can_moderate(),
                        at: now_ms(),
                    };
                    self.submit_chat(conn, id.clone(), ChatKind::Delete, op)
                        .await
                } else {
                    Err(Error::Forbidden("viewers cannot delete messages"))
                }
            }
        };
        match result {
            Ok(Some(reply)) => self.live.reply(conn, reply),
            // Answered later, when the write commits or the read returns.
            Ok(None) => {}
            Err(error) => self.live.reply(conn, protocol::error_reply(&id, &error)),
        }
    }

    /// Sets a status, replies, then announces it: the reply always comes first.
    fn presence_set(
        &mut self,
        conn: ConnId,
        id: &RequestId,
        principal: &Principal,
        status: String,
    ) -> Result<()> {
        let status = status.trim().to_owned();
        if status.is_empty() {
            return Err(Error::BadRequest("a status cannot be empty".into()));
        }
        protocol::check_text(&status, MAX_STATUS_CHARS, "a status")?;
        let Some(presence) = self.live.presence.get_mut(&principal.user) else {
            return Err(Error::Internal(
                "presence missing for a joined connection".into(),
            ));
        };
        presence.status = status;
        let updated = presence.clone();
        self.live.reply(
            conn,
            protocol::ok_reply(
                id,
                &StatusSet {
                    status: &updated.status,
                },
            ),
        );
        self.live
            .broadcast(&Event::PresenceUpdated(&updated).frame());
        Ok(())
    }

    async fn submit_chat(
        &mut self,
        conn: ConnId,
        request: RequestId,
        kind: ChatKind,
        op: WriteOp,
    ) -> Result<Option<WsMessage>> {
        if self
            .submit(
                op,
                Purpose::Chat {
                    conn,
                    request,
                    kind,
                },
            )
            .await
        {
            Ok(None)
        } else {
            Err(Error::Unavailable("server is shutting down"))
        }
    }

    /// Reads a page of history off the actor's loop and replies from there.
    fn chat_history(
        &self,
        conn: ConnId,
        principal: &Principal,
        id: RequestId,
        before: Option<i64>,
        limit: Option<i64>,
    ) {
        let Some(tx) = self.live.conns.get(&conn).map(|conn| conn.tx.clone()) else {
            return;
        };
        let store = self.context.store.clone();
        let room = self.room.clone();
        let moderator = principal.role.can_moderate();
        self.context.tracker.spawn(async move {
            let page = store
                .chat_history(&room, before, limit.unwrap_or(DEFAULT_HISTORY_PAGE))
                .await;
            let frame = match page {
                Ok(messages) => {
                    let messages: Vec<_> = messages
                        .into_iter()
                        .map(|message| message.seen_by(moderator))
                        .collect();
                    protocol::ok_reply(&id, &ChatPage { messages })
                }
                Err(error) => protocol::error_reply(&id, &error),
            };
            tx.send(frame);
        });
    }

    pub(super) fn chat_committed(
        &mut self,
        conn: ConnId,
        request: &RequestId,
        kind: ChatKind,
        outcome: Result<WriteOutcome>,
    ) {
        let message = match outcome {
            Ok(WriteOutcome::Chat(message)) => message,
            Ok(other) => {
                let error = Error::Internal(format!("chat write returned {other:?}"));
                self.live
                    .reply(conn, protocol::error_reply(request, &error));
                return;
            }
            Err(error) => {
                self.live
                    .reply(conn, protocol::error_reply(request, &error));
                return;
            }
        };
        // The reply first, so the sender knows the id before the event.
        self.live.reply(
            conn,
            protocol::ok_reply(request, &ChatWritten { message: &message }),
        );
        match kind {
            ChatKind::Post => self.live.broadcast(&Event::ChatMessage(&message).frame()),
            ChatKind::Edit => self.live.broadcast(&Event::ChatEdited(&message).frame()),
            ChatKind::Delete => {
                let full = Event::ChatDeleted(&message).frame();
                let redacted = Event::ChatDeleted(&message.redacted()).frame();
                self.live.broadcast_split(&full, &redacted);
            }
        }
    }

    /// Closes every connection of the room with `code`.
    pub(super) fn disconnect_everyone(&self, code: CloseCode) {
        for conn in self.live.conns.values() {
            conn.tx.close(code);
        }
        self.disconnect_all_docs(code);
    }

    /// Closes every connection of `user` in this room.
    pub(super) fn disconnect(&mut self, user: &UserId, code: CloseCode) {
        for conn in self
            .live
            .conns
            .values()
            .filter(|conn| &conn.principal.user == user)
        {
            conn.tx.close(code);
        }
        self.disconnect_docs(user, code);
    }
}
