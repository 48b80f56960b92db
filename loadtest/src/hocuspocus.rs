//! The Hocuspocus dialect of the y-sync protocol (npm `@hocuspocus/server`
//! 3.x), as far as the doc scenarios need it.
//!
//! Hocuspocus multiplexes documents over one socket, so every frame, both
//! ways, starts with `varString(documentName)`, then `varUint(type)`:
//!
//! | type | name               | body                                                   |
//! |------|--------------------|--------------------------------------------------------|
//! | 0    | Sync               | a y-sync message, as in y-websocket                    |
//! | 1    | Awareness          | `varUint8Array(update)`, as in y-websocket             |
//! | 2    | Auth               | `varUint(0 Token)` `varString(token)` (client → server); |
//! |      |                    | `1 PermissionDenied varString(reason)` or `2 Authenticated varString(scope)` (server → client) |
//! | 3    | QueryAwareness     | nothing                                                |
//! | 4    | SyncReply          | like Sync, but does not ask for another step 1         |
//! | 5, 6 | (Broadcast)Stateless | `varString(payload)`                                 |
//! | 7    | CLOSE              | `varString(reason)`                                    |
//! | 8    | SyncStatus         | `varUint(1 saved / 0 refused)`, after each update a client sent |
//!
//! (`packages/server/src/types.ts`, `MessageReceiver.ts`, `OutgoingMessage.ts`
//! and `packages/common/src/auth.ts` of @hocuspocus/server 3.4.4.)
//!
//! Types 0, 1 and 3 carry exactly a y-websocket frame after the prefix, so
//! the generator builds y-websocket frames as before and [`Framing`] only
//! adds or strips the prefix. The server queues everything a connection sends
//! for a document until that document's Auth message has passed its
//! `onAuthenticate` hooks, so a client authenticates first ([`authenticate`])
//! and syncs after `Authenticated`, as `@hocuspocus/provider` does. The
//! server echoes every update to its sender too (`Document.handleUpdate`
//! sends to all connections), so the acknowledgement is the echo, as with the
//! other servers; the SyncStatus that follows each update is counted only
//! when it reports a refusal.

use std::borrow::Cow;
use std::time::Duration;

use crowdroom_crdt::encoding::{Reader, write_var_string, write_var_u64};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::net::{Ws, read_cause};
use crate::ywire::{Incoming, next_incoming};

pub const MESSAGE_SYNC: u64 = 0;
pub const MESSAGE_AWARENESS: u64 = 1;
pub const MESSAGE_AUTH: u64 = 2;
pub const MESSAGE_QUERY_AWARENESS: u64 = 3;
pub const MESSAGE_SYNC_REPLY: u64 = 4;
pub const MESSAGE_STATELESS: u64 = 5;
pub const MESSAGE_BROADCAST_STATELESS: u64 = 6;
pub const MESSAGE_CLOSE: u64 = 7;
pub const MESSAGE_SYNC_STATUS: u64 = 8;

pub const AUTH_TOKEN: u64 = 0;
pub const AUTH_PERMISSION_DENIED: u64 = 1;
pub const AUTH_AUTHENTICATED: u64 = 2;

/// How long the server may take to answer the token.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(15);

/// How frames are put on the wire: as they are (y-websocket, Crowdroom), or
/// behind a Hocuspocus document-name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    Plain,
    Hocuspocus {
        /// `varString(documentName)`, written before every frame.
        prefix: Vec<u8>,
    },
}

/// One received frame, seen through the framing.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A y-websocket frame (Sync, Awareness, QueryAwareness, or y-websocket's
    /// own Auth): decode it with `crowdroom_crdt::Message`.
    Y(Cow<'a, [u8]>),
    /// Hocuspocus Auth: the server asks for the token again.
    TokenRequest,
    /// Hocuspocus Auth: refused, with the reason.
    PermissionDenied(String),
    /// Hocuspocus Auth: accepted, with the scope (`read-write` or `readonly`).
    Authenticated(String),
    /// Hocuspocus SyncStatus: whether the update just sent was applied.
    SyncStatus(bool),
    /// Hocuspocus CLOSE, with the reason.
    Close(String),
    /// Stateless messages, nothing the generator acts on.
    Ignored,
    /// A frame for another document on this socket (never expected: one
    /// socket per document).
    OtherDocument,
    /// Undecodable, with what went wrong.
    Malformed(&'static str),
}

impl Framing {
    /// The Hocuspocus framing for `document`.
    pub fn hocuspocus(document: &str) -> Framing {
        let mut prefix = Vec::with_capacity(document.len() + 2);
        write_var_string(&mut prefix, document);
        Framing::Hocuspocus { prefix }
    }

    /// Puts a y-websocket frame (Sync, Awareness, QueryAwareness) on the wire.
    pub fn wrap(&self, frame: Vec<u8>) -> Vec<u8> {
        match self {
            Framing::Plain => frame,
            Framing::Hocuspocus { prefix } => {
                let mut out = Vec::with_capacity(prefix.len() + frame.len());
                out.extend_from_slice(prefix);
                out.extend_from_slice(&frame);
                out
            }
        }
    }

    /// The Auth frame carrying `token` (Hocuspocus only; plain framing has
    /// its token in the URL).
    pub fn auth_frame(&self, token: &str) -> Option<Vec<u8>> {
        let Framing::Hocuspocus { prefix } = self else {
            return None;
        };
        let mut out = Vec::with_capacity(prefix.len() + token.len() + 4);
        out.extend_from_slice(prefix);
        write_var_u64(&mut out, MESSAGE_AUTH);
        write_var_u64(&mut out, AUTH_TOKEN);
        write_var_string(&mut out, token);
        Some(out)
    }

    /// Reads a received frame.
    pub fn unwrap<'a>(&self, frame: &'a [u8]) -> Inbound<'a> {
        match self {
            Framing::Plain => Inbound::Y(Cow::Borrowed(frame)),
            Framing::Hocuspocus { prefix } => unwrap_hocuspocus(prefix, frame),
        }
    }
}

