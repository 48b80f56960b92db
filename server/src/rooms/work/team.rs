//! What the room's team does to its queue through the room: a batch
//! assignment's grants (`RoomCommand::Assign`, planned by
//! `http/assign_api.rs`) and a moderator's `mod.release`, both decided in
//! the room's memory and committed like a worker's request.

use super::{AssignReply, PlanReply, Release, Waiting, WorkAck, WorkSlot};
use crate::error::Error;
use crate::ids::{ConnId, UserId, now_ms};
use crate::protocol::{self, Event, ReleaseDone, RequestId};
use crate::rooms::actor::RoomActor;
use crowdroom_work::queue::Outcome;

impl RoomActor {
    /// Batch assignment's problem, from memory (the caller solves it off
    /// the room's loop, then asks for the pairs with [`Self::assign`]).
    pub(in crate::rooms) fn plan(
        &mut self,
        members: Vec<(UserId, u32)>,
        most_tasks: usize,
        reply: PlanReply,
    ) {
        let WorkSlot::Ready(state) = &mut self.work else {
            if let WorkSlot::Loading { waiting, .. } = &mut self.work {
                waiting.push(Waiting::Plan {
                    members,
                    most_tasks,
                    reply,
                });
            }
            return;
        };
        let members: Vec<(&str, u32)> = members
            .iter()
            .map(|(user, capacity)| (user.as_str(), *capacity))
            .collect();
        // The asker may have gone; then there is no one to tell.
        let _ = reply.send(Ok(state.plan(&members, most_tasks)));
    }

    /// Grants batch-assigned tasks (`http/assign_api.rs` plans them):
    /// each pair the queue's rules still allow.
    pub(in crate::rooms) async fn assign(&mut self, pairs: Vec<(UserId, i64)>, reply: AssignReply) {
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
    pub(in crate::rooms) async fn release(
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

    pub(super) async fn release_now(&mut self, release: Release) {
        let WorkSlot::Ready(state) = &mut self.work else {
            if let WorkSlot::Loading { waiting, .. } = &mut self.work {
                waiting.push(Waiting::Release(release));
            }
            return;
        };
        match state.release(release.user.as_str(), now_ms()) {
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
    pub(super) fn released(&mut self, release: Release, task: Option<i64>) {
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
}
