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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::ws::Message;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::CloseCode;
use crate::ids::ConnId;
use crate::metrics::{KindLabel, Metrics};

/// A client that sends nothing (not even a pong) for this long is gone.
pub const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Tells a connection's tasks to stop, and with which close code. The first
/// code set wins; the server's shutdown cancels every signal (code 1001).
pub struct CloseSignal {
    token: CancellationToken,
    code: OnceLock<CloseCode>,
    /// Set with the token: every frame queued for a peer asks whether its
    /// connection is closing, and the token's own check takes a mutex
    /// (5% of the server's CPU at 120,000 deliveries a second).
    closed: AtomicBool,
}

impl CloseSignal {
    /// A signal that also fires when `shutdown` is cancelled.
    pub fn new(shutdown: &CancellationToken) -> Arc<CloseSignal> {
        Arc::new(CloseSignal {
            token: shutdown.child_token(),
            code: OnceLock::new(),
            closed: AtomicBool::new(false),
        })
    }

    pub fn close(&self, code: CloseCode) {
        // Cancelled with no code set means the server's shutdown got here
        // first: that is what the client hears. Otherwise the first code wins.
        let code = if self.token.is_cancelled() {
            CloseCode::GoingAway
        } else {
            code
        };
        let _ = self.code.set(code);
        self.closed.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub async fn closed(&self) {
        self.token.cancelled().await;
    }

    /// Whether the connection is closing. Lock-free; a shutdown (the
    /// parent token) shows here once the connection's task has seen it.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The code to send: the one set, or 1001 if the server is shutting down.
    pub fn code(&self) -> CloseCode {
        self.code.get().copied().unwrap_or(CloseCode::GoingAway)
    }
}

/// A connection's outbound frames, shared by its senders and its writer.
struct Outbound {
    frames: Mutex<VecDeque<Message>>,
    /// Woken on each push; it keeps a permit, so a push between the
    /// writer's look at the queue and its wait is never missed.
    ready: Notify,
    capacity: usize,
}

/// Why a frame was not queued.
enum Refused {
    Full,
    Poisoned,
}

impl Outbound {
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
}

/// The writer's end of a connection's queue.
pub struct OutboundRx(Arc<Outbound>);

impl OutboundRx {
    /// Waits until something is queued, then takes all of it.
    pub async fn next_burst(&self) -> VecDeque<Message> {
        loop {
            let burst = self.0.take();
            if !burst.is_empty() {
                return burst;
            }
            self.0.ready.notified().await;
        }
    }

    /// Whatever is queued now, without waiting (the close sequence's drain).
    pub fn take(&self) -> VecDeque<Message> {
        self.0.take()
    }
}

/// The sending side of one connection, as held by room actors and the
/// session registry. Cloning it is cheap.
#[derive(Clone)]
pub struct ConnTx {
    pub id: ConnId,
    queue: Arc<Outbound>,
    signal: Arc<CloseSignal>,
    kind: KindLabel,
    metrics: Arc<Metrics>,
}

impl ConnTx {
    /// Queues a frame without waiting. A full queue closes the connection
    /// with 4008 (the client reconnects and resyncs): nothing is skipped
    /// silently. Returns whether the frame was queued.
    pub fn send(&self, message: Message) -> bool {
        if self.signal.is_closed() {
            return false;
        }
        match self.queue.push(message) {
            Ok(()) => {
                self.metrics.messages_out.get_or_create(&self.kind).inc();
                true
            }
            Err(Refused::Full) => {
                if !self.signal.is_closed() {
                    self.metrics.slow_clients_dropped.inc();
                    tracing::debug!(
                        connection_id = self.id.0,
                        "outbound queue full, closing slow client"
                    );
                }
                self.signal.close(CloseCode::SlowConsumer);
                false
            }
            Err(Refused::Poisoned) => {
                self.signal.close(CloseCode::Internal);
                false
            }
        }
    }

    pub fn close(&self, code: CloseCode) {
        self.signal.close(code);
    }

    pub fn is_closed(&self) -> bool {
        self.signal.is_closed()
    }
}

/// Creates the queue of a new connection: the sending side for others, and
/// the receiving side for its writer.
pub fn channel(
    id: ConnId,
    capacity: usize,
    kind: KindLabel,
    metrics: Arc<Metrics>,
    signal: Arc<CloseSignal>,
) -> (ConnTx, OutboundRx) {
    let queue = Arc::new(Outbound {
        frames: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (
        ConnTx {
            id,
            queue: queue.clone(),
            signal,
            kind,
            metrics,
        },
        OutboundRx(queue),
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
        let signal = CloseSignal::new(&CancellationToken::new());
        let (tx, rx) = channel(
            ConnId::next(),
            3,
            crate::metrics::YJS,
            Metrics::new(),
            signal.clone(),
        );
        for text in ["a", "b", "c"] {
            assert!(tx.send(Message::Text(text.into())));
        }
        // The fourth frame finds the queue full: the slow client is closed.
        assert!(!tx.send(Message::Text("d".into())));
        assert_eq!(signal.code(), CloseCode::SlowConsumer);
        let burst = rx.next_burst().await;
        let texts: Vec<String> = burst
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
        let signal = CloseSignal::new(&CancellationToken::new());
        let (tx, rx) = channel(
            ConnId::next(),
            8,
            crate::metrics::YJS,
            Metrics::new(),
            signal,
        );
        let waiter = tokio::spawn(async move { rx.next_burst().await.len() });
        tokio::task::yield_now().await;
        assert!(tx.send(Message::Text("late".into())));
        let taken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(taken, Ok(Ok(1))), "{taken:?}");
    }

    #[tokio::test]
    async fn first_close_code_wins() {
        let shutdown = CancellationToken::new();
        let signal = CloseSignal::new(&shutdown);
        assert!(!signal.is_closed());
        signal.close(CloseCode::SlowConsumer);
        signal.close(CloseCode::Normal);
        assert!(signal.is_closed());
        assert_eq!(signal.code(), CloseCode::SlowConsumer);
        let other = CloseSignal::new(&shutdown);
        shutdown.cancel();
        // A shutdown wakes the connection's waiters, whose close says 1001
        // whatever code they ask for.
        tokio::time::timeout(Duration::from_secs(5), other.closed())
            .await
            .expect("a shutdown closes every signal");
        assert_eq!(other.code(), CloseCode::GoingAway);
        other.close(CloseCode::Normal);
        assert!(other.is_closed());
        assert_eq!(other.code(), CloseCode::GoingAway);
    }
}
