//! The plumbing shared by both socket kinds: a bounded outbound queue with
//! a slow-client policy, a close signal that carries the close code, and a
//! per-connection rate limiter. The connection's task that reads, writes
//! and closes the socket is `http::socket::Socket`.
//!
//! The outbound queue is a `VecDeque` behind a mutex with a `Notify`, not a
//! tokio mpsc: an mpsc allocates its first block of slots (about 1.5 KiB)
//! when it is created, and most connections sit idle with nothing queued.
//! This queue holds no allocation while it is empty, and the writer takes a
//! whole burst at once under one short lock (never held across an await).
//!
//! The queue is bounded twice: in frames (`SocketLimits::outbound_queue`)
//! and in bytes ([`OUTBOUND_BUDGET`]). Bytes are counted from the push
//! until the socket's write of the burst holding them completes (the
//! writer reports it with [`OutboundRx::written`]): a burst taken from the
//! queue and stuck in a write to a peer that does not read still holds its
//! memory, so it still counts. The largest single frame waiting is left
//! out of the count, so a joining client can always receive a whole
//! document (a sync step 2 as big as the document size limit) while the
//! room goes on; a client that lets more than the budget pile up besides
//! it is closed with 4008 ([`CloseCode::SlowConsumer`]). The accounting is
//! a few integers under the queue's lock: nothing is allocated for it, and
//! with the write deadline's it takes the shared state from 96 to 136 bytes
//! per connection (`size_of`).
//!
//! A write has a deadline ([`WriteDeadline`]), and no timer: the writer
//! arms a countdown when it takes a burst, the keepalive sweep (once a
//! second, `sessions`) counts it down ([`CloseSignal::write_overdue`]),
//! and a write still running at zero is abandoned and the connection
//! closed with 4008. The socket races every write against that
//! ([`OutboundRx::abandoned`]), so a peer that stopped reading cannot hold
//! its task in a write forever (a close code alone is only seen between
//! writes).
//!
//! The queue also says whether a frame it took is written yet
//! ([`ConnTx::send_tracked`], [`ConnTx::unwritten`]): rooms use it to
//! answer a repeated request once while the first answer still waits.
//!
//! The close signal lives in the same allocation and wakes the same
//! `Notify`: an idle connection waits on one future for "something to send
//! or time to close", not on two (a cancellation token per connection cost
//! a child node in the shutdown token's tree and a second waiter, about
//! 250 bytes per idle connection). The server's shutdown reaches every
//! connection through the session registry (`Sessions::close_all`).
//! The registry's keepalive sweep uses it too: it queues the pings and
//! closes a socket whose peer went quiet (the socket resets a counter here
//! on each read), so a connection keeps no timer of its own.

mod budget;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Message;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::CloseCode;
use crate::ids::ConnId;
use crate::metrics::{KindLabel, Metrics};

use budget::{ABANDONED, DeadlineSweeps, NOT_WRITING, Queue, frame_len};
pub use budget::{OUTBOUND_BUDGET, WriteDeadline};

/// One connection's shared state: its outbound frames and its close signal.
struct Shared {
    queue: Mutex<Queue>,
    /// Woken on each push and on close; it keeps a permit, so a push or a
    /// close between the writer's look and its wait is never missed.
    ready: Notify,
    capacity: usize,
    code: OnceLock<CloseCode>,
    /// Set with the code: every frame queued for a peer asks whether its
    /// connection is closing, so this is one lock-free load.
    closed: AtomicBool,
    /// Keepalive sweeps since the socket last read a frame: reset by the
    /// socket's reads, counted up by `Sessions::sweep`.
    idle_sweeps: AtomicU32,
    /// The write in progress: [`NOT_WRITING`], else one more than the
    /// sweeps it may still take (armed when the writer takes a burst,
    /// counted down by the keepalive sweep), or [`ABANDONED`].
    write_sweeps: AtomicU32,
    /// This connection's write deadline.
    deadline: DeadlineSweeps,
}

/// Why a frame was not queued.
enum Refused {
    Full,
    OverBudget,
    Poisoned,
}

/// Where a frame was queued: ask [`ConnTx::unwritten`] whether the socket
/// has written it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued(u32);

impl Shared {
    fn push(&self, message: Message) -> Result<Queued, Refused> {
        let len = frame_len(&message);
        let queued = {
            let mut queue = self.queue.lock().map_err(|_| Refused::Poisoned)?;
            if queue.frames.len() >= self.capacity {
                return Err(Refused::Full);
            }
            if !queue.fits(len) {
                return Err(Refused::OverBudget);
            }
            queue.frames.push_back(message);
            queue.queued_bytes = queue.queued_bytes.saturating_add(len);
            queue.queued_largest = queue.queued_largest.max(len);
            Queued(queue.taken)
        };
        self.ready.notify_one();
        Ok(queued)
    }

