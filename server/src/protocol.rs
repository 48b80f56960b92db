//! The live channel's JSON protocol, version 1 (docs/PROTOCOL.md).
//!
//! Every client request is `{"id": ..., "type": "...", ...fields}` and gets
//! exactly one `reply` with the same id: `ok: true` with a `result`, or
//! `ok: false` with an `error` `{code, message}`. The server also pushes
//! `hello` once and `event`s. Every message is a type here: the requests
//! ([`Op`]), the frames ([`Hello`], replies, [`Event`]) and the results of
//! the requests this module's callers answer; the server's own messages are
//! in `protocol/messages.rs`. Frames are built here, once per message, and
//! the same bytes are queued to every recipient.

mod messages;
pub mod work;

use axum::extract::ws::{Message, Utf8Bytes};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorBody};

pub use messages::{
    AnnouncementSet, BanDone, ChatPage, ChatWritten, Event, Hello, KickDone, LockSet, MuteSet,
    NoTask, Pong, Presence, ReleaseDone, RoomState, StatusSet, You,
};

/// The protocol version in `hello`; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 4000;
/// Longest presence status, in characters.
pub const MAX_STATUS_CHARS: usize = 64;
/// Longest request id, in bytes.
const MAX_ID_BYTES: usize = 64;

/// A request id as the client sent it: a string or a number, echoed back.
pub type RequestId = Value;

/// One decoded client request.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: RequestId,
    pub op: Op,
}

/// What a client can ask on the live channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Op {
    /// Posts a chat message; the reply carries the stored message.
    #[serde(rename = "chat.send")]
    ChatSend { body: String },
    /// A page of history, oldest first, before message id `before`.
    #[serde(rename = "chat.history")]
    ChatHistory {
        before: Option<i64>,
        limit: Option<i64>,
    },
    /// Edits your own message.
    #[serde(rename = "chat.edit")]
    ChatEdit { message_id: i64, body: String },
    /// Deletes your own message (moderators: any message).
    #[serde(rename = "chat.delete")]
    ChatDelete { message_id: i64 },
    /// Sets your presence status (`online`, `away`, `busy`, or a short text).
    #[serde(rename = "presence.set")]
    PresenceSet { status: String },
    /// Answers `{"pong": true}`; keeps idle connections open through proxies.
    #[serde(rename = "ping")]
    Ping {},
    /// The queue's counts, your reservation and your progress.
    #[serde(rename = "queue.get")]
    QueueGet {},
    /// Asks for work: a reservation of a task (or your current one).
    #[serde(rename = "task.request")]
    TaskRequest {},
    /// Extends your reservation of `task_id`, up to the project's cap.
    #[serde(rename = "task.heartbeat")]
    TaskHeartbeat { task_id: i64 },
    /// Answers the task you hold; the reply comes once the answer is committed.
    #[serde(rename = "task.submit")]
    TaskSubmit { task_id: i64, answer: Value },
    /// Gives your reservation back; the task is not offered to you again.
    #[serde(rename = "task.skip")]
    TaskSkip { task_id: i64 },
    /// Mutes a member's chat for `minutes` (owners, moderators).
    #[serde(rename = "mod.mute")]
    ModMute {
        user: String,
        minutes: u32,
        reason: Option<String>,
    },
    /// Lifts a member's mute.
    #[serde(rename = "mod.unmute")]
    ModUnmute { user: String },
    /// Closes every socket of a member; they may come back.
    #[serde(rename = "mod.kick")]
    ModKick {
        user: String,
        reason: Option<String>,
    },
    /// Removes a member and revokes their tokens.
    #[serde(rename = "mod.ban")]
    ModBan {
        user: String,
        reason: Option<String>,
    },
    /// Locks the room (only owners and moderators write) or unlocks it.
    #[serde(rename = "mod.lock")]
    ModLock {
        locked: bool,
        reason: Option<String>,
    },
    /// Sets the room's announcement; an empty body clears it.
    #[serde(rename = "mod.announce")]
    ModAnnounce { body: String },
    /// Frees a worker's reservation.
    #[serde(rename = "mod.release")]
    ModRelease { user: String },
}

/// Request types, to tell "unknown type" from "bad fields".
pub(crate) const KNOWN_TYPES: [&str; 18] = [
    "chat.send",
    "chat.history",
    "chat.edit",
    "chat.delete",
    "presence.set",
    "ping",
    "queue.get",
    "task.request",
    "task.heartbeat",
    "task.submit",
    "task.skip",
    "mod.mute",
    "mod.unmute",
    "mod.kick",
    "mod.ban",
    "mod.lock",
    "mod.announce",
    "mod.release",
];

