//! What a worker sees of the queue: their reservation with its task, their
//! progress, and the room's counts, made from the room's memory.
//!
//! The queue keeps no task data; the task a worker was granted is read by
//! id beside the grant's commit and kept here while they hold it
//! ([`Shown`]), so the `queue.mine` pushes that follow read nothing. A
//! reservation loaded with the room has its task read the first time it is
//! shown.

use std::collections::HashMap;
use std::sync::Arc;

use crowdroom_work::queue::{Counts, Grant, Refusal, Reservation};
use tokio::time::Instant;

use super::{Asker, WorkSlot};
use crate::error::{Error, Result};
use crate::ids::{UserId, now_ms};
use crate::protocol;
use crate::protocol::work::{Granted, Mine, MineState, Progress, QueueState};
use crate::rooms::actor::{Completion, RoomActor, WORKER_PUSH_INTERVAL};
use crate::store::WorkerTask;

/// The task each worker holds, as they were shown it.
#[derive(Default)]
pub(in crate::rooms) struct Shown {
    by_user: HashMap<UserId, Arc<WorkerTask>>,
}

impl Shown {
    pub fn remember(&mut self, user: &UserId, task: Arc<WorkerTask>) {
        self.by_user.insert(user.clone(), task);
    }

    pub fn forget(&mut self, user: &UserId) {
        self.by_user.remove(user);
    }

    pub fn clear(&mut self) {
        self.by_user.clear();
    }

    fn get(&self, user: &UserId, task: i64) -> Option<Arc<WorkerTask>> {
        self.by_user
            .get(user)
            .filter(|shown| shown.id == task)
            .cloned()
    }
}

/// Where a worker's view goes once its task is known.
pub(in crate::rooms) enum MineTo {
    /// The `queue.mine` event, to all their connections.
    Push,
    /// The reply to `queue.get`.
    Queue(Asker),
    /// The reply to `task.request` from a worker who holds a reservation.
    Held(Asker),
}

impl RoomActor {
    /// Pushes `queue.mine` (reservation with its task, progress, earnings)
    /// to every connection of `user`: every tab shows the same.
    pub(in crate::rooms) fn push_mine(&mut self, user: &UserId) {
        if self.live.connections_of(user) > 0 {
            self.show_mine(user.clone(), MineTo::Push);
        }
    }

    pub(super) fn queue_get(&mut self, asker: Asker) {
        let user = asker.user.clone();
        self.show_mine(user, MineTo::Queue(asker));
    }

    /// Replies to a request that got no new reservation.
    pub(super) fn reply_grant(&mut self, asker: Asker, grant: &Grant) {
        let Grant::Refused(refusal) = grant else {
            // Asking again returns the reservation you hold, with its task.
            let user = asker.user.clone();
            return self.show_mine(user, MineTo::Held(asker));
        };
        let WorkSlot::Ready(state) = &self.work else {
            return;
        };
        let view = state.view(asker.user.as_str(), now_ms());
        let why = match refusal {
            Refusal::Paused(why) => Some(why.as_str()),
            Refusal::MissingSkills | Refusal::NoWork => None,
        };
        let reply = Granted {
            reservation: None,
            task: None,
            reason: Some(refusal.reason()),
            why,
            progress: Progress::of(asker.user.as_str(), &view),
        };
        asker.tx.send(protocol::ok_reply(&asker.id, &reply));
    }

    /// Replies to a request granted a reservation, once committed.
    pub(super) fn reply_granted(
        &self,
        asker: &Asker,
        reservation: &Reservation,
        task: &WorkerTask,
    ) {
        let WorkSlot::Ready(state) = &self.work else {
            return;
        };
        let view = state.view(asker.user.as_str(), now_ms());
        let reply = Granted {
            reservation: Some(reservation),
            task: Some(task),
            reason: None,
            why: None,
            progress: Progress::of(asker.user.as_str(), &view),
        };
        asker.tx.send(protocol::ok_reply(&asker.id, &reply));
    }

