//! The `crowd` scenario: crowd work on the live channel.
//!
//! Each room gets a single-choice project (overlap 3 to 5, gold tasks with
//! known answers) and enough tasks (`setup.rs`). Its workers join over the
//! ramp-up, ask for work, think for a lognormal time, answer the true label
//! with their own accuracy (some are spammers), heartbeat through long
//! thinks, skip now and then and chat as a Poisson process (`machine.rs`,
//! `model.rs`); one or two moderators per room watch. After the window and
//! the drain, the consensus is read back over REST and scored against the
//! truth only the generator knows, and the answers the server holds are
//! compared with the answers it acknowledged.
//!
//! Cost on the generator: one task and one timer per socket, borrowed-field
//! JSON parsing, one `String` per request sent. `send_lag` is how late a
//! worker's timer fired against its schedule (think over, heartbeat or chat
//! due): when it grows, the generator is behind, not the server.
//!
//! Module map: `model` (profiles, truth, scoring), `machine` (a worker's
//! rules), `frame` (parsing), `client` (sockets), `setup` (REST),
//! `outcome` (the report section).

pub mod client;
pub mod frame;
pub mod machine;
pub mod model;
pub mod outcome;
pub mod setup;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use self::model::{Population, Profile};
use self::outcome::{CrowdOutcome, Readback};
use self::setup::read_room;
use crate::config::Cli;
use crate::provision::in_parallel;
use crate::report::Report;
use crate::run::Ctx;

/// What every crowd task shares besides the run context.
pub struct Crowd {
    pub population: Population,
    /// Mean gap between one worker's chat messages; None: no chat.
    pub chat_every: Option<Duration>,
    pub counters: CrowdCounters,
    /// Per room (by position): answers acknowledged to our workers, whole run.
    pub acked: Vec<AtomicU64>,
}

/// The crowd's own counters (grants and answers are in `metrics::Counters`,
/// where the progress line reads them).
#[derive(Debug, Default)]
pub struct CrowdCounters {
    pub workers_joined: AtomicU64,
    pub moderators_joined: AtomicU64,
    /// `task.request`s sent.
    pub requests: AtomicU64,
    /// `task.request` answered `no_work`.
    pub no_work: AtomicU64,
    /// `task.request` answered `paused`.
    pub paused_replies: AtomicU64,
    /// Workers the server paused (by a refusal or by an answer), by kind.
    pub paused_spammers: AtomicU64,
    pub paused_honest: AtomicU64,
    /// `task.submit`s sent.
    pub submits: AtomicU64,
    /// Submits whose answer completed the task or sent it to review.
    pub settled: AtomicU64,
    /// Submits and skips refused because the reservation had run out.
    pub expired_submits: AtomicU64,
    pub skips: AtomicU64,
    pub heartbeats: AtomicU64,
    /// Heartbeats refused (`not_found`: the reservation was gone).
    pub heartbeats_refused: AtomicU64,
    /// `task.expired` events, and those about the task being thought about.
    pub expired_events: AtomicU64,
    pub expired_while_thinking: AtomicU64,
    /// Other events at workers (`queue.counts`, `queue.mine`, presence).
    pub worker_events: AtomicU64,
    /// Frames received by moderators, and the `queue.counts` among them.
    pub moderator_events: AtomicU64,
    pub moderator_counts: AtomicU64,
}

