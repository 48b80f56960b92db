//! The client side of the y-websocket protocol, as cheap as it can be.
//!
//! A real editor decodes and applies every update it receives. A load
//! generator on the same 2-core machine as the server cannot afford that for
//! thousands of clients without measuring itself instead of the server, so:
//!
//! - each client keeps a yrs document holding only its own edits, enough to
//!   make valid updates, and encodes each update once;
//! - a received update is identified by its first struct's `(client, clock)`
//!   read from the update header (four varints), not by decoding it with yrs.
//!   That id survives a server that re-encodes updates (npm Yjs re-encodes
//!   the transaction it applied), where the bytes themselves might not;
//! - one client per room (slot 0) keeps a full replica, applying everything
//!   it receives, for the convergence check at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use crowdroom_crdt::Message;
use crowdroom_crdt::encoding::{Reader, write_var_bytes, write_var_string, write_var_u64};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, MapRef, StateVector, Transact, Update};

pub use crate::hocuspocus::{Framing, Inbound};
use crate::net::{Ws, read_cause};

/// How long the initial sync may take.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(15);
/// Keys each client cycles through in the shared map: a bounded document
/// however long the run, with overwrites (and so tombstones) as in real use.
const SLOTS_PER_CLIENT: u64 = 8;
/// Name of the shared map every client edits.
const MAP_NAME: &str = "m";

/// A shared map's contents as sorted key/value text, for comparing replicas.
pub type Contents = BTreeMap<String, String>;

/// The identity of an update: its first struct's client id and clock.
pub type UpdateKey = (u64, u64);

/// Reads `(client, clock)` of the first struct of an update v1: varuint
/// client count, varuint struct count, varuint client, varuint clock.
pub fn update_key(update: &[u8]) -> Option<UpdateKey> {
    let mut reader = Reader::new(update);
    let clients = reader.read_var_u64().ok()?;
    if clients == 0 {
        return None;
    }
    let _structs = reader.read_var_u64().ok()?;
    let client = reader.read_var_u64().ok()?;
    let clock = reader.read_var_u64().ok()?;
    Some((client, clock))
}

/// One frame received by a client.
pub enum Incoming {
    Binary(Bytes),
    Text(tokio_tungstenite::tungstenite::Utf8Bytes),
    /// The socket is done; the cause is for the error table.
    Closed(String),
}