    /// Everything queued, taking the queue's allocation with it (an idle
    /// connection then holds none). For a write (`writing`), the burst's
    /// bytes count until [`Shared::written`] and its deadline is armed.
    fn take(&self, writing: bool) -> VecDeque<Message> {
        let Ok(mut queue) = self.queue.lock() else {
            return VecDeque::new();
        };
        let frames = std::mem::take(&mut queue.frames);
        let (bytes, largest) = (queue.queued_bytes, queue.queued_largest);
        queue.queued_bytes = 0;
        queue.queued_largest = 0;
        if writing && !frames.is_empty() {
            queue.writing_bytes = bytes;
            queue.writing_largest = largest;
            queue.taken = queue.taken.wrapping_add(1);
            let sweeps = self.deadline.for_burst(bytes).saturating_add(1);
            // Never ABANDONED by arming: that is the sweep's to set.
            self.write_sweeps
                .store(sweeps.min(ABANDONED - 1), Ordering::Release);
        }
        frames
    }

    /// The burst taken for writing has been written (or its write failed).
    fn written(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.writing_bytes = 0;
            queue.writing_largest = 0;
            queue.written = queue.written.wrapping_add(1);
        }
        let _ = self
            .write_sweeps
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |sweeps| {
                (sweeps != ABANDONED).then_some(NOT_WRITING)
            });
    }

    /// Whether the frame queued at `queued` waits still: in the queue, or
    /// in the burst being written.
    fn unwritten(&self, queued: Queued) -> bool {
        match self.queue.lock() {
            // Bursts are written in the order taken; the frame's burst is
            // `queued.0 + 1`. Wrapping: fewer than 2^31 bursts apart.
            Ok(queue) => (queue.written.wrapping_sub(queued.0) as i32) <= 0,
            Err(_) => false,
        }
    }

    /// The first code set wins.
    fn close(&self, code: CloseCode) {
        let _ = self.code.set(code);
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the write in progress (if any) is to be given up: it was
    /// overdue, or the connection was closed as too slow.
    fn abandoned(&self) -> bool {
        self.write_sweeps.load(Ordering::Acquire) == ABANDONED
            || self.code.get() == Some(&CloseCode::SlowConsumer)
    }
}

/// Tells a connection to stop, and with which close code: what the session
/// registry keeps of each socket. Cloning it is cheap.
#[derive(Clone)]
pub struct CloseSignal(Arc<Shared>);

impl CloseSignal {
    /// Closes the connection with `code`, unless it was closed already (the
    /// first code set is the one the client hears).
    pub fn close(&self, code: CloseCode) {
        self.0.close(code);
    }

    /// Whether the connection is closing. Lock-free.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// The code to send: the one set, or 1000 if none was.
    pub fn code(&self) -> CloseCode {
        self.0.code.get().copied().unwrap_or(CloseCode::Normal)
    }

    /// Counts one more keepalive sweep without a read; returns how many
    /// there have been since the last read.
    pub fn idle_sweep(&self) -> u32 {
        self.0.idle_sweeps.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts one keepalive sweep against the write in progress, if any.
    /// When that write has used up its deadline, it is abandoned and the
    /// connection closed with 4008 (whatever code it was closing with
    /// already: a close alone cannot stop a write); returns whether this
    /// sweep did that. Lock-free.
    pub fn write_overdue(&self) -> bool {
        let counted =
            self.0
                .write_sweeps
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |sweeps| match sweeps {
                    NOT_WRITING | ABANDONED => None,
                    1 => Some(ABANDONED),
                    left => Some(left - 1),
                });
        if counted == Ok(1) {
            self.0.close(CloseCode::SlowConsumer);
            true
        } else {
            false
        }
    }

    /// Queues a WebSocket ping, unless the connection is closing or its
    /// queue is full (a client that far behind is receiving frames anyway,
    /// and the queue's own policy deals with it).
    pub fn ping(&self) {
        if !self.is_closed() {
            let _ = self.0.push(Message::Ping(Default::default()));
        }
    }
}

/// What woke a connection's writer.
pub enum Outgoing {
    /// Frames to send, oldest first. Call [`OutboundRx::written`] once
    /// their write is over.
    Burst(VecDeque<Message>),
    /// The connection is to close (see [`CloseSignal::code`]).
    Closed,
}

/// The writer's end of a connection's queue.
pub struct OutboundRx(Arc<Shared>);

impl OutboundRx {
    /// Waits until something is queued, then takes all of it for writing
    /// (its bytes count and its deadline runs until [`OutboundRx::written`]);
    /// or until the connection is to close, which goes first.
    pub async fn next(&self) -> Outgoing {
        loop {
            if self.0.is_closed() {
                return Outgoing::Closed;
            }
            let burst = self.0.take(true);
            if !burst.is_empty() {
                return Outgoing::Burst(burst);
            }
            self.0.ready.notified().await;
        }
    }

    /// The burst last taken by [`OutboundRx::next`] is written, or its
    /// write failed or was abandoned: its bytes no longer count.
    pub fn written(&self) {
        self.0.written();
    }

