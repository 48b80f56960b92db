//! What the server reads from the store when a room loads: plain rows, one
//! struct per table the queue is made from. Loading is the only time the
//! queue reads the store; after that the room's memory is the truth and
//! the committer writes the [`super::Effect`]s of each decision.

use serde_json::Value;

use super::{Earnings, Record, Reservation};

/// A task's row (`tasks`), without its data (what the worker sees is read
/// by id when it is granted).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: i64,
    pub skills: Vec<String>,
    pub tags: Vec<String>,
    /// The known answer of a gold task.
    pub gold: Option<Value>,
    pub overlap_target: u32,
    /// Its answers so far.
    pub answered: u32,
    pub state: StoredState,
}

/// A task's state as the store keeps it. A task at its overlap target
/// whose decision is not stored yet is `Open` there, and comes back due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredState {
    Open,
    Complete,
    Review,
    Rejected,
}

impl StoredState {
    /// The store's name of a state (`tasks.state`), None for one it does
    /// not know.
    pub fn parse(state: &str) -> Option<StoredState> {
        match state {
            "open" => Some(StoredState::Open),
            "complete" => Some(StoredState::Complete),
            "review" => Some(StoredState::Review),
            "rejected" => Some(StoredState::Rejected),
            _ => None,
        }
    }
}

/// A worker's standing in the room (members, skills, interests, stats,
/// pauses, answers, skips and the ledger's sums).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerRow {
    pub id: String,
    pub skills: Vec<String>,
    pub interests: Vec<String>,
    /// Why they are paused, if they are.
    pub paused: Option<String>,
    /// Their record per skill (`worker_stats`): the empty skill is overall.
    pub records: Vec<(String, Record)>,
    /// The tasks they answered. Only those of open tasks are kept (a
    /// decided task is never granted again), so the store may read only
    /// those.
    pub answered: Vec<i64>,
    /// The tasks they skipped (never offered to them again); as above.
    pub skipped: Vec<i64>,
    pub earnings: Earnings,
}

/// A reservation's row (`reservations`), expired ones not swept included.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRow {
    pub worker: String,
    pub reservation: Reservation,
}
