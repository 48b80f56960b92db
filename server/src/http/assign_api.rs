//! `POST /api/v1/rooms/{room}/assign`: batch assignment for a core team
//! with known capacity (docs/API.md). The optimal assignment is computed by
//! [`crowdroom_work::assign`]; the room then grants each chosen pair from
//! its memory under the queue's rules (`WorkState::assign`), so the overlap
//! invariants hold even if workers take tasks at the same time. A member
//! may hold several assigned tasks (their capacity); asking for work
//! returns the oldest they hold.

use axum::Json;
use axum::extract::State;
use crowdroom_work::assign::{Member, assign};
use crowdroom_work::quality::vote_accuracy;
use serde::{Deserialize, Serialize};

use super::{AppState, Caller, JsonBody, require};
use crate::error::{Error, Result};
use crate::ids::UserId;

/// Most tasks considered per unit of requested capacity.
const TASKS_PER_SLOT: i64 = 4;
/// Most tasks considered in one run.
const MAX_TASKS: i64 = 20_000;
/// Most members in one run.
const MAX_MEMBERS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_who_did_more_get_less_among_equals() {
        let mut members = vec![
            Member {
                capacity: 1,
                options: vec![(0, 0.8)],
            },
            Member {
                capacity: 1,
                options: vec![(0, 0.8)],
            },
        ];
        spread_fairly(&mut members, &[30, 10]);
        // Mean 20: the first is 50% above it, the second below.
        assert!((members[0].options[0].1 - 0.8 / 1.25).abs() < 1e-12);
        assert!((members[1].options[0].1 - 0.8).abs() < 1e-12);
        assert_eq!(
            assign(&members, &[1]),
            vec![(1, 0)],
            "the one who did less gets the task"
        );
    }
}

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

/// How strongly work already done lowers a member's gains: a member with
/// twice the team's mean answers counts each gain at 2/3.
const SPREAD: f64 = 0.5;

/// The fair-spread term: scales each member's gains down by how far their
/// answers so far exceed the team's mean, so that among near-equal choices
/// the flow gives work to those who have had less.
fn spread_fairly(members: &mut [Member], done: &[i64]) {
    let mean = done.iter().sum::<i64>() as f64 / done.len().max(1) as f64;
    if mean <= 0.0 {
        return;
    }
    for (member, &answers) in members.iter_mut().zip(done) {
        let excess = (answers as f64 / mean - 1.0).max(0.0);
        let factor = 1.0 / (1.0 + SPREAD * excess);
        member
            .options
            .iter_mut()
            .for_each(|(_, gain)| *gain *= factor);
    }
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
    let project = state.store.project(&me.room).await?;
    let capacity: i64 = body
        .members
        .iter()
        .map(|member| i64::from(member.capacity))
        .sum();
    let tasks = state
        .store
        .open_tasks(&me.room, (capacity * TASKS_PER_SLOT).clamp(1, MAX_TASKS))
        .await?;
    let (first, last) = match (
        tasks.iter().map(|task| task.id).min(),
        tasks.iter().map(|task| task.id).max(),
    ) {
        (Some(first), Some(last)) => (first, last),
        _ => {
            return Ok(Json(Assigned {
                assigned: Vec::new(),
            }));
        }
    };
    let mut users = Vec::with_capacity(body.members.len());
    let mut members = Vec::with_capacity(body.members.len());
    let mut done = Vec::with_capacity(body.members.len());
    for member in &body.members {
        let user = UserId::parse(&member.user)?;
        if state.store.member_role(&me.room, &user).await?.is_none() {
            return Err(Error::NotFound("member"));
        }
        let paused = state.store.paused_reason(&me.room, &user).await?.is_some();
        let skills = state.store.member_skills(&me.room, &user).await?;
        let quality = state.store.worker_quality(&me.room, &user).await?;
        let accuracy = vote_accuracy(
            quality.gold_correct,
            quality.gold_total,
            quality.agree,
            quality.disagree,
        );
        let touched = state
            .store
            .touched_tasks(&me.room, &user, first, last)
            .await?;
        let has_project_skills = project
            .required_skills
            .iter()
            .all(|skill| skills.contains(skill));
        let options = tasks
            .iter()
            .enumerate()
            .filter(|(_, task)| {
                !paused
                    && has_project_skills
                    && !touched.contains(&task.id)
                    && task.skills.iter().all(|skill| skills.contains(skill))
            })
            // Expected gain: the member's accuracy times how much the task still needs an answer.
            .map(|(index, task)| (index, accuracy * task.need))
            .collect();
        members.push(Member {
            capacity: member.capacity,
            options,
        });
        done.push(quality.answers);
        users.push(user);
    }
    spread_fairly(&mut members, &done);
    let slots: Vec<u32> = tasks.iter().map(|task| task.free).collect();
    let pairs = tokio::task::spawn_blocking(move || assign(&members, &slots))
        .await
        .map_err(|error| Error::Internal(format!("assignment: {error}")))?;
    // The room grants the plan from its memory, under the queue's rules
    // as they stand now: a slot taken meanwhile is simply not assigned.
    let planned: Vec<(UserId, i64)> = pairs
        .into_iter()
        .filter_map(|(member, task)| Some((users.get(member)?.clone(), tasks.get(task)?.id)))
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
