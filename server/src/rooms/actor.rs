//! The room actor's loop: commands in, completed writes, housekeeping.
//!
//! The actor never waits for a commit. It queues a write, keeps the oneshot
//! receiver in `pending`, and carries on; when the write commits, the
//! completion arm acknowledges it (echoes the update to its sender, replies
//! to the chat request). That is how "acknowledged means durable" costs
//! nothing in throughput: many writes of many rooms share one commit.
//! Reads that complete later (counts, the pay check, a checkpoint's
//! preparation) run in tasks of their own and come back the same way
//! (`inflight.rs` says why they must not run inside `pending`).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::docs::DocSlot;
use super::inflight::InFlight;
use super::lease::{self, LeaseState};
use super::live::LiveState;
use super::moderation::ModState;
use super::{RoomCommand, RoomContext, RoomHandle, RoomRegistry, RoomStats};
use crate::committer::{self, Pending};
use crate::error::{CloseCode, Error, Result};
use crate::ids::{ConnId, DocName, RoomId};
use crate::protocol::RequestId;
use crowdroom_work::queue::Counts;

use crate::store::{LedgerSummary, WriteOp, WriteOutcome};

/// How often the actor expires awareness and unloads idle documents.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// Housekeeping ticks (seconds) between two checks of the room's pay rate.
const PAY_CHECK_TICKS: u32 = 30;
/// Shortest interval between two `queue.counts` pushes to moderators:
/// bursts coalesce.
const QUEUE_PUSH_INTERVAL: Duration = Duration::from_millis(250);
/// Shortest interval between two `queue.counts` pushes to everyone else.
/// Moderators supervise the queue as it moves; a worker's queue panel
/// reads as live at once a second, and under a crowd the counts were most
/// of the frames the server sent (each push goes to every connection).
pub(super) const WORKER_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for this room's writes to commit.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// What a write was for, so its completion can acknowledge it.
pub(super) enum Purpose {
    /// An update from `conn`: echo `frame` to it once committed.
    DocUpdate {
        doc: DocName,
        conn: ConnId,
        frame: axum::body::Bytes,
    },
    /// A checkpoint of `doc`.
    Checkpoint { doc: DocName },
    /// A chat request from `conn`, to reply to and announce.
    Chat {
        conn: ConnId,
        request: RequestId,
        kind: ChatKind,
    },
    /// A room's work decisions (`work.rs`): what to do once committed,
    /// the granted task read beside the commit, and the holders of the
    /// reservations freed as expired.
    Work {
        ack: super::work::WorkAck,
        task: Option<Result<Option<crate::store::WorkerTask>>>,
        expired: Vec<(i64, crate::ids::UserId)>,
    },
    /// The server's own update of `doc` (a published decision).
    ServerUpdate { doc: DocName },
    /// The listing of a document the server writes into.
    DocListed { doc: DocName },
}

/// Which chat change a write makes.
#[derive(Debug, Clone, Copy)]
pub(super) enum ChatKind {
    Post,
    Edit,
    Delete,
}

/// A finished piece of background work.
pub(super) enum Completion {
    /// A write committed (or failed), and what it was for.
    Write {
        purpose: Purpose,
        outcome: Result<WriteOutcome>,
    },
    /// The room's work state loaded (or not), by load `generation`.
    WorkLoaded {
        generation: u64,
        loaded: Result<Box<crate::store::Loaded>>,
    },
    /// A spans answer's task text was read: check the answer against it.
    SpansRead {
        asker: super::work::Asker,
        task: i64,
        answer: serde_json::Value,
        data: Result<Option<serde_json::Value>>,
    },
    /// A held reservation's task was read for a worker's view.
    MineRead {
        user: crate::ids::UserId,
        to: super::work::MineTo,
        read: Result<Option<crate::store::WorkerTask>>,
    },
    /// Background work that panicked.
    Failed(Error),
    /// The room's pay figures, for the below-target alert.
    Pay(Result<LedgerSummary>),
    /// A renewal of the room's lease, sent at `sent`: false if lost.
    Lease {
        sent: Instant,
        renewed: Result<bool>,
    },
}

