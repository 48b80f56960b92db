//! What both WebSocket endpoints share: one task per connection that reads
//! frames (with the rate limit and the bad-input policy), writes what the
//! room queued (the keepalive's pings too), and closes with the code it was
//! given. It has no timer: pings, the idle timeout, token expiry and the
//! write deadline come from the session registry's once-a-second sweep
//! (`sessions`), through the queue and its close signal.
//!
//! Every write races [`OutboundRx::abandoned`]: a peer that stops reading
//! leaves the write pending forever, and while the task writes it neither
//! reads nor looks at its close signal. The sweep marks a write past its
//! deadline abandoned (and the queue marks it when it closes the client
//! for its bytes or frames); the task then gives up the burst, and sends
//! only the close frame (4008), under [`CLOSE_TIMEOUT`], before it drops
//! the socket.
//!
//! One task, not a reader and a writer: most connections sit idle, and a
//! second task with its own future, timers and a lock to share the socket
//! cost about 1.1 KiB per connection (docs/BENCHMARKS.md). For the same
//! reason the socket is boxed (an async fn's argument is stored twice in
//! its future) and the futures of writing, pinging and forwarding are
//! boxed when they run: an idle connection holds only its wait. The task never
//! stops writing for long: while it waits for room in the room's inbox, it
//! keeps draining its own queue ([`Socket::forward`]), so a busy room cannot
//! make its own clients look slow.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};

use super::AppState;
use crate::auth::Principal;
use crate::conn::{self, ConnTx, OutboundRx, Outgoing, RateLimiter};
use crate::error::{CloseCode, Result};
use crate::ids::ConnId;
use crate::metrics::{KindLabel, Metrics};
use crate::rooms::{RoomCommand, RoomHandle};
use crate::sessions::SessionGuard;

/// How long the close sequence may take to send what is left and the close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One open socket: its queue (which carries its close signal), and the
/// socket itself.
pub struct Socket {
    pub tx: ConnTx,
    pub principal: Arc<Principal>,
    ws: WebSocket,
    queue: OutboundRx,
    limiter: RateLimiter,
    metrics: Arc<Metrics>,
    kind: KindLabel,
    _session: SessionGuard,
}

/// What woke the connection.
enum Wake {
    Closed,
    Burst(std::collections::VecDeque<Message>),
    Read(Option<std::result::Result<Message, axum::Error>>),
}

impl Socket {
    /// Registers the socket under its token and creates its queue.
    pub fn open(
        state: &AppState,
        principal: Principal,
        ws: WebSocket,
        kind: KindLabel,
        rate: (u32, u32),
    ) -> Box<Socket> {
        let id = ConnId::next();
        let (tx, queue) = conn::channel_with(
            id,
            state.sockets.outbound_queue,
            state.sockets.write_deadline,
            kind.clone(),
            state.metrics.clone(),
        );
        let principal = Arc::new(principal);
        let session = state.sessions.register(&principal, id, queue.signal());
        state.metrics.connections.get_or_create(&kind).inc();
        Box::new(Socket {
            tx,
            principal,
            ws,
            queue,
            limiter: RateLimiter::new(rate.0, rate.1),
            metrics: state.metrics.clone(),
            kind,
            _session: session,
        })
    }

