//! The REST API under `/api/v1` (docs/API.md). JSON in and out; errors are
//! `{code, message}` with a stable code. Each handler takes its caller
//! ([`Caller`], authenticated once, before the body), checks the role
//! through [`crate::auth::Role`]'s permission methods, and calls the store.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{AppState, Caller, JsonBody, require};
use crate::auth::{Principal, Role};
use crate::error::{CloseCode, Error, Result};
use crate::ids::{DocName, RoomId, TokenId, UserId};
use crate::protocol::ChatPage;
use crate::rooms::RoomStats;
use crate::store::{MemberRow, RoomRow, TokenRow};

/// Longest token lifetime the API grants (a year), in seconds.
const MAX_TTL_SECONDS: i64 = 365 * 24 * 3600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/rooms", get(list_rooms).post(create_room))
        .route("/rooms/{room}", get(get_room))
        .route("/rooms/{room}/members", get(list_members))
        .route(
            "/rooms/{room}/members/{user}",
            put(set_member).delete(remove_member),
        )
        .route("/rooms/{room}/tokens", get(list_tokens).post(issue_token))
        .route(
            "/rooms/{room}/tokens/{token}",
            axum::routing::delete(revoke_token),
        )
        .route("/rooms/{room}/chat", get(chat_history))
        .route("/rooms/{room}/docs", get(list_docs).post(create_doc))
}

/// The role of `user`, a member of `me`'s room whom `me` may act on (pause,
/// set skills or role, remove, revoke the tokens of): only members of a
/// strictly lower rank ([`Role::can_moderate_member`]), so a moderator
/// cannot pause an owner and an owner cannot demote another owner (the CLI
/// can). `404` for a non-member, `403` for an equal or higher rank.
pub(super) async fn outranked_member(
    state: &AppState,
    me: &Principal,
    user: &UserId,
) -> Result<Role> {
    let role = state
        .store
        .member_role(&me.room, user)
        .await?
        .ok_or(Error::NotFound("member"))?;
    require(
        me.role.can_moderate_member(role),
        "you act only on members of a lower rank than yours",
    )?;
    Ok(role)
}

/// Routes that name no room ([`me`], [`list_rooms`], [`create_room`]) take
/// any valid token: [`Caller`] checks a room only where the path has one.
async fn me(Caller(me): Caller) -> Result<Json<Me>> {
    Ok(Json(Me {
        user: me.user,
        display_name: me.display_name.to_string(),
        room: me.room,
        role: me.role,
        token_id: me.token_id,
        token_expires_at: me.expires_at,
    }))
}

/// `GET /me`: who the token speaks as, where.
#[derive(Debug, Serialize)]
struct Me {
    user: UserId,
    display_name: String,
    room: RoomId,
    role: Role,
    token_id: TokenId,
    token_expires_at: Option<i64>,
}

/// `GET /rooms/{room}`: a room and what is live in it.
#[derive(Debug, Serialize)]
struct RoomBody {
    id: RoomId,
    name: String,
    created_at: i64,
    live: RoomStats,
}

async fn room_body(state: &AppState, room: &RoomId) -> Result<RoomBody> {
    let row = state
        .store
        .room(room)
        .await?
        .ok_or(Error::NotFound("room"))?;
    let live = state.rooms.stats(room).await;
    Ok(RoomBody {
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        live,
    })
}

/// `GET /rooms`.
#[derive(Debug, Serialize)]
struct Rooms {
    rooms: Vec<RoomBody>,
}

