//! The command line. Every option also reads an environment variable
//! (`LOADTEST_*`) so a benchmark script can set a whole run up once.
//!
//! Validation that protects the machine lives here too: the generator only
//! ever talks to loopback addresses (the sandbox forbids other targets, and a
//! load generator pointed at the wrong host by a typo is a bad day), so a
//! non-loopback `--url` or `--source-addrs` is refused before anything runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

const AFTER_HELP: &str = "\
Scenarios:
  idle    connection capacity: opens rooms x clients synced y-websocket connections in --step steps,
          holds them for --duration and reports the server's RSS per connection (--server-pid)
  coedit  rooms x clients co-edit one document per room at --rate edits/s per client; fan-out,
          acknowledgement, connect and sync latency, server CPU per edit, convergence check
  chat    clients on the live channel send chat messages at --rate; reply and event fan-out latency
  mix     coedit and chat together, on the same rooms and tokens
  crowd   crowd work on the live channel: rooms x clients workers ask for tasks, think for a lognormal
          time (--think-median-ms), answer with a per-worker accuracy (--accuracy-*, --spammers), chat
          now and then (--chat-every); --moderators per room watch. Grant and answer-ack latency,
          grants/s, answers/s, and the consensus read back and scored against the generator's truth

Large idle runs: one process can hold at most 20,000 open files. Split the rooms over several
processes with --shard 0/2, --shard 1/2 (same --seed, same --rooms), optionally each with its own
--source-addrs; see docs/BENCHMARKS.md.

Exit status: 0 ok, 1 error, 3 an --slo target was missed.";