fn unwrap_hocuspocus<'a>(prefix: &[u8], frame: &'a [u8]) -> Inbound<'a> {
    let mut reader = Reader::new(frame);
    if reader.read_var_string().is_err() {
        return Inbound::Malformed("no document name");
    }
    let name_end = frame.len() - reader.remaining();
    if frame.get(..name_end) != Some(prefix) {
        return Inbound::OtherDocument;
    }
    let body = &frame[name_end..];
    let Ok(kind) = reader.read_var_u64() else {
        return Inbound::Malformed("no message type");
    };
    let rest = &frame[frame.len() - reader.remaining()..];
    match kind {
        MESSAGE_SYNC | MESSAGE_AWARENESS | MESSAGE_QUERY_AWARENESS => {
            Inbound::Y(Cow::Borrowed(body))
        }
        MESSAGE_SYNC_REPLY => {
            // The same y-sync body under y-websocket's Sync type.
            let mut owned = Vec::with_capacity(rest.len() + 1);
            write_var_u64(&mut owned, MESSAGE_SYNC);
            owned.extend_from_slice(rest);
            Inbound::Y(Cow::Owned(owned))
        }
        MESSAGE_AUTH => match reader.read_var_u64() {
            Ok(AUTH_TOKEN) => Inbound::TokenRequest,
            Ok(AUTH_PERMISSION_DENIED) => match reader.read_var_string() {
                Ok(reason) => Inbound::PermissionDenied(reason.to_owned()),
                Err(_) => Inbound::Malformed("auth: no reason"),
            },
            Ok(AUTH_AUTHENTICATED) => match reader.read_var_string() {
                Ok(scope) => Inbound::Authenticated(scope.to_owned()),
                Err(_) => Inbound::Malformed("auth: no scope"),
            },
            Ok(_) => Inbound::Malformed("auth: unknown type"),
            Err(_) => Inbound::Malformed("auth: no type"),
        },
        MESSAGE_SYNC_STATUS => match reader.read_var_u64() {
            Ok(saved) => Inbound::SyncStatus(saved == 1),
            Err(_) => Inbound::Malformed("sync status: no value"),
        },
        MESSAGE_CLOSE => Inbound::Close(reader.read_var_string().unwrap_or_default().to_owned()),
        MESSAGE_STATELESS | MESSAGE_BROADCAST_STATELESS => Inbound::Ignored,
        _ => Inbound::Malformed("unknown message type"),
    }
}

