//! The work queue's messages on the live channel: the results of
//! `queue.get`, `task.request`, `task.heartbeat`, `task.submit` and
//! `task.skip`, and the `queue.mine` and `task.expired` events. The room
//! makes them from its memory ([`crowdroom_work::queue`]); the web client's
//! `web/src/wire.ts` declares them and `tests/it/wire_types.rs` checks it.

use crowdroom_work::queue::{Counts, Reservation, TaskState, WorkerView};
use serde::Serialize;

use crate::store::{Earnings, WorkerTask};

/// A worker's progress in the room.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub answers: i64,
    /// The same as `earnings.pending`.
    pub pending_earnings: i64,
    pub earnings: Earnings,
}

impl Progress {
    pub fn of(worker: &str, view: &WorkerView) -> Progress {
        let earnings = &view.earnings;
        Progress {
            answers: view.answers,
            pending_earnings: earnings.pending,
            earnings: Earnings {
                worker: worker.to_owned(),
                pending: earnings.pending,
                approved: earnings.approved,
                paid: earnings.paid,
                rejected: earnings.rejected,
                disputed: earnings.disputed,
                top_ups: None,
                hourly_rate: view.hourly_rate,
            },
        }
    }
}

/// A worker's live reservation and the task it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Mine<'a> {
    pub reservation: &'a Reservation,
    pub task: &'a WorkerTask,
}

/// The `queue.mine` event: the worker's reservation (or null) and progress.
#[derive(Debug, Serialize)]
pub struct MineState<'a> {
    pub mine: Option<Mine<'a>>,
    pub progress: Progress,
}

/// The result of `queue.get`.
#[derive(Debug, Serialize)]
pub struct QueueState<'a> {
    pub counts: &'a Counts,
    pub mine: Option<Mine<'a>>,
    pub progress: Progress,
}

/// The result of `task.request`: a reservation and its task, or null and
/// why not (`paused` with `why`, `missing_skills`, `no_work`).
#[derive(Debug, Serialize)]
pub struct Granted<'a> {
    pub reservation: Option<&'a Reservation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<&'a WorkerTask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<&'a str>,
    pub progress: Progress,
}

/// The result of `task.heartbeat`.
#[derive(Debug, Serialize)]
pub struct Extended {
    pub task_id: i64,
    pub expires_at: i64,
}

/// The result of `task.skip`.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub task_id: i64,
    /// Always true.
    pub skipped: bool,
}

/// The result of `task.submit`: the acknowledgement that the answer is
/// durable. It never waits for the task's decision: an answer that brought
/// the task to its overlap target says `deciding`.
#[derive(Debug, Serialize)]
pub struct Answered<'a> {
    pub submitted: AnswerAck,
    /// During onboarding, whether a gold answer was right; else null.
    pub correct: Option<bool>,
    /// Set when this answer got the worker paused, with the reason.
    pub paused: Option<&'a str>,
}

/// What was committed.
#[derive(Debug, Serialize)]
pub struct AnswerAck {
    pub answer_id: i64,
    pub task_id: i64,
    pub lead_time_ms: i64,
    pub task_state: TaskState,
}

/// The `task.expired` event, to the holder of a reservation that expired.
#[derive(Debug, Serialize)]
pub struct Expired {
    pub task_id: i64,
}
