//! A work decision's way to the store and back: its effects queued to the
//! committer as one `WriteOp::Work` (a grant's task read by id beside the
//! commit), and once committed, the reply, the pushes, the holders of
//! expired reservations told, and due tasks handed to the consensus actor.
//! A failed commit reloads the room's work state.

use std::sync::Arc;

use crowdroom_work::queue::{Effect, Freed};

use super::{WorkAck, WorkSlot};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::protocol::work::{AnswerAck, Answered, Expired, Extended, Skipped};
use crate::protocol::{self, Event};
use crate::rooms::actor::{Completion, Purpose, RoomActor};
use crate::store::{WorkerTask, WriteOp, WriteOutcome};

impl RoomActor {
    /// Queues a decision's effects; `ack` runs once they are committed.
    pub(in crate::rooms) async fn commit_work(&mut self, effects: Vec<Effect>, ack: WorkAck) {
        self.queue_dirty = true;
        let read = match &ack {
            WorkAck::Granted { reservation, .. } => Some(reservation.task_id),
            _ => None,
        };
        let expired = expired_in(&effects);
        let op = WriteOp::Work {
            room: self.room.clone(),
            lease: self.lease.lease.clone(),
            effects,
        };
        let pending = match self.context.committer.submit(op).await {
            Ok(pending) => pending,
            Err(error) => return self.refuse(ack, error),
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
    pub(in crate::rooms) async fn work_committed(
        &mut self,
        ack: WorkAck,
        task: Option<Result<Option<WorkerTask>>>,
        expired: Vec<(i64, UserId)>,
        outcome: Result<WriteOutcome>,
    ) {
        if outcome.is_ok() && matches!(self.work, WorkSlot::Loading { .. }) {
            // Committed before the load's barrier, so the loaded state holds
            // it: finish it (its reply needs the state) once loaded.
            self.acks_after_load.push((ack, task, expired, outcome));
            return;
        }
        let answer_ids = match outcome {
            Ok(WriteOutcome::Worked(ids)) => ids,
            Ok(other) => {
                tracing::warn!(room_id = %self.room, ?other, "a work write returned something else");
                Vec::new()
            }
            Err(Error::RoomElsewhere) => {
                // Another process took the room over: this one is done.
                tracing::warn!(room_id = %self.room, epoch = self.lease.lease.epoch, "a work write refused: the room's lease is taken");
                self.refuse(ack, Error::RoomElsewhere);
                self.lease_lost();
                return;
            }
            Err(error) => {
                // Memory ran ahead of the store: load what is committed.
                tracing::warn!(room_id = %self.room, %error, "a work write failed; reloading the room's work");
                self.refuse(ack, error);
                self.load_work();
                return;
            }
        };
        self.tell_expired(expired);
        match ack {
            WorkAck::Quiet => {}
            WorkAck::Granted { asker, reservation } => {
                let also = self.awaiting_grant.remove(&asker.user).unwrap_or_default();
                match task {
                    Some(Ok(Some(task))) => {
                        let task = Arc::new(task);
                        self.shown.remember(&asker.user, task.clone());
                        for asker in std::iter::once(&asker).chain(&also) {
                            self.reply_granted(asker, &reservation, &task);
                        }
                        self.push_mine(&asker.user);
                    }
                    Some(Ok(None)) | None => {
                        let error = Error::NotFound("task");
                        for asker in std::iter::once(&asker).chain(&also) {
                            asker.tx.send(protocol::error_reply(&asker.id, &error));
                        }
                    }
                    Some(Err(error)) => {
                        for asker in std::iter::once(&asker).chain(&also) {
                            asker.tx.send(protocol::error_reply(&asker.id, &error));
                        }
                    }
                }
            }
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

    /// Answers whoever waits for `ack` with `error`.
    pub(in crate::rooms) fn refuse(&mut self, ack: WorkAck, error: Error) {
        match ack {
            WorkAck::Assigned { reply, .. } => _ = reply.send(Err(error)),
            WorkAck::Released { release, .. } => self.live.reply(
                release.conn,
                protocol::error_reply(&release.request, &error),
            ),
            ack => {
                if let Some(asker) = ack.asker() {
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                    if matches!(ack, WorkAck::Granted { .. }) {
                        let also = self.awaiting_grant.remove(&asker.user).unwrap_or_default();
                        for asker in also {
                            asker.tx.send(protocol::error_reply(&asker.id, &error));
                        }
                    }
                }
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
                ..
            } => UserId::parse(worker).ok().map(|user| (*task, user)),
            _ => None,
        })
        .collect()
}
