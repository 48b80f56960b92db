//! A document as the server holds it: a yrs [`Doc`] plus the checks that
//! make it safe to feed with client bytes.
//!
//! The server applies remote updates, answers sync step 1 and takes
//! snapshots; it never edits through this type (the [`crate::schema`]
//! functions do that on [`SharedDoc::doc`]). Each update goes through three
//! gates before it reaches the document:
//!
//! 1. a bounded structural walk (`validate.rs`) that refuses input yrs
//!    would recurse on without limit (a stack overflow aborts the process,
//!    which no `catch_unwind` can stop), including updates that would nest
//!    shared types too deeply (`nesting.rs`);
//! 2. yrs's own v1 decoder;
//! 3. `catch_unwind` around decoding and integration, so a yrs bug becomes
//!    [`DocError::Panicked`] instead of taking the server down.
//!
//! After a panic the document may be inconsistent: it is marked broken,
//! refuses further updates, and the server should drop it and reload it
//! from the store. The same happens when an update leaves shared types
//! nested deeper than [`MAX_TYPE_DEPTH`] (deleting them later would
//! overflow the stack).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Doc, OffsetKind, Options, ReadTxn, StateVector, Transact, TransactionMut, Update, WriteTxn,
};

pub use crate::nesting::MAX_TYPE_DEPTH;
use crate::nesting::{ItemBlock, deeper_than, longest_type_chain};
use crate::validate::{
    UpdateShape, check_against_state, check_no_gap, check_state_vector_v1, check_update_v1,
};

/// The result of applying an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The update was non-empty and extended the doc's state (or deleted
    /// something). Also true when the update's new blocks had to wait for
    /// missing predecessors (see [`SharedDoc::has_pending`]): they are kept
    /// and belong in storage. False for duplicates and empty updates, which
    /// the server need neither store nor broadcast.
    pub changed: bool,
}

/// Why an update or state vector was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The bytes are not a well-formed update v1 or state vector; the doc is
    /// unchanged.
    #[error("malformed update: {0}")]
    Malformed(String),
    /// The update is well-formed but refused: by yrs (it may then have
    /// integrated the blocks before the refused one, which is valid CRDT
    /// content), or before yrs saw it (the doc is then unchanged) because
    /// it would nest shared types more than [`MAX_TYPE_DEPTH`] levels deeper
    /// than the doc, or because an item the doc already holds names a
    /// parent the doc lacks (no honest peer sends one; see
    /// `validate::check_against_state`).
    #[error("update rejected: {0}")]
    Rejected(String),
    /// yrs panicked, or the update left shared types nested deeper than
    /// [`MAX_TYPE_DEPTH`]. The doc may be inconsistent or unsafe to edit, so
    /// it now refuses updates: drop it and reload it from the store (the
    /// update that caused this must not be stored).
    #[error("yrs panicked applying an update")]
    Panicked,
}

/// Where an update comes from: a peer now, or the store (accepted when it
/// arrived, so only the rules that keep yrs safe apply again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Live,
    Stored,
}

/// A yrs document plus validation. `Send` and `Sync` (yrs `sync` feature).
#[derive(Debug)]
pub struct SharedDoc {
    /// The document. Transactions are opened and closed inside each method.
    doc: Doc,
    /// Set when yrs panicked inside this document or it grew too deep.
    broken: AtomicBool,
    /// The items of updates that left blocks in yrs's pending store
    /// (their predecessors are missing), so the nesting they may bring when
    /// they integrate is measured together with each new update. Emptied
    /// when nothing is pending.
    pending_items: Mutex<Vec<ItemBlock>>,
}

