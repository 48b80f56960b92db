//! The room's work: its live queue in memory ([`WorkState`]), decided on
//! the room's loop, made durable by the group committer.
//!
//! A worker's `task.*` request is decided at once from memory (a grant in
//! microseconds); its effects go to the committer in decision order, and
//! the reply goes out once they are committed (acknowledged means
//! durable). The one read a request may make is the granted task's own
//! data, by id, beside the commit. An answer that brings a task to its
//! overlap target makes it due: once committed, the [`Decider`] decides it
//! off this loop and sends the decision back (`RoomCommand::Decided`).
//!
//! The state is loaded when the room starts, after a barrier in the
//! committer (every write queued before is in), and loaded again, the same
//! way, when a commit of the room's fails or when something outside the
//! room changed its work (an import, a review, a pause): crash-only, never
//! patched. Requests that arrive while it loads wait, in order.
//!
//! [`Decider`]: super::decider::Decider

mod mine;

use std::sync::Arc;

use crowdroom_work::queue::{
    Decision as QueueDecision, Effect, Freed, Grant, Outcome, RESERVATION_LOST, Reservation,
    WorkState,
};
use crowdroom_work::schema::AnswerSchema;
use serde_json::Value;

use super::actor::{Completion, Purpose, RoomActor};
use crate::auth::Principal;
use crate::conn::ConnTx;
use crate::error::{Error, Result};
use crate::ids::ConnId;
use crate::ids::{UserId, now_ms};
use crate::protocol::work::{AnswerAck, Answered, Expired, Extended, Skipped};
use crate::protocol::{self, Event, Op, ReleaseDone, RequestId};
use crate::store::{Loaded, WorkerTask, WriteOp, WriteOutcome};

pub(super) use mine::{MineTo, Shown};

/// The room's work state, or the requests waiting for it to load.
pub(super) enum WorkSlot {
    /// Loading: `generation` is the load whose result counts.
    Loading {
        generation: u64,
        waiting: Vec<Waiting>,
    },
    Ready(Box<WorkState>),
}

/// What arrived while the state was loading.
pub(super) enum Waiting {
    Request {
        principal: Arc<Principal>,
        tx: ConnTx,
        id: RequestId,
        op: Op,
    },
    Assign {
        pairs: Vec<(UserId, i64)>,
        reply: AssignReply,
    },
    Release(Release),
}

/// A moderator's release of a worker's reservation (`mod.release`).
pub(super) struct Release {
    conn: ConnId,
    request: RequestId,
    user: UserId,
    by: UserId,
}

/// Where a batch assignment's grants go.
pub(super) type AssignReply = tokio::sync::oneshot::Sender<Result<Vec<(UserId, Reservation)>>>;

/// Who a work request's reply goes to.
pub(super) struct Asker {
    pub user: UserId,
    pub tx: ConnTx,
    pub id: RequestId,
}

/// What to do once a work write commits.
pub(super) enum WorkAck {
    /// Nothing but the effects' own consequences (a load's freed duplicates).
    Quiet,
    Granted {
        asker: Asker,
        reservation: Reservation,
    },
    Extended {
        asker: Asker,
        task: i64,
        expires_at: i64,
    },
    Skipped {
        asker: Asker,
        task: i64,
    },
    Answered {
        asker: Asker,
        submitted: crowdroom_work::queue::Submitted,
    },
    Assigned {
        granted: Vec<(UserId, Reservation)>,
        reply: AssignReply,
    },
    Released {
        release: Release,
        task: Option<i64>,
    },
    /// Decisions applied: publish them into the tasks' documents.
    Decided {
        decided: Vec<(i64, super::Decision)>,
    },
}

impl WorkAck {
    fn asker(&self) -> Option<&Asker> {
        match self {
            WorkAck::Granted { asker, .. }
            | WorkAck::Extended { asker, .. }
            | WorkAck::Skipped { asker, .. }
            | WorkAck::Answered { asker, .. } => Some(asker),
            WorkAck::Quiet
            | WorkAck::Decided { .. }
            | WorkAck::Assigned { .. }
            | WorkAck::Released { .. } => None,
        }
    }
}

/// What a request decided, before its acknowledgement is made.
enum Decided {
    Grant(Grant),
    Extended(i64, i64),
    Skipped(i64),
}

/// A work error as the client sees it: a reservation that is not live is
/// `reservation_expired`.
fn client_error(error: crowdroom_work::Error) -> Error {
    match error {
        crowdroom_work::Error::State(message) if message == RESERVATION_LOST => {
            Error::ReservationLost
        }
        other => other.into(),
    }
}

