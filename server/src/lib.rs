//! Crowdroom: live project rooms for crowd work — Yjs co-editing, chat and
//! presence over WebSocket, durable on SQLite or PostgreSQL.
//!
//! The entry point is [`run`]: give it a bound listener, an opened
//! [`Store`] and [`Settings`], and a shutdown token. See ARCHITECTURE.md
//! for the map of actors and channels.

pub mod auth;
pub mod cli;
pub mod committer;
pub mod conn;
pub mod consensus;
pub mod demo;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod protocol;
pub mod rooms;
pub mod sessions;
pub mod store;

pub use error::{CloseCode, Error, Result};
pub use http::{Settings, SocketLimits, run};
pub use rooms::RoomSettings;
pub use store::{Backend, Store};
