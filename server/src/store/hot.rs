//! Kept connections: the committer's, and on SQLite two for the hot reads.
//!
//! In WAL mode a SQLite connection drops its whole page cache at the start
//! of every transaction that follows another connection's commit, and with
//! the file mapped it unmaps the file and faults its pages back in. Under a
//! crowd the committer commits every few milliseconds, so every pooled read
//! started cold, and so did every batch when the committer took a pooled
//! connection each time: a profile of 5,000 workers put a quarter of the
//! SQLite threads' time in `munmap` and page faults (docs/BENCHMARKS.md,
//! "third session"). So the committer keeps one connection from batch to
//! batch (`Store::write_batch`), and the small reads that every grant,
//! answer and queue push make (worker views, rankings, queue counts, sweep
//! checks, projects) go to one of two kept reader connections: each starts
//! cold once per commit, not once per read. Reads on the writer's own
//! connection cost less CPU still, but queued behind every commit's
//! `fsync`: at 10,000 workers the grant p99 was 0.3-0.9 s, against about
//! 0.1-0.25 s with two readers beside it.
//!
//! PostgreSQL keeps no per-connection page cache to lose, and serves reads
//! on many connections at once: there the hot reads use the pool.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::AnyConnection;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::gate::Conn;
use super::{Backend, Store};
use crate::error::{Error, Result};

/// Connections kept for the hot reads (SQLite), opened on first use.
pub(super) struct HotReaders {
    conns: [Mutex<Option<Conn>>; HOT_READERS],
    next: AtomicUsize,
}

/// How many: two gave a shorter tail than one at 10,000 crowd workers
/// (docs/BENCHMARKS.md); each more starts cold once more per commit.
const HOT_READERS: usize = 2;

impl Default for HotReaders {
    fn default() -> HotReaders {
        HotReaders {
            conns: std::array::from_fn(|_| Mutex::new(None)),
            next: AtomicUsize::new(0),
        }
    }
}

impl HotReaders {
    /// A free one if any, else the next in turn when it is free.
    async fn any(&self) -> MutexGuard<'_, Option<Conn>> {
        if let Some(free) = self.conns.iter().find_map(|conn| conn.try_lock().ok()) {
            return free;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % HOT_READERS;
        let [first, ..] = &self.conns;
        self.conns.get(turn).unwrap_or(first).lock().await
    }

    /// Returns the kept connections to the pool (at shutdown).
    pub(super) async fn release(&self) {
        for conn in &self.conns {
            *conn.lock().await = None;
        }
    }
}

/// A connection for a hot read: a kept one (SQLite) or a pooled one.
pub(crate) enum HotConn<'a> {
    Kept(MappedMutexGuard<'a, Conn>),
    Pooled(Conn),
}

impl Store {
    /// The connection for a read of the live paths (see the module doc).
    #[track_caller]
    pub(crate) fn hot(&self) -> impl Future<Output = Result<HotConn<'_>>> + Send + '_ {
        let at = std::panic::Location::caller();
        async move {
            match self.backend {
                Backend::Postgres => Ok(HotConn::Pooled(self.pooled(&self.reads, at).await?)),
                Backend::Sqlite => {
                    let mut reader = self.hot_readers.any().await;
                    if reader.is_none() {
                        *reader = Some(self.pooled(&self.reads, at).await?);
                    }
                    MutexGuard::try_map(reader, Option::as_mut)
                        .map(HotConn::Kept)
                        .map_err(|_| {
                            Error::Internal("the hot reader's connection is missing".into())
                        })
                }
            }
        }
    }
}

impl Deref for HotConn<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            HotConn::Kept(conn) => conn,
            HotConn::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for HotConn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            HotConn::Kept(conn) => conn,
            HotConn::Pooled(conn) => conn,
        }
    }
}
