#![allow(clippy::unwrap_used)]

use yrs::{Any, Array, GetString, Map, Text, Transact, Update};

use super::*;

/// A peer doc with a fixed client id and an edit on it; returns the update.
fn peer_edit(peer: &Doc, text: &str) -> Vec<u8> {
    let root = peer.get_or_insert_text("text");
    let mut txn = peer.transact_mut();
    let len = root.len(&txn);
    root.insert(&mut txn, len, text);
    txn.commit();
    txn.encode_update_v1()
}

/// A deletion of `len` characters at `at` on the peer; returns the update.
fn peer_delete(peer: &Doc, at: u32, len: u32) -> Vec<u8> {
    let root = peer.get_or_insert_text("text");
    let mut txn = peer.transact_mut();
    root.remove_range(&mut txn, at, len);
    txn.commit();
    txn.encode_update_v1()
}

fn text_of(doc: &Doc) -> String {
    let txn = doc.transact();
    txn.get_text("text")
        .map(|text| text.get_string(&txn))
        .unwrap_or_default()
}

#[test]
fn shared_doc_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SharedDoc>();
}

#[test]
fn empty_doc_encodings() {
    let doc = SharedDoc::new();
    assert_eq!(doc.state_vector(), [0]);
    assert_eq!(doc.snapshot(), Update::EMPTY_V1);
    assert_eq!(doc.diff(&[0]).unwrap(), Update::EMPTY_V1);
}

#[test]
fn apply_reports_changes_and_duplicates() {
    let peer = Doc::with_client_id(7);
    let first = peer_edit(&peer, "hello");
    let doc = SharedDoc::new();
    assert_eq!(doc.apply(&first).unwrap(), Applied { changed: true });
    assert_eq!(doc.apply(&first).unwrap(), Applied { changed: false });
    assert_eq!(
        doc.apply(Update::EMPTY_V1).unwrap(),
        Applied { changed: false }
    );
    assert_eq!(text_of(doc.doc()), "hello");

    // A deletion extends nothing but still changes the doc.
    let delete = peer_delete(&peer, 0, 1);
    assert_eq!(doc.apply(&delete).unwrap(), Applied { changed: true });
    assert_eq!(doc.apply(&delete).unwrap(), Applied { changed: false });
    assert_eq!(text_of(doc.doc()), "ello");
}

#[test]
fn a_gap_in_a_clients_clocks_is_refused_live_and_loads_from_the_store() {
    let peer = Doc::with_client_id(7);
    let first = peer_edit(&peer, "ab");
    let second = peer_edit(&peer, "cd");
    let doc = SharedDoc::new();
    assert!(matches!(doc.apply(&second), Err(DocError::Rejected(_))));
    assert!(!doc.has_pending());
    assert_eq!(doc.state_vector(), SharedDoc::new().state_vector());
    // In order it applies; and what the store holds loads in any order.
    assert_eq!(doc.apply(&first).unwrap(), Applied { changed: true });
    assert_eq!(doc.apply(&second).unwrap(), Applied { changed: true });
    assert_eq!(text_of(doc.doc()), "abcd");
    let reloaded = SharedDoc::load(None, [second.as_slice(), first.as_slice()]).unwrap();
    assert_eq!(text_of(reloaded.doc()), "abcd");
}

