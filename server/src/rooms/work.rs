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

mod commit;
mod load;
mod mine;
mod team;

use std::sync::Arc;

use crowdroom_work::queue::{
    Decision as QueueDecision, Grant, Outcome, RESERVATION_LOST, Reservation, WorkState,
};
use crowdroom_work::schema::AnswerSchema;
use serde_json::Value;

use super::actor::{Completion, RoomActor};
use crate::auth::Principal;
use crate::conn::ConnTx;
use crate::error::{Error, Result};
use crate::ids::ConnId;
use crate::ids::{UserId, now_ms};
use crate::protocol::{self, Op, RequestId};

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
    Plan {
        members: Vec<(UserId, u32)>,
        most_tasks: usize,
        reply: PlanReply,
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
pub(super) type PlanReply = tokio::sync::oneshot::Sender<Result<crowdroom_work::queue::Plan>>;
pub(super) type AssignReply = tokio::sync::oneshot::Sender<Result<Vec<(UserId, Reservation)>>>;

/// Who a work request's reply goes to.
pub(super) struct Asker {
    pub user: UserId,
    pub tx: ConnTx,
    pub id: RequestId,
}

/// A committed work write waiting for the state to load: its ack, the
/// granted task read beside it, the holders of the reservations it freed
/// as expired, and the committer's outcome.
pub(super) type Committed = (
    WorkAck,
    Option<Result<Option<crate::store::WorkerTask>>>,
    Vec<(i64, UserId)>,
    Result<crate::store::WriteOutcome>,
);

/// What to do once a work write commits.
pub(super) enum WorkAck {
    /// Nothing but the effects' own consequences (a sweep's, or the expired
    /// reservations a refused request freed: their holders are told).
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
            Decided::Grant(Grant::Granted(reservation)) => {
                self.awaiting_grant.entry(asker.user.clone()).or_default();
                WorkAck::Granted { asker, reservation }
            }
            Decided::Grant(Grant::Held(_)) if self.awaiting_grant.contains_key(&asker.user) => {
                // The reservation held is this worker's grant still on its
                // way to the store: it is acknowledged with it, once durable.
                if let Some(waiting) = self.awaiting_grant.get_mut(&asker.user) {
                    waiting.push(asker);
                }
                WorkAck::Quiet
            }
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
                        let data = store
                            .worker_task(&room, task)
                            .await
                            .map(|task| task.map(|task| task.data));
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
}
