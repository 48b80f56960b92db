//! The messages the server sends on the live channel, each a type: the
//! `hello` frame and what it carries, the [`Event`]s the rooms and the REST
//! handlers push, and the results of the requests that `reply` frames
//! wrap. They are what the web client's `web/src/wire.ts` declares and
//! `tests/it/wire_types.rs` checks, so they sit together, apart from the
//! decoding of requests and the framing in `protocol.rs`.

use axum::extract::ws::Message;
use compact_str::CompactString;
use serde::Serialize;

use super::{EventFrame, frame_of};
use crate::auth::Role;
use crate::ids::{ConnId, RoomId, UserId};
use crowdroom_work::queue::Reservation;

use crate::store::{Announcement, ChatMessage, LedgerEntry};

/// The first frame on every live connection.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "hello")]
pub struct Hello<'a> {
    /// [`super::PROTOCOL_VERSION`].
    pub protocol: u32,
    pub room: &'a RoomId,
    pub connection_id: ConnId,
    pub you: You<'a>,
    /// Everyone online, this connection's person included.
    pub presence: Vec<&'a Presence>,
    pub state: RoomState<'a>,
}

impl Hello<'_> {
    pub fn frame(&self) -> Message {
        frame_of(self)
    }
}

/// Who the connection speaks as, in `hello`.
#[derive(Debug, Serialize)]
pub struct You<'a> {
    pub user: &'a UserId,
    pub display_name: &'a str,
    pub role: Role,
    pub token_expires_at: Option<i64>,
    pub muted_until: Option<i64>,
}

/// The room's moderation state, in `hello`.
#[derive(Debug, Serialize)]
pub struct RoomState<'a> {
    pub locked: bool,
    pub lock_reason: Option<&'a str>,
    pub announcement: Option<&'a Announcement>,
}

/// One person's presence, as sent in `hello` and presence events.
#[derive(Debug, Clone, Serialize)]
pub struct Presence {
    pub user: UserId,
    pub display_name: CompactString,
    pub role: Role,
    pub status: String,
    /// Open live connections (tabs) of this person.
    pub connections: usize,
    pub since: i64,
    /// Until when they are muted (ms), if they are.
    pub muted_until: Option<i64>,
}

/// The events the room and the REST handlers push: `event` is the name,
/// `data` the payload.
#[derive(Debug, Serialize)]
#[serde(tag = "event", content = "data")]
pub enum Event<'a> {
    /// Someone's first connection opened.
    #[serde(rename = "presence.joined")]
    PresenceJoined(&'a Presence),
    /// Someone's status changed.
    #[serde(rename = "presence.updated")]
    PresenceUpdated(&'a Presence),
    /// Someone's last connection closed.
    #[serde(rename = "presence.left")]
    PresenceLeft { user: &'a UserId },
    /// A committed chat message.
    #[serde(rename = "chat.message")]
    ChatMessage(&'a ChatMessage),
    #[serde(rename = "chat.edited")]
    ChatEdited(&'a ChatMessage),
    /// Whole for moderators, redacted for everyone else.
    #[serde(rename = "chat.deleted")]
    ChatDeleted(&'a ChatMessage),
    /// A mute (`until` set) or its end (`until` null).
    #[serde(rename = "member.muted")]
    MemberMuted {
        user: &'a UserId,
        until: Option<i64>,
        by: &'a UserId,
        reason: Option<&'a str>,
    },
    /// To the kicked member, before their sockets close.
    #[serde(rename = "you.kicked")]
    YouKicked {
        by: &'a UserId,
        reason: Option<&'a str>,
    },
    /// To the banned member, before their sockets close.
    #[serde(rename = "you.banned")]
    YouBanned {
        by: &'a UserId,
        reason: Option<&'a str>,
    },
    #[serde(rename = "room.locked")]
    RoomLocked {
        locked: bool,
        reason: Option<&'a str>,
        by: &'a UserId,
        at: i64,
    },
    /// The new announcement, or null when it was cleared.
    #[serde(rename = "room.announcement")]
    RoomAnnouncement(Option<&'a Announcement>),
    /// To the worker whose reservation a moderator freed.
    #[serde(rename = "task.released")]
    TaskReleased { task_id: i64, by: &'a UserId },
    /// To the worker a batch assignment gave a task.
    #[serde(rename = "task.assigned")]
    TaskAssigned { reservation: &'a Reservation },
    /// To a worker paused or unpaused by a moderator.
    #[serde(rename = "worker.paused")]
    WorkerPaused {
        paused: bool,
        reason: Option<&'a str>,
        by: &'a UserId,
    },
    /// To the worker whose ledger entry moved.
    #[serde(rename = "ledger.updated")]
    LedgerUpdated(&'a LedgerEntry),
    /// Sent instead of a message that could not be serialised.
    #[serde(rename = "error")]
    Error { code: &'static str },
}

impl Event<'_> {
    pub fn frame(&self) -> Message {
        frame_of(&EventFrame { event: self })
    }
}

/// The result of `ping`.
#[derive(Debug, Serialize)]
pub struct Pong {
    /// Always true.
    pub pong: bool,
}

/// The result of `task.request` refused before the queue is asked.
#[derive(Debug, Serialize)]
pub struct NoTask {
    /// Always null.
    pub reservation: Option<&'static Reservation>,
    /// Why (`locked`).
    pub reason: &'static str,
}

/// The result of `presence.set`.
#[derive(Debug, Serialize)]
pub struct StatusSet<'a> {
    pub status: &'a str,
}

/// A page of chat history, oldest first (`chat.history`, and
/// `GET /rooms/{room}/chat`).
#[derive(Debug, Serialize)]
pub struct ChatPage {
    pub messages: Vec<ChatMessage>,
}

/// The result of `chat.send`, `chat.edit` and `chat.delete`: the message
/// as stored.
#[derive(Debug, Serialize)]
pub struct ChatWritten<'a> {
    pub message: &'a ChatMessage,
}

/// The result of `mod.mute` and `mod.unmute` (`until` null).
#[derive(Debug, Serialize)]
pub struct MuteSet<'a> {
    pub user: &'a UserId,
    pub until: Option<i64>,
}

/// The result of `mod.kick`: how many sockets were closed.
#[derive(Debug, Serialize)]
pub struct KickDone<'a> {
    pub user: &'a UserId,
    pub connections: usize,
}

/// The result of `mod.ban`.
#[derive(Debug, Serialize)]
pub struct BanDone<'a> {
    pub user: &'a UserId,
}

/// The result of `mod.lock`.
#[derive(Debug, Serialize)]
pub struct LockSet {
    pub locked: bool,
}

/// The result of `mod.announce`: the announcement, null when cleared.
#[derive(Debug, Serialize)]
pub struct AnnouncementSet<'a> {
    pub announcement: Option<&'a Announcement>,
}

/// The result of `mod.release`: the freed task, null if none was held.
#[derive(Debug, Serialize)]
pub struct ReleaseDone<'a> {
    pub user: &'a UserId,
    pub task_id: Option<i64>,
}