#[derive(Debug, Clone, Parser)]
#[command(name = "crowdroom-loadtest", version, about = "Load generator for Crowdroom, other y-websocket servers and Hocuspocus", after_help = AFTER_HELP)]
pub struct Cli {
    /// What to run.
    #[arg(value_enum, env = "LOADTEST_SCENARIO")]
    pub scenario: Scenario,
    /// WebSocket base URL of the server; only 127.0.0.0/8 and localhost are allowed.
    #[arg(long, env = "LOADTEST_URL", default_value = "ws://127.0.0.1:8080")]
    pub url: String,
    /// Wire protocol of the server: crowdroom (`/yjs/{room}/{doc}` with tokens, REST
    /// provisioning, live channel), y-websocket (a generic server: `/{docname}`, no tokens)
    /// or hocuspocus (@hocuspocus/server: document-name prefix and a token handshake).
    #[arg(long, value_enum, env = "LOADTEST_PROTOCOL", default_value_t = Protocol::Crowdroom)]
    pub protocol: Protocol,
    /// An owner token of any Crowdroom room (e.g. printed by `crowdroom serve --demo`); used
    /// only to create the test rooms and their worker tokens through the REST API.
    /// With --protocol hocuspocus: the token every client authenticates with.
    #[arg(long, env = "LOADTEST_TOKEN")]
    pub token: Option<String>,
    /// Number of rooms (one document per room).
    #[arg(long, env = "LOADTEST_ROOMS", default_value_t = 10)]
    pub rooms: usize,
    /// Clients per room.
    #[arg(long, env = "LOADTEST_CLIENTS_PER_ROOM", default_value_t = 5)]
    pub clients_per_room: usize,
    /// Edits (coedit) or chat messages (chat) per second per client.
    #[arg(long, env = "LOADTEST_RATE", default_value_t = 1.0)]
    pub rate: f64,
    /// Time over which connections are opened before the measured window starts
    /// (idle opens each step as fast as --connect-concurrency allows).
    #[arg(long, env = "LOADTEST_RAMP_UP", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ramp_up: Duration,
    /// Length of the measured window (idle: how long the connections are held at the end).
    #[arg(long, env = "LOADTEST_DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// After the window, how long to wait at most for deliveries still in flight.
    #[arg(long, env = "LOADTEST_DRAIN", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Seed: room names (`lt-<seed>-<i>`) and the send schedule derive from it. Use a new
    /// seed for every run against a server that keeps documents (Crowdroom refuses
    /// existing rooms; an in-memory y-websocket server would mix old content in).
    #[arg(long, env = "LOADTEST_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Local addresses to bind client sockets to, round-robin (each address has its own
    /// ephemeral port range). Default: let the kernel choose.
    #[arg(long, env = "LOADTEST_SOURCE_ADDRS", value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// Write the full report as JSON to this file.
    #[arg(long, env = "LOADTEST_JSON")]
    pub json: Option<PathBuf>,
    /// Targets, e.g. 'fanout_p99_ms=25,ack_p99_ms=50,errors=0'; the exit status is 3 when one is missed.
    #[arg(long, env = "LOADTEST_SLO")]
    pub slo: Option<String>,
    /// PID of the server process on this machine: its CPU time and RSS are read from /proc.
    #[arg(long, env = "LOADTEST_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// PID of the PostgreSQL postmaster the server uses, on this machine: the CPU of its
    /// backends serving --postgres-database and of its background processes is read
    /// from /proc too, and reported beside the server's.
    #[arg(long, env = "LOADTEST_POSTGRES_PID", requires = "postgres_database")]
    pub postgres_pid: Option<u32>,
    /// The database the server uses on that PostgreSQL (with --postgres-pid).
    #[arg(long, env = "LOADTEST_POSTGRES_DATABASE", requires = "postgres_pid")]
    pub postgres_database: Option<String>,
    /// idle: connections added per step.
    #[arg(long, env = "LOADTEST_STEP", default_value_t = 1000)]
    pub step: usize,
    /// idle: pause after each step before the server's RSS is read.
    #[arg(long, env = "LOADTEST_SETTLE", default_value = "3s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// This process's share of the rooms, `i/n`: room k belongs to shard k mod n.
    #[arg(long, env = "LOADTEST_SHARD", default_value = "0/1", value_parser = parse_shard)]
    pub shard: Shard,
    /// Runtime worker threads (0: one per core).
    #[arg(long, env = "LOADTEST_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// coedit: size in bytes of each value written into the shared map.
    #[arg(long, env = "LOADTEST_VALUE_SIZE", default_value_t = 32)]
    pub value_size: usize,
    /// Connection attempts in flight at once. Keep it under the server's listen
    /// backlog (128 for a tokio/std listener), or dropped SYNs add 1 s retries.
    #[arg(long, env = "LOADTEST_CONNECT_CONCURRENCY", default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Send an awareness state on connect and renew it every 15 s, as the y-websocket
    /// provider does (default: rely on the server's WebSocket pings to stay alive).
    #[arg(long, env = "LOADTEST_AWARENESS")]
    pub awareness: bool,
    /// Crowdroom: the document name opened in every room.
    #[arg(long, env = "LOADTEST_DOC", default_value = "loadtest")]
    pub doc: String,
    /// crowd: moderators per room on the live channel; they only watch (count events).
    #[arg(long, env = "LOADTEST_MODERATORS", default_value_t = 1)]
    pub moderators: usize,
    /// crowd: median think time per task, ms (lognormal). 8000 is a realistic crowd; use
    /// e.g. 50 with --min-lead-time-ms 0 for a stress run.
    #[arg(long, env = "LOADTEST_THINK_MEDIAN_MS", default_value_t = 8000.0)]
    pub think_median_ms: f64,
    /// crowd: sigma of the think time's lognormal (0: every think takes the median).
    #[arg(long, env = "LOADTEST_THINK_SIGMA", default_value_t = 0.8)]
    pub think_sigma: f64,
    /// crowd: an honest worker's true accuracy is Beta(alpha, beta); 8, 2 has mean 0.8.
    #[arg(long, env = "LOADTEST_ACCURACY_ALPHA", default_value_t = 8.0)]
    pub accuracy_alpha: f64,
    #[arg(long, env = "LOADTEST_ACCURACY_BETA", default_value_t = 2.0)]
    pub accuracy_beta: f64,
    /// crowd: share of spammers, who answer uniformly at random.
    #[arg(long, env = "LOADTEST_SPAMMERS", default_value_t = 0.05)]
    pub spammers: f64,
    /// crowd: probability that a worker skips a task (`task.skip`) instead of answering.
    #[arg(long, env = "LOADTEST_SKIP_RATE", default_value_t = 0.02)]
    pub skip_rate: f64,
    /// crowd: labels of the single-choice project (2 to 8).
    #[arg(long, env = "LOADTEST_LABELS", default_value_t = 3)]
    pub labels: usize,
    /// crowd: mean time between one worker's chat messages (exponential gaps); 0s: no chat.
    #[arg(long, env = "LOADTEST_CHAT_EVERY", default_value = "120s", value_parser = humantime::parse_duration)]
    pub chat_every: Duration,
    /// crowd: regular tasks imported per room (0: enough for the run's expected answers).
    #[arg(long, env = "LOADTEST_TASKS_PER_ROOM", default_value_t = 0)]
    pub tasks_per_room: usize,
    /// crowd: gold tasks per room (known answers; new workers get 3 of them first).
    #[arg(long, env = "LOADTEST_GOLD_PER_ROOM", default_value_t = 10)]
    pub gold_per_room: usize,
    /// crowd: the project's reservation TTL; workers heartbeat every half of it while thinking.
    #[arg(long, env = "LOADTEST_RESERVATION_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub reservation_ttl: Duration,
    /// crowd: the project's min_lead_time_ms: faster answers count as too fast, and a worker
    /// with mostly too-fast answers is paused (set 0 with a short think time).
    #[arg(long, env = "LOADTEST_MIN_LEAD_TIME_MS", default_value_t = 2000)]
    pub min_lead_time_ms: u64,
}

