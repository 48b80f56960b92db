//! The gate in front of the connection pool.
//!
//! Every use of the pool takes a permit of a tokio semaphore first (reads
//! and write transactions from gates of their own), and the pool may open
//! twice as many connections as there are permits, so sqlx's own pool never
//! has a waiter. Under a crowd its waiters lost their
//! wake-ups: the whole pool stalled for its 10 s acquire timeout with every
//! connection idle (docs/BENCHMARKS.md, "the crowd's stalls"). A tokio
//! semaphore queues fairly and wakes reliably; the spare connections cover
//! the ones still on their way back.
//!
//! A caller waits at most [`WAIT`], then fails with a clear error rather
//! than hanging, and the gate logs who holds the permits (each holder's
//! call site, age and task): a store method that held a connection while
//! asking for another would show up there as an old holder. (A check that a
//! task never holds two permits is not possible here: one task may poll
//! several store reads at once, legitimately.) In the 10,000-worker crowd
//! that first looked like such a deadlock, the report showed no holder at
//! all at every timeout: the permits had been handed to waiters that did
//! not run. Most likely they were futures a room actor kept while it waited
//! elsewhere, a cycle now broken (`rooms/inflight.rs`, docs/BENCHMARKS.md,
//! "sixth session"); the report counts such permits (`unclaimed`).

use std::collections::HashMap;
use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sqlx::AnyConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// Connections reading at once.
pub(super) const READS: usize = 8;
/// Write transactions at once. Writers have a gate of their own so that the
/// committer, which every acknowledgement waits for, never queues behind
/// thousands of reads; SQLite runs one writer at a time anyway. The
/// committer's kept connection holds one for good once opened.
pub(super) const WRITES: usize = 2;
/// What the pool may open: both gates' worth, and as many again for the
/// connections still on their way back (sqlx pings each one first).
pub(super) const POOL: usize = 2 * (READS + WRITES);

/// How long a caller waits for a permit before failing clearly.
const WAIT: Duration = Duration::from_secs(10);

/// A semaphore and who holds its permits.
#[derive(Clone)]
pub(super) struct Gate {
    name: &'static str,
    /// How many permits there are in all.
    size: usize,
    permits: Arc<Semaphore>,
    holders: Arc<Mutex<Holders>>,
}

#[derive(Default)]
struct Holders {
    next: u64,
    held: HashMap<u64, Holder>,
}

/// Where and when a permit was taken, and by which task.
struct Holder {
    at: &'static Location<'static>,
    since: Instant,
    task: Option<tokio::task::Id>,
}

/// A connection (or a transaction on one) held under a permit of the
/// store's gate; it derefs to the connection.
pub(crate) struct Gated<T> {
    pub(super) inner: T,
    pub(super) _permit: Permit,
}

/// A pooled connection under the gate.
pub(crate) type Conn = Gated<sqlx::pool::PoolConnection<sqlx::Any>>;
/// A write transaction under the gate.
pub(crate) type WriteTx = Gated<sqlx::Transaction<'static, sqlx::Any>>;

impl Conn {
    /// Closes the connection instead of returning it to the pool (it is
    /// broken), then the permit.
    pub(super) async fn close(self) {
        if let Err(error) = self.inner.close().await {
            tracing::debug!(%error, "closing a broken connection");
        }
    }
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }
}

impl<T: std::ops::Deref<Target = AnyConnection>> std::ops::Deref for Gated<T> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl<T: std::ops::DerefMut<Target = AnyConnection>> std::ops::DerefMut for Gated<T> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

/// One permit; returned to the gate when dropped.
pub(crate) struct Permit {
    _permit: OwnedSemaphorePermit,
    key: u64,
    gate: Gate,
}

impl Gate {
    /// A gate of `permits`; `name` says which in its reports.
    pub(super) fn new(name: &'static str, permits: usize) -> Gate {
        Gate {
            name,
            size: permits,
            permits: Arc::new(Semaphore::new(permits)),
            holders: Default::default(),
        }
    }

