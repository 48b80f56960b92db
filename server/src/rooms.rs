//! Live rooms: one actor per room, found through the [`RoomRegistry`].
//!
//! A [`RoomActor`](actor::RoomActor) owns everything live about a room: its
//! loaded documents (yrs state, awareness, connections), its live-channel
//! connections, presence, and the writes it is waiting on. Connections talk
//! to it through a cloneable [`RoomHandle`] carrying [`RoomCommand`]s. The
//! registry holds handles only; an idle room's actor removes itself and
//! exits, so memory stays bounded however many rooms have ever existed.
//! Everything durable about a room is in the store, so any actor can be
//! rebuilt from it.

mod actor;
pub mod decider;
mod docs;
mod inflight;
mod lease;
mod live;
mod moderation;
mod work;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Principal;
use crate::committer::CommitHandle;
use crate::conn::ConnTx;
use crate::error::{CloseCode, Error, Result};
use crate::ids::{ConnId, DocName, RoomId, UserId};
use crate::metrics::Metrics;
use crate::protocol::{Request, RequestId};
use crate::store::Store;

/// Commands queued to one room before senders wait: senders are reader
/// tasks, so a full inbox slows down reading from the busiest clients.
const INBOX_CAPACITY: usize = 1024;
/// Attempts to reach a room whose actor was just exiting (it went idle as
/// the request arrived); a fresh actor is spawned for each retry.
const JOIN_ATTEMPTS: usize = 3;

/// Limits and timings of rooms, set from the server's configuration.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// A document with no connections is unloaded after this long.
    pub doc_idle: Duration,
    /// A room with no connections and no documents exits after this long.
    pub room_idle: Duration,
    /// Awareness entries not renewed for this long are removed (y-protocols uses 30 s).
    pub awareness_timeout: Duration,
    /// Updates after which a loaded document is checkpointed into a snapshot
    /// (about: each draws its next count within a quarter of this either side).
    pub checkpoint_every: usize,
    /// Most stored bytes (snapshot plus updates) of one document.
    pub max_doc_bytes: usize,
    /// Tasks settled in a room between two background batch consensus runs.
    pub batch_every: u32,
    /// How long a room's lease lasts unless renewed (renewed every third
    /// of it): after a kill -9, how long the rooms wait for another process.
    pub lease_ttl: Duration,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            doc_idle: Duration::from_secs(60),
            room_idle: Duration::from_secs(60),
            awareness_timeout: Duration::from_secs(30),
            checkpoint_every: 1000,
            max_doc_bytes: 16 * 1024 * 1024,
            batch_every: 100,
            lease_ttl: lease::DEFAULT_LEASE_TTL,
        }
    }
}

/// What every room actor shares.
#[derive(Clone)]
pub struct RoomContext {
    pub store: Store,
    pub committer: CommitHandle,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<RoomSettings>,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    /// The consensus actor, which decides the rooms' due tasks.
    pub decider: decider::Decider,
}

/// One decoded y-websocket message for a document, with its payload.
#[derive(Debug)]
pub enum DocMessage {
    SyncStep1(Bytes),
    SyncStep2(Bytes),
    Update(Bytes),
    Awareness(Bytes),
    QueryAwareness,
}

