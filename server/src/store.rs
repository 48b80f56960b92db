//! Durable storage: one [`Store`] with domain methods over SQLite (the
//! embedded default) or PostgreSQL (selected by a `postgres://` URL).
//!
//! Both backends go through sqlx's `Any` driver with runtime queries, so
//! every query is written once with `$N` placeholders and portable types
//! (TEXT ids, BIGINT millisecond timestamps, blobs). Only the migrations
//! differ per backend. Actors never hold a connection: they call these
//! methods, and writes on the hot path go through the group-commit
//! [`crate::committer`].

mod access;
mod chat;
mod consensus;
mod console;
mod counts;
mod docs;
mod earnings;
mod effects;
mod export;
mod floor;
mod gate;
mod lease;
mod ledger;
mod load;
mod moderation;
mod operator;
mod quality;
mod sql;
mod thread;
mod work;
mod write;

use std::str::FromStr;
use std::time::Duration;

use crowdroom_work::project::ProjectConfig;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};

pub use access::{MemberRow, RoomRow, TokenRow};
pub use chat::ChatMessage;
pub use consensus::{ReviewDecision, Settled, TaskReview};
pub use console::{RoomActivity, TaskAnswer};
pub use crowdroom_work::queue::Loaded;
pub use docs::StoredDoc;
pub use earnings::{Earnings, LedgerSummary};
pub use export::{AnswerRow, ExportRow};
pub use floor::{DAILY_MS, FloorReason, FloorRun, GRACE_MS, Payout, PayoutLine, TopUpLine};
pub use lease::{ProcessId, RoomLease};
pub use ledger::{Action, LedgerEntry, LedgerEvent};
pub use load::WorkRows;
pub use moderation::{Announcement, ModerationEntry, Mute, RoomModeration};
pub use operator::Operator;
pub use quality::WorkerQuality;
pub use work::{ImportReport, MemberTags, TaskRow, WorkerTask};
pub use write::{WriteOp, WriteOutcome};

use gate::{Conn, Gated, WriteTx};

use crate::error::{Error, Result};

/// The embedded migrations of one backend, in order. Never edit an applied
/// one: add the next file.
macro_rules! migrations {
    ($backend:literal) => {
        [
            (
                "init",
                include_str!(concat!("../migrations/", $backend, "/0001_init.sql")),
            ),
            (
                "work",
                include_str!(concat!("../migrations/", $backend, "/0002_work.sql")),
            ),
            (
                "quality",
                include_str!(concat!("../migrations/", $backend, "/0003_quality.sql")),
            ),
            (
                "ledger",
                include_str!(concat!("../migrations/", $backend, "/0004_ledger.sql")),
            ),
            (
                "reviews",
                include_str!(concat!("../migrations/", $backend, "/0005_reviews.sql")),
            ),
            (
                "matching",
                include_str!(concat!("../migrations/", $backend, "/0006_matching.sql")),
            ),
            (
                "interests",
                include_str!(concat!("../migrations/", $backend, "/0007_interests.sql")),
            ),
            (
                "moderation",
                include_str!(concat!("../migrations/", $backend, "/0008_moderation.sql")),
            ),
            (
                "unused_indexes",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0009_unused_indexes.sql"
                )),
            ),
            (
                "room_leases",
                include_str!(concat!("../migrations/", $backend, "/0010_room_leases.sql")),
            ),
            (
                "memory_indexes",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0011_memory_indexes.sql"
                )),
            ),
            (
                "implied_first_events",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0012_implied_first_events.sql"
                )),
            ),
            (
                "pay_floor",
                include_str!(concat!("../migrations/", $backend, "/0013_pay_floor.sql")),
            ),
            (
                "operators",
                include_str!(concat!("../migrations/", $backend, "/0014_operators.sql")),
            ),
        ]
    };
}

/// Which database sits behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database. Cheap to clone (a pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Every read of the pool goes through one gate and every write
    /// transaction through the other (see [`gate`]).
    reads: gate::Gate,
    writes: gate::Gate,
    /// Where the committer runs (see [`thread`]).
    thread: std::sync::Arc<thread::StoreThread>,
    backend: Backend,
    /// Projects as last read or written here, with when (see
    /// [`PROJECT_CACHE_TTL`]): every grant and answer needs the project.
    projects:
        std::sync::Arc<dashmap::DashMap<crate::ids::RoomId, (std::time::Instant, ProjectConfig)>>,
    /// The connection that writes, kept from batch to batch (see [`write`]).
    writer: std::sync::Arc<tokio::sync::Mutex<Option<Conn>>>,
}

/// How long a project read from the store is reused. A change made through
/// this process is seen at once; one made through another process sharing
/// the database, within this long.
pub const PROJECT_CACHE_TTL: Duration = Duration::from_secs(2);

/// How long a request waits for a pooled connection before failing clearly.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the SQLite file each connection maps (reads in place).
const SQLITE_MMAP_BYTES: u64 = 1 << 30;
/// A pooled connection idle this long is closed. Each holds its page
/// cache, its lookaside and (SQLite) its mapping of the file, which once
/// the load was gone still made up most of what the process held: sqlx's
/// default keeps them 10 minutes (docs/BENCHMARKS.md, "memory after the
/// load"). The writer's kept connection (`write.rs`) is not the pool's.
const POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// SQLite waits this long on a locked database before giving up (ms).
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