/// Why a frame could not be decoded into a request; the server answers with
/// a reply carrying the id (if one could be read) and this error.
#[derive(Debug)]
pub struct DecodeFailure {
    pub id: RequestId,
    pub code: &'static str,
    pub message: String,
}

impl Request {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<Request, DecodeFailure> {
        let fail = |id: RequestId, code: &'static str, message: String| DecodeFailure {
            id,
            code,
            message,
        };
        let mut value: Value = serde_json::from_str(text)
            .map_err(|error| fail(Value::Null, "bad_json", format!("invalid JSON: {error}")))?;
        let Some(object) = value.as_object_mut() else {
            return Err(fail(
                Value::Null,
                "bad_request",
                "a request is a JSON object".into(),
            ));
        };
        let id = object.remove("id").unwrap_or(Value::Null);
        let id_ok = match &id {
            Value::String(text) => !text.is_empty() && text.len() <= MAX_ID_BYTES,
            // Integers only: a float would not be echoed digit for digit
            // (serde_json reads some one unit in the last place off).
            Value::Number(number) => number.is_i64() || number.is_u64(),
            _ => false,
        };
        if !id_ok {
            return Err(fail(
                Value::Null,
                "bad_request",
                "every request needs an \"id\": a short string or an integer".into(),
            ));
        }
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match kind {
            None => return Err(fail(id, "bad_request", "missing \"type\"".into())),
            Some(kind) if !KNOWN_TYPES.contains(&kind.as_str()) => {
                return Err(fail(
                    id,
                    "unknown_type",
                    format!("unknown request type {kind:?}"),
                ));
            }
            Some(_) => {}
        }
        match serde_json::from_value::<Op>(value) {
            Ok(op) => Ok(Request { id, op }),
            Err(error) => Err(fail(id, "bad_request", error.to_string())),
        }
    }
}

/// Checks free text a member writes (a chat message, a reason, a status):
/// at most `max` characters, and no control character but line breaks and
/// tabs. PostgreSQL cannot store U+0000 in text (one such chat message
/// failed its whole batch), and the rest have no place in text people read.
pub fn check_text(text: &str, max: usize, what: &str) -> Result<(), Error> {
    if text.chars().count() > max {
        return Err(Error::BadRequest(format!(
            "{what} has at most {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::BadRequest(format!(
            "{what} may not hold control characters"
        )));
    }
    Ok(())
}

/// A frame from any serialisable server message.
pub fn frame_of<T: Serialize>(message: &T) -> Message {
    match serde_json::to_string(message) {
        Ok(text) => Message::Text(Utf8Bytes::from(text)),
        Err(error) => {
            tracing::error!(%error, "cannot serialise a live-channel message");
            // Serialising this fixed event cannot fail; the empty frame is
            // only there to keep the function total.
            let fallback = EventFrame {
                event: &Event::Error { code: "internal" },
            };
            let text = serde_json::to_string(&fallback).unwrap_or_default();
            Message::Text(Utf8Bytes::from(text))
        }
    }
}

/// `{"type":"reply","id":..,"ok":true,"result":..}`
pub fn ok_reply<T: Serialize>(id: &RequestId, result: &T) -> Message {
    frame_of(&OkReply {
        id,
        ok: true,
        result,
    })
}

/// `{"type":"reply","id":..,"ok":false,"error":{code,message}}`
pub fn error_reply(id: &RequestId, error: &Error) -> Message {
    frame_of(&ErrorReply {
        id,
        ok: false,
        error: error.body(),
    })
}

/// A reply for a frame that did not decode.
pub fn decode_failure_reply(failure: &DecodeFailure) -> Message {
    frame_of(&ErrorReply {
        id: &failure.id,
        ok: false,
        error: ErrorBody {
            code: failure.code,
            message: failure.message.clone(),
            field: None,
        },
    })
}

/// `{"type":"event","event":name,"data":..}`, for the events not yet in
/// [`Event`] (the work queue's, whose engine is being redesigned).
pub fn event<T: Serialize>(name: &str, data: &T) -> Message {
    frame_of(&NamedEventFrame { event: name, data })
}

/// The `pay.alert` event, to moderators: the room's effective hourly rate
/// fell below the project's target.
#[derive(Debug, Serialize)]
pub struct PayAlert {
    pub hourly_rate: Option<i64>,
    pub target_hourly_rate: i64,
}

/// A successful reply.
#[derive(Serialize)]
#[serde(tag = "type", rename = "reply")]
struct OkReply<'a, T> {
    id: &'a RequestId,
    /// Always true.
    ok: bool,
    result: &'a T,
}

