//! Fuzzing SharedDoc: arbitrary bytes, corrupted valid updates and
//! arbitrary state vectors, after which the doc must still be usable.

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact};

use super::config;
use crate::doc::{merge_updates, not_covered};
use crate::encoding::write_var_u64;
use crate::{DocError, SharedDoc};

/// The client id of the peer that checks a doc is still usable; large, so
/// random bytes practically never name it.
const PROBE_CLIENT: u64 = 0x1234_5678_9abc;
/// The root the probe writes to; no fuzzed update names it.
const PROBE_ROOT: &str = "fuzz-probe";

/// A valid edit on a peer document.
#[derive(Debug, Clone)]
enum Edit {
    Insert { at: Index, text: String },
    Delete { at: Index, len: u32 },
    MapSet { key: String, value: i64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), "[a-z ]{1,12}").prop_map(|(at, text)| Edit::Insert { at, text }),
        1 => (any::<Index>(), 1u32..6).prop_map(|(at, len)| Edit::Delete { at, len }),
        1 => ("[a-c]", any::<i64>()).prop_map(|(key, value)| Edit::MapSet { key, value }),
    ]
}

/// Makes `edit` on `peer` (a plain yrs doc, byte offsets, ASCII text) and
/// returns its update.
fn peer_update(peer: &Doc, edit: &Edit) -> Vec<u8> {
    let text = peer.get_or_insert_text("text");
    let map = peer.get_or_insert_map("map");
    let mut txn = peer.transact_mut();
    let len = text.len(&txn);
    match edit {
        Edit::Insert { at, text: chunk } => {
            let at = at.index(len as usize + 1) as u32;
            text.insert(&mut txn, at, chunk);
        }
        Edit::Delete { at, len: count } => {
            if len > 0 {
                let at = at.index(len as usize) as u32;
                text.remove_range(&mut txn, at, (*count).min(len - at));
            }
        }
        Edit::MapSet { key, value } => {
            map.insert(&mut txn, key.as_str(), *value);
        }
    }
    txn.commit();
    txn.encode_update_v1()
}

/// One way to corrupt an update.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: Index,
        bit: u8,
    },
    Set {
        at: Index,
        byte: u8,
    },
    Insert {
        at: Index,
        byte: u8,
    },
    Remove {
        at: Index,
    },
    Truncate {
        at: Index,
    },
    /// A varint that claims a huge number, written over the bytes at `at`.
    HugeVarint {
        at: Index,
        value: u64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<Index>().prop_map(|at| Mutation::Remove { at }),
        any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<Index>(),
            prop_oneof![Just(u64::MAX), Just(1 << 31), Just(1 << 53), any::<u64>()]
        )
            .prop_map(|(at, value)| Mutation::HugeVarint { at, value }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        bytes.push(0);
    }
    let len = bytes.len();
    match mutation {
        Mutation::Flip { at, bit } => bytes[at.index(len)] ^= 1 << bit,
        Mutation::Set { at, byte } => bytes[at.index(len)] = *byte,
        Mutation::Insert { at, byte } => bytes.insert(at.index(len + 1), *byte),
        Mutation::Remove { at } => {
            bytes.remove(at.index(len));
        }
        Mutation::Truncate { at } => bytes.truncate(at.index(len)),
        Mutation::HugeVarint { at, value } => {
            let at = at.index(len);
            let mut varint = Vec::new();
            write_var_u64(&mut varint, *value);
            let end = (at + varint.len()).min(len);
            bytes.splice(at..end, varint);
        }
    }
}

fn probe_text(doc: &SharedDoc) -> String {
    let txn = doc.doc().transact();
    txn.get_text(PROBE_ROOT)
        .map(|text| text.get_string(&txn))
        .unwrap_or_default()
}

