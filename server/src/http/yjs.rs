//! `GET /yjs/{room}/{doc}`: the y-websocket protocol, one document per
//! socket, byte-compatible with the npm `y-websocket` client.

use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use crowdroom_crdt::Message;
use serde::Deserialize;

use super::socket::Socket;
use super::{AppState, authenticate};
use crate::auth::Principal;
use crate::error::{CloseCode, Error, Result};
use crate::ids::{DocName, RoomId};
use crate::metrics::YJS;
use crate::rooms::{DocMessage, RoomCommand, RoomHandle};

#[derive(Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    Path((room, doc)): Path<(String, String)>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let principal = authenticate(&state, &headers, query.token.as_deref(), &room).await?;
    let doc = DocName::parse(&doc)?;
    if !crate::auth::may_open_doc(&principal, doc.as_str()) {
        return Err(Error::Forbidden(
            "answers are independent: this document belongs to another worker or the team",
        ));
    }
    if !state.store.doc_exists(&principal.room, &doc).await? {
        // Writers create documents by opening them; viewers cannot.
        if !principal.role.can_write() {
            return Err(Error::NotFound("document"));
        }
        state.store.create_doc(&principal.room, &doc).await?;
    }
    let limits = state.sockets.clone();
    let tracker = state.tracker.clone();
    // What only the opening needs goes in one box, freed once the room is
    // joined. The callback captures only the box: what it captures stays
    // in the connection's task for the task's whole life (idle connections
    // are most of the memory; AppState alone is 288 bytes).
    let max_write = limits
        .yjs_max_message
        .max(state.max_doc_bytes)
        .saturating_mul(2);
    let opening = Box::new((state, principal, doc));
    Ok(upgrade
        .read_buffer_size(limits.read_buffer)
        .write_buffer_size(limits.write_buffer)
        .max_write_buffer_size(max_write)
        .max_message_size(limits.yjs_max_message)
        .max_frame_size(limits.yjs_max_message)
        .on_upgrade(move |socket| {
            // Boxed too: what the async block captures stays in its future.
            let socket = Box::new(socket);
            tracker.track_future(async move {
                if let Some((socket, handle, doc)) = Box::pin(open(opening, socket)).await {
                    serve(socket, handle, doc).await;
                }
            })
        }))
}

/// Decodes a frame into a command payload, sharing the frame's bytes.
fn decode(frame: &Bytes) -> Option<Option<DocMessage>> {
    let message = Message::decode(frame).ok()?;
    Some(match message {
        Message::SyncStep1(payload) => Some(DocMessage::SyncStep1(frame.slice_ref(payload))),
        Message::SyncStep2(payload) => Some(DocMessage::SyncStep2(frame.slice_ref(payload))),
        Message::Update(payload) => Some(DocMessage::Update(frame.slice_ref(payload))),
        Message::Awareness(payload) => Some(DocMessage::Awareness(frame.slice_ref(payload))),
        Message::QueryAwareness => Some(DocMessage::QueryAwareness),
        // Clients have no business sending auth messages; ignore them.
        Message::PermissionDenied(_) => None,
    })
}

/// Opens the socket and joins the document's room; on failure closes the
/// socket with the error's code.
async fn open(
    opening: Box<(AppState, Principal, DocName)>,
    socket: Box<WebSocket>,
) -> Option<(Box<Socket>, RoomHandle, DocName)> {
    let (state, principal, doc) = *opening;
    let room: RoomId = principal.room.clone();
    let mut socket = Socket::open(&state, principal, *socket, YJS, state.sockets.yjs_rate);
    let (tx, principal) = (socket.tx.clone(), socket.principal.clone());
    let joined = state
        .rooms
        .join(&room, |reply| RoomCommand::DocJoin {
            conn: tx.clone(),
            principal: principal.clone(),
            doc: doc.clone(),
            reply,
        })
        .await;
    match joined {
        Ok(handle) => Some((socket, handle, doc)),
        Err(error) => {
            tracing::debug!(room_id = %room, %error, "document join failed");
            socket.tx.close(CloseCode::from(&error));
            Box::pin(socket.finish()).await;
            None
        }
    }
}

/// Forwards the socket's frames to the room until it closes.
async fn serve(mut socket: Box<Socket>, handle: RoomHandle, doc: DocName) {
    let conn = socket.tx.id;
    while let Some(frame) = socket.next().await {
        let WsMessage::Binary(frame) = frame else {
            socket.bad_input(CloseCode::UnsupportedData);
            break;
        };
        match decode(&frame) {
            Some(Some(message)) => {
                let command = RoomCommand::DocMessage {
                    conn,
                    doc: doc.clone(),
                    message,
                };
                if !Box::pin(socket.forward(&handle, command)).await {
                    break;
                }
            }
            Some(None) => {}
            None => {
                socket.bad_input(CloseCode::ProtocolError);
                break;
            }
        }
    }
    // The close frame first: leaving may wait for room in a busy room's inbox.
    Box::pin(socket.finish()).await;
    // The room may have exited (shutdown); then there is nothing to leave.
    // Boxed: inline, this send's future (672 bytes) would make every idle
    // connection's future that much bigger.
    let _ = Box::pin(handle.send(RoomCommand::DocLeave { conn, doc })).await;
}