/// A refused request.
#[derive(Serialize)]
#[serde(tag = "type", rename = "reply")]
struct ErrorReply<'a> {
    id: &'a RequestId,
    /// Always false.
    ok: bool,
    error: ErrorBody,
}

/// An event of [`Event`] in its frame.
#[derive(Serialize)]
#[serde(tag = "type", rename = "event")]
struct EventFrame<'a> {
    #[serde(flatten)]
    event: &'a Event<'a>,
}

/// An event named at run time (see [`event`]).
#[derive(Serialize)]
#[serde(tag = "type", rename = "event")]
struct NamedEventFrame<'a, T> {
    event: &'a str,
    data: &'a T,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::ids::{ConnId, RoomId, UserId};

    #[test]
    fn decodes_requests() {
        let request = Request::decode(r#"{"id":"a1","type":"chat.send","body":"hi"}"#).ok();
        assert!(
            matches!(request, Some(Request { op: Op::ChatSend { ref body }, .. }) if body == "hi")
        );
        let request = Request::decode(r#"{"id":7,"type":"chat.history"}"#).ok();
        assert!(matches!(
            request,
            Some(Request {
                op: Op::ChatHistory {
                    before: None,
                    limit: None
                },
                ..
            })
        ));
        assert!(matches!(
            Request::decode(r#"{"id":7,"type":"ping"}"#),
            Ok(Request {
                op: Op::Ping {},
                ..
            })
        ));
    }

    /// The text of a frame.
    fn text(message: Message) -> String {
        match message {
            Message::Text(text) => text.to_string(),
            other => panic!("not a text frame: {other:?}"),
        }
    }

    #[test]
    fn frames_keep_their_wire_shape() {
        let id = Value::String("r1".into());
        assert_eq!(
            text(ok_reply(&id, &Pong { pong: true })),
            r#"{"type":"reply","id":"r1","ok":true,"result":{"pong":true}}"#
        );
        assert_eq!(
            text(error_reply(&Value::from(7), &Error::Forbidden("no"))),
            r#"{"type":"reply","id":7,"ok":false,"error":{"code":"forbidden","message":"no"}}"#
        );
        let Ok(user) = UserId::parse("wes") else {
            panic!("valid user id");
        };
        assert_eq!(
            text(Event::PresenceLeft { user: &user }.frame()),
            r#"{"type":"event","event":"presence.left","data":{"user":"wes"}}"#
        );
        assert_eq!(
            text(Event::RoomAnnouncement(None).frame()),
            r#"{"type":"event","event":"room.announcement","data":null}"#
        );
        assert_eq!(
            text(event("queue.counts", &Pong { pong: false })),
            r#"{"type":"event","event":"queue.counts","data":{"pong":false}}"#
        );
        let Ok(room) = RoomId::parse("lab") else {
            panic!("valid room id");
        };
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            room: &room,
            connection_id: ConnId(3),
            you: You {
                user: &user,
                display_name: "Wes",
                role: Role::Worker,
                token_expires_at: None,
                muted_until: None,
            },
            presence: Vec::new(),
            state: RoomState {
                locked: false,
                lock_reason: None,
                announcement: None,
            },
        };
        assert_eq!(
            text(hello.frame()),
            concat!(
                r#"{"type":"hello","protocol":1,"room":"lab","connection_id":3,"#,
                r#""you":{"user":"wes","display_name":"Wes","role":"worker","token_expires_at":null,"muted_until":null},"#,
                r#""presence":[],"state":{"locked":false,"lock_reason":null,"announcement":null}}"#
            )
        );
    }

    #[test]
    fn explains_bad_requests() {
        let code = |text: &str| Request::decode(text).err().map(|failure| failure.code);
        assert_eq!(code("{not json"), Some("bad_json"));
        assert_eq!(code("[1,2]"), Some("bad_request"));
        assert_eq!(code(r#"{"type":"ping"}"#), Some("bad_request"));
        assert_eq!(code(r#"{"id":{},"type":"ping"}"#), Some("bad_request"));
        assert_eq!(
            code(r#"{"id":1,"type":"launch.rockets"}"#),
            Some("unknown_type")
        );
        assert_eq!(code(r#"{"id":1,"type":"chat.send"}"#), Some("bad_request"));
        assert_eq!(
            code(r#"{"id":1,"type":"chat.send","body":5}"#),
            Some("bad_request")
        );
        let failure = Request::decode(r#"{"id":"x","type":"nope"}"#).err();
        assert_eq!(
            failure.map(|failure| failure.id),
            Some(Value::String("x".into()))
        );
    }
}
