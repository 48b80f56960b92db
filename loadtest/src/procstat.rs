//! CPU time and resident memory of a process, from Linux `/proc`.
//!
//! The server under test runs on the same machine, so `/proc/PID/stat`
//! (user + system time) read before and after the measured window gives the
//! server's CPU cost per edit without any cooperation from the server, for
//! Crowdroom and for a Node peer alike. The generator reads its own figures
//! the same way, to show when it, not the server, is the bottleneck.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};

/// `/proc` reports CPU times in USER_HZ ticks, which the kernel ABI fixes at
/// 100 per second on every architecture Linux exposes it for.
const TICKS_PER_SECOND: u64 = 100;

/// Which process to read: a PID, or this process.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    Pid(u32),
    OurSelf,
}

impl Process {
    fn path(self, file: &str) -> String {
        match self {
            Process::Pid(pid) => format!("/proc/{pid}/{file}"),
            Process::OurSelf => format!("/proc/self/{file}"),
        }
    }

    /// User plus system CPU time used so far (all threads).
    pub fn cpu_time(self) -> anyhow::Result<Duration> {
        let path = self.path("stat");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let ticks = parse_cpu_ticks(&text).with_context(|| format!("parsing {path}"))?;
        Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
    }

    /// Open sockets (of any kind: the listener, clients, database files are
    /// not sockets), counted from `/proc/PID/fd`: the server's own view of how
    /// many connections it holds, whichever generator processes opened them.
    pub fn socket_count(self) -> anyhow::Result<u64> {
        let path = self.path("fd");
        let mut sockets = 0;
        for entry in std::fs::read_dir(&path).with_context(|| format!("reading {path}"))? {
            // A descriptor closed while we list is simply not counted.
            let Ok(entry) = entry else { continue };
            if std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
            {
                sockets += 1;
            }
        }
        Ok(sockets)
    }

    /// Resident set size in KiB.
    pub fn rss_kib(self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS")
    }

    /// The anonymous part of the resident set in KiB: what the process
    /// allocated (heap, stacks), without file pages it maps (its binary, a
    /// SQLite database mapped by each connection), which are the kernel's
    /// page cache, shared and reclaimable.
    pub fn anon_kib(self) -> anyhow::Result<u64> {
        self.status_kib("RssAnon")
    }

    fn status_kib(self, field: &str) -> anyhow::Result<u64> {
        let path = self.path("status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_status_kib(&text, field).with_context(|| format!("parsing {path}"))
    }
}

/// The CPU time a PostgreSQL cluster on this machine spends for one
/// database, read from `/proc` like the server's own.
///
/// Counted: the postmaster's children whose process title names the
/// database (the backends serving it; PostgreSQL sets a title like
/// `postgres: 15/main: USER DATABASE 127.0.0.1(PORT) idle`) and the
/// cluster's background processes (WAL writer, checkpointer, background
/// writer, ...), which work for every database of the cluster: on a shared
/// machine they may also carry a little of someone else's load. Not counted:
/// backends of other databases, the postmaster itself.
///
/// Backends come and go (the server's pool closes a connection idle for 30
/// s), so each process is followed by PID and start time: `sample` keeps its
/// ticks at first sight (0 when it was born after the first sample) and at
/// the latest sample; a process that exits keeps its last reading. Sampled
/// every second or so, a backend's CPU is missed only for its last interval
/// before exiting, when it was idle anyway.
#[derive(Debug, Clone)]
pub struct PostgresCpu {
    postmaster: u32,
    database: String,
    /// (PID, start time in ticks since boot) to (ticks at first sight, latest ticks).
    seen: HashMap<(u32, u64), (u64, u64)>,
    sampled: bool,
}

/// Titles of a PostgreSQL cluster's background processes (PostgreSQL 10 to 17).
const POSTGRES_BACKGROUND: [&str; 7] = [
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "archiver",
    "stats collector",
];

impl PostgresCpu {
    pub fn new(postmaster: u32, database: &str) -> PostgresCpu {
        PostgresCpu {
            postmaster,
            database: database.to_owned(),
            seen: HashMap::new(),
            sampled: false,
        }
    }

    /// Reads every child of the postmaster once.
    pub fn sample(&mut self) -> anyhow::Result<()> {
        for entry in std::fs::read_dir("/proc").context("reading /proc")? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            // A process that exits while we list is simply not read.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Ok(fields) = parse_child_fields(&stat) else {
                continue;
            };
            if fields.parent != self.postmaster {
                continue;
            }
            let Ok(title) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if !counts_for(&String::from_utf8_lossy(&title), &self.database) {
                continue;
            }
            let first = if self.sampled { 0 } else { fields.ticks };
            let reading = self
                .seen
                .entry((pid, fields.started))
                .or_insert((first, fields.ticks));
            reading.1 = fields.ticks;
        }
        self.sampled = true;
        Ok(())
    }

    /// CPU time of the counted processes between the first and the latest sample.
    pub fn cpu_time(&self) -> Duration {
        let ticks: u64 = self
            .seen
            .values()
            .map(|(first, latest)| latest.saturating_sub(*first))
            .sum();
        Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
    }
}

/// Whether a child of the postmaster with this title works for `database`.
fn counts_for(title: &str, database: &str) -> bool {
    // The title may be padded with NULs (the space argv held).
    let title = title.trim_end_matches('\0').replace('\0', " ");
    title.split_whitespace().any(|word| word == database)
        || POSTGRES_BACKGROUND
            .iter()
            .any(|background| title.contains(background))
}

/// What `PostgresCpu` needs from a `/proc/PID/stat` line.
struct ChildFields {
    parent: u32,
    started: u64,
    ticks: u64,
}

