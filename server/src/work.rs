//! The work engine's vocabulary: a room's project (how its tasks are
//! answered, paid and checked), tasks, and answer validation.
//!
//! Everything that must hold under concurrency (overlap, one reservation
//! and one answer per worker and task) is enforced by the store's
//! conditional writes, so it holds across server processes sharing one
//! database; the in-process code only chooses what to try.

pub mod assign;
pub mod batch;
