//! The live-channel frames the crowd reads, parsed into borrowed fields.
//!
//! Every worker receives `queue.counts` (up to four a second per room),
//! `queue.mine` after each of its requests, presence and chat events, so
//! parsing is on the generator's hot path: serde reads only the fields
//! below and skips the rest (presence lists, task data, progress, earnings)
//! without building them. Nothing here allocates unless a string carries
//! escapes.

use std::borrow::Cow;

use serde::Deserialize;

/// One frame from the server.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    /// `hello`, `reply` or `event`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// Replies: our request id (always a number).
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default, borrow)]
    pub error: Option<ErrorBody<'a>>,
    #[serde(default, borrow)]
    pub result: Option<ReplyResult<'a>>,
    /// Events: their name and payload.
    #[serde(default, borrow)]
    pub event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<EventData<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow)]
    pub code: Cow<'a, str>,
}

/// The union of the result fields of the requests the crowd sends
/// (`task.request`, `task.submit`, `task.skip`, `task.heartbeat`, `chat.send`).
#[derive(Debug, Default, Deserialize)]
pub struct ReplyResult<'a> {
    /// `task.request`: the reservation, or null with a `reason`.
    #[serde(default)]
    pub reservation: Option<Reservation>,
    #[serde(default, borrow)]
    pub task: Option<TaskRef<'a>>,
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
    /// `task.submit`: set when this answer got the worker paused.
    #[serde(default, borrow)]
    pub paused: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub submitted: Option<Submitted<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Reservation {
    pub task_id: i64,
}

#[derive(Debug, Deserialize)]
pub struct TaskRef<'a> {
    #[serde(borrow)]
    pub external_id: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct Submitted<'a> {
    /// `open`, `complete` or `review` after this answer.
    #[serde(borrow)]
    pub task_state: Cow<'a, str>,
}

/// The event payload fields the crowd reads.
#[derive(Debug, Default, Deserialize)]
pub struct EventData<'a> {
    /// `chat.message`: the body (ours carry the sender and send time).
    #[serde(default, borrow)]
    pub body: Option<Cow<'a, str>>,
    /// `task.expired`: the task whose reservation ran out.
    #[serde(default)]
    pub task_id: Option<i64>,
}

/// Parses one text frame; `None` when it is not a frame we understand.
pub fn parse(text: &str) -> Option<Frame<'_>> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_reply() {
        let text = r#"{"id":9,"ok":true,"result":{"reservation":{"cap_at":1732266000000,"created_at":1732262400000,"expires_at":1732262700000,"task_id":7},"task":{"data":{"text":"item 3 of room 1"},"external_id":"i3","id":7}},"type":"reply"}"#;
        let frame = parse(text).unwrap();
        assert_eq!(
            (frame.kind.as_ref(), frame.id, frame.ok),
            ("reply", Some(9), Some(true))
        );
        let result = frame.result.unwrap();
        assert_eq!(result.reservation.unwrap().task_id, 7);
        let task = result.task.unwrap();
        assert_eq!(task.external_id, "i3");
        assert!(result.reason.is_none());
    }

    #[test]
    fn refusals_and_submits() {
        let no_work = parse(
            r#"{"type":"reply","id":3,"ok":true,"result":{"reservation":null,"reason":"no_work"}}"#,
        )
        .unwrap();
        let result = no_work.result.unwrap();
        assert!(result.reservation.is_none());
        assert_eq!(result.reason.as_deref(), Some("no_work"));
        let paused = parse(r#"{"type":"reply","id":4,"ok":true,"result":{"reservation":null,"reason":"paused","why":"accuracy 0.43 below 0.6"}}"#).unwrap();
        assert_eq!(paused.result.unwrap().reason.as_deref(), Some("paused"));
        let submit = parse(r#"{"type":"reply","id":10,"ok":true,"result":{"submitted":{"answer_id":311,"task_id":7,"lead_time_ms":8200,"task_state":"complete"},"correct":null,"paused":null}}"#).unwrap();
        let result = submit.result.unwrap();
        assert_eq!(result.submitted.unwrap().task_state, "complete");
        assert!(result.paused.is_none());
        let expired = parse(r#"{"type":"reply","id":11,"ok":false,"error":{"code":"reservation_expired","message":"gone"}}"#).unwrap();
        assert_eq!(
            (expired.ok, expired.error.unwrap().code.as_ref()),
            (Some(false), "reservation_expired")
        );
        let heartbeat =
            parse(r#"{"type":"reply","id":12,"ok":true,"result":{"task_id":7,"expires_at":5}}"#)
                .unwrap();
        assert!(heartbeat.result.unwrap().reservation.is_none());
    }

    #[test]
    fn events() {
        let counts = parse(r#"{"data":{"answers":214,"complete":38,"open":60,"reserved":12,"review":2,"total":100},"event":"queue.counts","type":"event"}"#).unwrap();
        assert_eq!(counts.event.as_deref(), Some("queue.counts"));
        let expired =
            parse(r#"{"type":"event","event":"task.expired","data":{"task_id":42}}"#).unwrap();
        assert_eq!(expired.data.unwrap().task_id, Some(42));
        let chat = parse(r#"{"type":"event","event":"chat.message","data":{"id":1,"user":"lt-u1","body":"lt 4 1 99","created_at":1,"edited_at":null,"deleted_at":null,"deleted_by":null}}"#).unwrap();
        assert_eq!(chat.data.unwrap().body.as_deref(), Some("lt 4 1 99"));
        let mine = parse(r#"{"type":"event","event":"queue.mine","data":{"mine":{"reservation":{"task_id":1},"task":{"id":1,"external_id":"i1","data":{}}},"progress":{}}}"#).unwrap();
        assert!(mine.data.unwrap().task_id.is_none());
        let hello = parse(r#"{"type":"hello","protocol":1,"room":"r","connection_id":3,"you":{"user":"u"},"presence":[{"user":"u"}]}"#).unwrap();
        assert_eq!(hello.kind, "hello");
        assert!(parse("not json").is_none());
        assert!(parse(r#"{"no_type":1}"#).is_none());
    }
}
