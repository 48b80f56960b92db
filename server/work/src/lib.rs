//! Crowdroom's work engine as plain decisions: no tokio, sqlx or axum, no
//! clock and no IO. The server wires these functions to sockets and the
//! store; here they are plain data in, decisions out, so they are
//! property-tested on random operation sequences without a server.

pub mod assign;
pub mod batch;
pub mod consensus;
pub mod decide;
pub mod error;
pub mod floor;
#[cfg(test)]
mod fuzz;
pub mod gain;
pub mod project;
pub mod quality;
pub mod queue;
pub mod schema;

pub use error::{Error, Result};
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