/// What the generator does; see the help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Idle,
    Coedit,
    Chat,
    Mix,
    Crowd,
}

/// Which server dialect to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Crowdroom: tokens, `/yjs/{room}/{doc}`, `/rooms/{room}/live`, REST provisioning.
    Crowdroom,
    /// A generic y-websocket server (npm @y/websocket-server): `/{docname}`, no tokens.
    YWebsocket,
    /// npm @hocuspocus/server 3.x: every frame prefixed with the document name, an Auth
    /// message with a token (--token, default `loadtest`) before sync.
    Hocuspocus,
}

/// `i/n`: this process handles rooms whose index is `i` modulo `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether room `room` belongs to this shard.
    pub fn owns(&self, room: usize) -> bool {
        room % self.count == self.index
    }
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = text.split_once('/').ok_or("expected i/n, e.g. 0/2")?;
    let index: usize = index
        .trim()
        .parse()
        .map_err(|_| "shard index is not a number")?;
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| "shard count is not a number")?;
    if count == 0 || index >= count {
        return Err(format!("shard {index}/{count}: need 0 <= i < n"));
    }
    Ok(Shard { index, count })
}

/// The server as the generator reaches it: a loopback socket address plus the
/// host text used in URLs and `Host` headers.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as written in URLs.
    pub authority: String,
}

impl Target {
    /// Parses `ws://HOST[:PORT][/]` and refuses anything that is not loopback.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url.strip_prefix("ws://").with_context(|| {
            format!("--url {url}: only ws:// URLs are supported (the server runs on this machine)")
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') || authority.contains('?') {
            bail!(
                "--url {url}: give the base URL only (ws://HOST:PORT); the generator adds the paths"
            );
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .with_context(|| format!("--url {url}: bad port"))?,
            ),
            None => (authority, 80),
        };
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse().with_context(|| {
                format!("--url {url}: the host must be an IP address in 127.0.0.0/8 or localhost")
            })?
        };
        if !is_loopback_v4(ip) {
            bail!("--url {url}: refusing to send traffic to {ip}; only 127.0.0.0/8 is allowed");
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            authority: format!("{ip}:{port}"),
        })
    }

    /// `http://host:port`, for the REST API.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.authority)
    }
}

