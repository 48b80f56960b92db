//! The room actor's share of the work engine: the live queue.
//!
//! A worker's `task.*` request runs in a task of its own (it reads the
//! store and waits for commits, which the room's loop must not do) and
//! replies straight on the worker's connection. The invariants (overlap,
//! one reservation and one answer per worker and task) are the store's
//! conditional writes, so many requests at once, in this process or
//! another, cannot break them. The actor itself only coalesces "the queue
//! changed" into at most one `queue.counts` push per tick, sweeps expired
//! reservations, and tells their holders.

use std::sync::Arc;
use tokio::time::Instant;

use crowdroom_work::project::ProjectConfig;
use crowdroom_work::schema::AnswerSchema;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::actor::RoomActor;
use super::{Decision, RoomCommand, RoomHandle};
use crate::auth::Principal;
use crate::committer::CommitHandle;
use crate::conn::ConnTx;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::protocol::{self, Op, RequestId};
use crate::store::{
    QueueCounts, Reservation, Store, WorkAsk, WorkerTask, WorkerView, WriteOp, WriteOutcome,
};

/// Pushes `queue.mine` (the reservation with its expiry, progress,
/// earnings) to every live connection of `user` through the room; what
/// the caller already knows (`progress`, `mine`) is not read again.
pub(super) async fn push_mine(
    store: &Store,
    room: &RoomId,
    room_handle: &RoomHandle,
    user: &UserId,
    progress: Option<Value>,
    mine: Option<Value>,
) {
    let mine = async {
        let (mine, progress) = match (mine, progress) {
            (Some(mine), Some(progress)) => (mine, progress),
            (mine, progress) => {
                let view = store.worker_view(room, user).await?;
                (
                    mine.unwrap_or_else(|| view.mine()),
                    progress.unwrap_or_else(|| view.progress()),
                )
            }
        };
        Ok::<Value, Error>(json!({ "mine": mine, "progress": progress }))
    };
    match mine.await {
        Ok(state) => {
            let command = RoomCommand::NotifyUser {
                user: user.clone(),
                frame: protocol::event("queue.mine", &state),
            };
            // The room may be exiting; its members then reconnect and ask.
            let _ = room_handle.send(command).await;
        }
        Err(error) => {
            tracing::debug!(room_id = %room, %error, "cannot push the worker's queue state")
        }
    }
}

/// What a work request needs, cloned out of the actor.
pub(super) struct WorkRequest {
    pub store: Store,
    pub committer: CommitHandle,
    pub room: RoomId,
    pub principal: Arc<Principal>,
    pub tx: ConnTx,
    pub id: RequestId,
    pub changed: Arc<Notify>,
    /// The room itself, to publish a settled task into its document.
    pub room_handle: RoomHandle,
}

impl WorkRequest {
    /// Runs one request and replies on the connection.
    pub(super) async fn run(self, op: Op) {
        let changes = !matches!(op, Op::QueueGet {});
        let asked = matches!(op, Op::TaskRequest {});
        let result = match op {
            Op::QueueGet {} => self.queue().await,
            Op::TaskRequest {} => self.request().await,
            Op::TaskHeartbeat { task_id } => self.heartbeat(task_id).await,
            Op::TaskSubmit { task_id, answer } => self.submit(task_id, answer).await,
            Op::TaskSkip { task_id } => self.skip(task_id).await,
            other => Err(Error::Internal(format!("not a work request: {other:?}"))),
        };
        // A request's reply carries the worker's progress and reservation
        // (a worker holds one at a time): push those rather than reading
        // them again. After any other change (a submit's above all) the
        // push reads them, once the reply is on its way.
        let pushed = match &result {
            Ok(value) if changes => Some((
                value.get("progress").filter(|p| !p.is_null()).cloned(),
                asked.then(|| match value.get("reservation") {
                    Some(Value::Null) | None => Value::Null,
                    Some(_) => {
                        json!({ "reservation": value["reservation"], "task": value["task"] })
                    }
                }),
            )),
            _ => None,
        };
        let frame = match result {
            Ok(value) => protocol::ok_reply(&self.id, &value),
            Err(error) => protocol::error_reply(&self.id, &error),
        };
        self.tx.send(frame);
        if let Some((progress, mine)) = pushed {
            self.push_mine(progress, mine).await;
        }
    }

    fn user(&self) -> &UserId {
        &self.principal.user
    }

