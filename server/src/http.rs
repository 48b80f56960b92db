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
mod live;
mod socket;
mod transfer;
mod web;
mod work_api;
mod yjs;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
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

/// How long shutdown waits for sockets, rooms and the committer.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// closed with 4008: about a second of a busy room's traffic.
    pub outbound_queue: usize,
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
        }
    }
}

/// Everything the server can be configured with, besides its listener and store.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub rooms: RoomSettings,
    pub sockets: SocketLimits,
}

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub rooms: RoomRegistry,
    pub sessions: Arc<Sessions>,
    pub metrics: Arc<Metrics>,
    pub sockets: Arc<SocketLimits>,
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
    let rooms = RoomRegistry::new(RoomContext {
        store: store.clone(),
        committer,
        metrics: metrics.clone(),
        settings: Arc::new(settings.rooms),
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    });
    let sessions = Arc::new(Sessions::default());
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
    tracker.spawn(ledger_api::auto_approve(store.clone(), shutdown.clone()));
    let state = AppState {
        store: store.clone(),
        rooms,
        sessions,
        metrics,
        sockets: Arc::new(settings.sockets),
        max_doc_bytes,
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    };
    let app = router(state);
    // Nagle's algorithm adds up to 40 ms to small frames: turn it off.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    // Whatever ended serving, make every task wind down.
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timed out waiting for connections and rooms");
    }
    store.close().await;
    served.map_err(|error| Error::Internal(format!("server error: {error}")))
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
                .merge(console_api::routes()),
        )
        .fallback(web::serve)
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "store unavailable" })),
            )
                .into_response()
        }
    }
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
fn bearer<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .or(query_token)
}

/// Authenticates a request for `room`: the token must be valid and be for that room.
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
    Ok(principal)
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
/// than axum's plain-text ones.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}
