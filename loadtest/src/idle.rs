//! Connection capacity: synced y-websocket connections that do nothing.
//!
//! Connections are opened in steps of `--step`; after each step has settled
//! the server's RSS is read, so the report shows memory per connection as the
//! count grows, not one figure that hides a slope. Connections stay alive on
//! the server's WebSocket pings (tungstenite answers them while the socket is
//! being read) or, with `--awareness`, on the y-websocket provider's 15 s
//! awareness renewals. At the end they are held for `--duration`, so a server
//! that drops idle sockets shows up as dropped connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::coedit::{AWARENESS_RENEWAL, CLOSE_TIMEOUT};
use crate::metrics::{Hist, add};
use crate::procstat::Process;
use crate::run::Ctx;
use crate::ywire::{Incoming, awareness_frame, next_incoming, open_doc, sync};

/// Longest a step may take: connect and sync timeouts, plus queueing behind
/// `--connect-concurrency`, with margin.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// The server's memory after one step.
#[derive(Debug, Clone, Serialize)]
pub struct IdleStep {
    /// Connections this process has open (synced, not dropped).
    pub connections: i64,
    /// Connection attempts of this step that failed.
    pub failed: u64,
    /// Time to open and sync this step's connections.
    pub step_seconds: f64,
    pub server_rss_kib: Option<u64>,
    /// Sockets the server holds (all generator processes together).
    pub server_sockets: Option<u64>,
    /// (RSS now − RSS before this process's first connection) / this
    /// process's open connections.
    pub bytes_per_connection: Option<f64>,
    /// The anonymous part of the server's RSS: its heap and stacks, without
    /// the file pages it maps (its binary; SQLite maps the database file
    /// once per store connection, so the rooms' first reads grow RSS by
    /// pages of the kernel's shared page cache, not by memory of its own).
    pub server_anon_kib: Option<u64>,
    /// (anonymous RSS now − before) / open connections.
    pub anon_bytes_per_connection: Option<f64>,
    /// (anonymous RSS now − at the previous step) / connections opened
    /// since: the cost of one more connection once the rooms are loaded
    /// (every step spreads its clients over all rooms).
    pub marginal_anon_bytes_per_connection: Option<f64>,
    pub generator_rss_kib: Option<u64>,
}

/// What the idle scenario hands to the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleOutcome {
    pub server_rss_kib_before: Option<u64>,
    pub server_anon_kib_before: Option<u64>,
    pub server_sockets_before: Option<u64>,
    pub steps: Vec<IdleStep>,
    /// Connections still open after holding them for `--duration`.
    pub held: i64,
    /// Server CPU while the connections were held, in % of one core: the
    /// price of keeping idle sockets alive (pings, timers).
    pub server_hold_cpu_percent: Option<f64>,
}