    fn require_worker(&self) -> Result<()> {
        if self.principal.role.can_write() {
            Ok(())
        } else {
            Err(Error::Forbidden("viewers cannot take tasks"))
        }
    }

    /// Pushes the worker's own queue state (reservation with its expiry,
    /// progress, earnings) to all their live connections: every tab shows
    /// the same, whichever one acted.
    async fn push_mine(&self, progress: Option<Value>, mine: Option<Value>) {
        push_mine(
            &self.store,
            &self.room,
            &self.room_handle,
            self.user(),
            progress,
            mine,
        )
        .await;
    }

    async fn queue(&self) -> Result<Value> {
        let counts = self.store.queue_counts(&self.room).await?;
        let view = self.store.worker_view(&self.room, self.user()).await?;
        Ok(json!({ "counts": counts, "mine": view.mine(), "progress": view.progress() }))
    }

    /// Grants the worker a task. The reply carries their progress too (a
    /// grant does not change it), so the `queue.mine` push reads nothing.
    async fn request(&self) -> Result<Value> {
        self.require_worker()?;
        let view = self.store.worker_view(&self.room, self.user()).await?;
        let progress = view.progress();
        // One task at a time: asking again returns the reservation you hold.
        if let Some((reservation, task)) = &view.reservation {
            return Ok(json!({ "reservation": reservation, "task": task, "progress": progress }));
        }
        if let Some(why) = &view.quality.paused {
            return Ok(
                json!({ "reservation": null, "reason": "paused", "why": why, "progress": progress }),
            );
        }
        let project = self.store.project(&self.room).await?;
        if !project
            .required_skills
            .iter()
            .all(|skill| view.skills.contains(skill))
        {
            return Ok(
                json!({ "reservation": null, "reason": "missing_skills", "progress": progress }),
            );
        }
        // New workers answer onboarding gold first; after that, gold comes
        // at the project's rate. Without gold left, regular work.
        let onboarding = view.quality.gold_total < i64::from(project.onboarding_gold);
        let gold_first = onboarding || rand::random::<f64>() < project.gold_rate;
        let order: &[bool] = if gold_first { &[true, false] } else { &[false] };
        for &gold in order {
            if let Some((reservation, task)) = self.grant_one(&project, &view, gold).await? {
                return Ok(
                    json!({ "reservation": reservation, "task": task, "progress": progress }),
                );
            }
        }
        Ok(json!({ "reservation": null, "reason": "no_work", "progress": progress }))
    }

    /// Reserves the best task of the kind asked (gold or not), if any.
    async fn grant_one(
        &self,
        project: &ProjectConfig,
        view: &WorkerView,
        gold: bool,
    ) -> Result<Option<(Reservation, WorkerTask)>> {
        let ask = WorkAsk {
            room: self.room.clone(),
            worker: self.user().clone(),
            skills: view.skills.clone(),
            gold,
            ttl_ms: project.ttl_ms(),
            cap_ms: project.cap_ms(),
            standing: view.standing.clone(),
        };
        let granted = self.committer.grant_best(&self.store, ask).await?;
        if granted.is_some() {
            self.changed.notify_one();
        }
        Ok(granted)
    }

    async fn heartbeat(&self, task: i64) -> Result<Value> {
        self.require_worker()?;
        let project = self.store.project(&self.room).await?;
        let op = WriteOp::Heartbeat {
            room: self.room.clone(),
            task,
            worker: self.user().clone(),
            ttl_ms: project.ttl_ms(),
        };
        match self.committer.write(op).await? {
            WriteOutcome::Extended(expires_at) => {
                Ok(json!({ "task_id": task, "expires_at": expires_at }))
            }
            other => Err(Error::Internal(format!("heartbeat returned {other:?}"))),
        }
    }

