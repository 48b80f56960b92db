//! The server's one error type, and the two places it leaves the process:
//! as an HTTP response ([`IntoResponse`]) and as a WebSocket close code
//! ([`CloseCode`]). Every handler returns [`Error`]; nothing else decides
//! what a client sees, so codes stay stable and internals stay private.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Result alias used across the server crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while serving a request or a socket.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: no token, or an unknown token. (A valid token for another room is `Forbidden`.)
    #[error("missing or invalid token")]
    Unauthorized,
    /// 401: the token has expired.
    #[error("token expired")]
    TokenExpired,
    /// 401: the token was revoked.
    #[error("token revoked")]
    TokenRevoked,
    /// 403: authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: the named thing does not exist (or is not visible to this token).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: it exists already.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// 409: an answer came without a live reservation (it expired, was
    /// skipped, or was never held).
    #[error("no live reservation for this task: it expired or was never held")]
    ReservationLost,
    /// 409: the thing is not in a state that allows this change.
    #[error("{0}")]
    InvalidState(String),
    /// 400: the request is malformed or a field is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 400: one named setting of the body is invalid (a project's, by its
    /// path in the JSON: `overlap_min`, `label_styles.PER.hotkey`); the
    /// body carries it as `field`, so a form shows the message beside it.
    #[error("{message}")]
    BadField { field: String, message: String },
    /// 413: the payload or document exceeds a limit.
    #[error("{0}")]
    TooLarge(&'static str),
    /// 429: too many requests on this connection.
    #[error("rate limit exceeded")]
    RateLimited,
    /// 429: too many connections or sockets open at once (the message says
    /// which); retry once some have closed.
    #[error("{0}")]
    TooManyConnections(&'static str),
    /// 413: one record of an import, or the import itself, exceeds a limit;
    /// the message says which record.
    #[error("{0}")]
    ImportTooLarge(String),
    /// 503: the room or store cannot take this now (shutting down, overloaded).
    #[error("{0}")]
    Unavailable(&'static str),
    /// 503: the room runs in another server process sharing the database
    /// (it holds the room's lease); retry later, or through that process.
    #[error("the room runs in another server process; retry later")]
    RoomElsewhere,
    /// 503: the database cannot be reached (said at start-up, with details).
    #[error("{0}")]
    DatabaseDown(String),
    /// 500: a store failure; details are logged, never shown.
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    /// 500: a migration failure at start-up.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// 500: an invariant broke; details are logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A database error that running the same transaction again may not
    /// meet: PostgreSQL's deadlock (40P01) and serialization failure
    /// (40001), which writers in two processes sharing it can cause.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store(sqlx::Error::Database(error)) => {
                matches!(error.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }

    /// The stable, machine-readable code clients match on (documented in docs/API.md).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => "unauthorized",
            Error::TokenExpired => "token_expired",
            Error::TokenRevoked => "token_revoked",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::ReservationLost => "reservation_expired",
            Error::InvalidState(_) => "invalid_state",
            Error::BadRequest(_) | Error::BadField { .. } => "bad_request",
            Error::TooLarge(_) | Error::ImportTooLarge(_) => "too_large",
            Error::RateLimited => "rate_limited",
            Error::TooManyConnections(_) => "too_many_connections",
            Error::Unavailable(_) | Error::DatabaseDown(_) => "unavailable",
            Error::RoomElsewhere => "room_elsewhere",
            Error::Store(_) | Error::Migrate(_) | Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized | Error::TokenExpired | Error::TokenRevoked => {
                StatusCode::UNAUTHORIZED
            }
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::ReservationLost | Error::InvalidState(_) => {
                StatusCode::CONFLICT
            }
            Error::BadRequest(_) | Error::BadField { .. } => StatusCode::BAD_REQUEST,
            Error::TooLarge(_) | Error::ImportTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited | Error::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::DatabaseDown(_) | Error::RoomElsewhere => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Store(_) | Error::Migrate(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The message a client may see: internal details are replaced.
    pub fn public_message(&self) -> String {
        match self {
            Error::Store(_) | Error::Migrate(_) | Error::Internal(_) => {
                "internal server error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The body of an error, as sent over HTTP and in live-channel replies.
    pub fn body(&self) -> ErrorBody {
        if matches!(
            self,
            Error::Store(_) | Error::Migrate(_) | Error::Internal(_)
        ) {
            tracing::error!(error = %self, "internal error");
        }
        ErrorBody {
            code: self.code(),
            message: self.public_message(),
            field: match self {
                Error::BadField { field, .. } => Some(field.clone()),
                _ => None,
            },
        }
    }
}

/// The work engine's refusals keep their message: an invalid input is
/// a 400, a wrong state a 409, an unknown thing a 404.
impl From<crowdroom_work::Error> for Error {
    fn from(error: crowdroom_work::Error) -> Self {
        match error {
            crowdroom_work::Error::Invalid(message) => Error::BadRequest(message),
            crowdroom_work::Error::Field { field, message } => Error::BadField { field, message },
            crowdroom_work::Error::State(message) => Error::InvalidState(message),
            crowdroom_work::Error::NotFound(thing) => Error::NotFound(thing),
        }
    }
}

/// `{"code": "...", "message": "..."}`, the error shape of the REST API and
/// the live channel; `"field"` too when one named setting is at fault.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

/// Every WebSocket close code the server sends, documented in docs/PROTOCOL.md.
/// This is the only place a close code is chosen. Application codes follow
/// the y-websocket convention: 4400-4499 mirror HTTP 4xx and mean "do not
/// reconnect" (the stock client stops); every other code is transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: normal close.
    Normal,
    /// 1001: the server is shutting down; reconnect later.
    GoingAway,
    /// 1002: a frame that does not decode as the protocol.
    ProtocolError,
    /// 1003: a text frame on a binary protocol or the reverse.
    UnsupportedData,
    /// 1007: a document update that yrs cannot decode or apply.
    InvalidUpdate,
    /// 1008: policy violation (authorization failed after the upgrade).
    Policy,
    /// 1009: a frame over the size limit.
    TooBig,
    /// 1011: an internal error.
    Internal,
    /// 1013: the room is unavailable (shutting down or overloaded); retry later.
    TryLater,
    /// 4401: the token expired while the socket was open.
    TokenExpired,
    /// 4403: the token was revoked while the socket was open.
    TokenRevoked,
    /// 4003: the member's role changed or they were removed; reconnect.
    RoleChanged,
    /// 4001: a moderator kicked the member; they may reconnect by hand.
    Kicked,
    /// 4008: the client did not read fast enough: its queue filled (frames
    /// or bytes), or a write to it passed its deadline; reconnect and resync.
    SlowConsumer,
    /// 4029: the client sent more messages than the rate limit allows.
    RateLimited,
    /// 4013: the room runs in another server process (it holds the room's
    /// lease), or this process lost the room to another; retry later.
    RoomElsewhere,
}

impl CloseCode {
    /// The numeric close code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::UnsupportedData => 1003,
            CloseCode::InvalidUpdate => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
            CloseCode::TryLater => 1013,
            CloseCode::TokenExpired => 4401,
            CloseCode::TokenRevoked => 4403,
            CloseCode::RoleChanged => 4003,
            CloseCode::Kicked => 4001,
            CloseCode::SlowConsumer => 4008,
            CloseCode::RateLimited => 4029,
            CloseCode::RoomElsewhere => 4013,
        }
    }

    /// The short reason sent with the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::GoingAway => "server shutting down",
            CloseCode::ProtocolError => "malformed message",
            CloseCode::UnsupportedData => "unsupported frame type",
            CloseCode::InvalidUpdate => "invalid document update",
            CloseCode::Policy => "not allowed",
            CloseCode::TooBig => "message too big",
            CloseCode::Internal => "internal error",
            CloseCode::TryLater => "room unavailable, retry later",
            CloseCode::TokenExpired => "token expired",
            CloseCode::TokenRevoked => "token revoked",
            CloseCode::RoleChanged => "membership changed",
            CloseCode::Kicked => "kicked",
            CloseCode::SlowConsumer => "client too slow",
            CloseCode::RateLimited => "rate limit exceeded",
            CloseCode::RoomElsewhere => "room runs in another server process",
        }
    }
}

impl From<&Error> for CloseCode {
    fn from(error: &Error) -> Self {
        match error {
            Error::Unauthorized | Error::Forbidden(_) | Error::NotFound(_) => CloseCode::Policy,
            Error::TokenExpired => CloseCode::TokenExpired,
            Error::TokenRevoked => CloseCode::TokenRevoked,
            Error::Conflict(_)
            | Error::ReservationLost
            | Error::InvalidState(_)
            | Error::BadRequest(_)
            | Error::BadField { .. } => CloseCode::ProtocolError,
            Error::TooLarge(_) | Error::ImportTooLarge(_) => CloseCode::TooBig,
            Error::RateLimited => CloseCode::RateLimited,
            Error::TooManyConnections(_) => CloseCode::TryLater,
            Error::Unavailable(_) | Error::DatabaseDown(_) => CloseCode::TryLater,
            Error::RoomElsewhere => CloseCode::RoomElsewhere,
            Error::Store(_) | Error::Migrate(_) | Error::Internal(_) => CloseCode::Internal,
        }
    }
}