pub(crate) struct RoomActor {
    pub(super) room: RoomId,
    pub(super) context: RoomContext,
    registry: RoomRegistry,
    pub(super) handle: RoomHandle,
    pub(super) docs: HashMap<DocName, DocSlot>,
    pub(super) live: LiveState,
    /// The room's lock, announcement and mutes.
    pub(super) moderation: ModState,
    pending: InFlight<Completion>,
    /// When the room last had nothing to do (no connections, documents or writes).
    idle_since: Option<Instant>,
    /// The room's work: its queue in memory, or loading (`work.rs`).
    pub(super) work: super::work::WorkSlot,
    /// The latest load of the work state started.
    pub(super) work_generation: u64,
    /// The last load failed: housekeeping tries again.
    pub(super) work_load_failed: bool,
    /// Workers whose grant is on its way to the store, with the requests
    /// that asked again meanwhile: answered with the grant once durable.
    pub(super) awaiting_grant: HashMap<crate::ids::UserId, Vec<super::work::Asker>>,
    /// Work writes committed while the state loads, finished once it has.
    pub(super) acks_after_load: Vec<super::work::Committed>,
    /// Workers to push `queue.mine` to once the work state has loaded.
    pub(super) mine_after_load: Vec<crate::ids::UserId>,
    /// The task each worker holds, as shown to them.
    pub(super) shown: super::work::Shown,
    /// The queue changed since the last counts were pushed.
    pub(super) queue_dirty: bool,
    /// The latest counts read (pushed to moderators), so unchanged counts
    /// are not pushed again.
    pub(super) last_counts: Option<Counts>,
    /// The counts last pushed to everyone else, and when.
    pub(super) workers_counts: Option<(Counts, Instant)>,
    /// Housekeeping ticks until the next pay check.
    pay_check_in: u32,
    /// Whether moderators were told the pay is below target (told once per dip).
    pay_alerted: bool,
    /// Tasks settled here since the last batch consensus run.
    pub(super) settled_since_batch: u32,
    /// Whether a batch consensus run is under way (one at a time).
    batch_running: Arc<std::sync::atomic::AtomicBool>,
    /// Set when a run is wanted; the running task runs until it is clear.
    batch_again: Arc<std::sync::atomic::AtomicBool>,
    /// The room's lease: this process's id and the take's epoch, which the
    /// room's writes will carry for a per-batch check (`lease.rs`).
    pub(super) lease: LeaseState,
}

impl RoomActor {
    pub(super) fn new(
        room: RoomId,
        context: RoomContext,
        registry: RoomRegistry,
        handle: RoomHandle,
    ) -> Self {
        context.metrics.rooms_loaded.inc();
        let tracker = context.tracker.clone();
        let lease = LeaseState::new(registry.owner.clone());
        RoomActor {
            room,
            context,
            registry,
            handle,
            docs: HashMap::new(),
            live: LiveState::default(),
            moderation: ModState::default(),
            pending: InFlight::new(tracker),
            idle_since: None,
            work: super::work::WorkSlot::Loading {
                generation: 0,
                waiting: Vec::new(),
            },
            work_generation: 0,
            work_load_failed: false,
            shown: super::work::Shown::default(),
            mine_after_load: Vec::new(),
            acks_after_load: Vec::new(),
            awaiting_grant: HashMap::new(),
            // Counted once first, so the sweep knows whether anything is reserved.
            queue_dirty: true,
            last_counts: None,
            workers_counts: None,
            pay_check_in: 0,
            pay_alerted: false,
            settled_since_batch: 0,
            batch_running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            batch_again: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            lease,
        }
    }

