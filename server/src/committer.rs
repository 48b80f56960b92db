//! The group-commit actor: the one writer of everything a client waits for.
//!
//! Room actors submit [`WriteOp`]s and keep the returned oneshot receiver;
//! the committer takes everything queued, runs it as one transaction, and
//! completes each receiver. While one batch commits the next one gathers,
//! so under load many acknowledgements share one fsync. The committer never
//! sends to a room actor (it only completes oneshots), so there is no cycle
//! of bounded channels.
//!
//! It runs on the store's thread (`store/thread.rs`). Each batch is
//! several round trips to the database (begin, the statements, commit), and
//! on the shared runtime every one of them waited for a turn behind
//! thousands of socket tasks: with 5,000 busy sockets a batch of 2,000
//! updates took 450 ms, almost all of it queueing, and the acknowledgement
//! p50 was 2.1 s; on a thread of its own, 0.2 s. It takes a pooled
//! connection per batch through the store's write gate, which readers
//! never queue in.

mod prune;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{Store, WriteOp, WriteOutcome};

/// Times a batch aborted by a deadlock or serialization failure runs again.
const TRANSIENT_RETRIES: u32 = 3;
/// Writes waiting to commit before submitters wait: deep enough to fill a
/// batch while one commits, shallow enough to push back on a stalled store.
const QUEUE_CAPACITY: usize = 8192;
/// Most writes in one transaction: bounds the latency of the batch's first write.
const MAX_BATCH: usize = 2048;
/// A batch smaller than this waits `LINGER` for company before committing:
/// each transaction costs several round trips to the database thread, so a
/// millisecond here saves far more CPU than it adds to an acknowledgement.
const LINGER_BELOW: usize = 32;
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// A committer all of whose batches have failed whole for this long (the
/// database gone, its disk full or read-only) is failed for good: the
/// server reports it and restarts rather than refuse every write forever.
/// Long enough to ride out a database's restart.
const DEAD_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// A batch that takes this long is logged with what it held: under a
/// crowd the acknowledgement's tail is made of such batches.
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(100);

/// A write and where to report its outcome.
struct Request {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome>>,
}

/// Cloneable handle to the committer. The actor ends, after committing what
/// is queued, when the last handle is dropped.
#[derive(Clone)]
pub struct CommitHandle {
    inbox: mpsc::Sender<Request>,
    failure: Arc<Failure>,
}

/// Why the committer stopped while it was still wanted, once it has. A
/// server whose writer is gone can acknowledge nothing: it reports the
/// reason on `/healthz` and shuts down to be restarted (crash-only), not
/// answer "unavailable" forever.
#[derive(Default)]
struct Failure {
    reason: OnceLock<String>,
    /// Cancelled when `reason` is set.
    signal: CancellationToken,
}

/// Resolves when the write is committed (or has failed).
pub type Pending = oneshot::Receiver<Result<WriteOutcome>>;

impl CommitHandle {
    /// Starts the committer on the store's thread; `tracker` waits for it
    /// to drain and stop (when the last handle is dropped).
    pub fn spawn(store: Store, metrics: Arc<Metrics>, tracker: &TaskTracker) -> CommitHandle {
        let (inbox, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let runtime = store.runtime().clone();
        let failure = Arc::new(Failure::default());
        let watched = failure.clone();
        tracker.spawn_on(
            async move {
                // Batches contain their own panics (see `write`); this is
                // for one in the loop itself.
                let ran = AssertUnwindSafe(run(store, metrics, receiver, watched.clone()))
                    .catch_unwind()
                    .await;
                if let Err(panic) = ran {
                    watched.fail(format!(
                        "the committer panicked: {}",
                        panic_message(&*panic)
                    ));
                }
            },
            &runtime,
        );
        CommitHandle { inbox, failure }
    }

    /// Why the committer stopped, if it stopped while still wanted.
    pub fn failure(&self) -> Option<&str> {
        self.failure.reason.get().map(String::as_str)
    }

    /// Resolves when the committer stops while still wanted.
    pub async fn failed(&self) {
        self.failure.signal.cancelled().await
    }

    /// Queues a write (waiting for room if the queue is full) and returns
    /// the receiver of its outcome.
    pub async fn submit(&self, op: WriteOp) -> Result<Pending> {
        let (reply, pending) = oneshot::channel();
        self.inbox
            .send(Request { op, reply })
            .await
            .map_err(|_| Error::Unavailable("store writer stopped"))?;
        Ok(pending)
    }

    /// Queues a write and waits for its commit.
    pub async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        outcome(self.submit(op).await?.await)
    }
}

impl Failure {
    fn fail(&self, reason: String) {
        tracing::error!(%reason, "the committer stopped: nothing more can be acknowledged");
        let _ = self.reason.set(reason);
        self.signal.cancel();
    }
}

