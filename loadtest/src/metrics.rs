//! What a run measures: latency histograms, counters, and errors by cause.
//!
//! Thousands of connection tasks record into these at once, so the cost of a
//! record matters more than anything else here. Histograms are sharded (a
//! task records into the shard of its client index, an uncontended mutex on
//! a 2-core machine) instead of one per connection, which would cost
//! hundreds of KiB each, or one global one, which every task would fight
//! over. Counters are plain atomics. Errors are rare and go through a mutex.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram holds, in microseconds (10 minutes); longer
/// values are clamped, which only a hung run produces.
const MAX_MICROS: u64 = 600_000_000;

/// The latency histograms, each in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hist {
    /// TCP connect plus the WebSocket upgrade.
    Connect,
    /// y-websocket: socket open to the first sync step 2 received.
    Sync,
    /// y-websocket: an update's send time to its receipt by each peer.
    Fanout,
    /// A write acknowledged as committed. y-websocket: an update's send
    /// time to its echo to the sender (on Crowdroom the echo means
    /// committed); crowd: `task.submit` to its `ok` reply.
    Ack,
    /// Live channel: socket open to `hello` (joining the room).
    Hello,
    /// Live channel: `chat.send` to its reply (committed).
    ChatReply,
    /// Live channel: `chat.send` to the `chat.message` event at each other client.
    ChatFanout,
    /// How late the generator sent a message against its schedule: when this
    /// grows, the generator, not the server, is the bottleneck.
    SendLag,
    /// Crowd: `task.request` to a reply carrying a reservation (committed).
    Grant,
    /// Crowd: `task.heartbeat` to its reply.
    Heartbeat,
}

impl Hist {
    pub const ALL: [Hist; 10] = [
        Hist::Connect,
        Hist::Sync,
        Hist::Fanout,
        Hist::Ack,
        Hist::Hello,
        Hist::ChatReply,
        Hist::ChatFanout,
        Hist::SendLag,
        Hist::Grant,
        Hist::Heartbeat,
    ];

    /// The name used in reports and SLO keys (`<name>_p99_ms`).
    pub fn name(self) -> &'static str {
        match self {
            Hist::Connect => "connect",
            Hist::Sync => "sync",
            Hist::Fanout => "fanout",
            Hist::Ack => "ack",
            Hist::Hello => "hello",
            Hist::ChatReply => "chat_reply",
            Hist::ChatFanout => "chat_fanout",
            Hist::SendLag => "send_lag",
            Hist::Grant => "grant",
            Hist::Heartbeat => "heartbeat",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters shared by every task.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sockets open right now.
    pub open: AtomicI64,
    /// Sockets that connected (and, for y-websocket, synced).
    pub connected: AtomicU64,
    /// Connection attempts that failed.
    pub connect_failed: AtomicU64,
    /// Sockets closed or broken before the generator closed them.
    pub dropped: AtomicU64,
    /// Document updates sent.
    pub edits_sent: AtomicU64,
    /// Updates received by peers of their sender.
    pub deliveries: AtomicU64,
    /// Updates echoed to their sender.
    pub acks: AtomicU64,
    /// Chat messages sent.
    pub chat_sent: AtomicU64,
    /// Successful chat replies.
    pub chat_replies: AtomicU64,
    /// `chat.message` events received from our own messages, at any client.
    pub chat_events: AtomicU64,
    /// Crowd: reservations granted and answers acknowledged, whole run.
    pub grants: AtomicU64,
    pub answers: AtomicU64,
    /// The same for requests sent inside the measured window (throughput).
    pub grants_in_window: AtomicU64,
    pub answers_in_window: AtomicU64,
    /// Receipts (deliveries, echoes, replies, events) still expected; the
    /// drain phase waits for this to reach zero.
    pub outstanding: AtomicI64,
    /// Frames received that the generator did not expect (unknown update keys,
    /// unparseable JSON): a sign of a protocol mismatch, not of load.
    pub unexpected: AtomicU64,
}

/// All measurements of one run.
pub struct Metrics {
    shards: Box<[Mutex<Vec<Histogram<u64>>>]>,
    pub counters: Counters,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// `shards` histogram sets; about twice the worker threads is plenty.
    pub fn new(shards: usize) -> anyhow::Result<Metrics> {
        let mut all = Vec::with_capacity(shards.max(1));
        for _ in 0..shards.max(1) {
            all.push(Mutex::new(new_set()?));
        }
        Ok(Metrics {
            shards: all.into_boxed_slice(),
            counters: Counters::default(),
            errors: Mutex::new(BTreeMap::new()),
        })
    }

