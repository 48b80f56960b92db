//! The server operator's API (docs/API.md, "Server operators"): every
//! room on the server with its figures, live or not, and a moderator token
//! for any of them. Only an operator token (`cop_…`, issued by
//! `crowdroom operator issue`) opens it; a room token never does, and an
//! operator token opens no room: to act in one, the operator takes a
//! moderator token for it here, an ordinary room token.

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::console_api::{RoomFigures, figures};
use crate::auth::Role;
use crate::error::{Error, Result};
use crate::ids::{RoomId, TokenId};
use crate::store::Operator;

/// How long a moderator token taken by an operator lasts: a working day.
const MODERATE_TTL: Duration = Duration::from_secs(12 * 3600);
/// Rooms per page of the overview (each reads its figures).
const PAGE: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator/me", get(me))
        .route("/operator/rooms", get(rooms).post(create))
        .route("/operator/rooms/{room}/moderate", post(moderate))
}

/// An operator, authenticated by their bearer token.
pub struct OperatorCaller(pub Operator);

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let secret = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Error::Unauthorized)?;
        Ok(OperatorCaller(
            state.store.authenticate_operator(secret).await?,
        ))
    }
}

async fn me(OperatorCaller(me): OperatorCaller) -> Json<Operator> {
    Json(me)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /operator/rooms`: a page of rooms by id, each with its figures.
#[derive(Debug, Serialize)]
struct Rooms {
    rooms: Vec<RoomFigures>,
    /// The `after` of the next page; None on the last.
    next: Option<RoomId>,
}

async fn rooms(
    State(state): State<AppState>,
    OperatorCaller(_): OperatorCaller,
    Query(query): Query<RoomsQuery>,
) -> Result<Json<Rooms>> {
    let after = query.after.as_deref().map(RoomId::parse).transpose()?;
    let limit = query.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let rows = state.store.all_rooms(after.as_ref(), limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id.clone()))
        .flatten();
    let mut rooms = Vec::with_capacity(rows.len());
    for row in rows {
        rooms.push(figures(&state, row).await?);
    }
    Ok(Json(Rooms { rooms, next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    id: String,
    name: Option<String>,
}

/// `POST /operator/rooms`: the new room and an owner token for it in the
/// operator's name (shown once): how a room starts on an empty server
/// without the command line.
#[derive(Debug, Serialize)]
struct Created {
    room: crate::store::RoomRow,
    token: String,
    token_id: TokenId,
}

async fn create(
    State(state): State<AppState>,
    OperatorCaller(me): OperatorCaller,
    body: axum::body::Bytes,
) -> Result<Response> {
    // Read here, after the operator is known (`JsonBody` authenticates a
    // room token first); the router's body limit still applies.
    let body: NewRoom =
        serde_json::from_slice(&body).map_err(|error| Error::BadRequest(error.to_string()))?;
    let id = RoomId::parse(&body.id)?;
    let name = body.name.unwrap_or_else(|| id.to_string());
    let room = state.store.create_room(&id, &name).await?;
    let (token, secret) = state
        .store
        .issue_token(&id, &me.user, Role::Owner, None)
        .await?;
    tracing::info!(room_id = %id, operator = %me.user, "operator created a room");
    let body = Created {
        room,
        token: secret,
        token_id: token.id,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /operator/rooms/{room}/moderate`: a moderator token for the room,
/// in the operator's own name.
#[derive(Debug, Serialize)]
struct Moderate {
    room: RoomId,
    role: Role,
    token: String,
    token_id: TokenId,
    expires_at: Option<i64>,
}

async fn moderate(
    State(state): State<AppState>,
    OperatorCaller(me): OperatorCaller,
    Path(room): Path<String>,
) -> Result<Response> {
    let room = RoomId::parse(&room)?;
    // An owner stays an owner: taking a token never lowers a membership.
    let role = match state.store.member_role(&room, &me.user).await? {
        Some(Role::Owner) => Role::Owner,
        _ => Role::Moderator,
    };
    let ttl = i64::try_from(MODERATE_TTL.as_millis()).unwrap_or(i64::MAX);
    let (token, secret) = state
        .store
        .issue_token(&room, &me.user, role, Some(ttl))
        .await?;
    tracing::info!(room_id = %room, operator = %me.user, "operator took a {role} token");
    let body = Moderate {
        room,
        role,
        token: secret,
        token_id: token.id,
        expires_at: token.expires_at,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