/// The rooms this token can see: a token opens exactly one room.
async fn list_rooms(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Rooms>> {
    let room = room_body(&state, &me.room).await?;
    Ok(Json(Rooms { rooms: vec![room] }))
}

/// `POST /rooms`: the new room and an owner token for it (shown once).
#[derive(Debug, Serialize)]
struct CreatedRoom {
    room: RoomRow,
    token: String,
    token_id: TokenId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    id: String,
    name: Option<String>,
}

/// An owner creates a new room and becomes its owner; the reply carries a
/// fresh owner token for it (a token opens only its own room).
async fn create_room(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<CreateRoom>,
) -> Result<Response> {
    require(
        me.role.can_administer(),
        "only room owners can create rooms",
    )?;
    let id = RoomId::parse(&body.id)?;
    let name = body.name.unwrap_or_else(|| id.to_string());
    let room = state.store.create_room(&id, &name).await?;
    let (token, secret) = state
        .store
        .issue_token(&id, &me.user, Role::Owner, None)
        .await?;
    let created = CreatedRoom {
        room,
        token: secret,
        token_id: token.id,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn get_room(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<RoomBody>> {
    Ok(Json(room_body(&state, &me.room).await?))
}

/// `GET /rooms/{room}/members`.
#[derive(Debug, Serialize)]
struct Members {
    members: Vec<MemberRow>,
}

async fn list_members(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Members>> {
    require(
        me.role.can_list_members(),
        "only the core team can list members",
    )?;
    let members = state.store.members(&me.room).await?;
    Ok(Json(Members { members }))
}

/// `PUT /rooms/{room}/members/{user}`: the member's new role.
#[derive(Debug, Serialize)]
struct MemberRole {
    user: UserId,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMember {
    role: String,
}

async fn set_member(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetMember>,
) -> Result<Json<MemberRole>> {
    require(me.role.can_administer(), "only owners change roles")?;
    let user = UserId::parse(&user)?;
    let role: Role = body.role.parse()?;
    if !state.store.user_exists(&user).await? {
        return Err(Error::NotFound("user"));
    }
    // A member of this room only if outranked; a user from elsewhere may
    // be added by an owner (this route is owners' only).
    if state.store.member_role(&me.room, &user).await?.is_some() {
        outranked_member(&state, &me, &user).await?;
    }
    state.store.set_member_role(&me.room, &user, role).await?;
    // Open sockets carry the old role: make them reconnect with the new one.
    state
        .rooms
        .disconnect(&me.room, &user, CloseCode::RoleChanged)
        .await;
    Ok(Json(MemberRole { user, role }))
}

async fn remove_member(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    require(me.role.can_administer(), "only owners remove members")?;
    let user = UserId::parse(&user)?;
    outranked_member(&state, &me, &user).await?;
    for token in state.store.remove_member(&me.room, &user).await? {
        state.sessions.close_token(&token, CloseCode::TokenRevoked);
    }
    state
        .rooms
        .disconnect(&me.room, &user, CloseCode::RoleChanged)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /rooms/{room}/tokens`.
#[derive(Debug, Serialize)]
struct Tokens {
    tokens: Vec<TokenRow>,
}

async fn list_tokens(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Tokens>> {
    require(
        me.role.can_moderate(),
        "only owners and moderators list tokens",
    )?;
    let tokens = state.store.tokens(&me.room).await?;
    Ok(Json(Tokens { tokens }))
}

/// `POST /rooms/{room}/tokens`: the secret (shown once) and what is stored.
#[derive(Debug, Serialize)]
struct IssuedToken {
    token: String,
    info: TokenRow,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    user: String,
    role: String,
    display_name: Option<String>,
    ttl_seconds: Option<i64>,
}

/// Issues a token (an invite): creates the user if new and makes them a
/// member with the role. Moderators grant only roles below their own.
///
/// User ids are global, and a token speaks as its user (their display name
/// in every room), so who may mint one for whom follows who vouches for the
/// person: a new user id, anyone who asks (owner or moderator); a member of
/// this room, themselves or whoever outranks them (re-invites, role
/// changes); a user who exists but is not a member here (someone from
/// another room), an owner only. Otherwise a moderator of one room could
/// mint a token for another room's member and speak as them.
async fn issue_token(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<IssueToken>,
) -> Result<Response> {
    require(
        me.role.can_moderate(),
        "only owners and moderators issue tokens",
    )?;
    let role: Role = body.role.parse()?;
    require(
        me.role.can_grant(role),
        "moderators grant only core, worker and viewer roles",
    )?;
    let ttl_ms = match body.ttl_seconds {
        Some(seconds) if !(1..=MAX_TTL_SECONDS).contains(&seconds) => {
            return Err(Error::BadRequest(format!(
                "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
            )));
        }
        Some(seconds) => Some(seconds * 1000),
        None => None,
    };
    let user = UserId::parse(&body.user)?;
    let display_name = match &body.display_name {
        Some(name) => crate::ids::display_name(name)?.to_owned(),
        None => user.to_string(),
    };
    // A token sets the member's role: nobody may change the role of a member
    // they do not outrank (a moderator cannot demote an owner, nor an owner
    // another owner), and nobody mints a token for a peer or a superior.
    let current = state.store.member_role(&me.room, &user).await?;
    match current {
        Some(current) => require(
            user == me.user || me.role.can_moderate_member(current),
            "that member's rank is not below yours",
        )?,
        None => require(
            me.role.can_administer() || !state.store.user_exists(&user).await?,
            "that user id belongs to someone outside this room: only an owner may invite them",
        )?,
    }
    state.store.ensure_user(&user, &display_name).await?;
    let (token, secret) = state
        .store
        .issue_token(&me.room, &user, role, ttl_ms)
        .await?;
    if current.is_some_and(|current| current != role) {
        // Their open sockets carry the old role: make them reconnect.
        state
            .rooms
            .disconnect(&me.room, &user, CloseCode::RoleChanged)
            .await;
    }
    let issued = IssuedToken {
        token: secret,
        info: token,
    };
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, token)): Path<(String, String)>,
) -> Result<StatusCode> {
    let token = TokenId(token.into());
    let target = state
        .store
        .tokens(&me.room)
        .await?
        .into_iter()
        .find(|row| row.id == token)
        .ok_or(Error::NotFound("token"))?;
    // Anyone may revoke their own token; owners and moderators those of
    // members of a lower rank.
    let own = target.user == me.user;
    require(
        own || me.role.can_moderate_member(target.role),
        "not allowed to revoke this token",
    )?;
    state.store.revoke_token(&token, Some(&me.room)).await?;
    state.sessions.close_token(&token, CloseCode::TokenRevoked);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn chat_history(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<ChatPage>> {
    let messages = state
        .store
        .chat_history(&me.room, query.before, query.limit.unwrap_or(50))
        .await?;
    let moderator = me.role.can_moderate();
    let messages: Vec<_> = messages
        .into_iter()
        .map(|message| message.seen_by(moderator))
        .collect();
    Ok(Json(ChatPage { messages }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocsQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// A page of the room's document names, sorted: `next_after` is the name to
/// pass as `after` for the next page, null on the last one. Without `limit`
/// a page is as long as it may be, so a caller that does not page still
/// gets every name of a room with no more than that.
async fn list_docs(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(query): Query<DocsQuery>,
) -> Result<Json<Docs>> {
    let after = query.after.as_deref().map(DocName::parse).transpose()?;
    let (docs, next_after) = state
        .store
        .docs(&me.room, after.as_ref(), query.limit)
        .await?;
    Ok(Json(Docs { docs, next_after }))
}

/// `GET /rooms/{room}/docs`: a page of names; `next_after` null on the last.
#[derive(Debug, Serialize)]
struct Docs {
    docs: Vec<String>,
    next_after: Option<String>,
}

/// `POST /rooms/{room}/docs`: whether the document is new.
#[derive(Debug, Serialize)]
struct CreatedDoc {
    name: DocName,
    created: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDoc {
    name: String,
}

async fn create_doc(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<CreateDoc>,
) -> Result<Response> {
    require(me.role.can_write(), "viewers cannot create documents")?;
    let name = DocName::parse(&body.name)?;
    require(
        crate::auth::may_open_doc(&me, name.as_str()),
        "answers are independent: this document belongs to another worker or the team",
    )?;
    let created = state.store.create_doc(&me.room, &name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(CreatedDoc { name, created })).into_response())
}
