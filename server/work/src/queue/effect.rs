//! What a decision returns: its value for the client, and the durable
//! effects the group committer writes before the client is answered.
//!
//! The queue changes its memory at once, so the next decision sees the
//! last; the effects are the rows that make the change durable. They are
//! typed values, in the order they happened, each enough on its own for
//! the committer to write its rows (counts on the task row move with the
//! reservation and answer effects, as the doc of each says).

use serde::Serialize;
use serde_json::Value;

use super::{Record, Reservation, TaskState, WorkerId};

/// A decision's result and the effects to commit before replying with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    pub value: T,
    pub effects: Vec<Effect>,
}

/// Why a reservation went away without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freed {
    /// Its expiry passed (swept): its holder is told `task.expired`.
    Expired,
    /// Its holder gave it back; a `SkipRecorded` follows.
    Skipped,
    /// A moderator freed it.
    Released,
}

/// One durable change, for the committer.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Insert the reservation; the task's `reserved` goes up by one.
    ReservationInserted {
        worker: WorkerId,
        reservation: Reservation,
    },
    /// Set the reservation's expiry.
    ReservationExtended {
        task: i64,
        worker: WorkerId,
        expires_at: i64,
    },
    /// Delete the reservation; the task's `reserved` goes down by one.
    ReservationDeleted {
        task: i64,
        worker: WorkerId,
        why: Freed,
        /// Time the pay floor counts for it (`floor::no_fault_ms`): stored
        /// when Some, so the floor sees it after the reservation is gone.
        no_fault_ms: Option<i64>,
    },
    /// Record that the worker skipped the task.
    SkipRecorded {
        task: i64,
        worker: WorkerId,
        at: i64,
    },
    /// Insert the answer and its pending ledger entry (`pay`) and delete
    /// the reservation it consumed; the task's `reserved` goes down and
    /// its `answered` up by one.
    AnswerRecorded {
        task: i64,
        worker: WorkerId,
        answer: Value,
        at: i64,
        lead_time_ms: i64,
        /// For a gold task: whether it matched the gold answer.
        correct: Option<bool>,
        pay: i64,
    },
    /// Add `delta` to the worker's record in `skill` (empty: overall).
    RecordChanged {
        worker: WorkerId,
        skill: String,
        delta: Record,
    },
    WorkerPaused {
        worker: WorkerId,
        reason: String,
        at: i64,
    },
    WorkerUnpaused {
        worker: WorkerId,
    },
    /// Replace the worker's skills.
    SkillsSet {
        worker: WorkerId,
        skills: Vec<String>,
    },
    /// Replace the worker's interests.
    InterestsSet {
        worker: WorkerId,
        interests: Vec<String>,
    },
    /// The task's new state (never `Deciding`: the store keeps such a task
    /// open, and a room that loads it finds it due again).
    TaskStateChanged {
        task: i64,
        state: TaskState,
        /// The consensus that decided it, if any (a review's is its own).
        consensus: Option<crate::decide::Decision>,
        at: i64,
    },
    /// Dynamic overlap: the task's new target (it is open again).
    OverlapRaised {
        task: i64,
        target: u32,
    },
}

/// What a worker's request got.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// The live reservation they already hold (one at a time).
    Held(Reservation),
    /// A new reservation.
    Granted(Reservation),
    /// Nothing, and why.
    Refused(Refusal),
}

/// Why a request got no reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The worker is paused, with the reason.
    Paused(String),
    /// They lack a skill the project requires.
    MissingSkills,
    /// No task they may take has a free slot.
    NoWork,
}

impl Refusal {
    /// The reply's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Paused(_) => "paused",
            Refusal::MissingSkills => "missing_skills",
            Refusal::NoWork => "no_work",
        }
    }
}

/// What an accepted answer did.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub task: i64,
    pub lead_time_ms: i64,
    /// For a gold task: whether it was right (stored, never shown after
    /// onboarding).
    pub correct: Option<bool>,
    /// What the worker is told: `correct` during onboarding, else None.
    pub feedback: Option<bool>,
    pub too_fast: bool,
    /// Set when this answer got the worker paused, with the reason.
    pub paused: Option<String>,
    /// The task's state after it.
    pub state: TaskState,
    /// Set when this answer brought the task to its overlap target: the
    /// consensus actor decides it, and [`super::WorkState::apply_decision`]
    /// applies that decision.
    pub due: Option<Due>,
}

/// A task at its overlap target, waiting for its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub task: i64,
    /// The target its answers reached.
    pub target: u32,
}

/// The consensus actor's decision on a due task.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The workers whose answers agreed (true) or not (false) with a
    /// confident consensus: their overall records move.
    pub agreement: Vec<(String, bool)>,
    /// The consensus found, confident or not (None on a tie).
    pub consensus: Option<crate::decide::Decision>,
}

/// What becomes of a due task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Confident consensus.
    Complete,
    /// Not confident below the project's overlap maximum: one more answer.
    RaiseOverlap,
    /// Not confident at the maximum: a reviewer decides.
    Review,
}