    /// The next data frame (binary or text), or None once the socket is
    /// done: closed by the peer, broken, over its rate, or told to close
    /// (idle too long and expired included). Meanwhile it writes what is
    /// queued and answers control frames.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let wake = tokio::select! {
                biased;
                outgoing = self.queue.next() => match outgoing {
                    Outgoing::Burst(burst) => Wake::Burst(burst),
                    Outgoing::Closed => Wake::Closed,
                },
                read = self.ws.next() => Wake::Read(read),
            };
            match wake {
                Wake::Closed => return None,
                // The rarer, larger futures are boxed: what an idle
                // connection holds is only this select's state.
                Wake::Burst(burst) => {
                    if !Box::pin(self.write(burst)).await {
                        return None;
                    }
                }
                Wake::Read(read) => {
                    self.queue.mark_read();
                    if let Some(message) = self.on_read(read) {
                        return message;
                    }
                }
            }
        }
    }

    /// Sends `command` to the room, writing what is queued meanwhile.
    /// False when the socket closed first or the room is gone (then the
    /// connection is closed with 1013: the client should retry).
    pub async fn forward(&mut self, handle: &RoomHandle, command: RoomCommand) -> bool {
        let send = handle.send(command);
        tokio::pin!(send);
        loop {
            let burst = tokio::select! {
                biased;
                sent = &mut send => return self.sent(sent),
                outgoing = self.queue.next() => match outgoing {
                    Outgoing::Burst(burst) => burst,
                    Outgoing::Closed => return false,
                },
            };
            if !Box::pin(self.write(burst)).await {
                return false;
            }
        }
    }

    /// Closes the socket for bad input with `code`.
    pub fn bad_input(&self, code: CloseCode) {
        self.metrics.bad_input_closed.inc();
        self.tx.close(code);
    }

    /// Sends what was queued before the close (a `you.kicked` saying why),
    /// unless the queue or a stalled write is the problem, then the close
    /// frame with the code the signal carries.
    pub async fn finish(&mut self) {
        self.tx.close(CloseCode::Normal);
        let code = self.queue.signal().code();
        if code != CloseCode::SlowConsumer && !self.queue.is_abandoned() {
            let burst = self.queue.take();
            // A broken socket is dropped either way.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.send_burst(burst)).await;
        }
        let frame = CloseFrame {
            code: code.code(),
            reason: code.reason().into(),
        };
        // The peer may already be gone; the socket is dropped either way.
        let _ =
            tokio::time::timeout(CLOSE_TIMEOUT, self.ws.send(Message::Close(Some(frame)))).await;
    }

    fn sent(&self, sent: Result<()>) -> bool {
        if sent.is_err() {
            self.tx.close(CloseCode::TryLater);
        }
        sent.is_ok()
    }

    /// Everything queued goes out in one flush. False if the socket broke
    /// or the write was abandoned (past its deadline, or the client was
    /// closed as too slow meanwhile).
    async fn write(&mut self, burst: std::collections::VecDeque<Message>) -> bool {
        let written = tokio::select! {
            biased;
            sent = send_burst(&mut self.ws, burst) => sent.is_ok(),
            () = self.queue.abandoned() => false,
        };
        // The burst's bytes stop counting against the budget.
        self.queue.written();
        if !written {
            self.tx.close(CloseCode::Normal);
        }
        written
    }

    async fn send_burst(
        &mut self,
        burst: std::collections::VecDeque<Message>,
    ) -> std::result::Result<(), axum::Error> {
        send_burst(&mut self.ws, burst).await
    }

    /// Some(frame) to hand to the caller (None there means stop), or None
    /// to keep reading (a control frame).
    fn on_read(
        &mut self,
        read: Option<std::result::Result<Message, axum::Error>>,
    ) -> Option<Option<Message>> {
        let message = match read {
            None => {
                self.tx.close(CloseCode::Normal);
                return Some(None);
            }
            Some(Err(error)) => {
                let code = conn::read_error_code(error);
                if code != CloseCode::Normal {
                    self.metrics.bad_input_closed.inc();
                }
                self.tx.close(code);
                return Some(None);
            }
            Some(Ok(message)) => message,
        };
        match message {
            Message::Close(_) => {
                self.tx.close(CloseCode::Normal);
                Some(None)
            }
            Message::Ping(_) | Message::Pong(_) => None,
            data => {
                self.metrics.messages_in.get_or_create(&self.kind).inc();
                if !self.limiter.allow() {
                    self.bad_input(CloseCode::RateLimited);
                    return Some(None);
                }
                Some(Some(data))
            }
        }
    }
}

/// Feeds every frame of `burst`, then flushes once.
async fn send_burst(
    ws: &mut WebSocket,
    burst: std::collections::VecDeque<Message>,
) -> std::result::Result<(), axum::Error> {
    for message in burst {
        ws.feed(message).await?;
    }
    ws.flush().await
}

impl Drop for Socket {
    /// However the connection ends, its signal says closed, so rooms and
    /// sessions stop queueing to it.
    fn drop(&mut self) {
        self.tx.close(CloseCode::Normal);
        self.metrics.connections.get_or_create(&self.kind).dec();
    }
}
