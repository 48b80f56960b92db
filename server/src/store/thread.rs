//! The store's own thread: a current-thread runtime where the committer
//! runs and where the hot reads go.
//!
//! A store call is a chain of hand-offs: a permit of the gate, a pooled
//! connection, a round trip to the SQLite worker thread per statement, and
//! the connection's return (sqlx spawns it on the runtime of whoever drops
//! it, and pings the connection first). On the shared runtime every one of
//! those hops waited for a turn behind thousands of socket tasks, while
//! holding one of the few permits: in the 10,000-worker crowd every permit
//! was, at every timeout, on its way to a waiter that had not been polled
//! yet, and the store served a few hundred reads a second with the CPU half
//! idle. Here the hops take microseconds; a caller on the shared runtime
//! waits once, for the result ([`Store::offload`]).

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::Store;
use crate::error::{Error, Result};

/// The thread's runtime, alive while any handle to it is.
pub(super) struct StoreThread {
    handle: Handle,
    /// Dropped with the last handle: the thread then finishes what is
    /// running and ends.
    _stop: oneshot::Sender<()>,
}

impl StoreThread {
    pub(super) fn start() -> Result<Arc<StoreThread>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| {
                Error::Internal(format!("cannot start the store's runtime: {error}"))
            })?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("crowdroom-store".into())
            .spawn(move || {
                // Resolves when the sender is dropped (it never sends).
                let _ = runtime.block_on(stopped);
            })
            .map_err(|error| {
                Error::Internal(format!("cannot start the store's thread: {error}"))
            })?;
        Ok(Arc::new(StoreThread {
            handle,
            _stop: stop,
        }))
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Store {
    /// Runs `work` on the store's thread and waits for its result. For the
    /// reads of the live paths (joins, grants, answers, queue counts); a
    /// cancelled caller leaves the read to finish there.
    pub(crate) async fn offload<T, F>(&self, work: impl FnOnce(Store) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self.thread.handle().spawn(work(self.clone()));
        task.await
            .map_err(|error| Error::Internal(format!("store task failed: {error}")))?
    }

    /// The store thread's runtime, for the committer.
    pub(crate) fn runtime(&self) -> &Handle {
        self.thread.handle()
    }
}