/// Runs the steps, holds, and closes everything.
pub async fn run(ctx: Arc<Ctx>) -> IdleOutcome {
    let server = ctx.cli.server_pid.map(Process::Pid);
    let rss_before = server.and_then(|process| process.rss_kib().ok());
    let anon_before = server.and_then(|process| process.anon_kib().ok());
    let server_sockets_before = server.and_then(|process| process.socket_count().ok());
    let mut outcome = IdleOutcome {
        server_rss_kib_before: rss_before,
        server_anon_kib_before: anon_before,
        server_sockets_before,
        ..IdleOutcome::default()
    };
    let clients: Vec<(usize, usize)> = (0..ctx.cli.clients_per_room)
        .flat_map(|slot| (0..ctx.rooms.len()).map(move |position| (position, slot)))
        .collect();
    let settled = Arc::new((AtomicUsize::new(0), Notify::new()));
    let mut handles = Vec::with_capacity(clients.len());
    for batch in clients.chunks(ctx.cli.step) {
        let step_started = Instant::now();
        let failed_before = ctx.metrics.counters.connect_failed.load(Ordering::Relaxed);
        let target = handles.len() + batch.len();
        for &(position, slot) in batch {
            handles.push(tokio::spawn(hold(
                ctx.clone(),
                position,
                slot,
                settled.clone(),
            )));
        }
        let wait_all = async {
            while settled.0.load(Ordering::Acquire) < target {
                let notified = settled.1.notified();
                if settled.0.load(Ordering::Acquire) >= target {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(STEP_TIMEOUT, wait_all).await.is_err() {
            ctx.metrics
                .error("idle: a step did not finish connecting in time");
        }
        let step_seconds = step_started.elapsed().as_secs_f64();
        tokio::time::sleep(ctx.cli.settle).await;
        let connections = ctx.metrics.counters.open.load(Ordering::Relaxed);
        let server_rss_kib = server.and_then(|process| process.rss_kib().ok());
        let server_anon_kib = server.and_then(|process| process.anon_kib().ok());
        let (previous_connections, previous_anon) =
            outcome.steps.last().map_or((0, anon_before), |step| {
                (step.connections, step.server_anon_kib)
            });
        let step = IdleStep {
            connections,
            failed: ctx.metrics.counters.connect_failed.load(Ordering::Relaxed) - failed_before,
            step_seconds,
            server_rss_kib,
            server_sockets: server.and_then(|process| process.socket_count().ok()),
            bytes_per_connection: per_connection(rss_before, server_rss_kib, connections),
            server_anon_kib,
            anon_bytes_per_connection: per_connection(anon_before, server_anon_kib, connections),
            marginal_anon_bytes_per_connection: per_connection(
                previous_anon,
                server_anon_kib,
                connections - previous_connections,
            ),
            generator_rss_kib: Process::OurSelf.rss_kib().ok(),
        };
        crate::report::print_idle_step(&step);
        outcome.steps.push(step);
        if ctx.stopped() {
            break;
        }
    }
    let hold_cpu_start = server.and_then(|process| process.cpu_time().ok());
    tokio::time::sleep(ctx.cli.duration).await;
    outcome.held = ctx.metrics.counters.open.load(Ordering::Relaxed);
    if let (Some(start), Some(end)) = (
        hold_cpu_start,
        server.and_then(|process| process.cpu_time().ok()),
    ) {
        let seconds = end.saturating_sub(start).as_secs_f64();
        outcome.server_hold_cpu_percent =
            Some(100.0 * seconds / ctx.cli.duration.as_secs_f64().max(f64::EPSILON));
    }
    // Receivers that are already gone need no stop signal.
    let _ = ctx.stop.send(true);
    for handle in handles {
        // A panicked holder has already been reported by the runtime.
        let _ = handle.await;
    }
    outcome
}

/// Bytes of memory per connection between two readings in KiB.
fn per_connection(before: Option<u64>, now: Option<u64>, connections: i64) -> Option<f64> {
    match (before, now) {
        (Some(before), Some(now)) if connections > 0 => {
            Some((now as f64 - before as f64) * 1024.0 / connections as f64)
        }
        _ => None,
    }
}

/// Opens, syncs, reports itself settled, then idles until the stop signal.
async fn hold(ctx: Arc<Ctx>, position: usize, slot: usize, settled: Arc<(AtomicUsize, Notify)>) {
    let number = ctx.client_number(position, slot);
    let counters = &ctx.metrics.counters;
    let mark_settled = || {
        settled.0.fetch_add(1, Ordering::AcqRel);
        settled.1.notify_waiters();
    };
    let Some(room) = ctx.rooms.get(position) else {
        mark_settled();
        return;
    };
    let permit = ctx.connect_slots.acquire().await.ok();
    let (mut ws, framing) = match open_doc(&ctx, room, Some(slot), |_| {}).await {
        Ok((ws, framing, connected)) => {
            ctx.metrics.record(number, Hist::Connect, connected);
            (ws, framing)
        }
        Err(cause) => {
            ctx.metrics.error(cause);
            add(&counters.connect_failed, 1);
            mark_settled();
            return;
        }
    };
    let synced_at = Instant::now();
    let synced = sync(&mut ws, &framing, |_| {}).await;
    drop(permit);
    if let Err(cause) = synced {
        ctx.metrics.error(cause);
        add(&counters.connect_failed, 1);
        mark_settled();
        return;
    }
    ctx.metrics.record(number, Hist::Sync, synced_at.elapsed());
    add(&counters.connected, 1);
    counters.open.fetch_add(1, Ordering::Relaxed);
    mark_settled();

    let client_id = rand::random::<u64>() & ((1 << 53) - 1);
    let mut awareness = tokio::time::interval(AWARENESS_RENEWAL);
    let mut clock = 0u64;
    let mut stop = ctx.stop.subscribe();
    let mut intact = true;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = awareness.tick(), if ctx.cli.awareness => {
                let frame = framing.wrap(awareness_frame(client_id, clock));
                clock += 1;
                if let Err(error) = ws.send(WsMessage::Binary(frame.into())).await {
                    ctx.metrics.error(format!("send: {}", crate::net::read_cause(&error)));
                    intact = false;
                    break;
                }
            }
            incoming = next_incoming(&mut ws) => {
                if let Incoming::Closed(cause) = incoming {
                    ctx.metrics.error(cause);
                    add(&counters.dropped, 1);
                    intact = false;
                    break;
                }
            }
        }
    }
    if intact {
        // The run is over either way.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
}
