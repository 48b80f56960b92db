//! One owner per room: a room runs in at most one process at a time.
//!
//! Processes sharing a PostgreSQL database each choose a random
//! [`ProcessId`] at start. A room's actor takes the room's lease (a row of
//! `room_leases`: owner, epoch, expiry) before it does anything else, and
//! the room does not start if another process holds a lease that has not
//! expired: its joins fail with [`Error::RoomElsewhere`] (close 4013, HTTP
//! 503). The actor renews the lease a few times per life, and lets it go
//! when it exits (SIGTERM, idle), so another process may take the room at
//! once; a process killed with -9 holds its rooms until their leases expire.
//! A renewal that finds the lease taken (this process stalled, or could not
//! reach the database, for longer than the lease's life), or a life with no
//! renewal succeeding and none on its way, means the room may run
//! elsewhere: the actor closes its connections with 4013 and exits
//! (crash-only). Their clients reconnect and are refused until the other
//! owner lets go.
//!
//! Each take draws an epoch greater than every earlier one for the room
//! (the row is never deleted), and fences the room's work writes: each
//! carries the `(owner, epoch)` it was decided under ([`RoomLease`]), and
//! the committer writes a batch's work only for rooms whose lease is still
//! that one, checked inside the batch's transaction (`store/lease.rs`). A
//! room whose write is refused so knows another process runs it, and
//! exits. So two processes never both write a room's queue, even when one
//! stalls past its lease. Documents and chat are not fenced: their writes
//! merge (CRDT updates, appended messages). SQLite runs the same code: one
//! process, and every take succeeds, unless a process was killed with -9
//! and restarted within a lease's life.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::RoomCommand;
use super::actor::{Completion, RoomActor};
use crate::error::{CloseCode, Error, Result};
use crate::ids::now_ms;
pub use crate::store::{ProcessId, RoomLease};

/// How long a lease lasts unless renewed (`RoomSettings::lease_ttl`). After
/// a kill -9, the process's rooms wait this long before another process
/// (or the restarted one) may run them; a process that cannot renew for
/// this long gives its rooms up.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);
/// The shortest lease a server accepts (`--room-lease-ttl`): a renewal's
/// round trip to the database must fit in a third of it many times over.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(300);
/// Renewals per lease life: every third of it, so two renewals in a row
/// may fail or be slow before the lease is in danger.
const RENEWALS_PER_TTL: u32 = 3;

/// The actor's view of its lease.
pub(super) struct LeaseState {
    pub(super) lease: RoomLease,
    /// When the last renewal that succeeded (or the take) was sent: the
    /// lease holds until at least a life after that.
    held_since: Instant,
    /// A renewal is on its way (one at a time).
    renewing: bool,
    /// The lease was lost: the room has closed its connections and exits.
    pub(super) lost: bool,
}

impl LeaseState {
    pub(super) fn new(owner: ProcessId) -> Self {
        LeaseState {
            lease: RoomLease { owner, epoch: 0 },
            held_since: Instant::now(),
            renewing: false,
            lost: false,
        }
    }
}

/// How often a room renews a lease that lasts `ttl`.
pub(super) fn renew_every(ttl: Duration) -> Duration {
    (ttl / RENEWALS_PER_TTL).max(Duration::from_millis(1))
}

