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
//!
//! A kept connection outlives any one read, so one that breaks (its SQLite
//! thread gone, an I/O error on the file) must not serve the next: a read
//! that fails that way marks its slot ([`HotConn::checked`]), and the slot's
//! next taker closes the connection and opens another. The committer drops
//! its connection after any failed batch (`Store::write_batch`), and closes
//! it when the failure was of this kind.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::AnyConnection;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::gate::Conn;
use super::{Backend, Store};
use crate::error::{Error, Result};

/// Connections kept for the hot reads (SQLite), opened on first use.
pub(super) struct HotReaders {
    slots: [Slot; HOT_READERS],
    next: AtomicUsize,
}

/// One kept connection, and whether a read on it failed in a way that
/// breaks it (see [`breaks_connection`]).
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Conn>>,
    broken: AtomicBool,
}

/// How many: two gave a shorter tail than one at 10,000 crowd workers
/// (docs/BENCHMARKS.md); each more starts cold once more per commit.
const HOT_READERS: usize = 2;

impl Default for HotReaders {
    fn default() -> HotReaders {
        HotReaders {
            slots: std::array::from_fn(|_| Slot::default()),
            next: AtomicUsize::new(0),
        }
    }
}

impl HotReaders {
    /// A free slot if any, else the next in turn when it is free; with the
    /// slot's broken flag.
    async fn any(&self) -> (MutexGuard<'_, Option<Conn>>, &AtomicBool) {
        let free = self.slots.iter().find_map(|slot| {
            let conn = slot.conn.try_lock().ok()?;
            Some((conn, &slot.broken))
        });
        if let Some(free) = free {
            return free;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % HOT_READERS;
        let [first, ..] = &self.slots;
        let slot = self.slots.get(turn).unwrap_or(first);
        (slot.conn.lock().await, &slot.broken)
    }

    /// Returns the kept connections to the pool (at shutdown).
    pub(super) async fn release(&self) {
        for slot in &self.slots {
            *slot.conn.lock().await = None;
        }
    }
}

/// A connection for a hot read: a kept one (SQLite) or a pooled one.
pub(crate) enum HotConn<'a> {
    Kept {
        conn: MappedMutexGuard<'a, Conn>,
        broken: &'a AtomicBool,
    },
    Pooled(Conn),
}

impl HotConn<'_> {
    /// Passes a read's result through; a failure that breaks the
    /// connection marks a kept one for replacement before its next read.
    pub(crate) fn checked<T, E: Into<Error>>(
        &self,
        result: std::result::Result<T, E>,
    ) -> Result<T> {
        let result = result.map_err(Into::into);
        if let (HotConn::Kept { broken, .. }, Err(Error::Store(error))) = (self, &result)
            && breaks_connection(error)
        {
            tracing::warn!(%error, "a kept reader's connection broke: it will be replaced");
            broken.store(true, Ordering::Relaxed);
        }
        result
    }
}

/// Whether an error leaves the connection unusable, rather than failing
/// one statement: the driver lost its SQLite thread or the server, or
/// SQLite reported an I/O error, a corrupt or unopenable file.
pub(super) fn breaks_connection(error: &sqlx::Error) -> bool {
    // SQLite's primary result codes (the low byte of an extended code).
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_CORRUPT: i32 = 11;
    const SQLITE_CANTOPEN: i32 = 14;
    const SQLITE_NOTADB: i32 = 26;
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| {
                matches!(
                    code & 0xff,
                    SQLITE_IOERR | SQLITE_CORRUPT | SQLITE_CANTOPEN | SQLITE_NOTADB
                )
            }),
        _ => false,
    }
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
                    let (mut reader, broken) = self.hot_readers.any().await;
                    if broken.swap(false, Ordering::Relaxed)
                        && let Some(conn) = reader.take()
                    {
                        conn.close().await;
                    }
                    if reader.is_none() {
                        *reader = Some(self.pooled(&self.reads, at).await?);
                    }
                    MutexGuard::try_map(reader, Option::as_mut)
                        .map(|conn| HotConn::Kept { conn, broken })
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
            HotConn::Kept { conn, .. } => conn,
            HotConn::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for HotConn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            HotConn::Kept { conn, .. } => conn,
            HotConn::Pooled(conn) => conn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HOT_READERS;
    use crate::store::Store;

    /// Whether the connection holds the temporary table that marks it
    /// (temporary tables belong to one connection).
    async fn marked(conn: &mut sqlx::AnyConnection) -> bool {
        sqlx::query("SELECT COUNT(*) FROM temp.marker")
            .fetch_one(conn)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_kept_reader_that_broke_is_closed_and_replaced() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(HOT_READERS, 2, "the test holds both readers at once");
        {
            // Both slots at once (a free one is taken first), each marked.
            let mut first = store.hot().await.unwrap();
            let mut second = store.hot().await.unwrap();
            for conn in [&mut first, &mut second] {
                sqlx::query("CREATE TEMP TABLE marker (x INTEGER)")
                    .execute(&mut **conn)
                    .await
                    .unwrap();
            }
            // A failed statement leaves its connection; a lost one does not.
            let missing = sqlx::query("SELECT x FROM no_such_table")
                .fetch_one(&mut *second)
                .await;
            assert!(second.checked(missing).is_err());
            let lost: Result<(), sqlx::Error> =
                Err(sqlx::Error::Io(std::io::Error::other("the file went away")));
            assert!(first.checked(lost).is_err());
        }
        // The first free slot is the broken one: a fresh connection now.
        let mut first = store.hot().await.unwrap();
        assert!(
            !marked(&mut first).await,
            "the broken connection was reused"
        );
        // The other slot kept its connection.
        let mut second = store.hot().await.unwrap();
        assert!(
            marked(&mut second).await,
            "a statement's failure dropped the connection"
        );
        // And the replacement is kept in turn.
        sqlx::query("CREATE TEMP TABLE marker (x INTEGER)")
            .execute(&mut *first)
            .await
            .unwrap();
        drop((first, second));
        let mut again = store.hot().await.unwrap();
        assert!(marked(&mut again).await);
    }
}
