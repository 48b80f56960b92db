//! The committer's upkeep of the document log: deleting the updates that
//! checkpoints cover, a minute after they were written, oldest first, many
//! documents' at a time, in the batches the committer runs anyway.
//!
//! A checkpoint used to delete its own document's updates. The log's rows
//! are in id order, so 200 busy documents' rows are interleaved page by
//! page, and deleting one document's thousand rows wrote a thousand pages:
//! at 5,000 updates a second the writer spent a sixth of its time on it,
//! and those batches were the slowest (docs/BENCHMARKS.md, "Checkpoints off
//! the committer"). A minute on, nearly every row of a stretch of ids is
//! covered, and deleting them in id order frees whole pages.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::store::{WriteOp, WriteOutcome};

/// How often a batch carries a prune (at once again after a full one).
const EVERY: Duration = Duration::from_secs(1);
/// How old the updates a prune may delete are, at least.
const AFTER: Duration = Duration::from_secs(60);
/// Most updates one prune deletes: bounds the batch it rides in.
const MOST: i64 = 8192;

/// When the next prune is due, and how far it may go.
pub(super) struct Pruner {
    /// The greatest update id stored, sampled at each prune: (when, id).
    samples: VecDeque<(Instant, i64)>,
    /// The latest sample at least [`AFTER`] old: the next prune's bound.
    upto: i64,
    next: Instant,
}

impl Pruner {
    pub(super) fn new(now: Instant) -> Pruner {
        Pruner {
            samples: VecDeque::new(),
            upto: 0,
            next: now,
        }
    }

    /// The prune to add to the batch about to run, if one is due.
    pub(super) fn due(&mut self, now: Instant) -> Option<WriteOp> {
        if now < self.next {
            return None;
        }
        while let Some(&(at, id)) = self.samples.front() {
            if now.saturating_duration_since(at) < AFTER {
                break;
            }
            self.upto = id;
            self.samples.pop_front();
        }
        Some(WriteOp::PruneLog {
            upto: self.upto,
            most: MOST,
        })
    }

    /// Takes the outcome of the prune [`Pruner::due`] gave.
    pub(super) fn done(&mut self, now: Instant, outcome: Result<WriteOutcome>) {
        self.next = now + EVERY;
        match outcome {
            Ok(WriteOutcome::Pruned { deleted, last_id }) => {
                self.samples.push_back((now, last_id));
                if i64::try_from(deleted).is_ok_and(|deleted| deleted >= MOST) {
                    self.next = now;
                }
            }
            Ok(other) => tracing::warn!(?other, "a prune of the log returned something else"),
            Err(error) => tracing::warn!(%error, "cannot prune the document log"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::Error;

    fn bound(op: Option<WriteOp>) -> Option<i64> {
        match op {
            Some(WriteOp::PruneLog { upto, most }) => {
                assert_eq!(most, MOST);
                Some(upto)
            }
            _ => None,
        }
    }

    fn pruned(deleted: u64, last_id: i64) -> Result<WriteOutcome> {
        Ok(WriteOutcome::Pruned { deleted, last_id })
    }

    #[test]
    fn prunes_only_what_was_written_a_minute_before() {
        let start = Instant::now();
        let mut pruner = Pruner::new(start);
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        // Nothing is old enough yet: a prune bound by 0 deletes nothing.
        assert_eq!(bound(pruner.due(at(0))), Some(0));
        pruner.done(at(0), pruned(0, 100));
        // Not due again within the second.
        assert_eq!(bound(pruner.due(at(0) + Duration::from_millis(500))), None);
        assert_eq!(bound(pruner.due(at(1))), Some(0));
        pruner.done(at(1), pruned(0, 250));
        assert_eq!(bound(pruner.due(at(59))), Some(0));
        pruner.done(at(59), pruned(0, 900));
        // A minute after the first sample, up to what was stored then.
        assert_eq!(bound(pruner.due(at(60))), Some(100));
        pruner.done(at(60), pruned(MOST as u64, 950));
        // A full prune goes again at once, with the next minute-old bound.
        assert_eq!(bound(pruner.due(at(61))), Some(250));
        pruner.done(at(61), pruned(10, 960));
        assert_eq!(bound(pruner.due(at(61))), None);
        // A failure waits for the next turn and keeps the bound.
        assert_eq!(bound(pruner.due(at(62))), Some(250));
        pruner.done(at(62), Err(Error::Unavailable("test")));
        assert_eq!(bound(pruner.due(at(62))), None);
        assert_eq!(bound(pruner.due(at(120))), Some(950));
        pruner.done(at(120), pruned(0, 990));
        assert_eq!(bound(pruner.due(at(121))), Some(960));
    }
}