    /// Waits for a permit, at most [`WAIT`]; `at` is the store method's caller.
    pub(super) async fn permit(&self, at: &'static Location<'static>) -> Result<Permit> {
        let task = tokio::task::try_id();
        let permit = match tokio::time::timeout(WAIT, self.permits.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(|_| Error::Unavailable("the store is closed"))?,
            Err(_) => {
                self.report_holders(at);
                return Err(Error::Unavailable(
                    "the database is overloaded: no connection free for 10 s",
                ));
            }
        };
        let mut holders = self.holders();
        let key = holders.next;
        holders.next += 1;
        holders.held.insert(
            key,
            Holder {
                at,
                since: Instant::now(),
                task,
            },
        );
        drop(holders);
        Ok(Permit {
            _permit: permit,
            key,
            gate: self.clone(),
        })
    }

    /// Logs who holds the permits, oldest first: a holder much older than
    /// [`WAIT`] is stuck, not busy. `unclaimed` counts the permits the
    /// semaphore has handed to waiters that have not run since: many of
    /// them, for long, means those waiters' tasks are not being polled (a
    /// future kept by a loop that is waiting elsewhere, see
    /// `rooms/inflight.rs`), not that the database is slow.
    fn report_holders(&self, waiter: &'static Location<'static>) {
        let holders = self.holders();
        let unclaimed = self.unclaimed(&holders);
        let mut held: Vec<&Holder> = holders.held.values().collect();
        held.sort_by_key(|holder| holder.since);
        let held: Vec<String> = held
            .iter()
            .map(|holder| match holder.task {
                Some(task) => format!(
                    "{} for {:?} (task {task})",
                    holder.at,
                    holder.since.elapsed()
                ),
                None => format!("{} for {:?}", holder.at, holder.since.elapsed()),
            })
            .collect();
        tracing::warn!(
            gate = self.name,
            %waiter,
            ?held,
            available = self.permits.available_permits(),
            unclaimed,
            "no store connection free for {WAIT:?}"
        );
    }

    /// Permits neither available nor recorded as held.
    fn unclaimed(&self, holders: &Holders) -> usize {
        self.size
            .saturating_sub(self.permits.available_permits())
            .saturating_sub(holders.held.len())
    }

    fn holders(&self) -> MutexGuard<'_, Holders> {
        // A panic while holding this lock leaves the map as valid as before.
        self.holders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.holders().held.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_are_returned_when_dropped() {
        let gate = Gate::new("test", READS);
        for _ in 0..3 * READS {
            let permit = gate.permit(Location::caller()).await.expect("a permit");
            drop(permit);
        }
        assert_eq!(gate.permits.available_permits(), READS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_gives_up_after_the_wait_with_a_clear_error() {
        let gate = Gate::new("test", 1);
        let held = gate.permit(Location::caller()).await.expect("a permit");
        let started = tokio::time::Instant::now();
        let refused = gate.permit(Location::caller()).await;
        assert!(
            matches!(refused, Err(Error::Unavailable(message)) if message.contains("overloaded")),
            "the second caller is refused"
        );
        assert_eq!(started.elapsed(), WAIT);
        drop(held);
        assert!(gate.permit(Location::caller()).await.is_ok());
    }

    #[tokio::test]
    async fn the_report_counts_permits_handed_to_waiters_that_have_not_run() {
        let gate = Gate::new("test", 3);
        let held = gate.permit(Location::caller()).await.expect("a permit");
        assert_eq!(gate.unclaimed(&gate.holders()), 0);
        // A waiter's permit, taken from the semaphore but not yet recorded.
        let in_transit = gate.permits.clone().acquire_owned().await.expect("open");
        assert_eq!(gate.unclaimed(&gate.holders()), 1);
        drop((held, in_transit));
        assert_eq!(gate.unclaimed(&gate.holders()), 0);
    }

    #[tokio::test]
    async fn separate_tasks_share_the_gate() {
        let gate = Gate::new("test", READS);
        let held: Vec<_> = futures_join(&gate).await;
        assert_eq!(held.len(), READS);
        assert_eq!(gate.permits.available_permits(), 0);
        drop(held);
        assert_eq!(gate.permits.available_permits(), READS);
    }

    async fn futures_join(gate: &Gate) -> Vec<Permit> {
        let mut tasks = Vec::new();
        for _ in 0..READS {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                gate.permit(Location::caller()).await
            }));
        }
        let mut held = Vec::new();
        for task in tasks {
            held.push(task.await.expect("task ran").expect("a permit"));
        }
        held
    }
}