    /// Resolves once the write in progress is to be abandoned: its
    /// deadline passed ([`CloseSignal::write_overdue`]) or the connection
    /// was closed as too slow. Raced against every write.
    pub async fn abandoned(&self) {
        loop {
            if self.0.abandoned() {
                return;
            }
            // Pushes wake this too (the same `Notify`); `next` looks at the
            // queue before it waits, so a permit taken here loses nothing.
            self.0.ready.notified().await;
        }
    }

    /// Whether a write was abandoned (then nothing more is written but the
    /// close frame).
    pub fn is_abandoned(&self) -> bool {
        self.0.abandoned()
    }

    /// Whatever is queued now, without waiting (the close sequence's drain).
    pub fn take(&self) -> VecDeque<Message> {
        self.0.take(false)
    }

    /// The connection's close signal.
    pub fn signal(&self) -> CloseSignal {
        CloseSignal(self.0.clone())
    }

    /// The socket read a frame (any frame, a pong too): the peer is alive.
    pub fn mark_read(&self) {
        self.0.idle_sweeps.store(0, Ordering::Relaxed);
    }
}

/// The sending side of one connection, as held by room actors and the
/// session registry. Cloning it is cheap.
#[derive(Clone)]
pub struct ConnTx {
    pub id: ConnId,
    shared: Arc<Shared>,
    kind: KindLabel,
    metrics: Arc<Metrics>,
}

impl ConnTx {
    /// Queues a frame without waiting. A full queue (in frames, or in bytes:
    /// [`OUTBOUND_BUDGET`]) closes the connection with 4008 (the client
    /// reconnects and resyncs): nothing is skipped silently. Returns
    /// whether the frame was queued.
    pub fn send(&self, message: Message) -> bool {
        self.send_tracked(message).is_some()
    }

    /// Like [`ConnTx::send`], and says where the frame was queued, to ask
    /// later whether it has been written ([`ConnTx::unwritten`]).
    pub fn send_tracked(&self, message: Message) -> Option<Queued> {
        if self.shared.is_closed() {
            return None;
        }
        match self.shared.push(message) {
            Ok(queued) => {
                self.metrics.messages_out.get_or_create(&self.kind).inc();
                Some(queued)
            }
            Err(refused @ (Refused::Full | Refused::OverBudget)) => {
                if !self.shared.is_closed() {
                    self.metrics.slow_clients_dropped.inc();
                    let over = if matches!(refused, Refused::Full) {
                        "frames"
                    } else {
                        "bytes"
                    };
                    tracing::debug!(
                        connection_id = self.id.0,
                        over,
                        "outbound queue full, closing slow client"
                    );
                }
                self.shared.close(CloseCode::SlowConsumer);
                None
            }
            Err(Refused::Poisoned) => {
                self.shared.close(CloseCode::Internal);
                None
            }
        }
    }

    /// Whether the frame [`ConnTx::send_tracked`] queued at `queued` still
    /// waits for the socket: queued, or in the burst being written. Takes
    /// the queue's lock.
    pub fn unwritten(&self, queued: Queued) -> bool {
        self.shared.unwritten(queued)
    }

    pub fn close(&self, code: CloseCode) {
        self.shared.close(code);
    }

    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

/// Creates the queue of a new connection, with the default write deadline:
/// the sending side for others, and the receiving side for its writer.
pub fn channel(
    id: ConnId,
    capacity: usize,
    kind: KindLabel,
    metrics: Arc<Metrics>,
) -> (ConnTx, OutboundRx) {
    channel_with(id, capacity, WriteDeadline::default(), kind, metrics)
}

/// Creates the queue of a new connection whose writes have `deadline`.
pub fn channel_with(
    id: ConnId,
    capacity: usize,
    deadline: WriteDeadline,
    kind: KindLabel,
    metrics: Arc<Metrics>,
) -> (ConnTx, OutboundRx) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        ready: Notify::new(),
        capacity: capacity.max(1),
        code: OnceLock::new(),
        closed: AtomicBool::new(false),
        idle_sweeps: AtomicU32::new(0),
        write_sweeps: AtomicU32::new(NOT_WRITING),
        deadline: DeadlineSweeps::from(deadline),
    });
    (
        ConnTx {
            id,
            shared: shared.clone(),
            kind,
            metrics,
        },
        OutboundRx(shared),
    )
}

/// A token bucket: `rate` messages per second on average, bursts up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes one token; false when the client is over its rate.
    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Maps a read error to the close code it deserves: an oversized frame is
/// 1009, anything else that broke the stream is a protocol error.
pub fn read_error_code(error: axum::Error) -> CloseCode {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(inner) => match *inner {
            tungstenite::Error::Capacity(_) => CloseCode::TooBig,
            tungstenite::Error::Utf8(_) => CloseCode::InvalidUpdate,
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_) => CloseCode::Normal,
            _ => CloseCode::ProtocolError,
        },
        Err(_) => CloseCode::ProtocolError,
    }
}

#[cfg(test)]
mod tests;
