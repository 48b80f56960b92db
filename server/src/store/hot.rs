//! The writer's connection, and on SQLite the hot reads that share it.
//!
//! In WAL mode a SQLite connection drops its whole page cache at the start
//! of every transaction that follows another connection's commit, and with
//! the file mapped it unmaps the file and faults its pages back in. Under a
//! crowd the committer commits every few milliseconds, so every pooled read
//! started cold, and so did every batch when the committer took a pooled
//! connection of its own each time: a profile of 5,000 workers put a
//! quarter of the SQLite threads' time in `munmap` and page faults
//! (docs/BENCHMARKS.md). The one connection that writes never sees another
//! connection's commit, so its cache stays warm; the committer keeps it
//! from batch to batch, and the small reads that every grant, answer and
//! queue push make (worker views, rankings, queue counts, sweep checks) run
//! on it between batches. On two cores, reads on one connection lose no
//! parallelism worth having; they wait at most for one batch.
//!
//! PostgreSQL keeps no per-connection page cache to lose, and serves reads
//! on many connections at once: there the hot reads use the pool.

use std::ops::{Deref, DerefMut};

use sqlx::AnyConnection;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::gate::Conn;
use super::{Backend, Store};
use crate::error::{Error, Result};

/// Connections kept for the hot reads (SQLite), opened on first use.
pub(super) struct HotReaders {
    conns: [Mutex<Option<Conn>>; HOT_READERS],
    next: AtomicUsize,
}

/// How many: a reader per core, beside the writer.
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

/// A connection for a hot read: the writer's (SQLite) or a pooled one.
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
                Backend::Postgres => Ok(HotConn::Pooled(
                    self.through(&self.reads, at, self.pool.acquire()).await?,
                )),
                Backend::Sqlite => {
                    let mut reader = self.hot_readers.any().await;
                    if reader.is_none() {
                        *reader = Some(self.through(&self.reads, at, self.pool.acquire()).await?);
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
