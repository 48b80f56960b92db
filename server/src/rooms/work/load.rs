//! Loading the room's work state, and loading it again: when the room
//! starts, after a failed commit of the room's (its memory ran ahead of the
//! store), and when something outside the room changed its work. Always
//! after a barrier in the committer, so every write of the room queued
//! before is in what is read; requests that arrive meanwhile wait.

use super::{Waiting, WorkSlot};
use crate::error::{Error, Result};
use crate::protocol;
use crate::rooms::actor::{Completion, RoomActor};
use crate::store::{Loaded, WriteOp};

impl RoomActor {
    /// Loads the work state (again): after a barrier in the committer, so
    /// every write of this room queued so far is in what is read.
    pub(in crate::rooms) fn load_work(&mut self) {
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
                    store.load_state(&room).await
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
    pub(in crate::rooms) async fn work_loaded(
        &mut self,
        generation: u64,
        loaded: Result<Box<Loaded>>,
    ) {
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
                for committed in std::mem::take(&mut self.acks_after_load) {
                    let (ack, task, expired, outcome) = committed;
                    self.work_committed(ack, task, expired, outcome).await;
                }
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
                        Waiting::Plan {
                            members,
                            most_tasks,
                            reply,
                        } => self.plan(members, most_tasks, reply),
                        Waiting::Release(release) => self.release_now(release).await,
                    }
                }
            }
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "cannot load the room's work");
                self.work_load_failed = true;
                let refused = || Error::Unavailable("the room's work could not be loaded");
                for committed in std::mem::take(&mut self.acks_after_load) {
                    let (ack, ..) = committed;
                    self.refuse(ack, refused());
                }
                for waiting in waiting {
                    match waiting {
                        Waiting::Request { tx, id, .. } => {
                            tx.send(protocol::error_reply(&id, &refused()));
                        }
                        Waiting::Assign { reply, .. } => _ = reply.send(Err(refused())),
                        Waiting::Plan { reply, .. } => _ = reply.send(Err(refused())),
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
    pub(in crate::rooms) fn work_changed(&mut self) {
        self.queue_dirty = true;
        self.load_work();
    }
}
