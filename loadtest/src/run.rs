//! What every scenario shares: the run context (options, connector,
//! metrics, rooms, timeline, stop signal) and the measured window.
//!
//! Timeline of a timed run (coedit, chat, mix):
//!
//! ```text
//! start ── ramp-up: sockets open, spread evenly ──▶ window_start ── clients send at --rate ──▶
//! window_end ── drain: wait (at most --drain) for receipts in flight ──▶ stop ── convergence check
//! ```
//!
//! Server CPU is read at `window_start` and after the drain, so it covers
//! every edit sent and its fan-out. Every loop ends at the stop signal or a
//! deadline derived from these instants, so a run always stops by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::config::{Cli, Scenario};
use crate::metrics::Metrics;
use crate::net::Connector;
use crate::procstat::{MachineTicks, PostgresCpu, Process};
use crate::provision::RoomPlan;
use crate::ywire::{Contents, UpdateKey};

/// How often the drain phase checks whether everything arrived.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How often PostgreSQL's processes are read in the window: often enough to
/// follow backends that exit (they do after 30 s idle), rare enough to cost
/// the generator nothing measurable.
const POSTGRES_POLL: Duration = Duration::from_secs(1);

/// An update on its way to the peers of its room.
pub struct Pending {
    pub sent: Instant,
    /// Slot of the sender in its room: its receipt is the acknowledgement.
    pub sender: usize,
    /// Receipts still expected (peers plus the echo).
    pub remaining: u32,
}

/// Everything a connection task needs, shared behind an `Arc`.
pub struct Ctx {
    pub cli: Cli,
    pub connector: Connector,
    pub metrics: Metrics,
    pub rooms: Vec<RoomPlan>,
    /// The run's epoch: chat bodies carry their send time relative to it.
    pub start: Instant,
    pub window_start: Instant,
    pub window_end: Instant,
    /// Set once, when every task should close its socket and return.
    pub stop: watch::Sender<bool>,
    /// Limits connection attempts in flight.
    pub connect_slots: Semaphore,
    /// Per room (by position in `rooms`): updates awaiting receipts.
    pub pending: Vec<Mutex<HashMap<UpdateKey, Pending>>>,
}

impl Ctx {
    pub fn new(cli: Cli, connector: Connector, metrics: Metrics, rooms: Vec<RoomPlan>) -> Ctx {
        let start = Instant::now();
        let window_start = start + cli.ramp_up;
        let window_end = window_start + cli.duration;
        let pending = rooms.iter().map(|_| Mutex::new(HashMap::new())).collect();
        let connect_slots = Semaphore::new(cli.connect_concurrency);
        Ctx {
            cli,
            connector,
            metrics,
            rooms,
            start,
            window_start,
            window_end,
            stop: watch::channel(false).0,
            connect_slots,
            pending,
        }
    }

    /// Sockets this process opens for the scenario.
    pub fn sockets(&self) -> usize {
        let per_room = match self.cli.scenario {
            Scenario::Mix => 2 * self.cli.clients_per_room,
            // Workers plus the moderators who watch.
            Scenario::Crowd => self.cli.clients_per_room + self.cli.moderators,
            Scenario::Idle | Scenario::Coedit | Scenario::Chat => self.cli.clients_per_room,
        };
        self.rooms.len() * per_room
    }

    /// When socket number `ordinal` (of `sockets()`) should connect: spread
    /// evenly over the ramp-up so the server sees a steady arrival rate.
    pub fn connect_at(&self, ordinal: usize) -> Instant {
        let sockets = self.sockets().max(1) as f64;
        self.start + self.cli.ramp_up.mul_f64(ordinal as f64 / sockets)
    }

    /// A global client number, unique across shards: room index × clients + slot.
    pub fn client_number(&self, room_position: usize, slot: usize) -> usize {
        self.rooms.get(room_position).map_or(0, |room| room.index) * self.cli.clients_per_room
            + slot
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn outstanding(&self) -> i64 {
        self.metrics.counters.outstanding.load(Ordering::Relaxed)
    }
}

/// Figures read from `/proc` around the window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// From window start to the end of the drain.
    pub measured: Duration,
    /// Whether every expected receipt arrived before the drain deadline.
    pub drained: bool,
    pub server_cpu: Option<Duration>,
    /// PostgreSQL's CPU for the server's database (`--postgres-pid`), same span.
    pub postgres_cpu: Option<Duration>,
    pub server_rss_kib_start: Option<u64>,
    pub server_rss_kib_end: Option<u64>,
    pub generator_cpu: Option<Duration>,
    /// The whole machine's busy CPU in % of one core (200 = 2 cores busy).
    pub machine_busy_percent: Option<f64>,
}