/// The next data frame; control frames are answered by tungstenite itself.
pub async fn next_incoming(ws: &mut Ws) -> Incoming {
    loop {
        match ws.next().await {
            None => return Incoming::Closed("closed without a close frame".to_owned()),
            Some(Err(error)) => return Incoming::Closed(read_cause(&error)),
            Some(Ok(WsMessage::Binary(bytes))) => return Incoming::Binary(bytes),
            Some(Ok(WsMessage::Text(text))) => return Incoming::Text(text),
            Some(Ok(WsMessage::Close(frame))) => {
                return Incoming::Closed(match frame {
                    Some(frame) => format!("closed {}", u16::from(frame.code)),
                    None => "closed without a code".to_owned(),
                });
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
        }
    }
}

/// Opens client `slot`'s socket (`None`: the owner) on the room's document
/// and, for Hocuspocus, authenticates it. Returns the socket with its framing
/// and the time the WebSocket upgrade took. Frames that arrive during the
/// handshake are passed to `other`.
pub async fn open_doc(
    ctx: &crate::run::Ctx,
    room: &crate::provision::RoomPlan,
    slot: Option<usize>,
    other: impl FnMut(&[u8]),
) -> Result<(Ws, Framing, Duration), String> {
    let opened_at = tokio::time::Instant::now();
    let mut ws = ctx.connector.open(&room.doc_path(&ctx.cli, slot)).await?;
    let connected = opened_at.elapsed();
    let framing = room.framing(&ctx.cli);
    let token = ctx.cli.token.as_deref().unwrap_or(DEFAULT_HOCUSPOCUS_TOKEN);
    crate::hocuspocus::authenticate(&mut ws, &framing, token, other).await?;
    Ok((ws, framing, connected))
}

/// The token sent to a Hocuspocus server when --token is not given.
pub const DEFAULT_HOCUSPOCUS_TOKEN: &str = "loadtest";

/// Sends our (empty) sync step 1, answers the server's step 1 with an empty
/// step 2, and returns the server's step 2 payload. Other frames that arrive
/// first are passed to `other`.
pub async fn sync(
    ws: &mut Ws,
    framing: &Framing,
    mut other: impl FnMut(&[u8]),
) -> Result<Vec<u8>, String> {
    use futures_util::SinkExt;
    let empty_state_vector = yrs::updates::encoder::Encode::encode_v1(&StateVector::default());
    let step1 = framing.wrap(Message::SyncStep1(&empty_state_vector).encode());
    ws.send(WsMessage::Binary(step1.into()))
        .await
        .map_err(|error| read_cause(&error))?;
    let work = async {
        loop {
            let frame = match next_incoming(ws).await {
                Incoming::Binary(frame) => frame,
                Incoming::Text(_) => return Err("sync: text frame on a y-websocket".to_owned()),
                Incoming::Closed(cause) => return Err(format!("sync: {cause}")),
            };
            let body = match framing.unwrap(&frame) {
                Inbound::Y(body) => body,
                Inbound::PermissionDenied(reason) => {
                    return Err(format!("sync: permission denied: {reason}"));
                }
                Inbound::Close(reason) => return Err(format!("sync: closed: {reason}")),
                Inbound::Malformed(what) => return Err(format!("sync: malformed frame: {what}")),
                Inbound::SyncStatus(_)
                | Inbound::Authenticated(_)
                | Inbound::TokenRequest
                | Inbound::Ignored
                | Inbound::OtherDocument => continue,
            };
            match Message::decode(&body) {
                Ok(Message::SyncStep2(update)) => return Ok(update.to_vec()),
                Ok(Message::SyncStep1(_)) => {
                    // Nothing local yet: answer with the empty update.
                    let reply = framing.wrap(Message::SyncStep2(&[0, 0]).encode());
                    ws.send(WsMessage::Binary(reply.into()))
                        .await
                        .map_err(|error| read_cause(&error))?;
                }
                Ok(Message::PermissionDenied(reason)) => {
                    return Err(format!("sync: permission denied: {reason}"));
                }
                Ok(_) => other(&frame),
                Err(_) => return Err("sync: malformed frame from the server".to_owned()),
            }
        }
    };
    tokio::time::timeout(SYNC_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err("sync: timed out".to_owned()))
}

/// An awareness frame for one client: `1, varUint8Array(count 1, client, clock, state)`.
pub fn awareness_frame(client_id: u64, clock: u64) -> Vec<u8> {
    let mut inner = Vec::with_capacity(48);
    write_var_u64(&mut inner, 1);
    write_var_u64(&mut inner, client_id);
    write_var_u64(&mut inner, clock);
    write_var_string(&mut inner, r#"{"user":{"name":"loadtest"}}"#);
    let mut frame = Vec::with_capacity(inner.len() + 4);
    write_var_u64(&mut frame, crowdroom_crdt::protocol::MESSAGE_AWARENESS);
    write_var_bytes(&mut frame, &inner);
    frame
}

/// A client's yrs document: makes its updates, and for a full replica also
/// applies everyone else's.
pub struct Editor {
    doc: Doc,
    map: MapRef,
    client_id: u64,
    /// Prefix of this client's keys (its global index), so clients never
    /// write the same key and the expected final map is known exactly.
    label: usize,
    seq: u64,
    value_size: usize,
}

impl Editor {
    pub fn new(client_id: u64, label: usize, value_size: usize) -> Editor {
        let doc = Doc::with_client_id(client_id);
        let map = doc.get_or_insert_map(MAP_NAME);
        Editor {
            doc,
            map,
            client_id,
            label,
            seq: 0,
            value_size,
        }
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Makes the next edit and returns its frame (`0 2 varUint8Array(update)`)
    /// and its key.
    pub fn next_edit(&mut self) -> Option<(Vec<u8>, UpdateKey)> {
        self.seq += 1;
        let key = format!("{}:{}", self.label, self.seq % SLOTS_PER_CLIENT);
        let mut value = format!("{:010}", self.seq);
        while value.len() < self.value_size {
            value.push('x');
        }
        let update = {
            let mut txn = self.doc.transact_mut();
            self.map.insert(&mut txn, key, value);
            txn.encode_update_v1()
        };
        let update_id = update_key(&update)?;
        Some((Message::Update(&update).encode(), update_id))
    }

    /// Applies a remote update (full replicas only).
    pub fn apply(&self, update: &[u8]) -> Result<(), String> {
        apply(&self.doc, update)
    }

    /// The values this client wrote (its last value for each of its keys).
    pub fn own_values(&self) -> Vec<(String, String)> {
        let prefix = format!("{}:", self.label);
        contents(&self.doc)
            .into_iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .collect()
    }

    /// The whole shared map.
    pub fn contents(&self) -> Contents {
        contents(&self.doc)
    }
}

/// Applies an update v1 to `doc`.
pub fn apply(doc: &Doc, update: &[u8]) -> Result<(), String> {
    let update =
        Update::decode_v1(update).map_err(|error| format!("undecodable update: {error}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|error| format!("update refused: {error}"))
}

/// The shared map of `doc` as sorted key/value text.
pub fn contents(doc: &Doc) -> Contents {
    let map = doc.get_or_insert_map(MAP_NAME);
    let txn = doc.transact();
    map.iter(&txn)
        .map(|(key, value)| (key.to_owned(), value.to_string(&txn)))
        .collect()
}

/// The map of a fresh document built from one update (the convergence check).
pub fn contents_of_update(update: &[u8]) -> Result<Contents, String> {
    let doc = Doc::new();
    apply(&doc, update)?;
    Ok(contents(&doc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn update_keys_follow_the_client_clock() {
        let mut editor = Editor::new(4242, 7, 16);
        let (frame, first) = editor.next_edit().unwrap();
        let (_, second) = editor.next_edit().unwrap();
        assert_eq!(first, (4242, 0));
        assert_eq!(second, (4242, 1));
        let Ok(Message::Update(update)) = Message::decode(&frame) else {
            panic!("not an update frame")
        };
        assert_eq!(update_key(update), Some(first));
        assert_eq!(update_key(&[0, 0]), None, "the empty update has no struct");
        assert_eq!(update_key(&[1]), None);
    }

    #[test]
    fn a_replica_converges_with_the_writers() {
        let mut alice = Editor::new(1, 0, 12);
        let mut bob = Editor::new(2, 1, 12);
        let replica = Editor::new(3, 2, 12);
        for _ in 0..10 {
            for editor in [&mut alice, &mut bob] {
                let (frame, _) = editor.next_edit().unwrap();
                let Ok(Message::Update(update)) = Message::decode(&frame) else {
                    panic!()
                };
                replica.apply(update).unwrap();
            }
        }
        let mut expected: BTreeMap<String, String> = alice.own_values().into_iter().collect();
        expected.extend(bob.own_values());
        assert_eq!(expected.len(), 16, "8 slots each");
        assert_eq!(replica.contents(), expected);
        assert_eq!(expected["0:2"], "0000000010xx");
    }

    #[test]
    fn awareness_frame_decodes() {
        let frame = awareness_frame(42, 3);
        assert!(matches!(Message::decode(&frame), Ok(Message::Awareness(_))));
    }
}
