//! Checkpoints: a loaded document's state stored as one snapshot in place
//! of its log of updates, so loading stays quick however long a room lives.
//!
//! The room takes the snapshot (its document's state, encoded on its loop
//! in a fraction of a millisecond) and hands the rest to a future off its
//! loop and off the committer: [`Store::prepare_checkpoint`] reads what is
//! stored and merges in whatever the snapshot lacks, and only then is the
//! write queued: one statement, no reads, no merging (the updates it covers
//! are deleted later by the committer's prune, `committer/prune.rs`).
//! Merged inside the batch, as it once was, 200 rooms that reached their
//! thousandth update together held every acknowledgement behind them for
//! up to two seconds. For the same reason each document's next checkpoint
//! is due after a number of updates drawn around `checkpoint_every`, so
//! rooms that started together spread out.
//!
//! [`Store::prepare_checkpoint`]: crate::store::Store::prepare_checkpoint

use rand::Rng;

use super::super::actor::{Completion, Purpose, RoomActor};
use crate::error::{CloseCode, Result};
use crate::ids::DocName;
use crate::store::WriteOutcome;

/// After how many updates a document's next checkpoint is due: uniform
/// within a quarter of `every` either side.
pub(super) fn due_after(every: usize) -> usize {
    let spread = every / 4;
    rand::rng()
        .random_range(every - spread..=every + spread)
        .max(1)
}

impl RoomActor {
    /// Snapshots `doc` and prepares and queues its checkpoint off the loop.
    pub(in crate::rooms) fn checkpoint(&mut self, doc: &DocName) {
        let every = self.context.settings.checkpoint_every;
        let Some(slot) = self.docs.get_mut(doc) else {
            return;
        };
        let snapshot = match slot.shared.try_snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => {
                // The log stays as it is; the document reloads from it.
                tracing::error!(room_id = %self.room, doc = %doc, %error, "cannot snapshot; reloading document");
                self.drop_doc(doc, CloseCode::TryLater);
                return;
            }
        };
        slot.stored_bytes = snapshot.len();
        slot.since_checkpoint = 0;
        slot.checkpoint_after = due_after(every);
        slot.pending += 1;
        let (store, committer) = (self.context.store.clone(), self.context.committer.clone());
        let (room, doc) = (self.room.clone(), doc.clone());
        let failed_doc = doc.clone();
        self.background(
            async move {
                let outcome = match store.prepare_checkpoint(&room, &doc, snapshot).await {
                    Ok(write) => committer.write(write).await,
                    Err(error) => Err(error),
                };
                Completion::Write {
                    purpose: Purpose::Checkpoint { doc },
                    outcome,
                }
            },
            |error| Completion::Write {
                purpose: Purpose::Checkpoint { doc: failed_doc },
                outcome: Err(error),
            },
        );
    }

    pub(in crate::rooms) fn checkpoint_committed(
        &mut self,
        doc: &DocName,
        outcome: Result<WriteOutcome>,
    ) {
        if let Some(slot) = self.docs.get_mut(doc) {
            slot.pending = slot.pending.saturating_sub(1);
            if let Err(error) = outcome {
                // The updates stay in the log; the next checkpoint retries.
                tracing::warn!(room_id = %self.room, doc = %doc, %error, "checkpoint failed");
                slot.since_checkpoint = slot.since_checkpoint.max(1);
            }
        }
    }

    /// Checkpoints every document with updates since its last checkpoint.
    pub(in crate::rooms) fn checkpoint_all(&mut self) {
        let due: Vec<DocName> = self
            .docs
            .iter()
            .filter(|(_, slot)| slot.since_checkpoint > 0)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            self.checkpoint(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::due_after;

    #[test]
    fn checkpoints_fall_due_within_a_quarter_of_the_setting() {
        let draws: Vec<usize> = (0..200).map(|_| due_after(1000)).collect();
        assert!(
            draws.iter().all(|&n| (750..=1250).contains(&n)),
            "{draws:?}"
        );
        // Spread out, not one value (200 draws of 501 values all equal: never).
        assert!(draws.iter().any(|&n| n != draws[0]), "{draws:?}");
        assert!(draws.iter().any(|&n| n < 1000) && draws.iter().any(|&n| n > 1000));
        assert_eq!(due_after(1), 1);
        assert_eq!(due_after(0), 1);
    }
}