/// What a room actor is asked to do.
pub enum RoomCommand {
    /// A y-websocket connection opens `doc`; the actor sends it the initial sync.
    DocJoin {
        conn: ConnTx,
        principal: Arc<Principal>,
        doc: DocName,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A message from a joined y-websocket connection.
    DocMessage {
        conn: ConnId,
        doc: DocName,
        message: DocMessage,
    },
    /// The y-websocket connection closed.
    DocLeave { conn: ConnId, doc: DocName },
    /// A live-channel connection joins; the actor sends it `hello`.
    LiveJoin {
        conn: ConnTx,
        principal: Arc<Principal>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A request on a joined live channel; the actor replies on the connection.
    LiveRequest { conn: ConnId, request: Request },
    /// The live-channel connection closed.
    LiveLeave { conn: ConnId },
    /// The room's queue changed outside the room (an import): push counts.
    QueueChanged,
    /// Sends a live-channel frame to every connection of `user`.
    NotifyUser {
        user: UserId,
        frame: axum::extract::ws::Message,
    },
    /// Writes a settled task's decision into its shared document.
    PublishDecision { task: i64, decision: Decision },
    /// Batch assignment's problem for `members` (worker, capacity), from
    /// the room's memory (`WorkState::plan`); solved by the caller.
    Plan {
        members: Vec<(UserId, u32)>,
        most_tasks: usize,
        reply: oneshot::Sender<Result<crowdroom_work::queue::Plan>>,
    },
    /// Grants batch-assigned (worker, task) pairs; replies with the
    /// reservations granted, once committed.
    Assign {
        pairs: Vec<(UserId, i64)>,
        reply: oneshot::Sender<Result<Vec<(UserId, crowdroom_work::queue::Reservation)>>>,
    },
    /// The consensus actor's decisions on the room's due tasks.
    Decided {
        decisions: Vec<(i64, crowdroom_work::queue::Decision)>,
    },
    /// Closes every connection of `user` in this room (role changed, removed, kicked).
    Disconnect { user: UserId, code: CloseCode },
    /// Counts of what is live in the room.
    Stats { reply: oneshot::Sender<RoomStats> },
    /// A moderator's `mod.*` request was committed (or failed): apply it,
    /// reply to `conn`, tell those it affects.
    Moderated {
        conn: ConnId,
        request: RequestId,
        /// Boxed: rare, and large next to the other commands.
        outcome: Box<Result<Moderated>>,
    },
}

/// A task's decision as the server writes it into the task's document.
#[derive(Debug, Clone)]
pub struct Decision {
    pub state: String,
    pub consensus: Option<serde_json::Value>,
    pub confidence: Option<f64>,
    pub method: Option<String>,
    /// Set by a reviewer's decision.
    pub review: Option<crowdroom_crdt::schema::Review>,
}

impl Decision {
    /// What a consensus decision publishes: nothing when it asked for one
    /// more answer (the task is open again).
    pub fn of(
        state: crowdroom_work::queue::TaskState,
        decision: &crowdroom_work::queue::Decision,
    ) -> Option<Decision> {
        use crowdroom_work::queue::TaskState;
        let state = match state {
            TaskState::Complete => "complete",
            TaskState::Review => "review",
            TaskState::Rejected => "rejected",
            TaskState::Open | TaskState::Deciding => return None,
        };
        let consensus = decision.consensus.as_ref();
        Some(Decision {
            state: state.to_owned(),
            consensus: consensus.map(|consensus| consensus.answer.clone()),
            confidence: consensus.map(|consensus| consensus.confidence),
            method: consensus.map(|consensus| consensus.method.to_owned()),
            review: None,
        })
    }
}

/// What is live in a room right now.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RoomStats {
    pub online: usize,
    pub live_connections: usize,
    pub doc_connections: usize,
    pub docs_loaded: usize,
}

pub use lease::{DEFAULT_LEASE_TTL, MIN_LEASE_TTL, ProcessId, RoomLease};
pub use moderation::Moderated;

/// Cloneable handle to a room actor.
#[derive(Clone)]
pub struct RoomHandle {
    inbox: mpsc::Sender<RoomCommand>,
}

impl RoomHandle {
    /// Sends a command, waiting for inbox space. Fails only if the actor is gone.
    pub async fn send(&self, command: RoomCommand) -> Result<()> {
        self.inbox
            .send(command)
            .await
            .map_err(|_| Error::Unavailable("room closed"))
    }

    fn same_actor(&self, other: &RoomHandle) -> bool {
        self.inbox.same_channel(&other.inbox)
    }
}

/// Finds or starts the actor of a room.
#[derive(Clone)]
pub struct RoomRegistry {
    rooms: Arc<DashMap<RoomId, RoomHandle>>,
    context: RoomContext,
    /// The id this process's rooms take their leases under (`rooms/lease.rs`).
    owner: ProcessId,
}

impl RoomRegistry {
    pub fn new(context: RoomContext) -> Self {
        RoomRegistry {
            rooms: Arc::new(DashMap::new()),
            context,
            owner: ProcessId::random(),
        }
    }

    /// The store writer every room uses.
    pub fn committer(&self) -> &CommitHandle {
        &self.context.committer
    }

    /// The handle of a running room, if it is loaded.
    pub fn loaded(&self, room: &RoomId) -> Option<RoomHandle> {
        self.rooms.get(room).map(|entry| entry.value().clone())
    }

    /// The number of loaded rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The handle of a room, starting its actor if needed. The caller must
    /// know the room exists (a token for it was authenticated).
    fn get_or_spawn(&self, room: &RoomId) -> RoomHandle {
        // The guard lives only inside this statement: never across an await.
        self.rooms
            .entry(room.clone())
            .or_insert_with(|| {
                let (inbox, receiver) = mpsc::channel(INBOX_CAPACITY);
                let handle = RoomHandle { inbox };
                let actor = actor::RoomActor::new(
                    room.clone(),
                    self.context.clone(),
                    self.clone(),
                    handle.clone(),
                );
                self.context.tracker.spawn(actor.run(receiver));
                handle
            })
            .clone()
    }

