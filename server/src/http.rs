//! The HTTP surface: the router, shared state, authentication, and the
//! server's entry point [`run`].
//!
//! `run` takes an already bound listener (tests bind `127.0.0.1:0`) and a
//! shutdown token. On shutdown it stops accepting, closes every socket with
//! 1001, lets each room checkpoint, waits for the committer to drain, and
//! returns: what was acknowledged is on disk before `run` returns.

mod api;
mod assign_api;
mod console_api;
mod ledger_api;
mod listen;
mod live;
mod operator_api;
mod socket;
mod transfer;
mod web;
mod work_api;
mod yjs;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, RawPathParams, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Principal;
use crate::committer::CommitHandle;
use crate::error::{Error, Result};
use crate::ids::RoomId;
use crate::metrics::Metrics;
use crate::rooms::{RoomContext, RoomRegistry, RoomSettings};
use crate::sessions::{self, Sessions};
use crate::store::Store;

/// How long a server whose committer failed keeps answering `/healthz`
/// with 503 and the reason before it shuts down (and exits non-zero).
const FAILED_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for sockets, rooms and the committer.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest JSON request body (a project's configuration is the biggest,
/// a few KiB; imports stream and have their own limits, `transfer.rs`).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// [`HttpLimits::max_connections_per_ip`] unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 512;
/// [`HttpLimits::max_sockets_per_user`] unless told otherwise.
pub const DEFAULT_MAX_SOCKETS_PER_USER: u32 = 32;

/// Limits of the HTTP listener itself (docs/API.md, "Limits").
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A client must send a request's headers within this (from the
    /// connection's start or the previous response): slowloris clients,
    /// and idle keep-alive connections, are cut off at it.
    pub header_read_timeout: Duration,
    /// Most TCP connections (WebSockets included) one client address may
    /// hold open; more are closed at accept. 0: no cap (load tests, which
    /// open thousands from 127.0.0.1). A classroom behind one NAT is the
    /// legitimate worst case: a hundred members with a few sockets each.
    pub max_connections_per_ip: usize,
    /// Most WebSockets one user may hold open at once (0: no cap): a tab
    /// holds a live channel and a few documents, a person a few tabs. The
    /// upgrade over it is refused with 429 (or the socket closed with 1013).
    pub max_sockets_per_user: u32,
    /// Most tasks one import may carry (the first ones may be stored before
    /// the one over it is read: imports are idempotent by id, so split it).
    pub max_import_tasks: u64,
    /// Most bytes one import's body may carry.
    pub max_import_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_sockets_per_user: DEFAULT_MAX_SOCKETS_PER_USER,
            max_import_tasks: 100_000,
            max_import_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Limits of the two WebSocket kinds.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// Largest y-websocket message (a big paste or an initial sync).
    pub yjs_max_message: usize,
    /// Largest live-channel message (a chat message is at most a few KiB).
    pub live_max_message: usize,
    /// tungstenite read buffer per socket, allocated up front: 256 bytes,
    /// because idle sockets are the common case (4 KiB cost 3 KiB more per
    /// idle connection than 1 KiB, and 1 KiB 0.9 KiB more than 256 bytes,
    /// measured). Updates, awareness and live requests are mostly smaller;
    /// a large message (an initial upload) arrives in more reads.
    pub read_buffer: usize,
    /// tungstenite write buffer per socket.
    pub write_buffer: usize,
    /// y-websocket messages per second, and burst, per connection.
    pub yjs_rate: (u32, u32),
    /// Live-channel requests per second, and burst, per connection.
    pub live_rate: (u32, u32),
    /// Frames queued to one client before it counts as too slow and is
    /// closed with 4008: about a second of a busy room's traffic. (Bytes
    /// are bounded too: `conn::OUTBOUND_BUDGET`.)
    pub outbound_queue: usize,
    /// How long a write to a client may take before it counts as not
    /// reading and is closed with 4008 (see `conn::WriteDeadline`).
    pub write_deadline: crate::conn::WriteDeadline,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            yjs_max_message: 2 * 1024 * 1024,
            live_max_message: 64 * 1024,
            read_buffer: 256,
            write_buffer: 4 * 1024,
            yjs_rate: (200, 1000),
            live_rate: (20, 60),
            outbound_queue: 512,
            write_deadline: crate::conn::WriteDeadline::default(),
        }
    }
}

/// Everything the server can be configured with, besides its listener and store.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub rooms: RoomSettings,
    pub sockets: SocketLimits,
    pub http: HttpLimits,
}

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub rooms: RoomRegistry,
    pub sessions: Arc<Sessions>,
    pub metrics: Arc<Metrics>,
    pub sockets: Arc<SocketLimits>,
    pub http: Arc<HttpLimits>,
    /// The largest a document may grow: a joining client's sync step 2 can
    /// be that big, so a y-websocket socket's write buffer must hold it.
    pub max_doc_bytes: usize,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

impl AppState {
    /// The group-commit writer (for writes a client waits for).
    pub fn committer(&self) -> &CommitHandle {
        self.rooms.committer()
    }
}