impl RoomActor {
    /// Loads the work state (again): after a barrier in the committer, so
    /// every write of this room queued so far is in what is read.
    pub(super) fn load_work(&mut self) {
        self.work_generation = self.work_generation.wrapping_add(1);
        let generation = self.work_generation;
        let waiting = match &mut self.work {
            WorkSlot::Loading { waiting, .. } => std::mem::take(waiting),
            WorkSlot::Ready(_) => Vec::new(),
        };
        self.work = WorkSlot::Loading {
            generation,
            waiting,
        };
        self.shown.clear();
        let (store, committer, room) = (
            self.context.store.clone(),
            self.context.committer.clone(),
            self.room.clone(),
        );
        self.background(
            async move {
                let loaded = async {
                    committer.write(WriteOp::Barrier).await?;
                    store.load_work(&room).await?.into_state()
                };
                Completion::WorkLoaded {
                    generation,
                    loaded: loaded.await.map(Box::new),
                }
            },
            move |error| Completion::WorkLoaded {
                generation,
                loaded: Err(error),
            },
        );
    }

    /// A load finished: serve the waiting requests, or tell them it failed
    /// (the next housekeeping tick loads again).
    pub(super) async fn work_loaded(&mut self, generation: u64, loaded: Result<Box<Loaded>>) {
        let WorkSlot::Loading {
            generation: wanted,
            waiting,
        } = &mut self.work
        else {
            return;
        };
        if *wanted != generation {
            return;
        }
        let waiting = std::mem::take(waiting);
        match loaded {
            Ok(loaded) => {
                let Loaded { state, due } = *loaded;
                self.work = WorkSlot::Ready(Box::new(state));
                self.work_load_failed = false;
                self.queue_dirty = true;
                self.decide(due);
                for user in std::mem::take(&mut self.mine_after_load) {
                    self.push_mine(&user);
                }
                for waiting in waiting {
                    match waiting {
                        Waiting::Request {
                            principal,
                            tx,
                            id,
                            op,
                        } => self.work_request(principal, tx, id, op).await,
                        Waiting::Assign { pairs, reply } => self.assign(pairs, reply).await,
                        Waiting::Release(release) => self.release_now(release).await,
                    }
                }
            }
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "cannot load the room's work");
                self.work_load_failed = true;
                let refused = || Error::Unavailable("the room's work could not be loaded");
                for waiting in waiting {
                    match waiting {
                        Waiting::Request { tx, id, .. } => {
                            tx.send(protocol::error_reply(&id, &refused()));
                        }
                        Waiting::Assign { reply, .. } => _ = reply.send(Err(refused())),
                        Waiting::Release(release) => self.live.reply(
                            release.conn,
                            protocol::error_reply(&release.request, &refused()),
                        ),
                    }
                }
            }
        }
    }

    /// Something outside the room changed its work: load it again.
    pub(super) fn work_changed(&mut self) {
        self.queue_dirty = true;
        self.load_work();
    }

    /// Decides one work request from memory and queues its effects; the
    /// reply goes out when they are committed.
    pub(super) async fn work_request(
        &mut self,
        principal: Arc<Principal>,
        tx: ConnTx,
        id: RequestId,
        op: Op,
    ) {
        let WorkSlot::Ready(state) = &mut self.work else {
            if let WorkSlot::Loading { waiting, .. } = &mut self.work {
                waiting.push(Waiting::Request {
                    principal,
                    tx,
                    id,
                    op,
                });
            }
            return;
        };
        let asker = Asker {
            user: principal.user.clone(),
            tx,
            id,
        };
        let writes = !matches!(op, Op::QueueGet {});
        if writes && !principal.role.can_write() {
            let refused = Error::Forbidden("viewers cannot take tasks");
            asker.tx.send(protocol::error_reply(&asker.id, &refused));
            return;
        }
        let now = now_ms();
        let user = asker.user.as_str();
        let decided = match op {
            Op::QueueGet {} => return self.queue_get(asker),
            Op::TaskSubmit { task_id, answer } => {
                return self.submit_answer(asker, task_id, answer, None).await;
            }
            Op::TaskRequest {} => state
                .request(user, rand::random::<f64>(), now)
                .map(|outcome| (outcome.effects, Decided::Grant(outcome.value))),
            Op::TaskHeartbeat { task_id } => state
                .heartbeat(user, task_id, now)
                .map(|outcome| (outcome.effects, Decided::Extended(task_id, outcome.value))),
            Op::TaskSkip { task_id } => state
                .skip(user, task_id, now)
                .map(|outcome| (outcome.effects, Decided::Skipped(task_id))),
            other => {
                let error = Error::Internal(format!("not a work request: {other:?}"));
                asker.tx.send(protocol::error_reply(&asker.id, &error));
                return;
            }
        };
        let (effects, decided) = match decided {
            Ok(decided) => decided,
            Err(error) => {
                let error = client_error(error);
                asker.tx.send(protocol::error_reply(&asker.id, &error));
                return;
            }
        };
        let ack = match decided {
            Decided::Grant(Grant::Granted(reservation)) => WorkAck::Granted { asker, reservation },
            Decided::Grant(other) => {
                // Nothing new for this worker: the reply goes now. The
                // effects are the expired reservations the request freed.
                self.reply_grant(asker, &other);
                WorkAck::Quiet
            }
            Decided::Extended(task, expires_at) => WorkAck::Extended {
                asker,
                task,
                expires_at,
            },
            Decided::Skipped(task) => {
                self.shown.forget(&asker.user);
                WorkAck::Skipped { asker, task }
            }
        };
        if !effects.is_empty() || !matches!(ack, WorkAck::Quiet) {
            self.commit_work(effects, ack).await;
        }
    }

    /// Records an answer, validated against the project's schema; spans
    /// are checked against the text the worker was shown, read by id first.
    pub(super) async fn submit_answer(
        &mut self,
        asker: Asker,
        task: i64,
        answer: Value,
        data: Option<Result<Option<Value>>>,
    ) {
        let WorkSlot::Ready(state) = &mut self.work else {
            let refused = Error::Unavailable("the room's work is loading: try again");
            asker.tx.send(protocol::error_reply(&asker.id, &refused));
            return;
        };
        let schema = &state.project().answer_schema;
        let checked = match (schema, data) {
            (AnswerSchema::Spans { .. }, None) => {
                let (store, room) = (self.context.store.clone(), self.room.clone());
                self.background(
                    async move {
                        let data = store.task_data(&room, task).await;
                        Completion::SpansRead {
                            asker,
                            task,
                            answer,
                            data,
                        }
                    },
                    Completion::Failed,
                );
                return;
            }
            (AnswerSchema::Spans { .. }, Some(data)) => match data {
                Ok(Some(data)) => schema
                    .validate_answer_for(&answer, &data)
                    .map_err(Error::from),
                Ok(None) => Err(Error::NotFound("task")),
                Err(error) => Err(error),
            },
            (_, _) => schema.validate_answer(&answer).map_err(Error::from),
        };
        let decided = checked.and_then(|()| {
            state
                .submit(asker.user.as_str(), task, &answer, now_ms())
                .map_err(client_error)
        });
        match decided {
            Ok(Outcome { value, effects }) => {
                self.shown.forget(&asker.user);
                let ack = WorkAck::Answered {
                    asker,
                    submitted: value,
                };
                self.commit_work(effects, ack).await;
            }
            Err(error) => {
                asker.tx.send(protocol::error_reply(&asker.id, &error));
            }
        }
    }

    /// Queues a decision's effects; `ack` runs once they are committed.
    pub(super) async fn commit_work(&mut self, effects: Vec<Effect>, ack: WorkAck) {
        self.queue_dirty = true;
        let read = match &ack {
            WorkAck::Granted { reservation, .. } => Some(reservation.task_id),
            _ => None,
        };
        let expired = expired_in(&effects);
        let op = WriteOp::Work {
            room: self.room.clone(),
            effects,
        };
        let pending = match self.context.committer.submit(op).await {
            Ok(pending) => pending,
            Err(error) => {
                if let Some(asker) = ack.asker() {
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                }
                return;
            }
        };
        match read {
            // A grant's reply carries the task: read it by id beside the commit.
            Some(task) => {
                let (store, room) = (self.context.store.clone(), self.room.clone());
                self.background(
                    async move {
                        let (outcome, shown) =
                            tokio::join!(pending, store.worker_task(&room, task));
                        Completion::Write {
                            purpose: Purpose::Work {
                                ack,
                                task: Some(shown),
                                expired,
                            },
                            outcome: crate::committer::outcome(outcome),
                        }
                    },
                    Completion::Failed,
                );
            }
            None => self.track(
                pending,
                Purpose::Work {
                    ack,
                    task: None,
                    expired,
                },
            ),
        }
    }

    /// A work write committed (or failed): reply, tell, decide.
    pub(super) async fn work_committed(
        &mut self,
        ack: WorkAck,
        task: Option<Result<Option<WorkerTask>>>,
        expired: Vec<(i64, UserId)>,
        outcome: Result<WriteOutcome>,
    ) {
        let answer_ids = match outcome {
            Ok(WriteOutcome::Worked(ids)) => ids,
            Ok(other) => {
                tracing::warn!(room_id = %self.room, ?other, "a work write returned something else");
                Vec::new()
            }
            Err(error) => {
                // Memory ran ahead of the store: load what is committed.
                tracing::warn!(room_id = %self.room, %error, "a work write failed; reloading the room's work");
                match ack {
                    WorkAck::Assigned { reply, .. } => _ = reply.send(Err(error)),
                    WorkAck::Released { release, .. } => self.live.reply(
                        release.conn,
                        protocol::error_reply(&release.request, &error),
                    ),
                    ack => {
                        if let Some(asker) = ack.asker() {
                            asker.tx.send(protocol::error_reply(&asker.id, &error));
                        }
                    }
                }
                self.load_work();
                return;
            }
        };
        self.tell_expired(expired);
        match ack {
            WorkAck::Quiet => {}
            WorkAck::Granted { asker, reservation } => match task {
                Some(Ok(Some(task))) => {
                    let task = Arc::new(task);
                    self.shown.remember(&asker.user, task.clone());
                    self.reply_granted(&asker, &reservation, &task);
                    self.push_mine(&asker.user);
                }
                Some(Ok(None)) | None => {
                    let error = Error::NotFound("task");
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                }
                Some(Err(error)) => {
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                }
            },
            WorkAck::Extended {
                asker,
                task,
                expires_at,
            } => {
                let reply = Extended {
                    task_id: task,
                    expires_at,
                };
                asker.tx.send(protocol::ok_reply(&asker.id, &reply));
                self.push_mine(&asker.user);
            }
            WorkAck::Skipped { asker, task } => {
                let reply = Skipped {
                    task_id: task,
                    skipped: true,
                };
                asker.tx.send(protocol::ok_reply(&asker.id, &reply));
                self.push_mine(&asker.user);
            }
            WorkAck::Answered { asker, submitted } => {
                let Some(&answer_id) = answer_ids.first() else {
                    let error = Error::Internal("an answer's id was not returned".into());
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                    return;
                };
                let reply = Answered {
                    submitted: AnswerAck {
                        answer_id,
                        task_id: submitted.task,
                        lead_time_ms: submitted.lead_time_ms,
                        task_state: submitted.state,
                    },
                    correct: submitted.feedback,
                    paused: submitted.paused.as_deref(),
                };
                asker.tx.send(protocol::ok_reply(&asker.id, &reply));
                self.push_mine(&asker.user);
                if let Some(due) = submitted.due {
                    self.decide(vec![due]);
                }
            }
            WorkAck::Released { release, task } => self.released(release, task),
            WorkAck::Assigned { granted, reply } => {
                for (user, reservation) in &granted {
                    let event = Event::TaskAssigned { reservation }.frame();
                    self.live.send_to_user(user, &event);
                    self.push_mine(user);
                }
                let _ = reply.send(Ok(granted));
            }
            WorkAck::Decided { decided } => {
                for (task, decision) in decided {
                    self.publish_decision(task, &decision).await;
                    self.settled_since_batch = self.settled_since_batch.saturating_add(1);
                }
                self.maybe_run_batch();
            }
        }
    }

    /// The consensus actor's decisions: applied once each (a task not
    /// waiting for one, after a reload, refuses it), committed, published.
    pub(super) async fn decided(&mut self, decisions: Vec<(i64, QueueDecision)>) {
        let WorkSlot::Ready(state) = &mut self.work else {
            // Loading: the load finds these tasks due and decides them again.
            return;
        };
        let now = now_ms();
        let mut effects = Vec::new();
        let mut decided = Vec::new();
        for (task, decision) in decisions {
            match state.apply_decision(task, &decision, now) {
                Ok(outcome) => {
                    effects.extend(outcome.effects);
                    if let Some(published) = super::Decision::of(outcome.value, &decision) {
                        decided.push((task, published));
                    }
                }
                Err(error) => {
                    tracing::debug!(room_id = %self.room, task, %error, "decision not applied")
                }
            }
        }
        if !effects.is_empty() {
            self.commit_work(effects, WorkAck::Decided { decided })
                .await;
        }
    }

    /// Hands due tasks to the consensus actor.
    pub(super) fn decide(&self, due: Vec<crowdroom_work::queue::Due>) {
        let WorkSlot::Ready(state) = &self.work else {
            return;
        };
        if due.is_empty() {
            return;
        }
        self.context.decider.decide(super::decider::DueTasks {
            room: self.room.clone(),
            handle: self.handle.clone(),
            project: state.project().clone(),
            due,
        });
    }

    /// Grants batch-assigned tasks (`http/assign_api.rs` plans them):
    /// each pair the queue's rules still allow.
    pub(super) async fn assign(&mut self, pairs: Vec<(UserId, i64)>, reply: AssignReply) {
        let WorkSlot::Ready(state) = &mut self.work else {
            if let WorkSlot::Loading { waiting, .. } = &mut self.work {
                waiting.push(Waiting::Assign { pairs, reply });
            }
            return;
        };
        let now = now_ms();
        let mut effects = Vec::new();
        let mut granted = Vec::new();
        for (user, task) in pairs {
            match state.assign(user.as_str(), task, now) {
                Ok(outcome) => {
                    effects.extend(outcome.effects);
                    if let Some(reservation) = outcome.value {
                        granted.push((user, reservation));
                    }
                }
                // A task gone meanwhile is simply not assigned.
                Err(error) => tracing::debug!(room_id = %self.room, task, %error, "not assigned"),
            }
        }
        if effects.is_empty() {
            let _ = reply.send(Ok(granted));
            return;
        }
        self.commit_work(effects, WorkAck::Assigned { granted, reply })
            .await;
    }

    /// A moderator frees a worker's reservation (`mod.release`, the rank
    /// rules checked): in memory, committed, then everyone concerned told.
    pub(super) async fn release(
        &mut self,
        conn: ConnId,
        request: RequestId,
        user: UserId,
        by: UserId,
    ) {
        let release = Release {
            conn,
            request,
            user,
            by,
        };
        self.release_now(release).await;
    }

    async fn release_now(&mut self, release: Release) {
        let WorkSlot::Ready(state) = &mut self.work else {
            if let WorkSlot::Loading { waiting, .. } = &mut self.work {
                waiting.push(Waiting::Release(release));
            }
            return;
        };
        match state.release(release.user.as_str()) {
            Ok(Outcome { value, effects }) if effects.is_empty() => self.released(release, value),
            Ok(Outcome { value, effects }) => {
                self.shown.forget(&release.user);
                let ack = WorkAck::Released {
                    release,
                    task: value,
                };
                self.commit_work(effects, ack).await;
            }
            Err(error) => {
                let error = Error::from(error);
                self.live.reply(
                    release.conn,
                    protocol::error_reply(&release.request, &error),
                );
            }
        }
    }

    /// A release is committed: reply, tell the worker, log it.
    fn released(&mut self, release: Release, task: Option<i64>) {
        let Release {
            conn,
            request,
            user,
            by,
        } = release;
        let done = ReleaseDone {
            user: &user,
            task_id: task,
        };
        self.live.reply(conn, protocol::ok_reply(&request, &done));
        if let Some(task_id) = task {
            let event = Event::TaskReleased { task_id, by: &by };
            self.live.send_to_user(&user, &event.frame());
        }
        self.push_mine(&user);
        let (store, room) = (self.context.store.clone(), self.room.clone());
        self.context.tracker.spawn(async move {
            let detail = task.map(|task| format!("task {task}"));
            let logged = store
                .log_moderation(
                    &room,
                    &by,
                    "release",
                    Some(user.as_str()),
                    detail.as_deref(),
                )
                .await;
            if let Err(error) = logged {
                tracing::warn!(room_id = %room, %error, "cannot log a release");
            }
        });
    }

    /// Frees the reservations expired by now; their holders are told once
    /// that is committed.
    pub(super) async fn sweep_work(&mut self) {
        let WorkSlot::Ready(state) = &mut self.work else {
            return;
        };
        let now = now_ms();
        if !state.has_expired(now) {
            return;
        }
        match state.sweep(now) {
            Ok(outcome) => self.commit_work(outcome.effects, WorkAck::Quiet).await,
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "sweep failed; reloading the room's work");
                self.load_work();
            }
        }
    }

    /// Tells the holders of reservations freed as expired, once committed.
    fn tell_expired(&mut self, expired: Vec<(i64, UserId)>) {
        for (task, user) in expired {
            self.shown.forget(&user);
            let frame = protocol::event("task.expired", &Expired { task_id: task });
            self.live.send_to_user(&user, &frame);
            self.push_mine(&user);
        }
    }
}

/// The (task, holder) of each reservation the effects free as expired.
fn expired_in(effects: &[Effect]) -> Vec<(i64, UserId)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::ReservationDeleted {
                task,
                worker,
                why: Freed::Expired,
            } => UserId::parse(worker).ok().map(|user| (*task, user)),
            _ => None,
        })
        .collect()
}