/// What a panic said, for the log and `/healthz`.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Flattens a pending write's result.
pub fn outcome(
    received: Result<Result<WriteOutcome>, oneshot::error::RecvError>,
) -> Result<WriteOutcome> {
    received.map_err(|_| Error::Unavailable("store writer stopped"))?
}

async fn run(
    store: impl Batches,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::Receiver<Request>,
    failure: Arc<Failure>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Since when every batch has failed whole, if they have.
    let mut failing_since: Option<tokio::time::Instant> = None;
    let mut pruner = prune::Pruner::new(Instant::now());
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if batch.len() < LINGER_BELOW {
            tokio::time::sleep(LINGER).await;
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
        }
        let started = Instant::now();
        let (mut ops, replies): (Vec<WriteOp>, Vec<_>) = batch
            .drain(..)
            .map(|request| (request.op, request.reply))
            .unzip();
        // The log's upkeep rides along, last, with no one waiting for it.
        let prune = pruner.due(started);
        let pruning = prune.is_some();
        ops.extend(prune);
        let mut outcomes = write(&store, &ops).await;
        let took = started.elapsed();
        if pruning && let Some(outcome) = outcomes.pop() {
            pruner.done(Instant::now(), outcome);
        }
        metrics.commit_seconds.observe(took.as_secs_f64());
        if took >= SLOW_BATCH {
            tracing::info!(?took, writes = ops.len(), kinds = ?kinds(&ops), "slow batch");
        }
        metrics.commit_batch_size.observe(replies.len() as f64);
        let broken = |outcome: &Result<WriteOutcome>| {
            matches!(outcome, Err(Error::Store(_) | Error::Internal(_)))
        };
        if !outcomes.is_empty() && outcomes.iter().all(broken) {
            let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= DEAD_AFTER {
                failure.fail(format!(
                    "every write has failed for {} s",
                    since.elapsed().as_secs()
                ));
            }
        } else {
            failing_since = None;
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            if matches!(outcome, Err(Error::Store(_) | Error::Internal(_))) {
                metrics.commit_failures.inc();
            }
            // The submitter may have gone (its room closed); nothing to tell then.
            let _ = reply.send(outcome);
        }
    }
    tracing::debug!("committer stopped: every handle dropped and the queue is drained");
}

/// How many writes of each kind a batch holds, for the slow-batch log.
fn kinds(ops: &[WriteOp]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for op in ops {
        let kind = match op {
            WriteOp::AppendUpdate { .. } => "update",
            WriteOp::CreateDoc { .. } => "create_doc",
            WriteOp::Checkpoint { .. } => "checkpoint",
            WriteOp::ChatPost { .. } | WriteOp::ChatEdit { .. } | WriteOp::ChatDelete { .. } => {
                "chat"
            }
            WriteOp::Work { .. } => "work",
            WriteOp::Barrier => "barrier",
            WriteOp::PruneLog { .. } => "prune",
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Runs one batch; if it fails (or panics), runs each write alone, so one
/// bad write cannot fail its neighbours: a write that panics alone is
/// refused with an internal error, and everyone else's commit.
async fn write(store: &impl Batches, ops: &[WriteOp]) -> Vec<Result<WriteOutcome>> {
    match write_retrying(store, ops).await {
        Ok(outcomes) => outcomes,
        Err(error) if ops.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, writes = ops.len(), "batch failed, retrying writes one by one");
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops {
                outcomes.push(
                    match write_retrying(store, std::slice::from_ref(op)).await {
                        Ok(mut single) => single
                            .pop()
                            .unwrap_or_else(|| Err(Error::Internal("empty batch result".into()))),
                        Err(error) => Err(error),
                    },
                );
            }
            outcomes
        }
    }
}

/// Runs a batch, again (up to [`TRANSIENT_RETRIES`] times) when it failed
/// on a deadlock or serialization failure: with two processes sharing
/// PostgreSQL, two committers can lock the same workers' records in
/// opposite orders, and the database aborts one of them, which wrote nothing.
async fn write_retrying(
    store: &impl Batches,
    ops: &[WriteOp],
) -> Result<Vec<Result<WriteOutcome>>> {
    let mut attempt = 0;
    loop {
        match contained(store, ops).await {
            Err(error) if error.is_transient() && attempt < TRANSIENT_RETRIES => {
                attempt += 1;
                tracing::warn!(%error, attempt, writes = ops.len(), "batch aborted by the database, running it again");
            }
            result => return result,
        }
    }
}

/// Runs a batch, turning a panic inside it into an error: the batch wrote
/// nothing (its transaction is dropped, so rolled back, and the writer's
/// connection with it), and the committer goes on.
async fn contained(store: &impl Batches, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
    match AssertUnwindSafe(store.write_batch(ops))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => {
            let message = panic_message(&*panic);
            tracing::error!(%message, writes = ops.len(), kinds = ?kinds(ops), "a batch panicked");
            store.drop_writer().await;
            Err(Error::Internal(format!("the write panicked: {message}")))
        }
    }
}

