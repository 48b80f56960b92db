#![allow(clippy::unwrap_used)]

use yrs::updates::decoder::Decode;
use yrs::{Array, ArrayPrelim, Doc, Map, MapPrelim, MapRef, Text, Transact, TransactionMut};

use super::*;
use crate::doc::{DocError, SharedDoc};
use crate::validate::check_update_v1;

fn item(client: u64, start: u32, is_type: bool, parent: ParentRef) -> ItemBlock {
    ItemBlock {
        client,
        start,
        len: 1,
        is_type,
        parent,
    }
}

/// Nests `levels` maps under `map` (each under key "k"); returns the last.
fn nest(txn: &mut TransactionMut<'_>, mut map: MapRef, levels: usize) -> MapRef {
    for _ in 0..levels {
        map = map.insert(txn, "k", MapPrelim::default());
    }
    map
}

/// A peer's update nesting `levels` maps under root map "m", and the tail.
fn chain_update(peer: &Doc, under: Option<MapRef>, levels: usize) -> (Vec<u8>, MapRef) {
    let root = peer.get_or_insert_map("m");
    let mut txn = peer.transact_mut();
    let tail = nest(&mut txn, under.unwrap_or(root), levels);
    txn.commit();
    (txn.encode_update_v1(), tail)
}

#[test]
fn chain_follows_explicit_parents_and_origins() {
    assert_eq!(longest_type_chain(&[]), 0);
    let blocks = [
        item(1, 0, true, ParentRef::Root),
        item(1, 1, true, ParentRef::Item((1, 0))),
        // A plain item inside (1, 1), then a type that inherits its parent.
        item(2, 0, false, ParentRef::Item((1, 1))),
        item(2, 1, true, ParentRef::Origins(Some((2, 0)), None)),
        item(2, 2, true, ParentRef::Item((2, 1))),
    ];
    assert_eq!(longest_type_chain(&blocks), 4);
    // Parents outside the update start a chain; cycles add nothing.
    let cycle = [
        item(1, 0, true, ParentRef::Item((1, 1))),
        item(1, 1, true, ParentRef::Item((1, 0))),
        item(1, 2, true, ParentRef::Item((9, 9))),
    ];
    assert!(longest_type_chain(&cycle) <= 2);
}

#[test]
fn yrs_updates_measure_as_built() {
    let peer = Doc::with_client_id(3);
    let (update, _) = chain_update(&peer, None, 5);
    let shape = check_update_v1(&update).unwrap();
    assert!(shape.has_types());
    assert_eq!(longest_type_chain(&shape.items), 5);
    // The second element of an array names no parent: it inherits it
    // through its left origin, and the chain continues below it.
    let root = peer.get_or_insert_map("m");
    let update = {
        let mut txn = peer.transact_mut();
        let array = root.insert(&mut txn, "list", ArrayPrelim::default());
        array.push_back(&mut txn, MapPrelim::default());
        let second = array.push_back(&mut txn, MapPrelim::default());
        second.insert(&mut txn, "k", MapPrelim::default());
        txn.commit();
        txn.encode_update_v1()
    };
    assert_eq!(
        longest_type_chain(&check_update_v1(&update).unwrap().items),
        3
    );
}

#[test]
fn a_deep_chain_in_one_update_is_rejected_unapplied() {
    // Deleting a 10 000-level chain would overflow the stack and abort.
    let peer = Doc::with_client_id(3);
    let (update, _) = chain_update(&peer, None, 10_000);
    let doc = SharedDoc::new();
    assert!(matches!(doc.apply(&update), Err(DocError::Rejected(_))));
    assert!(!doc.is_broken());
    assert_eq!(doc.snapshot(), yrs::Update::EMPTY_V1);
}