/// Applies untrusted bytes and checks what the error promises: a malformed
/// update leaves the doc as it was; only a contained panic breaks it.
fn apply_untrusted(doc: &SharedDoc, bytes: &[u8]) -> Result<(), TestCaseError> {
    let was_broken = doc.is_broken();
    let before = doc.snapshot();
    match doc.apply(bytes) {
        Ok(_) | Err(DocError::Rejected(_)) => prop_assert!(!doc.is_broken()),
        Err(DocError::Malformed(_)) => {
            prop_assert!(!doc.is_broken());
            prop_assert_eq!(doc.snapshot(), before, "a malformed update changed the doc");
        }
        Err(DocError::Panicked) => prop_assert!(doc.is_broken() || was_broken),
    }
    Ok(())
}

/// Whatever the doc was fed, unless it is broken (the server then drops and
/// reloads it) a further valid update applies and reads back, and its
/// snapshot reloads into an equal document.
fn check_usable(doc: &SharedDoc) -> Result<(), TestCaseError> {
    if doc.is_broken() {
        prop_assert!(matches!(doc.apply(&[0, 0]), Err(DocError::Panicked)));
        return Ok(());
    }
    let probe = Doc::with_client_id(PROBE_CLIENT);
    let text = probe.get_or_insert_text(PROBE_ROOT);
    let mut txn = probe.transact_mut();
    text.insert(&mut txn, 0, "probe");
    txn.commit();
    let update = txn.encode_update_v1();
    drop(txn);
    let applied = doc.apply(&update);
    prop_assert!(
        matches!(applied, Ok(crate::Applied { changed: true })),
        "{:?}",
        applied
    );
    prop_assert_eq!(probe_text(doc), "probe");
    let snapshot = doc.try_snapshot();
    prop_assert!(snapshot.is_ok(), "{:?}", snapshot);
    let snapshot = snapshot.unwrap();
    let reloaded = SharedDoc::load(Some(&snapshot), []);
    prop_assert!(
        reloaded.is_ok(),
        "the doc's own snapshot does not reload: {:?}",
        reloaded
    );
    let reloaded = reloaded.unwrap();
    prop_assert_eq!(probe_text(&reloaded), "probe");
    // A reload agrees with the live doc on every client's clock and on
    // whether blocks wait, pending blocks from corrupted updates included
    // (see the tests at the end of this module).
    prop_assert_eq!(
        known_clocks(&reloaded.state_vector()),
        known_clocks(&doc.state_vector())
    );
    prop_assert_eq!(reloaded.has_pending(), doc.has_pending());
    Ok(())
}

/// The clients of a state vector with their clocks, leaving out clock 0
/// (yrs may list a client whose first blocks are still pending).
fn known_clocks(state_vector: &[u8]) -> BTreeSet<(u64, u32)> {
    let state_vector = StateVector::decode_v1(state_vector).unwrap();
    state_vector
        .iter()
        .filter(|(_, clock)| **clock > 0)
        .map(|(client, clock)| (client.get(), *clock))
        .collect()
}

/// Updates made on a peer from random edits.
fn peer_updates(edits: &[Edit]) -> Vec<Vec<u8>> {
    let peer = Doc::with_client_id(1);
    edits.iter().map(|edit| peer_update(&peer, edit)).collect()
}

