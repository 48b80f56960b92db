//! What both WebSocket endpoints share: opening a connection (queue,
//! writer task, session registration, metrics) and reading frames with the
//! idle timeout, the rate limit and bad-input policy applied.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio::task::JoinHandle;

use super::AppState;
use crate::auth::Principal;
use crate::conn::{self, CloseSignal, ConnTx, READ_IDLE_TIMEOUT, RateLimiter};
use crate::error::CloseCode;
use crate::ids::ConnId;
use crate::metrics::{KindLabel, Metrics};
use crate::sessions::SessionGuard;

/// One open socket: its sending side, its reader, and what closes it cleanly.
pub struct Socket {
    pub tx: ConnTx,
    pub signal: Arc<CloseSignal>,
    pub principal: Arc<Principal>,
    stream: SplitStream<WebSocket>,
    limiter: RateLimiter,
    writer: JoinHandle<()>,
    metrics: Arc<Metrics>,
    kind: KindLabel,
    _session: SessionGuard,
}

impl Socket {
    /// Starts the writer and registers the socket under its token.
    pub fn open(
        state: &AppState,
        principal: Principal,
        socket: WebSocket,
        kind: KindLabel,
        rate: (u32, u32),
    ) -> Socket {
        let id = ConnId::next();
        let signal = CloseSignal::new(&state.shutdown);
        let (tx, queue) = conn::channel(
            id,
            state.sockets.outbound_queue,
            kind.clone(),
            state.metrics.clone(),
            signal.clone(),
        );
        let (sink, stream) = socket.split();
        let writer = state.tracker.spawn(conn::write_loop(
            sink,
            queue,
            signal.clone(),
            principal.expires_at,
        ));
        let session = state
            .sessions
            .register(&principal.token_id, id, signal.clone());
        state.metrics.connections.get_or_create(&kind).inc();
        Socket {
            tx,
            signal,
            principal: Arc::new(principal),
            stream,
            limiter: RateLimiter::new(rate.0, rate.1),
            writer,
            metrics: state.metrics.clone(),
            kind,
            _session: session,
        }
    }

    /// The next data frame (binary or text), or None once the socket is
    /// done: closed by the peer, idle too long, broken, over its rate, or
    /// told to close. Control frames are handled here.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let read = tokio::select! {
                () = self.signal.closed() => return None,
                read = tokio::time::timeout(READ_IDLE_TIMEOUT, self.stream.next()) => read,
            };
            let message = match read {
                Err(_idle) => {
                    self.signal.close(CloseCode::Normal);
                    return None;
                }
                Ok(None) => {
                    self.signal.close(CloseCode::Normal);
                    return None;
                }
                Ok(Some(Err(error))) => {
                    let code = conn::read_error_code(error);
                    if code != CloseCode::Normal {
                        self.metrics.bad_input_closed.inc();
                    }
                    self.signal.close(code);
                    return None;
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Close(_) => {
                    self.signal.close(CloseCode::Normal);
                    return None;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                data => {
                    self.metrics.messages_in.get_or_create(&self.kind).inc();
                    if !self.limiter.allow() {
                        self.bad_input(CloseCode::RateLimited);
                        return None;
                    }
                    return Some(data);
                }
            }
        }
    }

    /// Closes the socket for bad input with `code`.
    pub fn bad_input(&self, code: CloseCode) {
        self.metrics.bad_input_closed.inc();
        self.signal.close(code);
    }

    /// Waits for the writer to send the close frame, and unregisters.
    pub async fn finish(mut self) {
        self.signal.close(CloseCode::Normal);
        // The writer only ends by itself; a panic there has been logged.
        let _ = (&mut self.writer).await;
    }
}

impl Drop for Socket {
    /// However the reader ends (finished, or its task dropped), the writer
    /// is told to close: it ends only on the signal.
    fn drop(&mut self) {
        self.signal.close(CloseCode::Normal);
        self.metrics.connections.get_or_create(&self.kind).dec();
    }
}