/// What the committer needs of the store: the store itself, and a fake in
/// the tests of the containment above.
trait Batches {
    fn write_batch(
        &self,
        ops: &[WriteOp],
    ) -> impl Future<Output = Result<Vec<Result<WriteOutcome>>>> + Send;
    fn drop_writer(&self) -> impl Future<Output = ()> + Send;
}

impl Batches for Store {
    fn write_batch(
        &self,
        ops: &[WriteOp],
    ) -> impl Future<Output = Result<Vec<Result<WriteOutcome>>>> + Send {
        Store::write_batch(self, ops)
    }

    fn drop_writer(&self) -> impl Future<Output = ()> + Send {
        Store::drop_writer(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::{RoomId, UserId};

    /// Commits every chat message, except that one saying "boom" panics
    /// the whole batch it is in.
    #[derive(Default)]
    struct Fake {
        batches: std::sync::Mutex<Vec<usize>>,
        dropped: std::sync::atomic::AtomicUsize,
    }

    impl Batches for Fake {
        async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
            self.batches.lock().unwrap().push(ops.len());
            if ops
                .iter()
                .any(|op| matches!(op, WriteOp::ChatPost { body, .. } if body == "boom"))
            {
                panic!("boom");
            }
            Ok(ops.iter().map(|_| Ok(WriteOutcome::Checkpointed)).collect())
        }

        async fn drop_writer(&self) {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn chat(text: &str) -> WriteOp {
        WriteOp::ChatPost {
            room: RoomId::parse("r").unwrap(),
            user: UserId::parse("u").unwrap(),
            body: text.into(),
            at: 0,
        }
    }

    /// Fails every batch, as a database that is gone does.
    struct Broken;

    impl Batches for Broken {
        async fn write_batch(&self, _: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
            Err(Error::Internal("the disk is full".into()))
        }

        async fn drop_writer(&self) {}
    }

    #[tokio::test(start_paused = true)]
    async fn a_committer_that_fails_every_write_for_long_reports_it() {
        let (inbox, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let failure = Arc::new(Failure::default());
        let committer = tokio::spawn(run(Broken, Metrics::new(), receiver, failure.clone()));
        let handle = CommitHandle {
            inbox,
            failure: failure.clone(),
        };
        for _ in 0..5 {
            assert!(handle.write(chat("a")).await.is_err());
            assert!(handle.failure().is_none(), "too early");
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        tokio::time::sleep(DEAD_AFTER).await;
        assert!(handle.write(chat("a")).await.is_err());
        assert!(
            handle
                .failure()
                .is_some_and(|reason| reason.contains("failed for")),
            "{:?}",
            handle.failure()
        );
        tokio::time::timeout(std::time::Duration::from_secs(1), handle.failed())
            .await
            .unwrap();
        drop(handle);
        committer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_clock() {
        // Fails unless the message is "ok".
        struct Flaky;
        impl Batches for Flaky {
            async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<WriteOutcome>>> {
                if ops
                    .iter()
                    .all(|op| matches!(op, WriteOp::ChatPost { body, .. } if body == "ok"))
                {
                    Ok(ops.iter().map(|_| Ok(WriteOutcome::Checkpointed)).collect())
                } else {
                    Err(Error::Internal("flaky".into()))
                }
            }
            async fn drop_writer(&self) {}
        }
        let (inbox, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let failure = Arc::new(Failure::default());
        let committer = tokio::spawn(run(Flaky, Metrics::new(), receiver, failure.clone()));
        let handle = CommitHandle { inbox, failure };
        for _ in 0..4 {
            assert!(handle.write(chat("a")).await.is_err());
            tokio::time::sleep(DEAD_AFTER / 2).await;
            assert!(handle.write(chat("ok")).await.is_ok());
        }
        assert!(handle.failure().is_none());
        drop(handle);
        committer.await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_write_is_refused_and_its_neighbours_commit() {
        let fake = Fake::default();
        let ops = [chat("a"), chat("boom"), chat("c")];
        let outcomes = write(&fake, &ops).await;
        assert!(matches!(outcomes[0], Ok(WriteOutcome::Checkpointed)));
        assert!(
            matches!(&outcomes[1], Err(Error::Internal(message)) if message.contains("boom")),
            "{:?}",
            outcomes[1]
        );
        assert!(matches!(outcomes[2], Ok(WriteOutcome::Checkpointed)));
        // The batch, then each write alone; the writer was dropped twice.
        assert_eq!(*fake.batches.lock().unwrap(), vec![3, 1, 1, 1]);
        assert_eq!(fake.dropped.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
