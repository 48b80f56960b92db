//! Property-based fuzzing of the work engine's functions that take client
//! input: answer validation for every schema, the live decision for every
//! schema, and the consensus estimators, within their documented domains
//! and outside them (NaN weights, empty sets, huge ids and offsets).
//!
//! Every property asserts more than "no panic" where it can: a well-formed
//! answer validates, a decision lies among or between its answers, a
//! unanimous vote returns its answer, posteriors sum to one.
//!
//! Inputs are kept small (texts of a few hundred characters, a few votes),
//! so the module runs with the unit tests in a few seconds of a debug build.
//!
//! Replaying a failure: each test prints `proptest seed N` on stderr, which
//! the harness shows when the test fails, next to proptest's
//! `minimal failing input: ...`. Run
//! `PROPTEST_RNG_SEED=N cargo test -p crowdroom-work --lib fuzz::NAME` to
//! draw the same cases again and reach the same minimal input. Nothing is
//! written to disk (`failure_persistence: None`): turn a minimal input
//! worth keeping into a plain unit test. `PROPTEST_CASES=N` fuzzes longer.
//! The server's own fuzzing (the live channel's decoder) is in the
//! server's `fuzz.rs`, with the same helpers.

#![allow(clippy::unwrap_used)]

use crate::testkit::{config, json_number, json_value};

mod answers;
mod consensus;
