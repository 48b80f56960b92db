//! What the moderator console and the review view read: a room's figures
//! at a glance, the moderation log, and one task with every answer.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{AppState, Caller, require};
use crate::error::{Error, Result};
use crate::ids::RoomId;
use crate::rooms::RoomStats;
use crowdroom_work::queue::Counts;

use crate::store::{Announcement, ModerationEntry, Mute, RoomRow, TaskAnswer, TaskRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room}/stats", get(room_stats))
        .route("/rooms/{room}/moderation", get(moderation_log))
        .route("/rooms/{room}/tasks/{task}", get(task_detail))
}

/// `GET /rooms/{room}/stats`: what the moderator console shows of a room
/// (and the operator's console of every room).
#[derive(Debug, Serialize)]
pub(super) struct RoomFigures {
    room: RoomId,
    name: String,
    live: RoomStats,
    counts: Counts,
    answers_last_minute: i64,
    answers_per_minute: f64,
    agreement: Option<f64>,
    /// Tasks waiting for a reviewer (`counts.review`).
    escalations: i64,
    pay: PayFigures,
    locked: bool,
    lock_reason: Option<String>,
    announcement: Option<Announcement>,
    /// Mutes still running.
    muted: Vec<Mute>,
}

/// The room's effective hourly rate against its target.
#[derive(Debug, Serialize)]
struct PayFigures {
    hourly_rate: Option<i64>,
    target_hourly_rate: i64,
    /// The rate is below the target.
    alert: bool,
    /// The pay floor's top-ups booked in the room, in all (micro-units).
    top_ups: i64,
}

/// Occupancy, throughput, agreement, escalations and pay of one room.
async fn room_stats(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<RoomFigures>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators see room figures",
    )?;
    let row = state
        .store
        .room(&me.room)
        .await?
        .ok_or(Error::NotFound("room"))?;
    Ok(Json(figures(&state, row).await?))
}

/// A room's figures; its live ones only if it is loaded here (reading
/// them never starts a room).
pub(super) async fn figures(state: &AppState, row: RoomRow) -> Result<RoomFigures> {
    let room = &row.id;
    let live = state.rooms.stats(room).await;
    let counts = state.store.queue_counts(room).await?;
    let activity = state.store.room_activity(room).await?;
    let project = state.store.project(room).await?;
    let pay = state
        .store
        .ledger_summary(room, project.target_hourly_rate)
        .await?;
    let moderation = state.store.room_moderation(room).await?;
    Ok(RoomFigures {
        room: row.id,
        name: row.name,
        live,
        escalations: counts.review,
        counts,
        answers_last_minute: activity.answers_last_minute,
        answers_per_minute: activity.answers_per_minute,
        agreement: activity.agreement,
        pay: PayFigures {
            hourly_rate: pay.hourly_rate,
            target_hourly_rate: pay.target_hourly_rate,
            alert: pay.below_target,
            top_ups: pay.top_ups,
        },
        locked: moderation.locked,
        lock_reason: moderation.lock_reason,
        announcement: moderation.announcement,
        muted: moderation.mutes,
    })
}

/// `GET /rooms/{room}/moderation`: the newest moderator actions.
#[derive(Debug, Serialize)]
struct ModerationLog {
    entries: Vec<ModerationEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    limit: Option<i64>,
}

/// The newest moderator actions, newest first.
async fn moderation_log(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(query): Query<LogQuery>,
) -> Result<Json<ModerationLog>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators read the moderation log",
    )?;
    let entries = state
        .store
        .moderation_log(&me.room, query.limit.unwrap_or(100))
        .await?;
    Ok(Json(ModerationLog { entries }))
}

/// `GET /rooms/{room}/tasks/{task}`.
#[derive(Debug, Serialize)]
struct TaskDetail {
    task: TaskRow,
    answers: Vec<TaskAnswer>,
    /// The review trail, as the store's consensus module records it.
    reviews: Vec<crate::store::TaskReview>,
}

/// One task as listed, with every answer and the review trail.
async fn task_detail(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, task)): Path<(String, i64)>,
) -> Result<Json<TaskDetail>> {
    require(
        me.role.can_list_members(),
        "only the core team sees answers",
    )?;
    let row = state
        .store
        .tasks(&me.room, None, task.saturating_sub(1), 1)
        .await?
        .into_iter()
        .find(|row| row.id == task)
        .ok_or(Error::NotFound("task"))?;
    let answers = state.store.task_answers(&me.room, task).await?;
    let reviews = state.store.task_reviews(&me.room, task).await?;
    Ok(Json(TaskDetail {
        task: row,
        answers,
        reviews,
    }))
}
