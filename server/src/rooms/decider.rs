//! The consensus actor: decides the tasks whose answers reached their
//! overlap target, off every room's loop and off the committer, and sends
//! each room its decisions back as a command.
//!
//! Rooms hand it due tasks once the answer that made them due is committed
//! (so its read sees every answer). It reads their answers, with each
//! worker's accuracy, in one statement per batch of tasks, decides each
//! with [`crowdroom_work::queue::settle`], and sends the room
//! `RoomCommand::Decided`; the room applies each decision once
//! (`WorkState::apply_decision`) and commits it. No acknowledgement waits
//! for it. Its inbox is unbounded and it sends to rooms on their bounded
//! inboxes, so there is no cycle of bounded channels; what it holds is
//! bounded by the answers that made tasks due.
//!
//! A decision lost on the way (the read failed, the room exited) is not
//! lost for good: a task at its target without a decision is stored open
//! and found due again when its room loads.

use std::collections::HashMap;
use std::time::Duration;

use crowdroom_work::project::ProjectConfig;
use crowdroom_work::queue::{Due, settle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{RoomCommand, RoomHandle};
use crate::ids::RoomId;
use crate::store::Store;

/// Most due tasks decided together (their answers read in one statement).
const MOST_TASKS: usize = 512;
/// How long a failed read waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// A room's due tasks, with the rules to decide them by.
pub struct DueTasks {
    pub room: RoomId,
    pub handle: RoomHandle,
    pub project: ProjectConfig,
    pub due: Vec<Due>,
}

/// Cloneable handle to the consensus actor.
#[derive(Clone)]
pub struct Decider {
    inbox: mpsc::UnboundedSender<DueTasks>,
}

impl Decider {
    /// Starts the actor; it stops at shutdown, or when every handle is gone.
    pub fn spawn(store: Store, tracker: &TaskTracker, shutdown: CancellationToken) -> Decider {
        let (inbox, receiver) = mpsc::unbounded_channel();
        tracker.spawn(run(store, receiver, shutdown));
        Decider { inbox }
    }

    /// Queues due tasks; never waits.
    pub fn decide(&self, due: DueTasks) {
        if self.inbox.send(due).is_err() {
            tracing::debug!("the consensus actor has stopped; due tasks wait for the next load");
        }
    }
}

async fn run(
    store: Store,
    mut inbox: mpsc::UnboundedReceiver<DueTasks>,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            first = inbox.recv() => match first {
                Some(first) => first,
                None => break,
            },
            () = shutdown.cancelled() => break,
        };
        let mut batch = vec![first];
        let mut tasks = batch[0].due.len();
        while tasks < MOST_TASKS
            && let Ok(more) = inbox.try_recv()
        {
            tasks += more.due.len();
            batch.push(more);
        }
        decide_batch(&store, batch, &shutdown).await;
    }
}

/// Reads the batch's answers (retrying a failed read until shutdown),
/// decides every task and sends each room its decisions.
async fn decide_batch(store: &Store, batch: Vec<DueTasks>, shutdown: &CancellationToken) {
    let ids: Vec<i64> = batch
        .iter()
        .flat_map(|room| room.due.iter().map(|due| due.task))
        .collect();
    let mut answers = loop {
        match store.due_answers(&ids).await {
            Ok(answers) => break answers,
            Err(error) => {
                tracing::warn!(%error, tasks = ids.len(), "cannot read due tasks' answers; retrying");
                tokio::select! {
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    };
    let mut by_room: HashMap<RoomId, (RoomHandle, Vec<_>)> = HashMap::new();
    for DueTasks {
        room,
        handle,
        project,
        due,
    } in batch
    {
        let decisions = due.into_iter().map(|due| {
            let answers = answers.remove(&due.task).unwrap_or_default();
            (due.task, settle(&project, due, &answers))
        });
        by_room
            .entry(room)
            .or_insert_with(|| (handle, Vec::new()))
            .1
            .extend(decisions);
    }
    for (room, (handle, decisions)) in by_room {
        // A room that exited finds its due tasks again when it loads.
        if handle
            .send(RoomCommand::Decided { decisions })
            .await
            .is_err()
        {
            tracing::debug!(room_id = %room, "decisions for a room that exited");
        }
    }
}