#[test]
fn chains_stacked_over_updates_break_the_doc() {
    let peer = Doc::with_client_id(3);
    let (first, tail) = chain_update(&peer, None, 40);
    let (second, _) = chain_update(&peer, Some(tail), 40);
    let doc = SharedDoc::new();
    assert!(doc.apply(&first).unwrap().changed);
    assert!(matches!(doc.apply(&second), Err(DocError::Panicked)));
    assert!(doc.is_broken());
}

/// A second peer that has received `update`, and the deepest map of its
/// chain under root map "m" (each level under key "k").
fn continuing_peer(update: &[u8]) -> (Doc, MapRef) {
    let peer = Doc::with_client_id(4);
    peer.transact_mut()
        .apply_update(yrs::Update::decode_v1(update).unwrap())
        .unwrap();
    let mut map = peer.get_or_insert_map("m");
    loop {
        let next = {
            let txn = peer.transact();
            match map.get(&txn, "k") {
                Some(yrs::Out::YMap(next)) => Some(next),
                _ => None,
            }
        };
        match next {
            Some(next) => map = next,
            None => return (peer, map),
        }
    }
}

#[test]
fn pending_chains_count_toward_the_bound() {
    // A second client continues the first's chain: its update waits for
    // the first's (a gap in one client's own clocks is refused outright).
    let peer = Doc::with_client_id(3);
    let (first, _) = chain_update(&peer, None, 40);
    let (other, tail) = continuing_peer(&first);
    let (second, _) = chain_update(&other, Some(tail), 40);
    let doc = SharedDoc::new();
    // The second waits for the first; together they would be 80 deep.
    assert!(doc.apply(&second).unwrap().changed);
    assert!(doc.has_pending());
    assert!(matches!(doc.apply(&first), Err(DocError::Rejected(_))));
    assert!(!doc.is_broken());
}

#[test]
fn unrelated_pending_types_do_not_add_up() {
    // 100 updates each adding a map inside "base", all delivered before the
    // update that creates "base": siblings, so together still one level.
    // "base" is one client's; the maps inside it another's, whose updates
    // wait for it.
    let peer = Doc::with_client_id(3);
    let root = peer.get_or_insert_map("m");
    let first = {
        let mut txn = peer.transact_mut();
        root.insert(&mut txn, "base", MapPrelim::default());
        txn.commit();
        txn.encode_update_v1()
    };
    let other = Doc::with_client_id(4);
    other
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&first).unwrap())
        .unwrap();
    let other_root = other.get_or_insert_map("m");
    let base = {
        let txn = other.transact();
        match other_root.get(&txn, "base") {
            Some(yrs::Out::YMap(base)) => base,
            found => panic!("no base map: {found:?}"),
        }
    };
    let rest: Vec<Vec<u8>> = (0..100)
        .map(|index| {
            let mut txn = other.transact_mut();
            base.insert(&mut txn, format!("k{index}"), MapPrelim::default());
            txn.commit();
            txn.encode_update_v1()
        })
        .collect();
    let doc = SharedDoc::new();
    for update in &rest {
        assert!(doc.apply(update).unwrap().changed);
    }
    assert!(doc.has_pending());
    assert!(doc.apply(&first).unwrap().changed);
    assert!(!doc.has_pending());
    let in_order = SharedDoc::load(Some(&first), rest.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(doc.snapshot(), in_order.snapshot());
}

#[test]
fn walk_sees_types_embedded_in_text_and_in_undeclared_roots() {
    let peer = Doc::with_client_id(4);
    let text = peer.get_or_insert_text("t");
    let update = {
        let mut txn = peer.transact_mut();
        text.insert(&mut txn, 0, "a😀b");
        let embedded = text.insert_embed(&mut txn, 1, MapPrelim::default());
        nest(&mut txn, embedded, 3);
        txn.commit();
        txn.encode_update_v1()
    };
    let doc = SharedDoc::new();
    doc.apply(&update).unwrap();
    // "t" is undeclared on the server side (an undefined root type).
    let txn = doc.doc().transact();
    assert!(!deeper_than(&txn, 5));
    assert!(deeper_than(&txn, 4));
}
