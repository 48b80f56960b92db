//! `POST /api/v1/rooms/{room}/assign`: batch assignment for a core team
//! with known capacity (docs/API.md). The room makes the problem from its
//! memory (`WorkState::plan`: the open tasks most in need, and each
//! member's expected gain on those they may take, by the live queue's own
//! rules and formula, fair spread applied); it is solved here, off the
//! room's loop, by [`crowdroom_work::assign`]; the room then grants each
//! chosen pair under the queue's rules as they stand by then
//! (`WorkState::assign`), so the overlap invariants hold even if workers
//! take tasks meanwhile. A member may hold several assigned tasks (their
//! capacity); asking for work returns the oldest they hold.

use axum::Json;
use axum::extract::State;
use crowdroom_work::assign::assign;
use serde::{Deserialize, Serialize};

use super::{AppState, Caller, JsonBody, require};
use crate::error::{Error, Result};
use crate::ids::UserId;

/// Most tasks considered per unit of requested capacity.
const TASKS_PER_SLOT: usize = 4;
/// Most tasks considered in one run.
const MAX_TASKS: usize = 20_000;
/// Most members in one run.
const MAX_MEMBERS: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    members: Vec<MemberCapacity>,
}

/// The pairs a run granted.
#[derive(Debug, Serialize)]
pub struct Assigned {
    assigned: Vec<Assignment>,
}

/// One granted pair: the reservation's task and when it runs out.
#[derive(Debug, Serialize)]
struct Assignment {
    user: UserId,
    task_id: i64,
    expires_at: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberCapacity {
    user: String,
    capacity: u32,
}

pub async fn assign_tasks(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<AssignRequest>,
) -> Result<Json<Assigned>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators assign work",
    )?;
    if body.members.is_empty() || body.members.len() > MAX_MEMBERS {
        return Err(Error::BadRequest(format!(
            "give 1 to {MAX_MEMBERS} members"
        )));
    }
    let mut members = Vec::with_capacity(body.members.len());
    for member in &body.members {
        let user = UserId::parse(&member.user)?;
        if state.store.member_role(&me.room, &user).await?.is_none() {
            return Err(Error::NotFound("member"));
        }
        members.push((user, member.capacity));
    }
    let capacity: usize = body
        .members
        .iter()
        .map(|member| member.capacity as usize)
        .fold(0, usize::saturating_add);
    let most = capacity.saturating_mul(TASKS_PER_SLOT).clamp(1, MAX_TASKS);
    let users: Vec<UserId> = members.iter().map(|(user, _)| user.clone()).collect();
    let plan = state.rooms.plan(&me.room, members, most).await?;
    if plan.tasks.is_empty() {
        return Ok(Json(Assigned {
            assigned: Vec::new(),
        }));
    }
    let (pairs, plan) = tokio::task::spawn_blocking(move || {
        let pairs = assign(&plan.members, &plan.slots);
        (pairs, plan)
    })
    .await
    .map_err(|error| Error::Internal(format!("assignment: {error}")))?;
    // The room grants the plan from its memory, under the queue's rules
    // as they stand now: a slot taken meanwhile is simply not assigned.
    let planned: Vec<(UserId, i64)> = pairs
        .into_iter()
        .filter_map(|(member, task)| Some((users.get(member)?.clone(), *plan.tasks.get(task)?)))
        .collect();
    let assigned = state
        .rooms
        .assign(&me.room, planned)
        .await?
        .into_iter()
        .map(|(user, reservation)| Assignment {
            user,
            task_id: reservation.task_id,
            expires_at: reservation.expires_at,
        })
        .collect();
    Ok(Json(Assigned { assigned }))
}