    /// Removes `handle` for `room` if it is still the registered one (an
    /// exiting actor must not remove its successor).
    fn remove(&self, room: &RoomId, handle: &RoomHandle) {
        self.rooms
            .remove_if(room, |_, current| current.same_actor(handle));
    }

    /// Sends a command built by `make`, retrying with a fresh actor if the
    /// room's actor was exiting, and waits for the actor's answer; returns
    /// it with the handle of the actor that gave it.
    async fn ask<T, F>(&self, room: &RoomId, mut make: F) -> Result<(T, RoomHandle)>
    where
        F: FnMut(oneshot::Sender<Result<T>>) -> RoomCommand,
    {
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_spawn(room);
            let (reply, answer) = oneshot::channel();
            if handle.send(make(reply)).await.is_err() {
                self.remove(room, &handle);
                continue;
            }
            match answer.await {
                Ok(result) => return result.map(|value| (value, handle)),
                // The actor exited with our command still queued: retry.
                Err(_) => self.remove(room, &handle),
            }
        }
        Err(Error::Unavailable("room is restarting, retry"))
    }

    /// Sends a join command built by `make` (see [`Self::ask`]).
    pub async fn join<F>(&self, room: &RoomId, make: F) -> Result<RoomHandle>
    where
        F: FnMut(oneshot::Sender<Result<()>>) -> RoomCommand,
    {
        self.ask(room, make).await.map(|((), handle)| handle)
    }

    /// Batch assignment's problem for `members` in `room` (see
    /// [`RoomCommand::Plan`]), starting the room if need be.
    pub async fn plan(
        &self,
        room: &RoomId,
        members: Vec<(UserId, u32)>,
        most_tasks: usize,
    ) -> Result<crowdroom_work::queue::Plan> {
        let make = |reply| RoomCommand::Plan {
            members: members.clone(),
            most_tasks,
            reply,
        };
        self.ask(room, make).await.map(|(plan, _)| plan)
    }

    /// Grants batch-assigned tasks in the room, starting it if need be;
    /// returns the reservations granted.
    pub async fn assign(
        &self,
        room: &RoomId,
        pairs: Vec<(UserId, i64)>,
    ) -> Result<Vec<(UserId, crowdroom_work::queue::Reservation)>> {
        let make = |reply| RoomCommand::Assign {
            pairs: pairs.clone(),
            reply,
        };
        self.ask(room, make).await.map(|(granted, _)| granted)
    }

    /// Closes every connection of `user` in `room`, if the room is loaded.
    pub async fn disconnect(&self, room: &RoomId, user: &UserId, code: CloseCode) {
        if let Some(handle) = self.loaded(room) {
            // The room may be exiting; then the user has no connection there.
            let _ = handle
                .send(RoomCommand::Disconnect {
                    user: user.clone(),
                    code,
                })
                .await;
        }
    }

    /// Tells a loaded room that its queue changed, so it pushes counts.
    pub async fn queue_changed(&self, room: &RoomId) {
        if let Some(handle) = self.loaded(room) {
            // An exiting room has no one to tell.
            let _ = handle.send(RoomCommand::QueueChanged).await;
        }
    }

    /// Writes a decision into a task's shared document, starting the room
    /// if it is not loaded (the document is written either way).
    pub async fn publish_decision(&self, room: &RoomId, task: i64, decision: Decision) {
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_spawn(room);
            let command = RoomCommand::PublishDecision {
                task,
                decision: decision.clone(),
            };
            if handle.send(command).await.is_ok() {
                return;
            }
            self.remove(room, &handle);
        }
        tracing::warn!(room_id = %room, task, "could not publish a decision: the room keeps restarting");
    }

    /// Sends `frame` to `user`'s live connections, if the room is loaded
    /// (if not, they are offline and read it when they look).
    pub async fn notify_user(
        &self,
        room: &RoomId,
        user: &UserId,
        frame: axum::extract::ws::Message,
    ) {
        if let Some(handle) = self.loaded(room) {
            let _ = handle
                .send(RoomCommand::NotifyUser {
                    user: user.clone(),
                    frame,
                })
                .await;
        }
    }

    /// Live counts of a room (zeros when it is not loaded).
    pub async fn stats(&self, room: &RoomId) -> RoomStats {
        let Some(handle) = self.loaded(room) else {
            return RoomStats::default();
        };
        let (reply, answer) = oneshot::channel();
        if handle.send(RoomCommand::Stats { reply }).await.is_err() {
            return RoomStats::default();
        }
        answer.await.unwrap_or_default()
    }
}