    /// Records an answer. The reply is the acknowledgement: it says what
    /// was committed and carries no progress, which would take one more
    /// read inside every acknowledgement (a quarter of its p99 under a
    /// crowd, docs/BENCHMARKS.md). The `queue.mine` push right after the
    /// reply carries the worker's fresh progress and reservation.
    async fn submit(&self, task: i64, answer: Value) -> Result<Value> {
        self.require_worker()?;
        let project = self.store.project(&self.room).await?;
        if let AnswerSchema::Spans { .. } = project.answer_schema {
            // Spans must lie within the text the worker was shown.
            let data = self
                .store
                .task_data(&self.room, task)
                .await?
                .ok_or(Error::NotFound("task"))?;
            project.answer_schema.validate_answer_for(&answer, &data)?;
        } else {
            project.answer_schema.validate_answer(&answer)?;
        }
        let rules = project.submit_rules();
        let op = WriteOp::Submit {
            room: self.room.clone(),
            task,
            worker: self.user().clone(),
            answer,
            rules,
        };
        let submitted = match self.committer.write(op).await? {
            WriteOutcome::Submitted(submitted) => submitted,
            other => return Err(Error::Internal(format!("submit returned {other:?}"))),
        };
        self.changed.notify_one();
        if let Some(settled) = &submitted.settled {
            let decision = Decision {
                state: settled.state.clone(),
                consensus: settled.consensus.clone(),
                confidence: settled.confidence,
                method: settled.method.clone(),
                review: None,
            };
            // The room may be exiting; the decision is in the store either way.
            let _ = self
                .room_handle
                .send(RoomCommand::PublishDecision {
                    task: submitted.task_id,
                    decision,
                })
                .await;
        }
        // Onboarding gold is training: the worker learns whether they were
        // right. Later gold stays hidden among regular tasks.
        let gold_before = submitted.check.gold_total - i64::from(submitted.check.correct.is_some());
        let feedback = if gold_before < i64::from(project.onboarding_gold) {
            submitted.check.correct
        } else {
            None
        };
        Ok(json!({
            "submitted": {
                "answer_id": submitted.answer_id,
                "task_id": submitted.task_id,
                "lead_time_ms": submitted.lead_time_ms,
                "task_state": submitted.task_state,
            },
            "correct": feedback,
            "paused": submitted.check.paused,
        }))
    }

    async fn skip(&self, task: i64) -> Result<Value> {
        self.require_worker()?;
        match self
            .committer
            .write(WriteOp::Skip {
                room: self.room.clone(),
                task,
                worker: self.user().clone(),
            })
            .await?
        {
            WriteOutcome::Skipped => {
                self.changed.notify_one();
                Ok(json!({ "task_id": task, "skipped": true }))
            }
            other => Err(Error::Internal(format!("skip returned {other:?}"))),
        }
    }
}

impl RoomActor {
    /// Hands a work request to a task of its own.
    pub(super) fn work_request(
        &self,
        principal: Arc<Principal>,
        tx: ConnTx,
        id: RequestId,
        op: Op,
    ) {
        let request = WorkRequest {
            store: self.context.store.clone(),
            committer: self.context.committer.clone(),
            room: self.room.clone(),
            principal,
            tx,
            id,
            changed: self.queue_changed.clone(),
            room_handle: self.handle.clone(),
        };
        self.context.tracker.spawn(request.run(op));
    }

    /// Pushes fresh counts to the moderators, and to everyone else when
    /// their push is due.
    pub(super) fn queue_counts_ready(&mut self, counts: Result<QueueCounts>) {
        match counts {
            Ok(counts) => {
                if self.last_counts.as_ref() != Some(&counts) {
                    self.live
                        .send_to_moderators(&protocol::event("queue.counts", &counts));
                }
                // Kept even when nothing visible changed: `held` may have.
                self.last_counts = Some(counts);
                if self.workers_push_due() {
                    self.push_counts_to_workers();
                }
            }
            Err(error) => tracing::warn!(room_id = %self.room, %error, "cannot count the queue"),
        }
    }

    /// Whether the others' (not moderators') counts may be pushed now.
    pub(super) fn workers_push_due(&self) -> bool {
        self.workers_counts
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= super::actor::WORKER_PUSH_INTERVAL)
    }

    /// Pushes the latest counts to everyone but the moderators, if they
    /// have not seen them.
    pub(super) fn push_counts_to_workers(&mut self) {
        let Some(counts) = &self.last_counts else {
            return;
        };
        if self
            .workers_counts
            .as_ref()
            .is_some_and(|(pushed, _)| pushed == counts)
        {
            return;
        }
        self.live
            .send_to_non_moderators(&protocol::event("queue.counts", counts));
        self.workers_counts = Some((counts.clone(), Instant::now()));
    }

    /// Tells the holders of swept reservations that they expired.
    pub(super) fn reservations_expired(&mut self, expired: &[(i64, UserId)]) {
        for (task, worker) in expired {
            self.live.send_to_user(
                worker,
                &protocol::event("task.expired", &json!({ "task_id": task })),
            );
        }
        if !expired.is_empty() {
            self.queue_changed.notify_one();
        }
    }
}