/// Sends the token and waits for `Authenticated` (Hocuspocus only; a no-op
/// for plain framing). Frames that arrive first are passed to `other`.
pub async fn authenticate(
    ws: &mut Ws,
    framing: &Framing,
    token: &str,
    mut other: impl FnMut(&[u8]),
) -> Result<(), String> {
    let Some(frame) = framing.auth_frame(token) else {
        return Ok(());
    };
    ws.send(WsMessage::Binary(frame.into()))
        .await
        .map_err(|error| read_cause(&error))?;
    let work = async {
        loop {
            let frame = match next_incoming(ws).await {
                Incoming::Binary(frame) => frame,
                Incoming::Text(_) => return Err("auth: text frame from hocuspocus".to_owned()),
                Incoming::Closed(cause) => return Err(format!("auth: {cause}")),
            };
            match framing.unwrap(&frame) {
                Inbound::Authenticated(_) => return Ok(()),
                Inbound::PermissionDenied(reason) => {
                    return Err(format!("auth: permission denied: {reason}"));
                }
                Inbound::Close(reason) => return Err(format!("auth: closed: {reason}")),
                Inbound::Malformed(what) => return Err(format!("auth: malformed frame: {what}")),
                Inbound::TokenRequest | Inbound::Ignored | Inbound::OtherDocument => {}
                Inbound::Y(_) | Inbound::SyncStatus(_) => other(&frame),
            }
        }
    };
    tokio::time::timeout(AUTH_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err("auth: timed out".to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crowdroom_crdt::Message;

    /// What @hocuspocus/server 3.4.4 sends after a passed onAuthenticate:
    /// `new OutgoingMessage("lt-1-0").writeAuthenticated(false)`.
    fn authenticated_from_server(document: &str, scope: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_var_string(&mut out, document);
        out.extend_from_slice(&[2, 2]);
        write_var_string(&mut out, scope);
        out
    }

    #[test]
    fn wraps_with_the_document_name_and_unwraps_back() {
        let framing = Framing::hocuspocus("lt-1-0");
        let update = Message::Update(&[1, 2, 3]).encode();
        let wire = framing.wrap(update.clone());
        assert_eq!(&wire[..7], b"\x06lt-1-0", "varString: length then bytes");
        assert_eq!(&wire[7..], &update[..]);
        assert_eq!(wire, [&b"\x06lt-1-0"[..], &[0, 2, 3, 1, 2, 3]].concat());
        assert_eq!(
            framing.unwrap(&wire),
            Inbound::Y(Cow::Borrowed(&update[..]))
        );
        let Inbound::Y(body) = framing.unwrap(&wire) else {
            panic!()
        };
        assert!(matches!(
            Message::decode(&body),
            Ok(Message::Update(&[1, 2, 3]))
        ));

        let awareness = crate::ywire::awareness_frame(7, 1);
        let wire = framing.wrap(awareness.clone());
        assert_eq!(framing.unwrap(&wire), Inbound::Y(Cow::Owned(awareness)));
        assert_eq!(Framing::Plain.wrap(vec![0, 1, 0]), vec![0, 1, 0]);
    }

    #[test]
    fn a_long_document_name_has_a_two_byte_length() {
        let name = "d".repeat(200);
        let framing = Framing::hocuspocus(&name);
        let wire = framing.wrap(vec![3]);
        assert_eq!(&wire[..2], &[0xc8, 0x01], "200 as a varuint");
        assert_eq!(wire.len(), 2 + 200 + 1);
        assert_eq!(framing.unwrap(&wire), Inbound::Y(Cow::Owned(vec![3])));
    }

    #[test]
    fn the_auth_frame_carries_the_token() {
        let framing = Framing::hocuspocus("doc");
        let frame = framing.auth_frame("secret").unwrap();
        assert_eq!(frame, [&b"\x03doc"[..], &[2, 0, 6], b"secret"].concat());
        assert_eq!(Framing::Plain.auth_frame("secret"), None);
    }

    #[test]
    fn auth_replies_are_parsed() {
        let framing = Framing::hocuspocus("lt-1-0");
        assert_eq!(
            framing.unwrap(&authenticated_from_server("lt-1-0", "read-write")),
            Inbound::Authenticated("read-write".to_owned())
        );
        let mut denied = b"\x06lt-1-0\x02\x01".to_vec();
        write_var_string(&mut denied, "permission-denied");
        assert_eq!(
            framing.unwrap(&denied),
            Inbound::PermissionDenied("permission-denied".to_owned())
        );
        assert_eq!(framing.unwrap(b"\x06lt-1-0\x02\x00"), Inbound::TokenRequest);
        assert_eq!(
            framing.unwrap(b"\x06lt-1-0\x02\x02"),
            Inbound::Malformed("auth: no scope")
        );
        assert_eq!(
            framing.unwrap(&authenticated_from_server("lt-1-1", "read-write")),
            Inbound::OtherDocument
        );
    }

    #[test]
    fn sync_reply_becomes_a_sync_frame() {
        let framing = Framing::hocuspocus("x");
        let step2 = Message::SyncStep2(&[0, 0]).encode();
        let mut reply = b"\x01x".to_vec();
        write_var_u64(&mut reply, MESSAGE_SYNC_REPLY);
        reply.extend_from_slice(&step2[1..]);
        let Inbound::Y(body) = framing.unwrap(&reply) else {
            panic!("not a y frame")
        };
        assert_eq!(&body[..], &step2[..]);
        assert!(matches!(
            Message::decode(&body),
            Ok(Message::SyncStep2(&[0, 0]))
        ));
    }

    #[test]
    fn status_close_stateless_and_garbage() {
        let framing = Framing::hocuspocus("x");
        assert_eq!(framing.unwrap(b"\x01x\x08\x01"), Inbound::SyncStatus(true));
        assert_eq!(framing.unwrap(b"\x01x\x08\x00"), Inbound::SyncStatus(false));
        assert_eq!(
            framing.unwrap(b"\x01x\x07\x02no"),
            Inbound::Close("no".to_owned())
        );
        assert_eq!(framing.unwrap(b"\x01x\x05\x02hi"), Inbound::Ignored);
        assert_eq!(
            framing.unwrap(b"\x01x\x09"),
            Inbound::Malformed("unknown message type")
        );
        assert_eq!(
            framing.unwrap(b"\x05x"),
            Inbound::Malformed("no document name")
        );
        assert_eq!(
            framing.unwrap(b"\x01x"),
            Inbound::Malformed("no message type")
        );
        assert_eq!(framing.unwrap(&[]), Inbound::Malformed("no document name"));
    }
}