proptest! {
    #![proptest_config(config(500))]

    /// Random bytes as an update, after some valid history: refused or
    /// applied, never a panic, and the doc stays usable.
    #[test]
    fn arbitrary_updates_leave_the_doc_usable(
        edits in vec(edit(), 0..4),
        bytes in prop_oneof![vec(any::<u8>(), 0..64), Just(vec![0, 0])],
    ) {
        let doc = SharedDoc::new();
        for update in peer_updates(&edits) {
            doc.apply(&update).unwrap();
        }
        apply_untrusted(&doc, &bytes)?;
        check_usable(&doc)?;
    }

    /// Valid updates with one corrupted among them (bytes flipped, cut,
    /// inserted, lengths made huge): the same promises hold, and a doc that
    /// refused the corrupted one still accepts the rest.
    #[test]
    fn corrupted_updates_leave_the_doc_usable(
        edits in vec(edit(), 1..8),
        victim in any::<Index>(),
        mutations in vec(mutation(), 1..4),
    ) {
        let updates = peer_updates(&edits);
        let victim = victim.index(updates.len());
        let doc = SharedDoc::new();
        for (index, update) in updates.iter().enumerate() {
            if index == victim {
                let mut corrupted = update.clone();
                for mutation in &mutations {
                    mutate(&mut corrupted, mutation);
                }
                apply_untrusted(&doc, &corrupted)?;
            } else {
                apply_untrusted(&doc, update)?;
            }
        }
        check_usable(&doc)?;
    }

    /// Any bytes as a peer's state vector: a clean error, or a diff that a
    /// fresh doc applies.
    #[test]
    fn arbitrary_state_vectors_are_refused_or_answered(
        edits in vec(edit(), 0..4),
        state_vector in prop_oneof![
            vec(any::<u8>(), 0..24),
            (0u64..4, any::<u64>(), any::<u64>()).prop_map(|(count, client, clock)| {
                let mut bytes = Vec::new();
                write_var_u64(&mut bytes, count);
                write_var_u64(&mut bytes, client);
                write_var_u64(&mut bytes, clock);
                bytes
            }),
        ],
    ) {
        let doc = SharedDoc::new();
        for update in peer_updates(&edits) {
            doc.apply(&update).unwrap();
        }
        if let Ok(diff) = doc.diff(&state_vector) {
            let fresh = SharedDoc::new();
            prop_assert!(fresh.apply(&diff).is_ok());
        }
        check_usable(&doc)?;
    }

    /// The stored-update helpers take any bytes without panicking.
    #[test]
    fn merging_arbitrary_updates_is_total(
        edits in vec(edit(), 0..4),
        garbage in vec(vec(any::<u8>(), 0..32), 0..3),
    ) {
        let mut updates = peer_updates(&edits);
        updates.extend(garbage);
        let slices: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
        if let Ok(merged) = merge_updates(&slices) {
            let doc = SharedDoc::new();
            prop_assert!(doc.apply(&merged).is_ok());
        }
        let _ = not_covered(yrs::Update::EMPTY_V1, &slices);
        if let Some(first) = slices.first() {
            let _ = not_covered(first, &slices);
        }
    }
}

/// Found by `corrupted_updates_leave_the_doc_usable` (1 of 2): a block whose
/// right origin is a later clock of its own client (update 3: clock 4,
/// right origin (1, 17); no Yjs client makes one) waited, then integrated
/// once that clock arrived in a later update. The doc's snapshot holds both
/// in one update, where yrs integrates a client's blocks in clock order, so
/// the reloaded doc kept them pending: a checkpoint (or a sync step 2 to a
/// new peer) lost that client's text from clock 4 on. npm Yjs does not
/// wait for an origin of the block's own client: it throws when it finds
/// none. Now refused by the walk in `validate.rs`.
#[test]
fn a_snapshot_reloads_what_the_doc_integrated() {
    let updates: [&[u8]; 4] = [
        &[1, 1, 1, 0, 4, 1, 4, 116, 101, 120, 116, 1, 97, 0],
        &[1, 1, 1, 1, 68, 1, 0, 3, 97, 97, 97, 0],
        &[
            1, 1, 1, 4, 68, 1, 17, 11, 32, 97, 97, 32, 97, 97, 32, 97, 97, 97, 97, 0,
        ],
        &[1, 1, 1, 15, 196, 1, 1, 1, 2, 3, 97, 97, 32, 0],
    ];
    let doc = SharedDoc::new();
    let outcomes: Vec<bool> = updates
        .iter()
        .map(|update| doc.apply(update).is_ok())
        .collect();
    let text = |doc: &SharedDoc| {
        let txn = doc.doc().transact();
        txn.get_text("text").map(|text| text.get_string(&txn))
    };
    let reloaded = SharedDoc::load(Some(&doc.snapshot()), []).unwrap();
    // Either the update from the future is refused, or the doc and its
    // reload agree.
    assert!(
        outcomes.contains(&false) || text(&reloaded) == text(&doc),
        "live {:?}, reloaded {:?}",
        text(&doc),
        text(&reloaded)
    );
}

