//! The project: read by any member, replaced by owners and moderators, and
//! previewed before it is replaced: what the new settings do to the work
//! already in the room (`crowdroom_work::project::change`), so a moderator
//! editing a running project sees it before saving.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use crowdroom_work::project::ProjectConfig;
use crowdroom_work::project::change::{ChangePreview, Taker, preview};

use crate::error::Result;
use crate::http::{AppState, Caller, JsonBody, require};
use crate::ids::now_ms;

pub(super) async fn get_project(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<ProjectConfig>> {
    Ok(Json(state.store.project(&me.room).await?))
}

pub(super) async fn put_project(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(config): JsonBody<ProjectConfig>,
) -> Result<Json<ProjectConfig>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators configure the project",
    )?;
    config.validate()?;
    state.store.put_project(&me.room, &config).await?;
    state.rooms.queue_changed(&me.room).await;
    Ok(Json(config))
}

/// `POST .../project/preview`: what saving this project would do to the
/// room's tasks and members; nothing is written. The rows are read from
/// the store in one snapshot, as a room reads them when it loads: what is
/// acknowledged is committed, so they are the room's work as it stands.
pub(super) async fn preview_project(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(config): JsonBody<ProjectConfig>,
) -> Result<Json<ChangePreview>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators configure the project",
    )?;
    config.validate()?;
    let rows = state.store.load_work(&me.room).await?;
    let members = state.store.members(&me.room).await?;
    // Members with no standing have no skills row: they have no skills.
    let skills: HashMap<&str, &Vec<String>> = rows
        .workers
        .iter()
        .map(|worker| (worker.id.as_str(), &worker.skills))
        .collect();
    let takers: Vec<Taker> = members
        .into_iter()
        .filter(|member| member.role.can_write())
        .map(|member| Taker {
            skills: skills
                .get(member.user.as_str())
                .map(|skills| (*skills).clone())
                .unwrap_or_default(),
            user: member.user.to_string(),
        })
        .collect();
    Ok(Json(preview(
        &rows.project,
        &config,
        &rows.tasks,
        &takers,
        &rows.reservations,
        now_ms(),
    )))
}
