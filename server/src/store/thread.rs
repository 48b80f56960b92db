//! The store's own thread: a current-thread runtime where the committer
//! runs, so the one writer every acknowledgement waits for never waits for
//! a turn behind thousands of socket tasks.
//!
//! A batch is a chain of hand-offs: a round trip to the SQLite worker
//! thread per statement, and the connection's return. On the shared
//! runtime each hop waited behind the sockets (the committer's p50 was
//! 2.1 s under a 10,000-worker crowd; here 0.2 s, docs/BENCHMARKS.md). The
//! reads no longer come here: since the rooms own their work, a grant reads
//! one row and an answer none, and they use the pool from the caller's
//! runtime like every other read (docs/BENCHMARKS.md, "one way to read").

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
    /// The store thread's runtime, for the committer.
    pub(crate) fn runtime(&self) -> &Handle {
        self.thread.handle()
    }
}