/// Only IPv4 loopback: the server under test listens there, and 127.0.0.0/8
/// offers many source addresses for `--source-addrs`.
pub fn is_loopback_v4(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_loopback())
}

impl Cli {
    /// Checks option combinations that clap cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        Target::parse(&self.url)?;
        for source in &self.source_addrs {
            if !is_loopback_v4(*source) {
                bail!("--source-addrs: {source} is not in 127.0.0.0/8");
            }
        }
        if self.rooms == 0 || self.clients_per_room == 0 {
            bail!("--rooms and --clients-per-room must be at least 1");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!("--rate must be a positive number of messages per second per client");
        }
        if self.step == 0 || self.connect_concurrency == 0 {
            bail!("--step and --connect-concurrency must be at least 1");
        }
        if self.protocol != Protocol::Crowdroom
            && matches!(self.scenario, Scenario::Chat | Scenario::Mix)
        {
            bail!(
                "the chat and mix scenarios need --protocol crowdroom (a y-websocket or Hocuspocus server has no live channel)"
            );
        }
        if self.protocol == Protocol::Crowdroom && self.token.is_none() {
            bail!("--protocol crowdroom needs --token OWNER_TOKEN to create the test rooms");
        }
        if self.scenario == Scenario::Coedit && self.clients_per_room < 2 {
            bail!("coedit needs at least 2 clients per room to measure fan-out");
        }
        if self.scenario == Scenario::Crowd {
            self.validate_crowd()?;
        }
        Ok(())
    }

    fn validate_crowd(&self) -> anyhow::Result<()> {
        if self.protocol != Protocol::Crowdroom {
            bail!("the crowd scenario needs --protocol crowdroom (the work engine is Crowdroom's)");
        }
        if !(2..=crate::crowd::model::LABELS.len()).contains(&self.labels) {
            bail!("--labels must be between 2 and 8");
        }
        if !(self.think_median_ms.is_finite() && self.think_median_ms > 0.0) {
            bail!("--think-median-ms must be a positive number");
        }
        if !(self.think_sigma.is_finite() && (0.0..=4.0).contains(&self.think_sigma)) {
            bail!("--think-sigma must be between 0 and 4");
        }
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if !positive(self.accuracy_alpha) || !positive(self.accuracy_beta) {
            bail!("--accuracy-alpha and --accuracy-beta must be positive");
        }
        if !(0.0..=1.0).contains(&self.spammers) || !(0.0..1.0).contains(&self.skip_rate) {
            bail!("--spammers must be in [0, 1] and --skip-rate in [0, 1)");
        }
        if self.reservation_ttl < Duration::from_secs(1) {
            bail!("--reservation-ttl must be at least 1s (the project counts it in seconds)");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert_eq!(
            Target::parse("ws://127.0.0.1:8080").unwrap().addr.port(),
            8080
        );
        assert_eq!(
            Target::parse("ws://localhost:1234/").unwrap().authority,
            "127.0.0.1:1234"
        );
        assert!(Target::parse("ws://127.0.0.9:1").is_ok());
        assert!(Target::parse("ws://10.0.0.1:8080").is_err());
        assert!(Target::parse("ws://example.com:8080").is_err());
        assert!(Target::parse("wss://127.0.0.1:8080").is_err());
        assert!(Target::parse("ws://127.0.0.1:8080/yjs").is_err());
    }

    #[test]
    fn shards() {
        assert_eq!(parse_shard("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        let shard = parse_shard("1/2").unwrap();
        assert!(shard.owns(3) && !shard.owns(4));
    }
}