    /// Records one latency into the shard of `client`.
    pub fn record(&self, client: usize, hist: Hist, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        let shard = &self.shards[client % self.shards.len()];
        // A poisoned shard means a recording task panicked; keep measuring.
        let mut set = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(histogram) = set.get_mut(hist.index()) {
            histogram.saturating_record(micros);
        }
    }

    /// Counts one error under `cause` (e.g. "closed 4008", "connect: refused").
    pub fn error(&self, cause: impl Into<String>) {
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *errors.entry(cause.into()).or_insert(0) += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn error_total(&self) -> u64 {
        self.errors().values().sum()
    }

    /// One histogram merged over the shards.
    pub fn merged(&self, hist: Hist) -> anyhow::Result<Histogram<u64>> {
        let mut merged = new_histogram()?;
        for shard in &self.shards {
            let set = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(histogram) = set.get(hist.index()) {
                merged
                    .add(histogram)
                    .map_err(|error| anyhow::anyhow!("merging histograms: {error:?}"))?;
            }
        }
        Ok(merged)
    }

    /// Summaries of every histogram that recorded something.
    pub fn summaries(&self) -> anyhow::Result<BTreeMap<&'static str, Summary>> {
        let mut out = BTreeMap::new();
        for hist in Hist::ALL {
            let merged = self.merged(hist)?;
            if !merged.is_empty() {
                out.insert(hist.name(), Summary::of(&merged));
            }
        }
        Ok(out)
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3)
        .map_err(|error| anyhow::anyhow!("histogram: {error:?}"))
}

fn new_set() -> anyhow::Result<Vec<Histogram<u64>>> {
    Hist::ALL.iter().map(|_| new_histogram()).collect()
}

/// Percentiles of one histogram, in milliseconds (fractional).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(histogram: &Histogram<u64>) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Summary {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }

    /// `(suffix, value)` pairs for SLO keys: `p50`, `p90`, `p99`, `p999`, `max`, `mean`.
    pub fn fields(&self) -> [(&'static str, f64); 6] {
        [
            ("p50", self.p50_ms),
            ("p90", self.p90_ms),
            ("p99", self.p99_ms),
            ("p999", self.p999_ms),
            ("max", self.max_ms),
            ("mean", self.mean_ms),
        ]
    }
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Adds to a counter.
pub fn add(counter: &AtomicU64, value: u64) {
    counter.fetch_add(value, Ordering::Relaxed);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let metrics = Metrics::new(3).unwrap();
        // 1..=1000 ms spread over several shards; merging must see them all.
        for (client, ms) in (1..=1000u64).enumerate() {
            metrics.record(client, Hist::Fanout, Duration::from_millis(ms));
        }
        let summaries = metrics.summaries().unwrap();
        assert_eq!(summaries.len(), 1, "only recorded histograms are reported");
        let fanout = &summaries["fanout"];
        assert_eq!(fanout.count, 1000);
        let close = |value: f64, expected: f64| (value - expected).abs() <= expected * 0.002;
        assert!(close(fanout.p50_ms, 500.0), "{fanout:?}");
        assert!(close(fanout.p90_ms, 900.0), "{fanout:?}");
        assert!(close(fanout.p99_ms, 990.0), "{fanout:?}");
        assert!(close(fanout.max_ms, 1000.0), "{fanout:?}");
        assert!(close(fanout.mean_ms, 500.5), "{fanout:?}");
    }

    #[test]
    fn errors_by_cause() {
        let metrics = Metrics::new(1).unwrap();
        metrics.error("closed 4008");
        metrics.error("closed 4008");
        metrics.error("connect: refused");
        assert_eq!(metrics.error_total(), 3);
        assert_eq!(metrics.errors()["closed 4008"], 2);
    }

    #[test]
    fn extreme_latencies_are_clamped() {
        let metrics = Metrics::new(1).unwrap();
        metrics.record(0, Hist::Ack, Duration::ZERO);
        metrics.record(0, Hist::Ack, Duration::from_secs(3600));
        let ack = metrics.merged(Hist::Ack).unwrap();
        assert_eq!(ack.len(), 2);
        assert!(ack.max() >= MAX_MICROS && ack.min() == 1);
    }
}