/// Found by the randomized hostile client: map entries past a gap were
/// integrated while the state vector stopped at the gap, so a sync step 2
/// from that state vector left them out and peers never converged.
#[test]
fn map_entries_past_a_gap_are_refused() {
    let peer = Doc::with_client_id(9);
    let map = peer.get_or_insert_map("m");
    let set = |key: &str| {
        let mut txn = peer.transact_mut();
        map.insert(&mut txn, key, "v");
        txn.commit();
        txn.encode_update_v1()
    };
    let (first, _withheld, third) = (set("k1"), set("k2"), set("k3"));
    let doc = SharedDoc::new();
    doc.apply(&first).unwrap();
    assert!(matches!(doc.apply(&third), Err(DocError::Rejected(_))));
    let fresh = SharedDoc::new();
    fresh
        .apply(&doc.diff(&fresh.state_vector()).unwrap())
        .unwrap();
    let keys = |doc: &Doc| -> Vec<String> {
        let txn = doc.transact();
        let mut keys: Vec<String> = txn
            .get_map("m")
            .map(|map| map.keys(&txn).map(str::to_owned).collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(keys(doc.doc()), vec!["k1".to_owned()]);
    assert_eq!(keys(fresh.doc()), keys(doc.doc()));
}

#[test]
fn blocks_waiting_for_another_client_are_kept_pending() {
    let (left, right) = (Doc::with_client_id(7), Doc::with_client_id(8));
    let from_left = peer_edit(&left, "ab");
    right
        .transact_mut()
        .apply_update(Update::decode_v1(&from_left).unwrap())
        .unwrap();
    let from_right = peer_edit(&right, "cd");
    let doc = SharedDoc::new();
    // Right's edit follows left's, which the doc lacks: it waits.
    assert_eq!(doc.apply(&from_right).unwrap(), Applied { changed: true });
    assert!(doc.has_pending());
    let reloaded = SharedDoc::load(Some(&doc.snapshot()), [from_left.as_slice()]).unwrap();
    assert_eq!(text_of(reloaded.doc()), "abcd");
    assert_eq!(doc.apply(&from_left).unwrap(), Applied { changed: true });
    assert!(!doc.has_pending());
    assert_eq!(text_of(doc.doc()), "abcd");
}

#[test]
fn sync_step_2_brings_a_peer_up_to_date() {
    let server = SharedDoc::new();
    let writer = Doc::with_client_id(1);
    server.apply(&peer_edit(&writer, "shared ")).unwrap();
    let reader = Doc::with_client_id(2);
    let local = peer_edit(&reader, "local");

    let reader_sv = reader.transact().state_vector().encode_v1();
    let step2 = server.diff(&reader_sv).unwrap();
    reader
        .transact_mut()
        .apply_update(Update::decode_v1(&step2).unwrap())
        .unwrap();
    server.apply(&local).unwrap();
    assert_eq!(text_of(&reader), text_of(server.doc()));
    // Nothing left to send once the reader has everything.
    let reader_sv = reader.transact().state_vector().encode_v1();
    let empty = Update::decode_v1(&server.diff(&reader_sv).unwrap()).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn malformed_input_is_refused() {
    let doc = SharedDoc::new();
    for bad in [
        &[][..],
        &[1],
        &[0xff, 0xff],
        &[1, 1, 1, 0, 99, 0],
        &[0, 0xff],
    ] {
        assert!(
            matches!(doc.apply(bad), Err(DocError::Malformed(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(doc.diff(&[]), Err(DocError::Malformed(_))));
    assert!(matches!(doc.diff(&[2, 1, 1]), Err(DocError::Malformed(_))));
    assert!(matches!(
        doc.diff(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(DocError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_an_update_or_state_vector_is_safe() {
    let peer = Doc::with_client_id(300);
    let map = peer.get_or_insert_map("labels");
    let array = peer.get_or_insert_array("spans");
    {
        let mut txn = peer.transact_mut();
        map.insert(&mut txn, "choice", Any::from("yes"));
        map.insert(&mut txn, "score", Any::from(4.5));
        array.push_back(&mut txn, Any::from(vec![Any::from("a"), Any::Null]));
    }
    peer_edit(&peer, "héllo wörld");
    let update = peer
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let state_vector = peer.transact().state_vector().encode_v1();
    for cut in 0..update.len() {
        let doc = SharedDoc::new();
        // Either an error or a clean (possibly partial) apply; never a panic.
        let _outcome = doc.apply(&update[..cut]);
        assert!(!doc.is_broken(), "cut at {cut}");
    }
    let doc = SharedDoc::new();
    doc.apply(&update).unwrap();
    for cut in 0..state_vector.len() {
        assert!(doc.diff(&state_vector[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn deeply_nested_values_are_refused_before_yrs_sees_them() {
    // One Y.Array "a" item holding [[[...null...]]], 100 000 levels deep.
    // yrs would recurse once per level and overflow the stack (an abort).
    let mut update = vec![1, 1, 7, 0, 8, 1, 1, b'a', 1];
    for _ in 0..100_000 {
        update.extend_from_slice(&[117, 1]);
    }
    update.extend_from_slice(&[126, 0]);
    let doc = SharedDoc::new();
    assert!(matches!(doc.apply(&update), Err(DocError::Malformed(_))));
    assert!(matches!(
        merge_updates(&[&update]),
        Err(DocError::Malformed(_))
    ));
}

#[test]
fn parent_that_is_not_a_type_is_rejected() {
    let doc = SharedDoc::new();
    let peer = Doc::with_client_id(5);
    let array = peer.get_or_insert_array("a");
    let first = {
        let mut txn = peer.transact_mut();
        array.push_back(&mut txn, 1);
        txn.commit();
        txn.encode_update_v1()
    };
    doc.apply(&first).unwrap();
    // Client 6 inserts an item whose parent is item (5, 0), a number.
    let bad = [1, 1, 6, 0, 8, 0, 5, 0, 1, 125, 5, 0];
    assert!(matches!(doc.apply(&bad), Err(DocError::Rejected(_))));
    assert!(!doc.is_broken());
}

#[test]
fn a_panic_inside_yrs_marks_the_doc_broken() {
    let doc = SharedDoc::new();
    doc.doc()
        .observe_update_v1("boom", |_, _| panic!("observer panicked on purpose"))
        .unwrap();
    let update = peer_edit(&Doc::with_client_id(9), "x");
    assert!(matches!(doc.apply(&update), Err(DocError::Panicked)));
    assert!(doc.is_broken());
    assert!(matches!(doc.apply(&update), Err(DocError::Panicked)));
    // Reads still work, so the server can log what it had.
    let _snapshot = doc.snapshot();
}

#[test]
fn load_equals_sequential_application() {
    let peer = Doc::with_client_id(11);
    let updates: Vec<Vec<u8>> = ["a", "b", "c", "d"]
        .iter()
        .map(|text| peer_edit(&peer, text))
        .collect();
    let sequential = SharedDoc::new();
    for update in &updates {
        sequential.apply(update).unwrap();
    }
    let snapshot = SharedDoc::load(None, updates[..2].iter().map(Vec::as_slice))
        .unwrap()
        .snapshot();
    let loaded = SharedDoc::load(Some(&snapshot), updates[2..].iter().map(Vec::as_slice)).unwrap();
    assert_eq!(loaded.snapshot(), sequential.snapshot());
    assert_eq!(loaded.state_vector(), sequential.state_vector());
    assert_eq!(text_of(loaded.doc()), "abcd");
    assert!(matches!(
        SharedDoc::load(Some(&[1, 2, 3]), []),
        Err(DocError::Malformed(_))
    ));
}

#[test]
fn merge_equals_sequential_application() {
    let left = Doc::with_client_id(1);
    let right = Doc::with_client_id(2);
    let updates = [
        peer_edit(&left, "left"),
        peer_edit(&right, "right"),
        peer_edit(&left, "!"),
    ];
    let borrowed: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
    let merged = merge_updates(&borrowed).unwrap();
    let sequential = SharedDoc::load(None, borrowed.iter().copied()).unwrap();
    let from_merged = SharedDoc::load(Some(&merged), []).unwrap();
    assert_eq!(from_merged.snapshot(), sequential.snapshot());
    assert_eq!(merge_updates(&[]).unwrap(), Update::EMPTY_V1);
    assert!(matches!(
        merge_updates(&[&updates[0], &[7]]),
        Err(DocError::Malformed(_))
    ));
}

#[test]
fn a_snapshot_covers_what_it_has_applied_and_nothing_else() {
    let (ann, bob) = (Doc::with_client_id(7), Doc::with_client_id(8));
    let hello = peer_edit(&ann, "hello");
    let world = peer_edit(&ann, " world");
    let delete = peer_delete(&ann, 0, 3);
    let doc = SharedDoc::new();
    for update in [&hello, &world, &delete] {
        doc.apply(update).unwrap();
    }
    let snapshot = doc.try_snapshot().unwrap();
    let none: Vec<usize> = Vec::new();
    assert_eq!(
        not_covered(&snapshot, &[&hello, &world, &delete]).unwrap(),
        none
    );
    assert_eq!(not_covered(&snapshot, &[]).unwrap(), none);
    // A deletion it has not seen, of text it holds.
    let later = peer_delete(&ann, 0, 1);
    assert_eq!(not_covered(&snapshot, &[&hello, &later]).unwrap(), [1]);
    // An insertion by another client, or a later one by the same client.
    let (bobs, anns) = (peer_edit(&bob, "!"), peer_edit(&ann, "?"));
    assert_eq!(
        not_covered(&snapshot, &[&bobs, &world, &anns]).unwrap(),
        [0, 2]
    );
    // An earlier snapshot is covered by a later one.
    doc.apply(&later).unwrap();
    assert_eq!(
        not_covered(&doc.try_snapshot().unwrap(), &[&snapshot, &later]).unwrap(),
        none
    );
    assert!(not_covered(&snapshot, &[b"\xff\xff"]).is_err());
}
