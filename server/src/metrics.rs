//! Prometheus metrics, served as text at `/metrics`.
//!
//! One [`Metrics`] value is shared by every task; each field is an atomic,
//! so updating one on the message path costs an atomic add and no lock.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Which socket kind a connection metric counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

pub const YJS: KindLabel = KindLabel { kind: "yjs" };
pub const LIVE: KindLabel = KindLabel { kind: "live" };

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections by kind.
    pub connections: Family<KindLabel, Gauge>,
    /// Room actors in memory.
    pub rooms_loaded: Gauge,
    /// Documents in memory.
    pub docs_loaded: Gauge,
    /// Frames received from clients, by kind.
    pub messages_in: Family<KindLabel, Counter>,
    /// Frames queued to clients, by kind.
    pub messages_out: Family<KindLabel, Counter>,
    /// Clients closed because their outbound queue was full.
    pub slow_clients_dropped: Counter,
    /// Connections closed for bad input (malformed, oversized, rate limited).
    pub bad_input_closed: Counter,
    /// Seconds from a batch's start to its commit.
    pub commit_seconds: Histogram,
    /// Writes per committed batch.
    pub commit_batch_size: Histogram,
    /// Writes that failed to commit.
    pub commit_failures: Counter,
    /// Room actors ended by a panic in a handler (their clients reconnect).
    pub rooms_crashed: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("crowdroom");
        let connections = Family::<KindLabel, Gauge>::default();
        let rooms_loaded = Gauge::default();
        let docs_loaded = Gauge::default();
        let messages_in = Family::<KindLabel, Counter>::default();
        let messages_out = Family::<KindLabel, Counter>::default();
        let slow_clients_dropped = Counter::default();
        let bad_input_closed = Counter::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        let commit_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let commit_failures = Counter::default();
        let rooms_crashed = Counter::default();
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register(
            "rooms_loaded",
            "Room actors in memory",
            rooms_loaded.clone(),
        );
        registry.register("docs_loaded", "Documents in memory", docs_loaded.clone());
        registry.register(
            "messages_in",
            "Frames received from clients",
            messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Frames queued to clients",
            messages_out.clone(),
        );
        registry.register(
            "slow_clients_dropped",
            "Clients closed because their outbound queue was full",
            slow_clients_dropped.clone(),
        );
        registry.register(
            "bad_input_closed",
            "Connections closed for bad input",
            bad_input_closed.clone(),
        );
        registry.register(
            "commit_seconds",
            "Group commit latency",
            commit_seconds.clone(),
        );
        registry.register(
            "commit_batch_size",
            "Writes per group commit",
            commit_batch_size.clone(),
        );
        registry.register(
            "commit_failures",
            "Writes that failed to commit",
            commit_failures.clone(),
        );
        registry.register(
            "rooms_crashed",
            "Room actors ended by a panic in a handler",
            rooms_crashed.clone(),
        );
        Arc::new(Metrics {
            registry,
            connections,
            rooms_loaded,
            docs_loaded,
            messages_in,
            messages_out,
            slow_clients_dropped,
            bad_input_closed,
            commit_seconds,
            commit_batch_size,
            commit_failures,
            rooms_crashed,
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
