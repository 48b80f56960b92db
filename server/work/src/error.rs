//! The work engine's one error type. The server maps it to its own error
//! (and so to HTTP statuses and close codes) in one place.

/// Result alias of the work crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a work decision was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The input is malformed or out of bounds (an answer outside its
    /// schema, a project setting out of range); the message says which.
    #[error("{0}")]
    Invalid(String),
    /// One setting of a project is out of range or malformed: `field` names
    /// it as its path in the project's JSON (`overlap_min`,
    /// `answer_schema.options`, `label_styles.PER.hotkey`), so a client can
    /// show the message next to the control that holds it.
    #[error("{message}")]
    Field { field: String, message: String },
    /// The thing is not in a state that allows this (a task already
    /// decided, a reservation that expired).
    #[error("{0}")]
    State(String),
    /// The named thing is unknown.
    #[error("{0} not found")]
    NotFound(&'static str),
}