/// Found by `corrupted_updates_leave_the_doc_usable` (2 of 2): a corrupted
/// update (update 2: a deleted block at clock 0, 112 long, whose parent is
/// item (109, 97), overlapping the four known units of client 1) stayed
/// pending in the live doc, whose state vector said client 1 is at clock
/// 4. yrs had sliced the known part off, and a slice is written with a
/// left origin and no parent, so the snapshot's copy waits for nothing:
/// the reloaded doc integrated it and said client 1 is at clock 112, and
/// client 1's real edits at clocks 4 to 111 would have been taken for
/// duplicates after a reload. Now refused (`validate::check_against_state`).
#[test]
fn a_snapshot_with_pending_blocks_reloads_to_the_same_state() {
    let updates: [&[u8]; 3] = [
        &[1, 1, 1, 0, 4, 1, 4, 116, 101, 120, 116, 1, 32, 0],
        &[1, 1, 1, 1, 68, 1, 0, 3, 32, 97, 97, 0],
        &[
            1, 1, 1, 0, 1, 3, 109, 97, 112, 1, 97, 1, 123, 193, 224, 0, 0, 0, 32, 0, 0, 0,
        ],
    ];
    let doc = SharedDoc::new();
    let outcomes: Vec<bool> = updates
        .iter()
        .map(|update| doc.apply(update).is_ok())
        .collect();
    let reloaded = SharedDoc::load(Some(&doc.snapshot()), []).unwrap();
    assert!(
        outcomes.contains(&false)
            || known_clocks(&reloaded.state_vector()) == known_clocks(&doc.state_vector()),
        "live {:?}, reloaded {:?}",
        known_clocks(&doc.state_vector()),
        known_clocks(&reloaded.state_vector())
    );
}

/// Client 1's "abcd", as one update.
fn abcd() -> (Doc, SharedDoc) {
    let peer = Doc::with_client_id(1);
    let doc = SharedDoc::new();
    let text = peer.get_or_insert_text("text");
    let mut txn = peer.transact_mut();
    text.insert(&mut txn, 0, "abcd");
    txn.commit();
    doc.apply(&txn.encode_update_v1()).unwrap();
    drop(txn);
    (peer, doc)
}

/// Appends `chunk` to the peer's text; returns the update.
fn append(peer: &Doc, chunk: &str) -> Vec<u8> {
    let text = peer.get_or_insert_text("text");
    let mut txn = peer.transact_mut();
    let len = text.len(&txn);
    text.insert(&mut txn, len, chunk);
    txn.commit();
    txn.encode_update_v1()
}

/// A deleted block of client 1 at `clock`, 40 long, whose parent is item
/// (109, 97), which no doc here has.
fn waiting_block(clock: u8) -> Vec<u8> {
    vec![1, 1, 1, clock, 1, 0, 109, 97, 40, 0]
}

fn assert_reload_agrees(doc: &SharedDoc) {
    let reloaded = SharedDoc::load(Some(&doc.snapshot()), []).unwrap();
    assert_eq!(
        known_clocks(&reloaded.state_vector()),
        known_clocks(&doc.state_vector())
    );
    assert_eq!(reloaded.has_pending(), doc.has_pending());
    let text = |doc: &SharedDoc| {
        let txn = doc.doc().transact();
        txn.get_text("text").map(|text| text.get_string(&txn))
    };
    assert_eq!(text(&reloaded), text(doc));
}