impl Default for SharedDoc {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedDoc {
    /// An empty document. Text offsets count UTF-16 code units, as in Yjs,
    /// so the server edits text at the same positions as the web client.
    pub fn new() -> Self {
        Self::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        })
    }

    /// Like [`new`](Self::new), with a chosen yrs client id (for replayable
    /// tests, or a server that reserves ids). Two peers editing with the
    /// same client id corrupt the document, so never reuse a live one.
    pub fn with_client_id(client_id: u64) -> Self {
        let options = Options::with_client_id(yrs::ClientID::new(client_id));
        Self::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..options
        })
    }

    fn with_options(options: Options) -> Self {
        SharedDoc {
            doc: Doc::with_options(options),
            broken: AtomicBool::new(false),
            pending_items: Mutex::new(Vec::new()),
        }
    }

    /// Builds the doc from a snapshot (an update v1) and the updates stored
    /// after it, in order.
    pub fn load<'b>(
        snapshot: Option<&[u8]>,
        updates: impl IntoIterator<Item = &'b [u8]>,
    ) -> Result<Self, DocError> {
        let shared = SharedDoc::new();
        // What was stored was accepted when it arrived: a rule added since
        // must not make a stored document unloadable.
        if let Some(snapshot) = snapshot {
            shared.apply_as(snapshot, Arrival::Stored)?;
        }
        for update in updates {
            shared.apply_as(update, Arrival::Stored)?;
        }
        Ok(shared)
    }

    /// The encoded v1 state vector (the payload of sync step 1).
    pub fn state_vector(&self) -> Vec<u8> {
        self.doc.transact().state_vector().encode_v1()
    }

    /// The update v1 holding what a peer with `remote_state_vector` lacks
    /// (the payload of sync step 2), including blocks still waiting for
    /// their predecessors, as Yjs does.
    pub fn diff(&self, remote_state_vector: &[u8]) -> Result<Vec<u8>, DocError> {
        check_state_vector_v1(remote_state_vector).map_err(DocError::Malformed)?;
        let state_vector = catch_unwind(|| StateVector::decode_v1(remote_state_vector))
            .map_err(|_| DocError::Malformed("state vector decoder panicked".to_owned()))?
            .map_err(|error| DocError::Malformed(error.to_string()))?;
        self.encode(&state_vector)
    }

    /// Validates (decodes as update v1) and applies a remote update. Never
    /// panics. See [`DocError`] for what each error leaves behind.
    pub fn apply(&self, update: &[u8]) -> Result<Applied, DocError> {
        self.apply_as(update, Arrival::Live)
    }

    fn apply_as(&self, update: &[u8], arrival: Arrival) -> Result<Applied, DocError> {
        if self.is_broken() {
            return Err(DocError::Panicked);
        }
        let (update, shape) = decode_update(update)?;
        // A poisoned lock only means a panic elsewhere; the list is still whole.
        let mut pending_items = self
            .pending_items
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        // Everything pending may integrate together with this update and be
        // deleted within the same transaction, so both are measured at once.
        let in_flight = if pending_items.is_empty() {
            longest_type_chain(&shape.items)
        } else {
            let mut combined = pending_items.clone();
            combined.extend_from_slice(&shape.items);
            longest_type_chain(&combined)
        };
        if in_flight > MAX_TYPE_DEPTH {
            return Err(DocError::Rejected(format!(
                "update would nest shared types {in_flight} levels deep (at most {MAX_TYPE_DEPTH})"
            )));
        }
        let has_types = shape.has_types();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut guard = CommitGuard(Some(self.doc.transact_mut()));
            let Some(txn) = guard.0.as_mut() else {
                return Ok(Applied { changed: false });
            };
            let state = txn.state_vector();
            check_against_state(&shape, |client| state.get(&yrs::ClientID::new(client)))
                .map_err(DocError::Rejected)?;
            if arrival == Arrival::Live {
                check_no_gap(
                    &shape,
                    |client| state.get(&yrs::ClientID::new(client)),
                    &pending_items,
                )
                .map_err(DocError::Rejected)?;
            }
            let had_pending = txn.has_missing_updates();
            let integration = apply_in(txn, update)?;
            // Only integration adds depth: new types, or pending blocks that
            // the update released.
            let may_deepen = integration.applied.changed && (has_types || had_pending);
            if may_deepen && deeper_than(&*txn, MAX_TYPE_DEPTH) {
                return Err(DocError::Panicked);
            }
            if !txn.has_missing_updates() {
                pending_items.clear();
            } else if integration.left_pending {
                pending_items.extend(shape.items);
            }
            Ok(integration.applied)
        }));
        match outcome {
            Ok(Err(DocError::Panicked)) | Err(_) => {
                self.broken.store(true, Ordering::Release);
                Err(DocError::Panicked)
            }
            Ok(result) => result,
        }
    }

    /// The whole state as one update v1, including blocks still waiting for
    /// their predecessors. Never panics: if yrs fails to encode the waiting
    /// blocks, the doc is marked broken and the snapshot holds only the
    /// integrated state. Use [`try_snapshot`](Self::try_snapshot) to store
    /// a checkpoint, so that cannot happen silently.
    pub fn snapshot(&self) -> Vec<u8> {
        self.try_snapshot().unwrap_or_else(|_| {
            let integrated = catch_unwind(AssertUnwindSafe(|| {
                self.doc.transact().encode_diff_v1(&StateVector::default())
            }));
            integrated.unwrap_or_else(|_| Update::EMPTY_V1.to_vec())
        })
    }

    /// The whole state as one update v1, or [`DocError::Panicked`] (and the
    /// doc marked broken) if yrs panics encoding it.
    pub fn try_snapshot(&self) -> Result<Vec<u8>, DocError> {
        self.encode(&StateVector::default())
    }

    /// Whether the doc holds blocks or deletions that wait for updates it
    /// has not seen (a client sent updates out of order or with a gap).
    pub fn has_pending(&self) -> bool {
        self.doc.transact().has_missing_updates()
    }

    /// Encodes what a peer at `state_vector` lacks, pending blocks included.
    fn encode(&self, state_vector: &StateVector) -> Result<Vec<u8>, DocError> {
        catch_unwind(AssertUnwindSafe(|| {
            self.doc.transact().encode_state_as_update_v1(state_vector)
        }))
        .map_err(|_| {
            self.broken.store(true, Ordering::Release);
            DocError::Panicked
        })
    }

    /// Whether yrs panicked inside this doc; if so, drop it and reload.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// The underlying yrs document, for reading and for local edits (see
    /// [`crate::schema`]). Do not hold its transactions across `.await`.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }
}