/// Waits through the window and the drain, reading CPU and memory at both
/// ends, then tells every task to stop.
pub async fn measure_window(ctx: &Ctx) -> Window {
    let server = ctx.cli.server_pid.map(Process::Pid);
    tokio::time::sleep_until(ctx.window_start).await;
    let server_cpu_start = server.and_then(|process| process.cpu_time().ok());
    let server_rss_kib_start = server.and_then(|process| process.rss_kib().ok());
    let generator_cpu_start = Process::OurSelf.cpu_time().ok();
    let machine_start = MachineTicks::read().ok();
    let mut postgres = match (ctx.cli.postgres_pid, &ctx.cli.postgres_database) {
        (Some(pid), Some(database)) => Some(PostgresCpu::new(pid, database)),
        _ => None,
    };
    let mut postgres_ok = sample(postgres.as_mut());
    while Instant::now() < ctx.window_end {
        let next = match postgres {
            Some(_) => (Instant::now() + POSTGRES_POLL).min(ctx.window_end),
            None => ctx.window_end,
        };
        tokio::time::sleep_until(next).await;
        postgres_ok &= sample(postgres.as_mut());
    }
    let drain_deadline = ctx.window_end + ctx.cli.drain;
    let mut drained = ctx.outstanding() <= 0;
    while !drained && Instant::now() < drain_deadline {
        tokio::time::sleep(DRAIN_POLL).await;
        drained = ctx.outstanding() <= 0;
    }
    let measured = ctx.window_start.elapsed();
    let server_cpu = match (
        server_cpu_start,
        server.and_then(|process| process.cpu_time().ok()),
    ) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    let generator_cpu = match (generator_cpu_start, Process::OurSelf.cpu_time().ok()) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    postgres_ok &= sample(postgres.as_mut());
    let postgres_cpu = postgres
        .filter(|_| postgres_ok)
        .map(|postgres| postgres.cpu_time());
    let server_rss_kib_end = server.and_then(|process| process.rss_kib().ok());
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let machine_busy_percent = match (machine_start, MachineTicks::read().ok()) {
        (Some(start), Some(end)) => Some(end.busy_percent_since(&start, cores)),
        _ => None,
    };
    // Every receiver is gone once no task holds a receiver; nothing to report then.
    let _ = ctx.stop.send(true);
    Window {
        measured,
        drained,
        server_cpu,
        postgres_cpu,
        server_rss_kib_start,
        server_rss_kib_end,
        generator_cpu,
        machine_busy_percent,
    }
}

/// Reads PostgreSQL's processes once, if asked to; false when `/proc` failed.
fn sample(postgres: Option<&mut PostgresCpu>) -> bool {
    postgres.is_none_or(|postgres| postgres.sample().is_ok())
}

/// What one editor hands back for the convergence check.
#[derive(Debug, Default)]
pub struct EditorResult {
    pub room_position: usize,
    /// The values this client wrote last, per key.
    pub own: Vec<(String, String)>,
    /// Slot 0: the full replica's map, if the client stayed connected.
    pub replica: Option<Contents>,
    /// Connected and never dropped: its edits are all expected on the server.
    pub intact: bool,
}

/// The convergence verdict over the rooms of this process.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Convergence {
    pub rooms: usize,
    pub converged: usize,
    /// Rooms whose fresh sync or replica differed from what the clients wrote
    /// (the first few, with the reason).
    pub diverged: Vec<String>,
    pub diverged_count: usize,
}

/// Compares, per room, what the clients wrote, the room's full replica and
/// a fresh client's sync.
pub async fn check_convergence(ctx: &Ctx, results: Vec<EditorResult>) -> Convergence {
    use futures_util::StreamExt;
    let mut expected: Vec<Contents> = vec![Contents::new(); ctx.rooms.len()];
    let mut replicas: Vec<Option<Contents>> = vec![None; ctx.rooms.len()];
    let mut intact = vec![true; ctx.rooms.len()];
    for result in results {
        let Some(room) = expected.get_mut(result.room_position) else {
            continue;
        };
        room.extend(result.own);
        if result.replica.is_some() {
            replicas[result.room_position] = result.replica;
        }
        intact[result.room_position] &= result.intact;
    }
    let checks = futures_util::stream::iter(ctx.rooms.iter().enumerate())
        .map(|(position, room)| async move {
            let fresh = fresh_contents(ctx, room).await;
            (position, fresh)
        })
        .buffer_unordered(ctx.cli.connect_concurrency.min(64));
    let fresh: Vec<(usize, Result<Contents, String>)> = checks.collect().await;
    let mut verdict = Convergence {
        rooms: ctx.rooms.len(),
        ..Convergence::default()
    };
    for (position, fresh) in fresh {
        let name = ctx
            .rooms
            .get(position)
            .map_or("?", |room| room.name.as_str());
        let problem = match (&fresh, &replicas[position]) {
            (Err(error), _) => Some(format!("{name}: fresh client failed: {error}")),
            (Ok(fresh), _) if fresh != &expected[position] => Some(format!(
                "{name}: fresh sync has {} keys, clients wrote {} ({} differ){}",
                fresh.len(),
                expected[position].len(),
                differing(fresh, &expected[position]),
                if intact[position] {
                    ""
                } else {
                    "; a client of this room dropped"
                }
            )),
            (Ok(_), None) => Some(format!("{name}: the full replica dropped out")),
            (Ok(fresh), Some(replica)) if replica != fresh => Some(format!(
                "{name}: full replica differs from a fresh sync ({} keys differ)",
                differing(replica, fresh)
            )),
            (Ok(_), Some(_)) => None,
        };
        match problem {
            None => verdict.converged += 1,
            Some(problem) => {
                verdict.diverged_count += 1;
                if verdict.diverged.len() < 10 {
                    verdict.diverged.push(problem);
                }
            }
        }
    }
    verdict
}

/// Keys whose values differ or that only one side has.
fn differing(left: &Contents, right: &Contents) -> usize {
    let changed = left
        .iter()
        .filter(|(key, value)| right.get(*key) != Some(*value))
        .count();
    changed + right.keys().filter(|key| !left.contains_key(*key)).count()
}

/// Opens a new client on the room's document and decodes its sync step 2.
async fn fresh_contents(ctx: &Ctx, room: &RoomPlan) -> Result<Contents, String> {
    let (mut ws, framing, _) = crate::ywire::open_doc(ctx, room, None, |_| {}).await?;
    let update = crate::ywire::sync(&mut ws, &framing, |_| {}).await?;
    // The check is done; a failed close changes nothing.
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    crate::ywire::contents_of_update(&update)
}
