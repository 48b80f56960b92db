//! A room's work in flight: what its loop waits for besides commands.
//!
//! The set is polled only while the actor waits in its `select!`. While a
//! handler awaits (a document join reads the store, a write waits for room
//! in the committer's queue), nothing in it moves. That is harmless for a
//! committer's reply, which holds nothing, and those are kept here as
//! futures ([`InFlight::track`]). It is a deadlock for work that holds a
//! store connection while it runs: the connection waits for the handler,
//! and the handler may be waiting for a connection. Under a 10,000-worker
//! crowd the room's pay check held read permits that way, every permit of
//! the gate ended up in such futures or on its way to them, and rooms
//! stalled until the gate's 10 s timeouts broke the cycle, again and again
//! for over a minute (docs/BENCHMARKS.md, "sixth session"). So such work
//! runs in a task of its own ([`InFlight::spawn`]), and only its join
//! handle waits here.

use std::future::Future;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio_util::task::TaskTracker;

use crate::error::Error;

/// The futures a room's loop polls between commands, each ending in a `T`.
pub(super) struct InFlight<T> {
    futures: FuturesUnordered<BoxFuture<'static, T>>,
    /// Where spawned work runs: shutdown waits for it.
    tracker: TaskTracker,
}

impl<T: Send + 'static> InFlight<T> {
    pub(super) fn new(tracker: TaskTracker) -> Self {
        InFlight {
            futures: FuturesUnordered::new(),
            tracker,
        }
    }

    /// Keeps `future` here. Only for a future that holds nothing another
    /// task may wait for (a oneshot receiver): it runs only while the loop
    /// waits.
    pub(super) fn track(&mut self, future: impl Future<Output = T> + Send + 'static) {
        self.futures.push(Box::pin(future));
    }

    /// Runs `work` in a task of its own, so it makes progress whatever the
    /// loop is doing; its result comes back here. Should the task panic,
    /// `failed` turns the error into the result.
    pub(super) fn spawn(
        &mut self,
        work: impl Future<Output = T> + Send + 'static,
        failed: impl FnOnce(Error) -> T + Send + 'static,
    ) {
        let task = self.tracker.spawn(work);
        self.futures.push(Box::pin(async move {
            task.await.unwrap_or_else(|error| {
                failed(Error::Internal(format!(
                    "a room's background work failed: {error}"
                )))
            })
        }));
    }

    /// The next result, or None when nothing is in flight.
    pub(super) async fn next(&mut self) -> Option<T> {
        self.futures.next().await
    }

    pub(super) fn is_empty(&self) -> bool {
        self.futures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{Semaphore, oneshot};
    use tokio_util::task::TaskTracker;

    use super::InFlight;

    /// The deadlock this module exists for, in small: one permit, taken by
    /// background work the loop polled once; then the loop is "in a
    /// handler" that waits for the permit and polls nothing else. Spawned
    /// work finishes on its own and frees the permit; work kept as a future
    /// would hold it until the set is polled again (here: the timeout,
    /// which paused time makes immediate).
    #[tokio::test(start_paused = true)]
    async fn spawned_work_runs_while_the_loop_is_busy_elsewhere() {
        let permits = std::sync::Arc::new(Semaphore::new(1));
        let mut inflight = InFlight::new(TaskTracker::new());
        let (taken, was_taken) = oneshot::channel();
        let held = permits.clone();
        inflight.spawn(
            async move {
                let permit = held.acquire().await.expect("open");
                let _ = taken.send(());
                // The work's own await, like a statement's round trip.
                tokio::task::yield_now().await;
                drop(permit);
                1
            },
            |_| 0,
        );
        // The loop waits in its select until the work holds the permit.
        tokio::select! {
            biased;
            taken = was_taken => taken.expect("the work took the permit"),
            _ = inflight.next() => panic!("the work finished before it said it took the permit"),
        }
        let handler = tokio::time::timeout(Duration::from_secs(10), permits.acquire()).await;
        assert!(handler.is_ok(), "the background work kept the permit");
        assert_eq!(inflight.next().await, Some(1));
        assert!(inflight.is_empty());
        assert_eq!(inflight.next().await, None);
    }

    #[tokio::test]
    async fn a_panicking_task_completes_through_failed() {
        let mut inflight = InFlight::new(TaskTracker::new());
        inflight.spawn(
            async {
                panic!("background work went wrong");
                #[allow(unreachable_code)]
                String::new()
            },
            |error| format!("failed: {error}"),
        );
        inflight.track(async { "tracked".to_owned() });
        let mut results = vec![
            inflight.next().await.expect("one"),
            inflight.next().await.expect("two"),
        ];
        results.sort();
        assert_eq!(results[1], "tracked");
        assert!(
            results[0].starts_with("failed: ") && results[0].contains("background work failed"),
            "{results:?}"
        );
    }
}