impl Store {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:` or
    /// `postgres://...`) and runs the migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::BadRequest(format!(
                "unsupported database URL {url:?}: use sqlite://FILE or postgres://..."
            )));
        };
        let url = match backend {
            // Create the file on first use: the embedded default needs no set-up.
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(POOL_IDLE_TIMEOUT);
        let options = match backend {
            // No ping before every acquire (sqlx's default): a connection to
            // a local file does not go stale, and the ping was one more round
            // trip to the SQLite thread for every read.
            Backend::Sqlite => options
                .max_connections(gate::POOL as u32)
                .test_before_acquire(false)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers run beside the committer; synchronous=FULL
                        // makes every acknowledged commit survive power loss too.
                        // In WAL mode a connection drops its whole page cache
                        // whenever another has committed, so under steady writes
                        // every read started cold and re-read its pages with
                        // pread (a copy per page); mapped, the file's pages are
                        // read in place. The mapping is not free either (such a
                        // read unmaps the whole file and faults it back in), but
                        // at 10,000 crowd workers it cost 15% less CPU than pread
                        // (docs/BENCHMARKS.md, "the mapped database, tried off").
                        // Statement journals (a multi-row write's undo within its
                        // batch) stay in memory, not in a temporary file: 5% of the
                        // writer's time under a crowd ("rooms own their work").
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                         PRAGMA mmap_size = {SQLITE_MMAP_BYTES}; PRAGMA temp_store = MEMORY;"
                        );
                        conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => options.max_connections(gate::POOL as u32),
        };
        // Connect once now so a database that is down says so clearly, instead
        // of the pool's later "timed out".
        let pool = options.connect(&url).await.map_err(|error| {
            Error::DatabaseDown(format!("cannot open database {}: {error}", redact(&url)))
        })?;
        Ok(Store {
            pool,
            reads: gate::Gate::new("reads", gate::READS),
            writes: gate::Gate::new("writes", gate::WRITES),
            thread: thread::StoreThread::start()?,
            backend,
            projects: Default::default(),
            writer: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection, through the gate (see [`gate`]).
    #[track_caller]
    pub(crate) fn conn(&self) -> impl Future<Output = Result<Conn>> + Send + '_ {
        self.pooled(&self.reads, std::panic::Location::caller())
    }

    /// A pooled connection under a permit of `gate`; `at` is the store
    /// method's caller, for the gate's reports.
    fn pooled<'a>(
        &'a self,
        gate: &'a gate::Gate,
        at: &'static std::panic::Location<'static>,
    ) -> impl Future<Output = Result<Conn>> + Send + 'a {
        self.through(gate, at, self.pool.acquire())
    }

    /// Takes a permit of `gate`, then what `open` gives (a pooled connection
    /// or a transaction on one), and logs an `open` that took over a second
    /// behind the gate, where it should not wait at all, with the pool's state.
    async fn through<T>(
        &self,
        gate: &gate::Gate,
        at: &'static std::panic::Location<'static>,
        open: impl Future<Output = sqlx::Result<T>>,
    ) -> Result<Gated<T>> {
        let permit = gate.permit(at).await?;
        let started = std::time::Instant::now();
        let inner = open.await;
        let waited = started.elapsed();
        if waited > Duration::from_secs(1) {
            tracing::warn!(
                %at,
                ?waited,
                size = self.pool.size(),
                idle = self.pool.num_idle(),
                "slow pooled connection behind the gate"
            );
        }
        Ok(Gated {
            inner: inner?,
            _permit: permit,
        })
    }

    /// A connection for the writer to keep, under a permit of the write
    /// gate (see [`write`]).
    #[track_caller]
    fn writer_conn(&self) -> impl Future<Output = Result<Conn>> + Send + '_ {
        self.pooled(&self.writes, std::panic::Location::caller())
    }

    /// Runs the embedded migrations for this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => migrations!("sqlite"),
            Backend::Postgres => migrations!("postgres"),
        };
        let migrations = (1..)
            .zip(sql)
            .map(|(version, (name, sql))| {
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first fails with SQLITE_BUSY when it tries to write after another
    /// connection has committed, whatever the busy timeout.
    #[track_caller]
    pub(crate) fn begin_write(&self) -> impl Future<Output = Result<WriteTx>> + Send + '_ {
        let at = std::panic::Location::caller();
        self.through(&self.writes, at, async move {
            match self.backend {
                Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => self.pool.begin().await,
            }
        })
    }

    /// A cheap round trip, for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to return (end of shutdown).
    pub async fn close(&self) {
        // The writer's kept connection goes back first: closing waits for
        // every connection to return.
        *self.writer.lock().await = None;
        self.pool.close().await;
    }
}

/// Hides a password in a database URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self> {
        match raw {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            other => Err(Error::BadRequest(format!("unknown backend {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