/// Serves on `listener` until `shutdown` is cancelled, then shuts down cleanly.
pub async fn run(
    listener: TcpListener,
    store: Store,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<()> {
    let metrics = Metrics::new();
    let max_doc_bytes = settings.rooms.max_doc_bytes;
    let tracker = TaskTracker::new();
    let committer = CommitHandle::spawn(store.clone(), metrics.clone(), &tracker);
    // Crash-only: a server whose writer stopped drains and exits non-zero.
    let failed = committer.clone();
    let failed_shutdown = shutdown.clone();
    tracker.spawn(async move {
        tokio::select! {
            () = failed.failed() => {
                // Long enough for a supervisor's health check to see 503.
                tokio::time::sleep(FAILED_GRACE).await;
                failed_shutdown.cancel();
            }
            () = failed_shutdown.cancelled() => {}
        }
    });
    let decider = crate::rooms::decider::Decider::spawn(store.clone(), &tracker, shutdown.clone());
    let rooms = RoomRegistry::new(RoomContext {
        decider,
        store: store.clone(),
        committer,
        metrics: metrics.clone(),
        settings: Arc::new(settings.rooms),
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    });
    let sessions = Arc::new(Sessions::with_user_cap(settings.http.max_sockets_per_user));
    tracker.spawn(sessions::close_on_shutdown(
        sessions.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(sessions::keepalive(sessions.clone(), shutdown.clone()));
    tracker.spawn(sessions::poll_revocations(
        store.clone(),
        sessions.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(ledger_api::auto_approve(
        store.clone(),
        rooms.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(ledger_api::daily_floor(
        store.clone(),
        rooms.clone(),
        shutdown.clone(),
    ));
    let state = AppState {
        store: store.clone(),
        rooms,
        sessions,
        metrics,
        sockets: Arc::new(settings.sockets),
        http: Arc::new(settings.http.clone()),
        max_doc_bytes,
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    };
    let committer = state.committer().clone();
    let app = router(state);
    listen::serve(listener, app, &settings.http, &tracker, shutdown.clone()).await;
    // Make every task wind down.
    shutdown.cancel();
    let failure = committer.failure().map(str::to_owned);
    drop(committer);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timed out waiting for connections and rooms");
    }
    store.close().await;
    match failure {
        Some(reason) => Err(Error::Internal(reason)),
        None => Ok(()),
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/yjs/{room}/{doc}", get(yjs::upgrade))
        .route("/rooms/{room}/live", get(live::upgrade))
        .nest(
            "/api/v1",
            api::routes()
                .merge(work_api::routes())
                .merge(ledger_api::routes())
                .merge(console_api::routes())
                .merge(operator_api::routes()),
        )
        .fallback(web::serve)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

/// 200 while the store answers and the committer runs; 503 with the
/// reason otherwise (a supervisor restarts the process: a failed committer
/// also makes it exit non-zero).
async fn healthz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.committer().failure() {
        let health = Health {
            status: "committer stopped",
            reason: Some(reason),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(health)).into_response();
    }
    match state.store.ping().await {
        Ok(()) => {
            let health = Health {
                status: "ok",
                reason: None,
            };
            (StatusCode::OK, Json(health)).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            let health = Health {
                status: "store unavailable",
                reason: None,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(health)).into_response()
        }
    }
}

/// `/healthz`: `{"status"}`, with the `reason` a stopped committer gave.
#[derive(serde::Serialize)]
struct Health<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The bearer secret: `Authorization: Bearer ...`, else `?token=` (which
/// browsers need for WebSocket upgrades, since they cannot set headers).
/// A string not of a token's form is no token: it is refused as missing,
/// without a store read.
fn bearer<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .or(query_token)
        .filter(|secret| crate::auth::is_token_form(secret))
}

/// Whether the request asks for a WebSocket.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Authenticates a request for `room`: the token must be valid and be for
/// that room; a WebSocket upgrade must also be within its user's cap of
/// open sockets ([`HttpLimits::max_sockets_per_user`]).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
    room: &str,
) -> Result<Principal> {
    let secret = bearer(headers, query_token).ok_or(Error::Unauthorized)?;
    let principal = state.store.authenticate(secret).await?;
    let room = RoomId::parse(room)?;
    if principal.room != room {
        return Err(Error::Forbidden("this token does not open that room"));
    }
    if is_websocket_upgrade(headers) && !state.sessions.admits(&principal.user) {
        return Err(Error::TooManyConnections(
            "this user has too many sockets open: close some, then retry",
        ));
    }
    Ok(principal)
}

/// The caller of a REST route, authenticated from the request's head before
/// anything else is read, its body included: a valid bearer token, and on a
/// route with a `{room}` one of that room. The store is read once per
/// request, however many extractors ask (the result is kept in the
/// request's extensions; [`JsonBody`] asks first).
#[derive(Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let secret = bearer(&parts.headers, None).ok_or(Error::Unauthorized)?;
        let principal = state.store.authenticate(secret).await?;
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let room = params
            .iter()
            .flat_map(RawPathParams::iter)
            .find_map(|(name, value)| (name == "room").then_some(value));
        if let Some(room) = room
            && principal.room != RoomId::parse(room)?
        {
            return Err(Error::Forbidden("this token does not open that room"));
        }
        let caller = Caller(principal);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Refuses with 403 and `why` unless the role allows it.
pub(crate) fn require(allowed: bool, why: &'static str) -> Result<()> {
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden(why))
    }
}

/// A JSON body whose rejections are [`Error`]s (stable JSON errors) rather
/// than axum's plain-text ones. The caller is authenticated ([`Caller`])
/// before the body is read: without a valid token a request is 401 (or
/// 403), whatever its body; a body over [`MAX_JSON_BODY`] is 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        Caller::from_request_parts(&mut parts, state).await?;
        // A body declared too long is refused before a byte of it is read
        // (one sent without a length is cut off at the limit as it arrives).
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_JSON_BODY as u64) {
            return Err(too_large_body());
        }
        match Json::<T>::from_request(Request::from_parts(parts, body), state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn too_large_body() -> Error {
    Error::TooLarge("the request body is over 1 MiB")
}

fn json_rejection(rejection: &JsonRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large_body()
    } else {
        Error::BadRequest(rejection.body_text())
    }
}