/// `ttl` from now, in the store's milliseconds.
fn expiry(ttl: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

impl RoomActor {
    /// Takes the room's lease. [`Error::RoomElsewhere`] when another
    /// process holds it.
    pub(super) async fn take_lease(&mut self) -> Result<()> {
        let ttl = self.context.settings.lease_ttl;
        let sent = Instant::now();
        let owner = self.lease.lease.owner.clone();
        let taken = self
            .context
            .store
            .take_lease(&self.room, owner.as_str(), now_ms(), expiry(ttl))
            .await?;
        let epoch = taken.ok_or(Error::RoomElsewhere)?;
        tracing::debug!(room_id = %self.room, epoch, "room lease taken");
        self.lease.lease.epoch = epoch;
        self.lease.held_since = sent;
        Ok(())
    }

    /// On the lease's tick: renews in the background (one at a time), or
    /// gives the room up if no renewal succeeded for a whole life.
    ///
    /// A renewal still on its way when the life is up is waited for: it is
    /// conditional on the epoch, so its success proves nobody took the room
    /// meanwhile (a slow database, or a writer ahead of it on SQLite, is not
    /// a lost lease), and the per-batch fence refuses this room's work
    /// writes if somebody did.
    pub(super) fn renew_lease(&mut self) {
        let ttl = self.context.settings.lease_ttl;
        if self.lease.renewing {
            return;
        }
        if self.lease.held_since.elapsed() >= ttl {
            tracing::warn!(room_id = %self.room, "room lease not renewed for its whole life");
            return self.lease_lost();
        }
        self.lease.renewing = true;
        let (store, room) = (self.context.store.clone(), self.room.clone());
        let RoomLease { owner, epoch } = self.lease.lease.clone();
        let sent = Instant::now();
        self.background(
            async move {
                let renewed = store
                    .renew_lease(&room, owner.as_str(), epoch, expiry(ttl))
                    .await;
                Completion::Lease { sent, renewed }
            },
            move |error| Completion::Lease {
                sent,
                renewed: Err(error),
            },
        );
    }

    pub(super) fn lease_renewed(&mut self, sent: Instant, renewed: Result<bool>) {
        self.lease.renewing = false;
        match renewed {
            Ok(true) => self.lease.held_since = self.lease.held_since.max(sent),
            Ok(false) => {
                tracing::warn!(room_id = %self.room, epoch = self.lease.lease.epoch, "room lease taken by another process");
                self.lease_lost();
            }
            // The next tick tries again, until the lease's life is over.
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "cannot renew the room lease")
            }
        }
    }

    /// The room may run elsewhere now: close every connection with 4013
    /// and exit (the loop checks `lost`). Work writes already queued are
    /// refused by the per-batch fence if another process took the room.
    pub(super) fn lease_lost(&mut self) {
        self.lease.lost = true;
        self.disconnect_everyone(CloseCode::RoomElsewhere);
    }

    /// Lets the lease go as the actor exits, so another process may take
    /// the room at once. A lease never taken, or lost, is not this room's.
    pub(super) async fn release_lease(&mut self) {
        let RoomLease { owner, epoch } = &self.lease.lease;
        if *epoch == 0 || self.lease.lost {
            return;
        }
        if let Err(error) = self
            .context
            .store
            .release_lease(&self.room, owner.as_str(), *epoch)
            .await
        {
            // It expires on its own within a life.
            tracing::warn!(room_id = %self.room, %error, "cannot release the room lease");
        }
    }
}

/// What the inbox of a room that could not start still held: joins are
/// told why (`refusal`), the rest is dropped.
pub(super) fn turn_away(inbox: &mut mpsc::Receiver<RoomCommand>, refusal: &Error) {
    let refused = || match refusal {
        Error::RoomElsewhere => Error::RoomElsewhere,
        _ => Error::Unavailable("the room cannot start now; retry later"),
    };
    while let Ok(command) = inbox.try_recv() {
        match command {
            // The joiner may have gone; then there is no one to tell.
            RoomCommand::DocJoin { reply, .. } | RoomCommand::LiveJoin { reply, .. } => {
                let _ = reply.send(Err(refused()));
            }
            RoomCommand::Stats { reply } => {
                let _ = reply.send(Default::default());
            }
            RoomCommand::Assign { reply, .. } => {
                let _ = reply.send(Err(refused()));
            }
            RoomCommand::Plan { reply, .. } => {
                let _ = reply.send(Err(refused()));
            }
            RoomCommand::PublishDecision { task, .. } => {
                tracing::warn!(task, %refusal, "a decision not written into its task's document: the room cannot start here");
            }
            RoomCommand::DocMessage { .. }
            | RoomCommand::DocLeave { .. }
            | RoomCommand::LiveRequest { .. }
            | RoomCommand::LiveLeave { .. }
            | RoomCommand::QueueChanged
            | RoomCommand::NotifyUser { .. }
            | RoomCommand::Disconnect { .. }
            | RoomCommand::Moderated { .. }
            // Decided again by the process that holds the room when it loads.
            | RoomCommand::Decided { .. } => {}
        }
    }
}
