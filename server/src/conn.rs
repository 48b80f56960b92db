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
//! The close signal lives in the same allocation and wakes the same
//! `Notify`: an idle connection waits on one future for "something to send
//! or time to close", not on two (a cancellation token per connection cost
//! a child node in the shutdown token's tree and a second waiter, about
//! 250 bytes per idle connection). The server's shutdown reaches every
//! connection through the session registry (`Sessions::close_all`).
//! The registry's keepalive sweep uses it too: it queues the pings and
//! closes a socket whose peer went quiet (the socket resets a counter here
//! on each read), so a connection keeps no timer of its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Message;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::CloseCode;
use crate::ids::ConnId;
use crate::metrics::{KindLabel, Metrics};

/// One connection's shared state: its outbound frames and its close signal.
struct Shared {
    frames: Mutex<VecDeque<Message>>,
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
}

/// Why a frame was not queued.
enum Refused {
    Full,
    Poisoned,
}

impl Shared {
    fn push(&self, message: Message) -> Result<(), Refused> {
        {
            let mut frames = self.frames.lock().map_err(|_| Refused::Poisoned)?;
            if frames.len() >= self.capacity {
                return Err(Refused::Full);
            }
            frames.push_back(message);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Everything queued, taking the queue's allocation with it (an idle
    /// connection then holds none).
    fn take(&self) -> VecDeque<Message> {
        match self.frames.lock() {
            Ok(mut frames) => std::mem::take(&mut *frames),
            Err(_) => VecDeque::new(),
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
    /// Frames to send, oldest first.
    Burst(VecDeque<Message>),
    /// The connection is to close (see [`CloseSignal::code`]).
    Closed,
}

/// The writer's end of a connection's queue.
pub struct OutboundRx(Arc<Shared>);

impl OutboundRx {
    /// Waits until something is queued, then takes all of it; or until the
    /// connection is to close, which goes first.
    pub async fn next(&self) -> Outgoing {
        loop {
            if self.0.is_closed() {
                return Outgoing::Closed;
            }
            let burst = self.0.take();
            if !burst.is_empty() {
                return Outgoing::Burst(burst);
            }
            self.0.ready.notified().await;
        }
    }

    /// Whatever is queued now, without waiting (the close sequence's drain).
    pub fn take(&self) -> VecDeque<Message> {
        self.0.take()
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
    /// Queues a frame without waiting. A full queue closes the connection
    /// with 4008 (the client reconnects and resyncs): nothing is skipped
    /// silently. Returns whether the frame was queued.
    pub fn send(&self, message: Message) -> bool {
        if self.shared.is_closed() {
            return false;
        }
        match self.shared.push(message) {
            Ok(()) => {
                self.metrics.messages_out.get_or_create(&self.kind).inc();
                true
            }
            Err(Refused::Full) => {
                if !self.shared.is_closed() {
                    self.metrics.slow_clients_dropped.inc();
                    tracing::debug!(
                        connection_id = self.id.0,
                        "outbound queue full, closing slow client"
                    );
                }
                self.shared.close(CloseCode::SlowConsumer);
                false
            }
            Err(Refused::Poisoned) => {
                self.shared.close(CloseCode::Internal);
                false
            }
        }
    }

    pub fn close(&self, code: CloseCode) {
        self.shared.close(code);
    }

    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

/// Creates the queue of a new connection: the sending side for others, and
/// the receiving side for its writer.
pub fn channel(
    id: ConnId,
    capacity: usize,
    kind: KindLabel,
    metrics: Arc<Metrics>,
) -> (ConnTx, OutboundRx) {
    let shared = Arc::new(Shared {
        frames: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
        capacity: capacity.max(1),
        code: OnceLock::new(),
        closed: AtomicBool::new(false),
        idle_sweeps: AtomicU32::new(0),
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
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_allows_bursts_then_refills() {
        let mut limiter = RateLimiter::new(10, 5);
        for _ in 0..5 {
            assert!(limiter.allow());
        }
        assert!(!limiter.allow());
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(limiter.allow());
        assert!(limiter.allow());
        assert!(!limiter.allow());
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_holds_nothing_when_idle() {
        let (tx, rx) = channel(ConnId::next(), 3, crate::metrics::YJS, Metrics::new());
        for text in ["a", "b", "c"] {
            assert!(tx.send(Message::Text(text.into())));
        }
        // The fourth frame finds the queue full: the slow client is closed.
        assert!(!tx.send(Message::Text("d".into())));
        assert_eq!(rx.signal().code(), CloseCode::SlowConsumer);
        // Closing goes before what is queued; the close sequence drains it.
        assert!(matches!(rx.next().await, Outgoing::Closed));
        let texts: Vec<String> = rx
            .take()
            .into_iter()
            .map(|message| match message {
                Message::Text(text) => text.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["a", "b", "c"]);
        let idle = rx.0.frames.lock().map(|frames| frames.capacity()).ok();
        assert_eq!(idle, Some(0), "an emptied queue keeps no allocation");
        // Nothing is queued once the connection is closing.
        assert!(!tx.send(Message::Text("e".into())));
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_frame_queued_while_it_waits() {
        let (tx, rx) = channel(ConnId::next(), 8, crate::metrics::YJS, Metrics::new());
        let waiter = tokio::spawn(async move {
            match rx.next().await {
                Outgoing::Burst(burst) => burst.len(),
                Outgoing::Closed => 0,
            }
        });
        tokio::task::yield_now().await;
        assert!(tx.send(Message::Text("late".into())));
        let taken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(taken, Ok(Ok(1))), "{taken:?}");
    }

    #[tokio::test]
    async fn a_close_wakes_the_waiting_writer_and_the_first_code_wins() {
        let (tx, rx) = channel(ConnId::next(), 8, crate::metrics::YJS, Metrics::new());
        let signal = rx.signal();
        assert!(!signal.is_closed());
        let waiter = tokio::spawn(async move { matches!(rx.next().await, Outgoing::Closed) });
        tokio::task::yield_now().await;
        signal.close(CloseCode::SlowConsumer);
        tx.close(CloseCode::Normal);
        let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(woken, Ok(Ok(true))), "{woken:?}");
        assert!(signal.is_closed() && tx.is_closed());
        assert_eq!(signal.code(), CloseCode::SlowConsumer);
    }
}