/// Merges several v1 updates into one (used when compacting stored
/// updates); errors on malformed input.
pub fn merge_updates(updates: &[&[u8]]) -> Result<Vec<u8>, DocError> {
    for update in updates {
        check_update_v1(update).map_err(DocError::Malformed)?;
    }
    catch_unwind(|| yrs::merge_updates_v1(updates.iter().copied()))
        .map_err(|_| DocError::Panicked)?
        .map_err(|error| DocError::Malformed(error.to_string()))
}

/// Which of `updates` hold something the document that `snapshot` encodes
/// lacks: a block (GC'd or not) it does not hold, or a deletion it has not
/// made. Applying any of the others would change nothing. Cheaper than
/// [`merge_updates`] (decoding only: a quarter of the time for a thousand
/// small updates), so a checkpoint merges only what its snapshot lacks, and
/// a snapshot that covers the whole log is stored as it is, keeping the
/// garbage collection a merge of updates cannot do. Errors on malformed
/// input.
pub fn not_covered(snapshot: &[u8], updates: &[&[u8]]) -> Result<Vec<usize>, DocError> {
    let (snapshot, _) = decode_update(snapshot)?;
    let (inserted, deleted) = (snapshot.insertions(true), snapshot.delete_set());
    let mut outside = Vec::new();
    for (at, update) in updates.iter().enumerate() {
        let (update, _) = decode_update(update)?;
        let lacks = catch_unwind(AssertUnwindSafe(|| {
            !update.insertions(true).diff(&inserted).is_empty()
                || !update.delete_set().diff(deleted).is_empty()
        }))
        .map_err(|_| DocError::Panicked)?;
        if lacks {
            outside.push(at);
        }
    }
    Ok(outside)
}

/// Walks, then decodes, an update v1.
fn decode_update(update: &[u8]) -> Result<(Update, UpdateShape), DocError> {
    let shape = check_update_v1(update).map_err(DocError::Malformed)?;
    let decoded = catch_unwind(|| Update::decode_v1(update))
        .map_err(|_| DocError::Malformed("update decoder panicked".to_owned()))?
        .map_err(|error| DocError::Malformed(error.to_string()))?;
    Ok((decoded, shape))
}

/// What integrating one update did.
struct Integration {
    applied: Applied,
    /// Some of the update's blocks wait in yrs's pending store.
    left_pending: bool,
}

