//! The work REST API's replies, each a type (docs/API.md says what each
//! field means).

use serde::Serialize;
use serde_json::Value;

use crate::ids::UserId;
use crowdroom_work::queue::Counts;

use crate::store::{TaskRow, WorkerQuality};

/// `GET .../tasks`: a page of tasks and where the next one starts.
#[derive(Debug, Serialize)]
pub struct TaskPage {
    pub tasks: Vec<TaskRow>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<i64>,
}

/// `GET .../queue`.
#[derive(Debug, Serialize)]
pub struct Queue {
    pub counts: Counts,
}

/// A member's skills or interests (`GET`/`PUT .../skills`, `.../interests`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Tags {
    Skills {
        user: UserId,
        skills: Vec<String>,
    },
    Interests {
        user: UserId,
        interests: Vec<String>,
    },
}

/// `GET .../workers`: every worker's record.
#[derive(Debug, Serialize)]
pub struct Workers {
    pub workers: Vec<WorkerQuality>,
}

/// `GET .../workers/{user}`: a record as its reader may see it. A worker
/// reading their own does not see their gold counts, accuracy or verdict
/// (null): a worker who knows which tasks are gold can answer those with
/// care and the rest at random.
#[derive(Debug, Serialize)]
pub struct WorkerRecord {
    pub worker: String,
    pub gold_correct: Option<i64>,
    pub gold_total: Option<i64>,
    pub accuracy: Option<f64>,
    pub verdict: Option<bool>,
    pub agree: i64,
    pub disagree: i64,
    pub answers: i64,
    pub mean_lead_time_ms: Option<i64>,
    pub fast_answers: i64,
    pub paused: Option<String>,
}

impl WorkerRecord {
    pub fn of(record: WorkerQuality, moderator: bool) -> WorkerRecord {
        WorkerRecord {
            worker: record.worker,
            gold_correct: moderator.then_some(record.gold_correct),
            gold_total: moderator.then_some(record.gold_total),
            accuracy: moderator.then_some(record.accuracy),
            verdict: moderator.then_some(record.verdict),
            agree: record.agree,
            disagree: record.disagree,
            answers: record.answers,
            mean_lead_time_ms: record.mean_lead_time_ms,
            fast_answers: record.fast_answers,
            paused: record.paused,
        }
    }
}

/// `POST .../workers/{user}/pause`.
#[derive(Debug, Serialize)]
pub struct Paused {
    pub user: UserId,
    pub paused: String,
}

/// `DELETE .../workers/{user}/pause`: whether they were paused.
#[derive(Debug, Serialize)]
pub struct Unpaused {
    pub user: UserId,
    pub unpaused: bool,
}

/// `POST .../tasks/{task}/review`: the task as the review left it.
#[derive(Debug, Serialize)]
pub struct Reviewed {
    pub task_id: i64,
    pub state: String,
    pub consensus: Option<Value>,
    pub method: Option<String>,
}

/// `GET .../tasks/{task}/reviews`: the task's review trail.
#[derive(Debug, Serialize)]
pub struct ReviewTrail {
    pub task_id: i64,
    pub reviews: Vec<crate::store::TaskReview>,
}
