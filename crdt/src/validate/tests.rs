//! Unit tests for the structural walk in `validate.rs`: hand-built update
//! and state-vector bytes (deep values, counts beyond the input, items that
//! name their own client's later clocks) that the walk must refuse, and
//! updates written by yrs that it must accept. They live apart so that the
//! walk itself stays within a few screens.

#![allow(clippy::unwrap_used)]

use super::*;

/// An update with one Y.Array "a" item holding `value`.
fn update_with_value(value: &[u8]) -> Vec<u8> {
    let mut update = vec![1, 1, 7, 0, CONTENT_ANY, 1, 1, b'a', 1];
    update.extend_from_slice(value);
    update.push(0); // empty delete set
    update
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut value = Vec::new();
    for _ in 0..depth {
        value.extend_from_slice(&[117, 1]);
    }
    value.push(126);
    value
}

#[test]
fn accepts_shallow_and_refuses_deep_values() {
    assert!(check_update_v1(&update_with_value(&nested_arrays(MAX_VALUE_DEPTH - 1))).is_ok());
    let deep = update_with_value(&nested_arrays(100_000));
    assert!(
        check_update_v1(&deep)
            .unwrap_err()
            .contains("nested too deeply")
    );
}

/// An update with one string item "ab" of client 1 at clock 4, written
/// with `info` and `refs` (its origins, or its parent info).
fn item_at_clock_4(info: u8, refs: &[u8]) -> Vec<u8> {
    let mut update = vec![1, 1, 1, 4, info];
    update.extend_from_slice(refs);
    update.extend_from_slice(&[2, b'a', b'b', 0]);
    update
}

#[test]
fn refuses_items_that_name_their_own_clients_future() {
    let origin = HAS_ORIGIN | CONTENT_STRING;
    let right = HAS_RIGHT_ORIGIN | CONTENT_STRING;
    let both = HAS_ORIGIN | HAS_RIGHT_ORIGIN | CONTENT_STRING;
    // Its own past, and any clock of another client, are fine.
    for (info, refs) in [
        (origin, &[1, 3][..]),
        (right, &[1, 0]),
        (both, &[1, 3, 1, 1]),
        (CONTENT_STRING, &[0, 1, 2]),
        (origin, &[2, 99]),
        (right, &[2, 4]),
    ] {
        let shape = check_update_v1(&item_at_clock_4(info, refs));
        assert!(shape.is_ok(), "{info} {refs:?}: {shape:?}");
    }
    // Its own first clock, a later one inside the item (5), or beyond.
    for (info, refs) in [
        (origin, &[1, 4][..]),
        (origin, &[1, 5]),
        (right, &[1, 17]),
        (both, &[1, 3, 1, 4]),
        (CONTENT_STRING, &[0, 1, 4]),
        (CONTENT_STRING | HAS_PARENT_SUB, &[0, 1, 9, 1, b'k']),
    ] {
        let refused = check_update_v1(&item_at_clock_4(info, refs)).unwrap_err();
        assert!(
            refused.contains("later clock of its own client"),
            "{refused}"
        );
    }
}

/// Updates made by yrs, with origins and parents of the same client
/// (typing, inserts in the middle, nested types, map overwrites), and
/// slices of them (a diff from a state vector inside an item) all pass.
#[test]
fn accepts_what_yrs_writes() {
    use yrs::{Doc, Map, MapPrelim, ReadTxn, StateVector, Text, TextPrelim, Transact};
    let peer = Doc::with_client_id(1);
    let root = peer.get_or_insert_map("map");
    let mut updates = Vec::new();
    let mut edit = |change: &dyn Fn(&mut yrs::TransactionMut<'_>)| {
        let mut txn = peer.transact_mut();
        change(&mut txn);
        txn.commit();
        updates.push(txn.encode_update_v1());
    };
    edit(&|txn| {
        let text = root.insert(txn, "text", TextPrelim::new("hello"));
        text.insert(txn, 5, " world");
        text.insert(txn, 0, ">");
    });
    edit(&|txn| {
        if let Some(yrs::Out::YText(text)) = root.get(txn, "text") {
            text.insert(txn, 3, "--");
            text.remove_range(txn, 1, 2);
        }
        root.insert(txn, "nested", MapPrelim::default());
        root.insert(txn, "nested", MapPrelim::default());
    });
    let txn = peer.transact();
    for clock in 0..20 {
        let mut state = StateVector::default();
        state.set_max(yrs::ClientID::new(1), clock);
        updates.push(txn.encode_diff_v1(&state));
    }
    for update in &updates {
        assert!(check_update_v1(update).is_ok(), "{update:?}");
    }
}

#[test]
fn refuses_counts_beyond_input() {
    assert!(check_update_v1(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    assert!(check_state_vector_v1(&[0xff, 0xff, 0x03, 1, 1]).is_err());
    assert_eq!(check_state_vector_v1(&[1, 5, 3]), Ok(()));
    assert!(check_update_v1(&[0, 0]).unwrap().items.is_empty());
    assert!(check_update_v1(&[]).is_err());
}
