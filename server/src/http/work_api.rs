//! The work engine's REST API: the project (`work_api/project.rs`), task
//! listing, the queue's counts, and members' skills (docs/API.md). Import
//! and export, which stream, are in [`super::transfer`].

use axum::extract::{Path, Query, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

mod project;
mod replies;

use replies::{
    Paused, Queue, ReviewTrail, Reviewed, Tags, TaskPage, Unpaused, WorkerRecord, Workers,
};

use super::{AppState, Caller, JsonBody, require};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::MemberTags;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/rooms/{room}/project",
            get(project::get_project).put(project::put_project),
        )
        .route(
            "/rooms/{room}/project/preview",
            axum::routing::post(project::preview_project),
        )
        .route(
            "/rooms/{room}/tasks",
            get(list_tasks).post(super::transfer::import_tasks),
        )
        .route("/rooms/{room}/export", get(super::transfer::export))
        .route("/rooms/{room}/queue", get(queue))
        .route(
            "/rooms/{room}/members/{user}/skills",
            put(set_skills).get(get_skills),
        )
        .route(
            "/rooms/{room}/members/{user}/interests",
            put(set_interests).get(get_interests),
        )
        .route(
            "/rooms/{room}/tasks/{task}/review",
            axum::routing::post(review_task),
        )
        .route("/rooms/{room}/tasks/{task}/reviews", get(task_reviews))
        .route(
            "/rooms/{room}/consensus",
            axum::routing::post(batch_consensus),
        )
        .route(
            "/rooms/{room}/assign",
            axum::routing::post(super::assign_api::assign_tasks),
        )
        .route("/rooms/{room}/workers", get(list_workers))
        .route("/rooms/{room}/workers/{user}", get(get_worker))
        .route(
            "/rooms/{room}/workers/{user}/pause",
            axum::routing::post(pause_worker).delete(unpause_worker),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    state: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn list_tasks(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(query): Query<TaskQuery>,
) -> Result<Json<TaskPage>> {
    // Task listings carry gold answers: never for workers.
    require(me.role.can_list_members(), "only the core team lists tasks")?;
    let tasks = state
        .store
        .tasks(
            &me.room,
            query.state.as_deref(),
            query.after.unwrap_or(0),
            query.limit.unwrap_or(100),
        )
        .await?;
    let next = tasks.last().map(|task| task.id);
    Ok(Json(TaskPage {
        tasks,
        next_after: next,
    }))
}

async fn queue(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Queue>> {
    Ok(Json(Queue {
        counts: state.store.queue_counts(&me.room).await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skills {
    skills: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Interests {
    interests: Vec<String>,
}

/// Most skills or interests one member may carry.
const MAX_TAGS: usize = 100;
/// Longest skill or interest, in bytes.
const MAX_TAG_BYTES: usize = 100;

fn validate_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS
        || tags
            .iter()
            .any(|tag| tag.trim().is_empty() || tag.len() > MAX_TAG_BYTES)
    {
        return Err(Error::BadRequest(format!(
            "at most {MAX_TAGS} entries of 1 to {MAX_TAG_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Replaces a member's skills or interests (the caller checked who may).
async fn put_tags(
    state: &AppState,
    me: &Principal,
    user: &UserId,
    kind: MemberTags,
    tags: &[String],
) -> Result<Json<Tags>> {
    validate_tags(tags)?;
    if state.store.member_role(&me.room, user).await?.is_none() {
        return Err(Error::NotFound("member"));
    }
    state
        .store
        .set_member_tags(kind, &me.room, user, tags)
        .await?;
    state.rooms.queue_changed(&me.room).await;
    Ok(tags_reply(kind, user, tags))
}

/// The reply naming a member's skills or interests.
fn tags_reply(kind: MemberTags, user: &UserId, tags: &[String]) -> Json<Tags> {
    let (user, tags) = (user.clone(), tags.to_vec());
    Json(match kind {
        MemberTags::Skills => Tags::Skills { user, skills: tags },
        MemberTags::Interests => Tags::Interests {
            user,
            interests: tags,
        },
    })
}

/// A member's skills or interests, for themselves and the core team.
async fn get_tags(
    state: &AppState,
    me: &Principal,
    user: &str,
    kind: MemberTags,
) -> Result<Json<Tags>> {
    let user = UserId::parse(user)?;
    require(
        me.user == user || me.role.can_list_members(),
        "only the core team sees others' skills and interests",
    )?;
    let tags = state.store.member_tags(kind, &me.room, &user).await?;
    Ok(tags_reply(kind, &user, &tags))
}

/// Skills decide what a worker may take: owners and moderators set them.
async fn set_skills(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<Skills>,
) -> Result<Json<Tags>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators set skills",
    )?;
    let user = UserId::parse(&user)?;
    super::api::outranked_member(&state, &me, &user).await?;
    put_tags(&state, &me, &user, MemberTags::Skills, &body.skills).await
}

async fn get_skills(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
) -> Result<Json<Tags>> {
    get_tags(&state, &me, &user, MemberTags::Skills).await
}

/// Interests only order work: the member sets their own, or an owner or
/// moderator those of a member they outrank (as for pauses and skills).
async fn set_interests(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<Interests>,
) -> Result<Json<Tags>> {
    let user = UserId::parse(&user)?;
    if me.user != user {
        require(
            me.role.can_moderate(),
            "only the member and moderators set interests",
        )?;
        super::api::outranked_member(&state, &me, &user).await?;
    }
    put_tags(&state, &me, &user, MemberTags::Interests, &body.interests).await
}

async fn get_interests(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
) -> Result<Json<Tags>> {
    get_tags(&state, &me, &user, MemberTags::Interests).await
}

/// Every worker's quality record: accuracy, lead time, answers, pause.
async fn list_workers(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Workers>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators see every worker's record",
    )?;
    Ok(Json(Workers {
        workers: state.store.workers_quality(&me.room).await?,
    }))
}

async fn get_worker(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
) -> Result<Json<WorkerRecord>> {
    let user = UserId::parse(&user)?;
    require(
        me.user == user || me.role.can_moderate(),
        "only owners and moderators see others' records",
    )?;
    let record = state.store.worker_quality(&me.room, &user).await?;
    // A worker's own record hides their gold counts (see `WorkerRecord`).
    Ok(Json(WorkerRecord::of(record, me.role.can_moderate())))
}

/// Longest pause reason, in characters: a sentence the worker is shown.
const MAX_PAUSE_REASON_CHARS: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pause {
    reason: String,
}

async fn pause_worker(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<Pause>,
) -> Result<Json<Paused>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators pause workers",
    )?;
    let user = UserId::parse(&user)?;
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(Error::BadRequest("a pause needs a reason".into()));
    }
    crate::protocol::check_text(reason, MAX_PAUSE_REASON_CHARS, "a pause reason")?;
    super::api::outranked_member(&state, &me, &user).await?;
    state.store.pause_worker(&me.room, &user, reason).await?;
    paused_changed(&state, &me, &user, Some(reason)).await;
    Ok(Json(Paused {
        user,
        paused: reason.to_owned(),
    }))
}

async fn unpause_worker(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
) -> Result<Json<Unpaused>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators lift pauses",
    )?;
    let user = UserId::parse(&user)?;
    super::api::outranked_member(&state, &me, &user).await?;
    let lifted = state.store.unpause_worker(&me.room, &user).await?;
    if lifted {
        paused_changed(&state, &me, &user, None).await;
    }
    Ok(Json(Unpaused {
        user,
        unpaused: lifted,
    }))
}

/// Logs a pause or its end and tells the worker live (`worker.paused`).
async fn paused_changed(state: &AppState, me: &Principal, user: &UserId, reason: Option<&str>) {
    // Before the worker is told: the room reloads its work state first,
    // and a request sent on hearing of the pause waits for that load.
    state.rooms.queue_changed(&me.room).await;
    let action = if reason.is_some() { "pause" } else { "unpause" };
    if let Err(error) = state
        .store
        .log_moderation(&me.room, &me.user, action, Some(user.as_str()), reason)
        .await
    {
        tracing::warn!(room_id = %me.room, %error, "cannot log a pause");
    }
    let event = crate::protocol::Event::WorkerPaused {
        paused: reason.is_some(),
        reason,
        by: &me.user,
    };
    state.rooms.notify_user(&me.room, user, event.frame()).await;
}

/// Longest review reason, in characters: a sentence or a paragraph, kept
/// in the review trail and written into the task's shared document, which
/// everyone reviewing the task syncs.
const MAX_REVIEW_REASON_CHARS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Review {
    decision: String,
    answer: Option<Value>,
    reason: Option<String>,
}

/// A core-team member accepts, corrects or rejects a task's consensus. The
/// decision is final, kept in the task's review trail, and written into the
/// task's shared document so everyone reviewing it sees it live.
async fn review_task(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, task)): Path<(String, i64)>,
    JsonBody(body): JsonBody<Review>,
) -> Result<Json<Reviewed>> {
    use crate::store::ReviewDecision;
    use crowdroom_crdt::schema::{Review as DocReview, ReviewState};
    require(
        me.role.can_list_members(),
        "only the core team reviews tasks",
    )?;
    let decision = match body.decision.as_str() {
        "accept" => ReviewDecision::Accept,
        "correct" => ReviewDecision::Correct,
        "reject" => ReviewDecision::Reject,
        other => {
            return Err(Error::BadRequest(format!(
                "unknown decision {other:?}: accept, correct or reject"
            )));
        }
    };
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty());
    if let Some(reason) = reason {
        crate::protocol::check_text(reason, MAX_REVIEW_REASON_CHARS, "a review reason")?;
    }
    // Only a correction's answer is checked (against the schema): any other
    // decision's would be kept in the trail unchecked, up to the body limit.
    if decision != ReviewDecision::Correct && body.answer.is_some() {
        return Err(Error::BadRequest(
            "only a correction carries an answer".into(),
        ));
    }
    match decision {
        ReviewDecision::Correct => {
            let answer = body
                .answer
                .as_ref()
                .ok_or_else(|| Error::BadRequest("a correction needs an answer".into()))?;
            state
                .store
                .project(&me.room)
                .await?
                .answer_schema
                .validate_answer(answer)?;
        }
        ReviewDecision::Reject if reason.is_none() => {
            return Err(Error::BadRequest("a rejection needs a reason".into()));
        }
        _ => {}
    }
    let settled = state
        .store
        .review_task(
            &me.room,
            task,
            &me.user,
            decision,
            body.answer.as_ref(),
            reason,
        )
        .await?;
    let review = DocReview {
        state: match decision {
            ReviewDecision::Accept => ReviewState::Accepted,
            ReviewDecision::Correct => ReviewState::Corrected,
            ReviewDecision::Reject => ReviewState::Rejected,
        },
        reviewer: me.user.to_string(),
        reason: reason.unwrap_or_default().to_owned(),
        at: u64::try_from(crate::ids::now_ms()).unwrap_or(0),
    };
    let published = crate::rooms::Decision {
        state: settled.state.clone(),
        consensus: settled.consensus.clone(),
        confidence: settled.confidence,
        method: settled.method.clone(),
        review: Some(review),
    };
    state
        .rooms
        .publish_decision(&me.room, task, published)
        .await;
    state.rooms.queue_changed(&me.room).await;
    Ok(Json(Reviewed {
        task_id: task,
        state: settled.state,
        consensus: settled.consensus,
        method: settled.method,
    }))
}

async fn task_reviews(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, task)): Path<(String, i64)>,
) -> Result<Json<ReviewTrail>> {
    require(
        me.role.can_list_members(),
        "only the core team sees review trails",
    )?;
    Ok(Json(ReviewTrail {
        task_id: task,
        reviews: state.store.task_reviews(&me.room, task).await?,
    }))
}

/// Runs the project's batch consensus now (it also runs in the background,
/// every `batch_every` settled tasks; exports carry its last result).
async fn batch_consensus(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<crowdroom_work::batch::BatchReport>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators run batch consensus",
    )?;
    let project = state.store.project(&me.room).await?;
    Ok(Json(state.store.batch_consensus(&me.room, &project).await?))
}