/// An item whose first clock the doc holds may not name a parent the doc
/// lacks (the doc would keep its slice waiting, and every snapshot would
/// write it as waiting for nothing). The doc is left as it was.
#[test]
fn an_item_the_doc_holds_may_not_name_a_missing_parent() {
    for clock in [0, 3] {
        let (_, doc) = abcd();
        let before = doc.snapshot();
        let refused = doc.apply(&waiting_block(clock));
        assert!(
            matches!(&refused, Err(DocError::Rejected(reason)) if reason.contains("missing parent")),
            "{refused:?}"
        );
        assert_eq!(doc.snapshot(), before);
    }
    // At the doc's clock, the block may wait honestly (its parent, made
    // by a client whose update is late); past it, it leaves a gap in its
    // client's clocks, which no honest client sends.
    let (_, doc) = abcd();
    assert!(doc.apply(&waiting_block(4)).is_ok());
    assert!(doc.has_pending());
    assert_reload_agrees(&doc);
    let (_, doc) = abcd();
    let refused = doc.apply(&waiting_block(6));
    assert!(
        matches!(&refused, Err(DocError::Rejected(reason)) if reason.contains("gap")),
        "{refused:?}"
    );
}

/// The parent may come in the same update, and a doc that holds the first
/// clock only as a GC block (its parent was deleted and collected) can
/// still be sent the item with its parent.
#[test]
fn an_item_the_doc_holds_may_name_a_parent_the_update_brings() {
    let doc = SharedDoc::new();
    // Client 1's clocks 0 to 3, collected.
    doc.apply(&[1, 1, 1, 0, 0, 4, 0]).unwrap();
    // Item (1, 0), "abcdef", whose parent is a Y.Text at (2, 0) in map "m"
    // under key "t"; without and with that parent.
    let item = [1, 1, 0, 4, 0, 2, 0, 6, b'a', b'b', b'c', b'd', b'e', b'f'];
    let parent = [1, 2, 0, 0b0010_0111, 1, 1, b'm', 1, b't', 2];
    let mut without = vec![1];
    without.extend_from_slice(&item);
    without.push(0);
    assert!(matches!(doc.apply(&without), Err(DocError::Rejected(_))));
    let mut with = vec![2];
    with.extend_from_slice(&item);
    with.extend_from_slice(&parent);
    with.push(0);
    assert!(doc.apply(&with).is_ok(), "{:?}", doc.apply(&with));
    assert_eq!(known_clocks(&doc.state_vector()), [(1, 6), (2, 1)].into());
    assert_reload_agrees(&doc);
}

/// A block that waited for a missing parent at clock 4 or later, once the
/// doc comes to hold its first clock through its client's real edits: the
/// live doc and the reload of its snapshot agree on client 1's clock (the
/// snapshot writes the part past the doc's clock as a slice that waits for
/// nothing, so the live doc integrates it too).
#[test]
fn a_waiting_block_the_doc_comes_to_hold_reloads_to_the_same_state() {
    // (Past clock 4 the block leaves a gap and is refused on arrival.)
    let (peer, doc) = abcd();
    assert!(doc.apply(&waiting_block(4)).is_ok());
    assert!(doc.apply(&append(&peer, "efghijkl")).is_ok());
    assert_reload_agrees(&doc);
    assert!(!doc.has_pending());
}

/// An honest resend of blocks the doc partly holds (a sync step 2 computed
/// before the doc got the rest) is accepted and changes nothing it holds.
#[test]
fn resending_known_blocks_is_accepted() {
    let (peer, doc) = abcd();
    let full = peer
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    doc.apply(&append(&peer, "ef")).unwrap();
    let whole = peer
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    // The doc lacks "gh"; the resend holds all of "abcdefgh".
    append(&peer, "gh");
    let resend = peer
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    assert!(matches!(
        doc.apply(&full),
        Ok(crate::Applied { changed: false })
    ));
    assert!(matches!(
        doc.apply(&whole),
        Ok(crate::Applied { changed: false })
    ));
    assert!(matches!(
        doc.apply(&resend),
        Ok(crate::Applied { changed: true })
    ));
    assert_eq!(known_clocks(&doc.state_vector()), [(1, 8)].into());
    assert_reload_agrees(&doc);
}
