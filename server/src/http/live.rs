//! `GET /rooms/{room}/live`: the room's live channel (JSON, docs/PROTOCOL.md).

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::socket::Socket;
use super::yjs::TokenQuery;
use super::{AppState, authenticate};
use crate::auth::Principal;
use crate::error::{CloseCode, Result};
use crate::metrics::LIVE;
use crate::protocol::{self, Request};
use crate::rooms::{RoomCommand, RoomHandle};

pub async fn upgrade(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let principal = authenticate(&state, &headers, query.token.as_deref(), &room).await?;
    let limits = state.sockets.clone();
    let tracker = state.tracker.clone();
    // As on /yjs: the callback captures only the opening's box, freed once
    // the room is joined.
    let opening = Box::new((state, principal));
    Ok(upgrade
        .read_buffer_size(limits.read_buffer)
        .write_buffer_size(limits.write_buffer)
        .max_write_buffer_size(limits.live_max_message.saturating_mul(16))
        .max_message_size(limits.live_max_message)
        .max_frame_size(limits.live_max_message)
        .on_upgrade(move |socket| {
            // Boxed too: what the async block captures stays in its future.
            let socket = Box::new(socket);
            tracker.track_future(async move {
                if let Some((socket, handle)) = Box::pin(open(opening, socket)).await {
                    serve(socket, handle).await;
                }
            })
        }))
}

/// Opens the socket and joins the room; on failure closes the socket with
/// the error's code.
async fn open(
    opening: Box<(AppState, Principal)>,
    socket: Box<WebSocket>,
) -> Option<(Box<Socket>, RoomHandle)> {
    let (state, principal) = *opening;
    let room = principal.room.clone();
    let mut socket = Socket::open(&state, principal, *socket, LIVE, state.sockets.live_rate);
    let (tx, principal) = (socket.tx.clone(), socket.principal.clone());
    let joined = state
        .rooms
        .join(&room, |reply| RoomCommand::LiveJoin {
            conn: tx.clone(),
            principal: principal.clone(),
            reply,
        })
        .await;
    match joined {
        Ok(handle) => Some((socket, handle)),
        Err(error) => {
            socket.tx.close(CloseCode::from(&error));
            Box::pin(socket.finish()).await;
            None
        }
    }
}

/// Forwards the socket's requests to the room until it closes.
async fn serve(mut socket: Box<Socket>, handle: RoomHandle) {
    let tx = socket.tx.clone();
    while let Some(frame) = socket.next().await {
        let WsMessage::Text(text) = frame else {
            socket.bad_input(CloseCode::UnsupportedData);
            break;
        };
        match Request::decode(&text) {
            Ok(request) => {
                let command = RoomCommand::LiveRequest {
                    conn: tx.id,
                    request,
                };
                if !Box::pin(socket.forward(&handle, command)).await {
                    break;
                }
            }
            // Bad JSON gets an error reply; the connection stays open.
            Err(failure) => {
                tx.send(protocol::decode_failure_reply(&failure));
            }
        }
    }
    // The close frame first: leaving may wait for room in a busy room's inbox.
    Box::pin(socket.finish()).await;
    // The room may have exited (shutdown); then there is nothing to leave.
    // Boxed, as on /yjs: the send's future is bigger than the idle wait.
    let _ = Box::pin(handle.send(RoomCommand::LiveLeave { conn: tx.id })).await;
}