/// ppid (field 4), utime + stime (14, 15) and starttime (22), counted after
/// the command name as in [`parse_cpu_ticks`].
fn parse_child_fields(stat: &str) -> anyhow::Result<ChildFields> {
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no `)` after the command name")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(index)
            .with_context(|| format!("no field {}", index + 3))?
            .parse()?)
    };
    Ok(ChildFields {
        parent: u32::try_from(field(1)?)?,
        started: field(19)?,
        ticks: parse_cpu_ticks(stat)?,
    })
}

/// Busy and total CPU ticks of the whole machine (all cores), from the
/// first line of `/proc/stat`: tells whether the machine, not one process,
/// was saturated.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
}

impl MachineTicks {
    pub fn read() -> anyhow::Result<MachineTicks> {
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        parse_machine_ticks(&text)
    }

    /// Busy share of all cores between `earlier` and `self`, in % of one core
    /// (so 200 means both cores of a 2-core machine were busy).
    pub fn busy_percent_since(&self, earlier: &MachineTicks, cores: usize) -> f64 {
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        100.0 * cores as f64 * busy / total
    }
}

/// `cpu  user nice system idle iowait irq softirq steal ...`: busy is
/// everything but idle and iowait.
fn parse_machine_ticks(stat: &str) -> anyhow::Result<MachineTicks> {
    let line = stat.lines().next().context("empty /proc/stat")?;
    let mut fields = line.split_whitespace();
    if fields.next() != Some("cpu") {
        bail!("/proc/stat does not start with the cpu line");
    }
    let values: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>()?;
    if values.len() < 5 {
        bail!("short cpu line in /proc/stat");
    }
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    Ok(MachineTicks {
        busy: total - idle,
        total,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may contain spaces or parentheses,
/// so fields are counted after the last `)`.
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no `)` after the command name")?;
    // After the name: field 3 (state) is index 0, so utime (14) is index 11.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next().context("no utime")?.parse()?;
    let stime: u64 = fields.next().context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// A `Field:   N kB` line of `/proc/PID/status`, in KiB.
fn parse_status_kib(status: &str, field: &str) -> anyhow::Result<u64> {
    for line in status.lines() {
        let Some(rest) = line
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let value: u64 = parts
            .next()
            .with_context(|| format!("empty {field}"))?
            .parse()?;
        if parts.next() != Some("kB") {
            bail!("{field} is not in kB");
        }
        return Ok(value);
    }
    bail!("no {field} line (a zombie or kernel thread?)")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let stat = "4242 (node (worker) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 11 0 9999 1000000 5000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 325);
    }

    #[test]
    fn rss_line() {
        let status = "Name:\tcrowdroom\nVmPeak:\t  100 kB\nVmRSS:\t   51234 kB\nRssAnon:\t   40000 kB\nRssFile:\t   11234 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmRSS").unwrap(), 51234);
        assert_eq!(parse_status_kib(status, "RssAnon").unwrap(), 40000);
        assert!(parse_status_kib("Name:\tx\n", "VmRSS").is_err());
        // A field whose name starts another's is not confused with it.
        assert!(parse_status_kib("VmRSSx:\t5 kB\n", "VmRSS").is_err());
    }

    #[test]
    fn machine_line() {
        let ticks = parse_machine_ticks("cpu  100 0 50 800 40 0 10 0 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!((ticks.busy, ticks.total), (160, 1000));
        let later = MachineTicks {
            busy: 260,
            total: 1200,
        };
        assert!((later.busy_percent_since(&ticks, 2) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn postgres_children_are_counted_by_title() {
        let database = "crowd_7_42";
        let backend = "postgres: 15/main: postgres crowd_7_42 127.0.0.1(5544) idle\0\0\0";
        let other = "postgres: 15/main: postgres test 127.0.0.1(5545) idle\0\0";
        // A database whose name only starts like ours is another database.
        let longer = "postgres: 15/main: postgres crowd_7_420 127.0.0.1(5546) idle";
        assert!(counts_for(backend, database));
        assert!(counts_for("postgres: 15/main: walwriter \0\0", database));
        assert!(counts_for("postgres: checkpointer ", database));
        assert!(!counts_for(other, database));
        assert!(!counts_for(longer, database));
        let stat = "2259 (postgres) S 2258 2259 2259 0 -1 4194368 1447 0 0 0 91 609 0 0 20 0 1 0 3610 223252480 19154";
        let fields = parse_child_fields(stat).unwrap();
        assert_eq!(
            (fields.parent, fields.started, fields.ticks),
            (2258, 3610, 700)
        );
    }

    #[test]
    fn postgres_cpu_follows_processes_that_come_and_go() {
        let mut cpu = PostgresCpu::new(1, "db");
        cpu.seen.insert((10, 5), (100, 150));
        // Born after the first sample: all its ticks count.
        cpu.seen.insert((11, 900), (0, 30));
        assert_eq!(cpu.cpu_time(), Duration::from_millis(800));
        // Our own process is no child of PID 1's PostgreSQL: sampling finds
        // nothing to add, and keeps what it had.
        cpu.postmaster = u32::MAX;
        cpu.sample().unwrap();
        assert_eq!(cpu.cpu_time(), Duration::from_millis(800));
    }

    #[test]
    fn reads_our_own_process() {
        let rss = Process::OurSelf.rss_kib().unwrap();
        let anon = Process::OurSelf.anon_kib().unwrap();
        assert!(anon > 0 && anon <= rss, "anon {anon} KiB, RSS {rss} KiB");
        Process::OurSelf.cpu_time().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(Process::OurSelf.socket_count().unwrap() >= 1);
        drop(listener);
    }
}