/// Integrates `update` and works out whether it changed anything.
fn apply_in(txn: &mut TransactionMut<'_>, update: Update) -> Result<Integration, DocError> {
    if update.is_empty() {
        return Ok(Integration {
            applied: Applied { changed: false },
            left_pending: false,
        });
    }
    let before = txn.state_vector();
    let insertions = update.insertions(true);
    let beyond = |state: &StateVector| {
        insertions.iter().any(|(client, ranges)| {
            let known = state.get(client);
            ranges.iter().any(|range| range.end > known)
        })
    };
    // Blocks past what the doc has, or deletions, are new information even
    // if they end up pending.
    let brings_new = !update.delete_set().is_empty() || beyond(&before);
    // yrs slices the blocks that straddle what the doc holds.
    let straddles = insertions.iter().any(|(client, ranges)| {
        let known = before.get(client);
        ranges
            .iter()
            .any(|range| range.start < known && range.end > known)
    });
    txn.apply_update(update)
        .map_err(|error| DocError::Rejected(error.to_string()))?;
    if txn.has_missing_updates() && (straddles || txn.state_vector() != before) {
        retry_pending(txn)?;
    }
    let after = txn.state_vector();
    let extended = after != before;
    let deleted = !txn.delete_set().is_empty();
    let pending = txn.has_missing_updates();
    let changed = extended || deleted || (brings_new && pending);
    Ok(Integration {
        applied: Applied { changed },
        left_pending: pending && beyond(&after),
    })
}

/// Most rounds of [`retry_pending`] after one update. A round integrates
/// what became integrable or leaves the pending blocks as they were; chains
/// of pending blocks that release each other round after round are only
/// hostile, and the cap bounds the work one update can cause.
const MAX_PENDING_ROUNDS: usize = 4;

/// Re-applies the pending blocks in their encoded form, until that form
/// stops changing.
///
/// yrs retries pending blocks only when the new update touches a client
/// they wait for, so blocks whose predecessors just arrived through another
/// client can stay pending: this retries them.
///
/// And the pending blocks in memory can differ from their encoding, which
/// is what every snapshot and sync step 2 holds. When the doc comes to hold
/// part of a waiting block (now or in a later update), yrs (and a merge of
/// updates) slices the block there, and the slice is written with the clock
/// before it as its left origin and no parent: an item that waits in memory
/// for a parent the doc lacks is written as one that waits for nothing, and
/// every reload integrates it. No honest peer makes such a block (a block
/// whose first clock the doc holds has its parent too), but a hostile one
/// can, under another client's id. Re-applying the encoded form makes the
/// live doc integrate what a reload of its snapshot integrates, so both
/// agree on every client's clock (and on which of its later blocks are
/// duplicates). For honest pending blocks the encoded form is the same, so
/// this is the plain retry.
fn retry_pending(txn: &mut TransactionMut<'_>) -> Result<(), DocError> {
    let mut previous: Option<Vec<u8>> = None;
    for _ in 0..MAX_PENDING_ROUNDS {
        let Some(pending) = txn.store().pending_update() else {
            return Ok(());
        };
        let encoded = pending.update.encode_v1();
        if previous.as_ref() == Some(&encoded) {
            return Ok(());
        }
        let Some(pruned) = txn.prune_pending() else {
            return Ok(());
        };
        let canonical = Update::decode_v1(&pruned.encode_v1())
            .map_err(|error| DocError::Rejected(error.to_string()))?;
        txn.apply_update(canonical)
            .map_err(|error| DocError::Rejected(error.to_string()))?;
        previous = Some(encoded);
    }
    Ok(())
}

/// Commits the transaction when dropped, as yrs does, except while
/// unwinding from a panic: then the commit (which runs observers and
/// squashes blocks on possibly inconsistent state) runs under its own
/// `catch_unwind`, because a second panic during unwinding aborts the
/// process.
struct CommitGuard<'doc>(Option<TransactionMut<'doc>>);

impl Drop for CommitGuard<'_> {
    fn drop(&mut self) {
        let Some(txn) = self.0.take() else {
            return;
        };
        if std::thread::panicking() {
            // A failed commit leaves nothing to undo: the doc is marked
            // broken by the caller either way.
            drop(catch_unwind(AssertUnwindSafe(move || drop(txn))));
        } else {
            drop(txn);
        }
    }
}

#[cfg(test)]
mod tests;