    /// Takes the room's lease, then serves until the room exits; a room
    /// another process holds does not start, and its joiners are told so.
    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<RoomCommand>) {
        let refused = match self.take_lease().await {
            Ok(()) => {
                self.serve(&mut inbox).await;
                None
            }
            Err(error) => {
                tracing::debug!(room_id = %self.room, %error, "room not started");
                Some(error)
            }
        };
        // Stop taking commands; anything still queued gets its reply sender
        // dropped, and joiners retry with a fresh actor (or, when the room
        // could not start, are told why).
        self.registry.remove(&self.room, &self.handle);
        inbox.close();
        match &refused {
            Some(refusal) => lease::turn_away(&mut inbox, refusal),
            None => while inbox.try_recv().is_ok() {},
        }
        self.release_lease().await;
        self.context
            .metrics
            .docs_loaded
            .dec_by(self.docs.len() as i64);
        self.context.metrics.rooms_loaded.dec();
        tracing::debug!(room_id = %self.room, "room unloaded");
    }

    async fn serve(&mut self, inbox: &mut mpsc::Receiver<RoomCommand>) {
        self.load_moderation().await;
        self.load_work();
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let shutdown = self.context.shutdown.clone();
        let mut queue_tick = tokio::time::interval(QUEUE_PUSH_INTERVAL);
        queue_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let renew_every = lease::renew_every(self.context.settings.lease_ttl);
        let mut lease_tick = tokio::time::interval_at(Instant::now() + renew_every, renew_every);
        lease_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        while !self.lease.lost {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => {
                        let handled = AssertUnwindSafe(self.handle(command)).catch_unwind().await;
                        if let Err(panic) = handled {
                            self.crashed(&*panic);
                            break;
                        }
                    }
                    None => break,
                },
                Some(completion) = self.pending.next() => self.complete(completion).await,
                _ = queue_tick.tick() => self.push_queue_counts(),
                _ = lease_tick.tick() => self.renew_lease(),
                _ = housekeeping.tick() => {
                    if self.housekeeping().await {
                        break;
                    }
                }
                () = shutdown.cancelled() => {
                    self.flush_for_shutdown().await;
                    break;
                }
            }
        }
    }

    async fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::DocJoin {
                conn,
                principal,
                doc,
                reply,
            } => {
                let result = self.doc_join(conn, principal, doc).await;
                // The joiner may have gone; then there is no one to tell.
                let _ = reply.send(result);
            }
            RoomCommand::DocMessage { conn, doc, message } => {
                self.doc_message(conn, &doc, message).await
            }
            RoomCommand::DocLeave { conn, doc } => self.doc_leave(conn, &doc),
            RoomCommand::LiveJoin {
                conn,
                principal,
                reply,
            } => {
                self.live_join(conn, principal);
                let _ = reply.send(Ok(()));
            }
            RoomCommand::LiveRequest { conn, request } => self.live_request(conn, request).await,
            RoomCommand::LiveLeave { conn } => self.live_leave(conn),
            RoomCommand::QueueChanged => self.work_changed(),
            RoomCommand::Decided { decisions } => self.decided(decisions).await,
            RoomCommand::Assign { pairs, reply } => self.assign(pairs, reply).await,
            RoomCommand::Plan {
                members,
                most_tasks,
                reply,
            } => self.plan(members, most_tasks, reply),
            RoomCommand::NotifyUser { user, frame } => self.live.send_to_user(&user, &frame),
            RoomCommand::PublishDecision { task, decision } => {
                let automatic = decision.review.is_none();
                self.publish_decision(task, &decision).await;
                if automatic {
                    self.settled_since_batch += 1;
                    self.maybe_run_batch();
                }
            }
            RoomCommand::Disconnect { user, code } => self.disconnect(&user, code),
            RoomCommand::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            RoomCommand::Moderated {
                conn,
                request,
                outcome,
            } => self.moderated(conn, &request, *outcome).await,
        }
        self.idle_since = None;
    }

    /// Queues a durable write; its completion comes back through `pending`.
    /// Returns false if the store writer is gone (shutting down).
    pub(super) async fn submit(&mut self, op: WriteOp, purpose: Purpose) -> bool {
        match self.context.committer.submit(op).await {
            Ok(receiver) => {
                self.track(receiver, purpose);
                true
            }
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "write not queued");
                false
            }
        }
    }

    /// Runs `work` in a task of its own (it may hold a store connection:
    /// see `inflight.rs`); its completion comes back through the loop like
    /// a write's, and `failed` stands in for it should the task panic.
    pub(super) fn background(
        &mut self,
        work: impl std::future::Future<Output = Completion> + Send + 'static,
        failed: impl FnOnce(Error) -> Completion + Send + 'static,
    ) {
        self.pending.spawn(work, failed);
    }

    pub(super) fn track(&mut self, receiver: Pending, purpose: Purpose) {
        self.pending.track(async move {
            Completion::Write {
                purpose,
                outcome: committer::outcome(receiver.await),
            }
        });
    }

    async fn complete(&mut self, completion: Completion) {
        let (purpose, outcome) = match completion {
            Completion::Write { purpose, outcome } => (purpose, outcome),
            Completion::WorkLoaded { generation, loaded } => {
                return self.work_loaded(generation, loaded).await;
            }
            Completion::SpansRead {
                asker,
                task,
                answer,
                data,
            } => return self.submit_answer(asker, task, answer, Some(data)).await,
            Completion::MineRead { user, to, read } => return self.mine_read(user, to, read),
            Completion::Failed(error) => {
                tracing::warn!(room_id = %self.room, %error, "a room's background work failed");
                return;
            }
            Completion::Pay(summary) => return self.pay_checked(summary),
            Completion::Lease { sent, renewed } => return self.lease_renewed(sent, renewed),
        };
        match purpose {
            Purpose::DocUpdate { doc, conn, frame } => {
                self.update_committed(&doc, conn, frame, outcome)
            }
            Purpose::Checkpoint { doc } => self.checkpoint_committed(&doc, outcome),
            Purpose::ServerUpdate { doc } => self.server_update_committed(&doc, outcome),
            Purpose::DocListed { doc } => {
                if let Err(error) = outcome {
                    tracing::warn!(room_id = %self.room, doc = %doc, %error, "cannot list a document");
                }
            }
            Purpose::Chat {
                conn,
                request,
                kind,
            } => self.chat_committed(conn, &request, kind, outcome),
            Purpose::Work { ack, task, expired } => {
                self.work_committed(ack, task, expired, outcome).await
            }
        }
    }

    /// At most once per tick, and only when something changed and someone
    /// is watching whose push is due (a moderator every tick, everyone else
    /// every [`WORKER_PUSH_INTERVAL`]): count the queue off the loop and push
    /// the result. Counts read while the others' push was not due reach them
    /// at their next one.
    fn push_queue_counts(&mut self) {
        if self.live.connection_count() == 0 {
            return;
        }
        let workers_due = self.workers_push_due();
        if !self.queue_dirty {
            if workers_due {
                self.push_counts_to_workers();
            }
            return;
        }
        if !workers_due && !self.live.moderators_online() {
            return;
        }
        if let Some(counts) = self.work_counts() {
            self.queue_dirty = false;
            self.queue_counts_ready(counts);
        }
    }

    fn stats(&self) -> RoomStats {
        RoomStats {
            online: self.live.online_users(),
            live_connections: self.live.connection_count(),
            doc_connections: self.docs.values().map(DocSlot::connection_count).sum(),
            docs_loaded: self.docs.len(),
        }
    }

    /// Expires awareness, checkpoints and unloads idle documents. Returns
    /// true when the whole room has been idle long enough to exit.
    async fn housekeeping(&mut self) -> bool {
        self.docs_housekeeping();
        if self.work_load_failed {
            self.work_load_failed = false;
            self.load_work();
        }
        self.sweep_work().await;
        if !self.moderation.loaded {
            self.load_moderation().await;
        }
        self.check_pay();
        let idle =
            self.docs.is_empty() && self.live.connection_count() == 0 && self.pending.is_empty();
        if !idle {
            self.idle_since = None;
            return false;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        since.elapsed() >= self.context.settings.room_idle
    }

    /// Every `batch_every` settled tasks, re-reads the whole project with
    /// Dawid-Skene in the background (single-choice projects), so the
    /// published labels follow the crowd as answers arrive.
    pub(super) fn maybe_run_batch(&mut self) {
        use std::sync::atomic::Ordering;
        if self.settled_since_batch < self.context.settings.batch_every {
            return;
        }
        self.settled_since_batch = 0;
        // One run at a time; a request during a run makes it run once more.
        self.batch_again.store(true, Ordering::Release);
        if self.batch_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (store, room) = (self.context.store.clone(), self.room.clone());
        let (running, again) = (self.batch_running.clone(), self.batch_again.clone());
        self.context.tracker.spawn(async move {
            loop {
                while again.swap(false, Ordering::AcqRel) {
                    let run = async {
                        let project = store.project(&room).await?;
                        if matches!(
                            project.answer_schema,
                            crowdroom_work::schema::AnswerSchema::SingleChoice { .. }
                        ) {
                            let report = store.batch_consensus(&room, &project).await?;
                            tracing::debug!(room_id = %room, ?report, "batch consensus");
                        }
                        Ok::<(), crate::error::Error>(())
                    };
                    if let Err(error) = run.await {
                        tracing::warn!(room_id = %room, %error, "batch consensus failed");
                    }
                }
                running.store(false, Ordering::Release);
                // A request that came between the last check and the release
                // found the flag set and left: take it over.
                if !again.load(Ordering::Acquire) || running.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        });
    }

    /// Every `PAY_CHECK_TICKS`, while a moderator watches: is the project's
    /// effective hourly rate below its target?
    fn check_pay(&mut self) {
        if self.pay_check_in > 0 {
            self.pay_check_in -= 1;
            return;
        }
        if !self.live.moderators_online() {
            return;
        }
        self.pay_check_in = PAY_CHECK_TICKS;
        let store = self.context.store.clone();
        let room = self.room.clone();
        self.background(
            async move {
                let summary = async {
                    let project = store.project(&room).await?;
                    store
                        .ledger_summary(&room, project.target_hourly_rate)
                        .await
                };
                Completion::Pay(summary.await)
            },
            |error| Completion::Pay(Err(error)),
        );
    }

    fn pay_checked(&mut self, summary: Result<LedgerSummary>) {
        match summary {
            Ok(summary) if summary.below_target && !self.pay_alerted => {
                self.pay_alerted = true;
                let alert = crate::protocol::PayAlert {
                    hourly_rate: summary.hourly_rate,
                    target_hourly_rate: summary.target_hourly_rate,
                };
                self.live
                    .send_to_moderators(&crate::protocol::event("pay.alert", &alert));
            }
            Ok(summary) => self.pay_alerted &= summary.below_target,
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "cannot check the room's pay")
            }
        }
    }

    /// On shutdown: checkpoint every document and wait (bounded) for this
    /// room's writes, so a restart loads snapshots rather than long logs.
    /// A handler panicked: the room's memory can no longer be trusted, so
    /// the room ends (crash-only). Every connection is closed with 1011;
    /// clients reconnect to a fresh actor, which loads what is committed,
    /// and resend what was never acknowledged. Other rooms are untouched.
    fn crashed(&mut self, panic: &(dyn std::any::Any + Send)) {
        let message = crate::committer::panic_message(panic);
        tracing::error!(room_id = %self.room, %message, "room panicked; closing its connections");
        self.context.metrics.rooms_crashed.inc();
        self.disconnect_everyone(CloseCode::Internal);
    }

    async fn flush_for_shutdown(&mut self) {
        self.checkpoint_all();
        let deadline = Instant::now() + SHUTDOWN_FLUSH_TIMEOUT;
        while let Ok(Some(completion)) =
            tokio::time::timeout_at(deadline, self.pending.next()).await
        {
            self.complete(completion).await;
        }
    }
}
