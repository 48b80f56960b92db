//! Real WebSocket clients: a y-websocket protocol client keeping its own
//! yrs replica, and a live-channel JSON client.

use std::collections::VecDeque;

use crowdroom_crdt::Message;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update};

use crate::TIMEOUT;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a y-websocket client received.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    SyncStep1(Vec<u8>),
    SyncStep2(Vec<u8>),
    Update(Vec<u8>),
    Awareness(Vec<u8>),
    PermissionDenied(String),
    /// The server closed the socket with this code (None: no close frame).
    Closed(Option<u16>),
}

/// Connects a WebSocket; Err carries the HTTP status of a refused upgrade.
pub async fn connect(url: &str) -> Result<Ws, u16> {
    match tokio::time::timeout(TIMEOUT, connect_async(url))
        .await
        .expect("connect timed out")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(error) => panic!("connect {url}: {error}"),
    }
}

/// Reads the next data frame or the close, with the test timeout.
async fn next_frame(ws: &mut Ws) -> WsMessage {
    loop {
        let next = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("timed out waiting for a frame");
        match next {
            None => return WsMessage::Close(None),
            Some(Err(error)) => {
                eprintln!("websocket error: {error}");
                return WsMessage::Close(None);
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            Some(Ok(message)) => return message,
        }
    }
}

/// A y-websocket client with its own replica of the document.
pub struct YjsClient {
    pub ws: Ws,
    pub doc: Doc,
    backlog: VecDeque<Incoming>,
}

impl YjsClient {
    /// Opens `/yjs/{room}/{doc}` with a token (no sync yet).
    pub async fn open(base: &str, room: &str, doc: &str, token: &str) -> Result<YjsClient, u16> {
        YjsClient::open_with(base, room, doc, token, Doc::new()).await
    }

    /// Opens with an existing replica, as a client reconnecting after a drop does.
    pub async fn open_with(
        base: &str,
        room: &str,
        doc: &str,
        token: &str,
        replica: Doc,
    ) -> Result<YjsClient, u16> {
        let ws = connect(&format!("{base}/yjs/{room}/{doc}?token={token}")).await?;
        Ok(YjsClient {
            ws,
            doc: replica,
            backlog: VecDeque::new(),
        })
    }

    /// Removes `key` from the map "m" of the replica and returns the update.
    pub fn remove(&self, key: &str) -> Vec<u8> {
        let map = self.doc.get_or_insert_map("m");
        let mut txn = self.doc.transact_mut();
        map.remove(&mut txn, key);
        txn.encode_update_v1()
    }

    /// The replica's map "m" as JSON text, for comparing replicas.
    pub fn snapshot_json(&self) -> String {
        let map = self.doc.get_or_insert_map("m");
        let txn = self.doc.transact();
        let mut out = String::new();
        yrs::types::ToJson::to_json(&map, &txn).to_json(&mut out);
        // Through serde_json's sorted maps, so key order does not matter.
        serde_json::from_str::<Value>(&out)
            .expect("yrs writes JSON")
            .to_string()
    }

    /// Opens and completes the initial sync.
    pub async fn connect(base: &str, room: &str, doc: &str, token: &str) -> YjsClient {
        let mut client = YjsClient::open(base, room, doc, token)
            .await
            .expect("upgrade refused");
        client.sync().await;
        client
    }

    pub async fn send(&mut self, message: &Message<'_>) {
        self.ws
            .send(WsMessage::Binary(message.encode().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        // The server may already have closed on an earlier frame.
        let _ = self.ws.send(WsMessage::Binary(bytes.into())).await;
    }

    /// The next protocol message; sync traffic is also applied to the replica.
    pub async fn next(&mut self) -> Incoming {
        if let Some(incoming) = self.backlog.pop_front() {
            return incoming;
        }
        let incoming = match next_frame(&mut self.ws).await {
            WsMessage::Binary(bytes) => match Message::decode(&bytes)
                .expect("server sent a malformed frame")
            {
                Message::SyncStep1(sv) => Incoming::SyncStep1(sv.to_vec()),
                Message::SyncStep2(update) => Incoming::SyncStep2(update.to_vec()),
                Message::Update(update) => Incoming::Update(update.to_vec()),
                Message::Awareness(update) => Incoming::Awareness(update.to_vec()),
                Message::PermissionDenied(reason) => Incoming::PermissionDenied(reason.to_owned()),
                Message::QueryAwareness => panic!("server sent query-awareness"),
            },
            WsMessage::Close(frame) => Incoming::Closed(frame.map(|frame| u16::from(frame.code))),
            other => panic!("unexpected frame {other:?}"),
        };
        if let Incoming::SyncStep2(update) | Incoming::Update(update) = &incoming {
            self.apply(update);
        }
        incoming
    }

    fn apply(&self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("server sent an undecodable update");
        self.doc.transact_mut().apply_update(update).expect("apply");
    }

    /// Sends sync step 1, answers the server's step 1, and waits for step 2.
    pub async fn sync(&mut self) {
        let sv = self.doc.transact().state_vector().encode_v1();
        self.send(&Message::SyncStep1(&sv)).await;
        loop {
            match self.next().await {
                Incoming::SyncStep1(remote) => {
                    let remote = StateVector::decode_v1(&remote).expect("state vector");
                    let diff = self.doc.transact().encode_state_as_update_v1(&remote);
                    self.send(&Message::SyncStep2(&diff)).await;
                }
                Incoming::SyncStep2(_) => return,
                Incoming::Closed(code) => panic!("closed during sync: {code:?}"),
                _ => {}
            }
        }
    }

    /// Sets `key` in the map "m" of the replica and returns the update.
    pub fn set(&self, key: &str, value: &str) -> Vec<u8> {
        let map = self.doc.get_or_insert_map("m");
        let mut txn = self.doc.transact_mut();
        map.insert(&mut txn, key, value);
        txn.encode_update_v1()
    }

    /// Sends an update and waits for its echo (the server's acknowledgement).
    pub async fn write_acked(&mut self, key: &str, value: &str) {
        let update = self.set(key, value);
        self.send(&Message::Update(&update)).await;
        self.wait_echo(&update).await;
    }

    /// Waits for the echo of `update`; false if the socket closed first.
    pub async fn try_wait_echo(&mut self, update: &[u8]) -> bool {
        loop {
            match self.next().await {
                Incoming::Update(echo) if echo == update => return true,
                Incoming::Closed(_) => return false,
                _ => {}
            }
        }
    }

    /// Waits until the server echoes `update` back.
    pub async fn wait_echo(&mut self, update: &[u8]) {
        let mut skipped = VecDeque::new();
        loop {
            match self.next().await {
                Incoming::Update(echo) if echo == update => break,
                Incoming::Closed(code) => panic!("closed while waiting for an echo: {code:?}"),
                other => skipped.push_back(other),
            }
        }
        skipped.extend(self.backlog.drain(..));
        self.backlog = skipped;
    }

    /// Waits until the replica's map "m" has `key` = `value`.
    pub async fn wait_value(&mut self, key: &str, value: &str) {
        while self.value(key).as_deref() != Some(value) {
            if let Incoming::Closed(code) = self.next().await {
                panic!("closed while waiting for {key}: {code:?}");
            }
        }
    }

    pub fn value(&self, key: &str) -> Option<String> {
        let map = self.doc.get_or_insert_map("m");
        let txn = self.doc.transact();
        map.get(&txn, key).map(|value| value.to_string(&txn))
    }

    /// Every key of the replica's map "m".
    pub fn keys(&self) -> Vec<String> {
        let map = self.doc.get_or_insert_map("m");
        let txn = self.doc.transact();
        map.keys(&txn).map(str::to_owned).collect()
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Incoming::Closed(code) = self.next().await {
                return code;
            }
        }
    }
}

/// A live-channel client.
pub struct LiveClient {
    pub ws: Ws,
    pub hello: Value,
    events: VecDeque<Value>,
    next_id: u64,
}

impl LiveClient {
    pub async fn open(base: &str, room: &str, token: &str) -> Result<LiveClient, u16> {
        let mut ws = connect(&format!("{base}/rooms/{room}/live?token={token}")).await?;
        let hello = match next_frame(&mut ws).await {
            WsMessage::Text(text) => serde_json::from_str::<Value>(&text).expect("hello is JSON"),
            other => panic!("expected hello, got {other:?}"),
        };
        assert_eq!(hello["type"], "hello", "first frame is hello: {hello}");
        Ok(LiveClient {
            ws,
            hello,
            events: VecDeque::new(),
            next_id: 1,
        })
    }

    pub async fn connect(base: &str, room: &str, token: &str) -> LiveClient {
        LiveClient::open(base, room, token)
            .await
            .expect("upgrade refused")
    }

    pub async fn send_text(&mut self, text: &str) {
        let _ = self.ws.send(WsMessage::Text(text.into())).await;
    }

    /// The next JSON frame, or None once closed.
    async fn next_json(&mut self) -> Option<Value> {
        match next_frame(&mut self.ws).await {
            WsMessage::Text(text) => Some(serde_json::from_str(&text).expect("server sent JSON")),
            WsMessage::Close(_) => None,
            other => panic!("unexpected frame {other:?}"),
        }
    }

    /// Sends `{"type": kind, ...fields}` and returns the reply.
    pub async fn request(&mut self, kind: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = fields;
        request["id"] = json!(id);
        request["type"] = json!(kind);
        self.send_text(&request.to_string()).await;
        self.reply_to(json!(id)).await
    }

    /// Like [`LiveClient::request`], but None if the socket closes first.
    pub async fn try_request(&mut self, kind: &str, fields: Value) -> Option<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = fields;
        request["id"] = json!(id);
        request["type"] = json!(kind);
        self.ws
            .send(WsMessage::Text(request.to_string().into()))
            .await
            .ok()?;
        loop {
            let frame = self.next_json().await?;
            if frame["type"] == "reply" && frame["id"] == json!(id) {
                return Some(frame);
            }
        }
    }

    /// Waits for the reply with `id`, keeping events for later.
    pub async fn reply_to(&mut self, id: Value) -> Value {
        loop {
            let frame = self
                .next_json()
                .await
                .expect("closed while waiting for a reply");
            if frame["type"] == "reply" && frame["id"] == id {
                return frame;
            }
            self.events.push_back(frame);
        }
    }

    /// Waits for the next event named `name`.
    pub async fn event(&mut self, name: &str) -> Value {
        if let Some(position) = self.events.iter().position(|frame| frame["event"] == name) {
            return self.events.remove(position).expect("position is valid");
        }
        loop {
            let frame = self
                .next_json()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {name}"));
            if frame["type"] == "event" && frame["event"] == name {
                return frame;
            }
            self.events.push_back(frame);
        }
    }

    /// Every frame received so far and not yet consumed.
    pub fn pending_frames(&self) -> Vec<Value> {
        self.events.iter().cloned().collect()
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match next_frame(&mut self.ws).await {
                WsMessage::Close(frame) => return frame.map(|frame| u16::from(frame.code)),
                WsMessage::Text(text) => self
                    .events
                    .push_back(serde_json::from_str(&text).unwrap_or(Value::Null)),
                _ => {}
            }
        }
    }
}