    /// Sends a worker's view where it goes, reading their reservation's
    /// task first if it was not shown yet.
    fn show_mine(&mut self, user: UserId, to: MineTo) {
        let WorkSlot::Ready(state) = &self.work else {
            return;
        };
        let held = state.view(user.as_str(), now_ms()).reservation;
        let task = match held {
            None => None,
            Some(reservation) => match self.shown.get(&user, reservation.task_id) {
                Some(task) => Some(task),
                None => {
                    let (store, room) = (self.context.store.clone(), self.room.clone());
                    let task = reservation.task_id;
                    return self.background(
                        async move {
                            let read = store.worker_task(&room, task).await;
                            Completion::MineRead { user, to, read }
                        },
                        Completion::Failed,
                    );
                }
            },
        };
        self.send_mine(&user, to, task.as_deref());
    }

    /// A reservation's task was read for a view.
    pub(in crate::rooms) fn mine_read(
        &mut self,
        user: UserId,
        to: MineTo,
        read: Result<Option<WorkerTask>>,
    ) {
        match read {
            Ok(Some(task)) => {
                let task = Arc::new(task);
                self.shown.remember(&user, task.clone());
                self.send_mine(&user, to, Some(&task));
            }
            Ok(None) => self.send_mine(&user, to, None),
            Err(error) => match to {
                MineTo::Push => {
                    tracing::debug!(room_id = %self.room, %error, "cannot show a worker's task")
                }
                MineTo::Queue(asker) | MineTo::Held(asker) => {
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                }
            },
        }
    }

    fn send_mine(&self, user: &UserId, to: MineTo, task: Option<&WorkerTask>) {
        let WorkSlot::Ready(state) = &self.work else {
            return;
        };
        let now = now_ms();
        let view = state.view(user.as_str(), now);
        let reservation = view.reservation;
        let mine = match (&reservation, task) {
            (Some(reservation), Some(task)) if reservation.task_id == task.id => {
                Some(Mine { reservation, task })
            }
            _ => None,
        };
        let progress = Progress::of(user.as_str(), &view);
        match to {
            MineTo::Push => {
                let state = MineState { mine, progress };
                self.live
                    .send_to_user(user, &protocol::event("queue.mine", &state));
            }
            MineTo::Queue(asker) => {
                let counts = state.counts(now);
                let reply = QueueState {
                    counts: &counts,
                    mine,
                    progress,
                };
                asker.tx.send(protocol::ok_reply(&asker.id, &reply));
            }
            MineTo::Held(asker) => match mine {
                Some(mine) => {
                    let reply = Granted {
                        reservation: Some(mine.reservation),
                        task: Some(mine.task),
                        reason: None,
                        why: None,
                        progress,
                    };
                    asker.tx.send(protocol::ok_reply(&asker.id, &reply));
                }
                None => {
                    let error = Error::ReservationLost;
                    asker.tx.send(protocol::error_reply(&asker.id, &error));
                }
            },
        }
    }

    /// The queue's counts, from memory.
    pub(in crate::rooms) fn work_counts(&self) -> Option<Counts> {
        let WorkSlot::Ready(state) = &self.work else {
            return None;
        };
        Some(state.counts(now_ms()))
    }

    /// Whether the others' (not moderators') counts may be pushed now.
    pub(in crate::rooms) fn workers_push_due(&self) -> bool {
        self.workers_counts
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= WORKER_PUSH_INTERVAL)
    }

    /// Pushes fresh counts to the moderators, and to everyone else when
    /// their push is due.
    pub(in crate::rooms) fn queue_counts_ready(&mut self, counts: Counts) {
        if self.last_counts.as_ref() != Some(&counts) {
            self.live
                .send_to_moderators(&protocol::event("queue.counts", &counts));
        }
        self.last_counts = Some(counts);
        if self.workers_push_due() {
            self.push_counts_to_workers();
        }
    }

    /// Pushes the latest counts to everyone but the moderators, if they
    /// have not seen them.
    pub(in crate::rooms) fn push_counts_to_workers(&mut self) {
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
        self.workers_counts = Some((*counts, Instant::now()));
    }
}