impl Crowd {
    pub fn new(cli: &Cli, rooms: usize) -> Crowd {
        Crowd {
            population: population(cli),
            chat_every: (!cli.chat_every.is_zero()).then_some(cli.chat_every),
            counters: CrowdCounters::default(),
            acked: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The worker population the options describe.
pub fn population(cli: &Cli) -> Population {
    Population {
        labels: cli.labels,
        accuracy_alpha: cli.accuracy_alpha,
        accuracy_beta: cli.accuracy_beta,
        spammer_share: cli.spammers,
        think_median: Duration::from_secs_f64(cli.think_median_ms / 1000.0),
        think_sigma: cli.think_sigma,
        skip_rate: cli.skip_rate,
    }
}

/// A client number unique across shards: workers take slots `0..clients`
/// of their room, moderators the slots after them.
pub fn client_number(cli: &Cli, room_index: usize, slot: usize) -> usize {
    room_index * (cli.clients_per_room + cli.moderators) + slot
}

/// The random source of client `number`: its profile is the first draw, so
/// the read-back can rebuild who was a spammer from the seed alone.
pub fn worker_rng(seed: u64, number: usize) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ 0xC0_FFEE ^ (number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Runs the scenario: workers and moderators over the ramp-up, the window,
/// the drain, then the read-back.
pub async fn run(ctx: &Arc<Ctx>) -> anyhow::Result<Report> {
    let crowd = Arc::new(Crowd::new(&ctx.cli, ctx.rooms.len()));
    let per_room = ctx.cli.clients_per_room + ctx.cli.moderators;
    let mut handles = Vec::with_capacity(ctx.rooms.len() * per_room);
    // Slot-major order: every room gets its first worker before any gets a second.
    for slot in 0..per_room {
        for position in 0..ctx.rooms.len() {
            let ordinal = slot * ctx.rooms.len() + position;
            let (ctx, crowd) = (ctx.clone(), crowd.clone());
            handles.push(if slot < ctx.cli.clients_per_room {
                tokio::spawn(client::run_worker(ctx, crowd, position, slot, ordinal))
            } else {
                let moderator = slot - ctx.cli.clients_per_room;
                tokio::spawn(client::run_moderator(
                    ctx, crowd, position, moderator, ordinal,
                ))
            });
        }
    }
    let window = crate::run::measure_window(ctx).await;
    for handle in handles {
        // A panicked task has been reported by the runtime already.
        let _ = handle.await;
    }
    let mut report = Report::build(&ctx.cli, &ctx.metrics, Some(&window), None, None)?;
    crate::progress::println("reading the consensus back...");
    let readback = read_back(ctx.clone(), crowd.clone()).await;
    let outcome = CrowdOutcome::gather(&ctx.cli, &ctx.metrics, &crowd, &window, readback);
    report
        .throughput_per_second
        .insert("grants", outcome.grants_per_second);
    report
        .throughput_per_second
        .insert("answers", outcome.answers_per_second);
    report.crowd = Some(outcome);
    Ok(report)
}

/// Reads every room's tasks and worker records back (blocking HTTP on a few
/// threads, off the runtime's workers).
async fn read_back(ctx: Arc<Ctx>, crowd: Arc<Crowd>) -> Result<Readback, String> {
    let work = move || -> anyhow::Result<Readback> {
        let api = format!("{}/api/v1", ctx.connector.target().http_base());
        let positions: Vec<usize> = (0..ctx.rooms.len()).collect();
        let rooms = in_parallel(positions, |agent, position| {
            let room = &ctx.rooms[position];
            let (Some(owner), Some(plan)) = (room.owner_token.as_deref(), room.crowd.as_deref())
            else {
                anyhow::bail!("room {} has no crowd plan", room.name);
            };
            let profile_of = |slot: usize| {
                let number = client_number(&ctx.cli, room.index, slot);
                Profile::draw(&crowd.population, &mut worker_rng(ctx.cli.seed, number))
            };
            let url = format!("{api}/rooms/{}", room.name);
            let (score, quality) = read_room(agent, &url, owner, plan, profile_of)?;
            Ok((position, score, quality))
        })?;
        let mut readback = Readback::default();
        for (position, score, quality) in rooms {
            let acked = crowd
                .acked
                .get(position)
                .map_or(0, |acked| acked.load(std::sync::atomic::Ordering::Relaxed));
            readback.add_room(&ctx.rooms[position].name, acked, &score, &quality);
        }
        Ok(readback)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(readback)) => Ok(readback),
        Ok(Err(error)) => Err(format!("{error:#}")),
        Err(error) => Err(format!("the read-back panicked: {error}")),
    }
}
