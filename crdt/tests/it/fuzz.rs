//! Nothing a client sends may panic or abort: random bytes, every
//! truncation of valid input, and mutations of real updates, fed to every
//! public decoder and to `SharedDoc`.

use rand::Rng;
use yrs::{Any, Array, Doc, Map, MapPrelim, ReadTxn, StateVector, Text, Transact};

use crowdroom_crdt::doc::merge_updates;
use crowdroom_crdt::{AwarenessRegistry, AwarenessUpdate, Message, SharedDoc};

use crate::{rng_for, seeds};

/// Feeds `bytes` to every entry point that takes client bytes.
fn feed(bytes: &[u8], doc: &SharedDoc, registry: &mut AwarenessRegistry) {
    let _message = Message::decode(bytes);
    if let Ok(update) = AwarenessUpdate::decode(bytes) {
        registry.apply(1, &update, 0);
    }
    let _applied = doc.apply(bytes);
    let _diff = doc.diff(bytes);
    let _merged = merge_updates(&[bytes]);
    assert!(!doc.is_broken(), "yrs panicked on {bytes:?}");
}

/// A document with text, maps, arrays and nested types, and its updates.
fn sample_updates() -> Vec<Vec<u8>> {
    let peer = Doc::with_client_id(77);
    let text = peer.get_or_insert_text("text");
    let map = peer.get_or_insert_map("labels");
    let list = peer.get_or_insert_array("spans");
    let mut updates = Vec::new();
    let mut edit = |change: &dyn Fn(&mut yrs::TransactionMut<'_>)| {
        let mut txn = peer.transact_mut();
        change(&mut txn);
        txn.commit();
        updates.push(txn.encode_update_v1());
    };
    edit(&|txn| text.insert(txn, 0, "héllo wörld 中文"));
    // Offsets on a char boundary: this doc counts UTF-8 bytes.
    edit(&|txn| text.remove_range(txn, 3, 4));
    edit(&|txn| {
        map.insert(txn, "choice", Any::from("yes"));
    });
    edit(&|txn| {
        let nested = vec![Any::from(1.5), Any::Null, Any::from(vec![Any::from(true)])];
        map.insert(txn, "nested", Any::from(nested));
    });
    edit(&|txn| {
        let span = list.push_back(txn, MapPrelim::default());
        span.insert(txn, "id", "s1");
        span.insert(txn, "start", 3);
    });
    edit(&|txn| list.remove(txn, 0));
    updates.push(
        peer.transact()
            .encode_state_as_update_v1(&StateVector::default()),
    );
    updates
}

fn frames(updates: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = updates
        .iter()
        .map(|update| Message::Update(update).encode())
        .collect();
    frames.push(Message::SyncStep1(&[1, 77, 5]).encode());
    frames.push(Message::Awareness(&[1, 5, 2, 2, b'{', b'}']).encode());
    frames.push(Message::PermissionDenied("nope").encode());
    frames
}

#[test]
fn random_bytes_never_panic() {
    for seed in seeds(4) {
        let mut rng = rng_for("random bytes", seed);
        let doc = SharedDoc::new();
        let mut registry = AwarenessRegistry::new();
        for _ in 0..3000 {
            let len = if rng.random_bool(0.9) {
                rng.random_range(0..24)
            } else {
                rng.random_range(0..512)
            };
            let mut bytes = vec![0u8; len];
            rng.fill(bytes.as_mut_slice());
            // Small leading values reach deeper into the decoders.
            if let Some(first) = bytes.first_mut() {
                *first %= 4;
            }
            feed(&bytes, &doc, &mut registry);
        }
    }
}

#[test]
fn every_truncation_of_valid_input_is_safe() {
    let updates = sample_updates();
    let doc = SharedDoc::new();
    let mut registry = AwarenessRegistry::new();
    for bytes in updates.iter().chain(frames(&updates).iter()) {
        for cut in 0..bytes.len() {
            feed(&bytes[..cut], &doc, &mut registry);
            assert!(
                Message::decode(&bytes[..cut]).is_err() || cut == 0 || !bytes.starts_with(&[0, 2])
            );
        }
    }
    // Truncated updates applied to an empty doc one at a time too.
    for update in &updates {
        for cut in 0..update.len() {
            let fresh = SharedDoc::new();
            let _applied = fresh.apply(&update[..cut]);
            assert!(!fresh.is_broken());
        }
    }
}

#[test]
fn mutated_updates_never_panic() {
    let updates = sample_updates();
    for seed in seeds(4) {
        let mut rng = rng_for("mutated updates", seed);
        for _ in 0..1500 {
            let mut bytes = updates[rng.random_range(0..updates.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let Some(index) = (!bytes.is_empty()).then(|| rng.random_range(0..bytes.len()))
                else {
                    break;
                };
                match rng.random_range(0..4) {
                    0 => bytes[index] = rng.random(),
                    1 => bytes[index] ^= 1 << rng.random_range(0..8),
                    2 => {
                        bytes.remove(index);
                    }
                    _ => bytes.insert(index, rng.random()),
                }
            }
            // Against a doc that already holds some of the history.
            let doc = SharedDoc::new();
            for update in &updates[..rng.random_range(0..updates.len())] {
                doc.apply(update).unwrap();
            }
            let _applied = doc.apply(&bytes);
            assert!(!doc.is_broken(), "yrs panicked on {bytes:?} (seed {seed})");
            let _diff = doc.diff(&bytes);
            let _merged = merge_updates(&[&bytes, &updates[0]]);
            // Whatever was accepted, the doc still encodes and reloads.
            SharedDoc::load(Some(&doc.snapshot()), []).unwrap();
            let text = doc.doc().get_or_insert_text("text");
            let _len = text.len(&doc.doc().transact());
            let _list = doc
                .doc()
                .get_or_insert_array("spans")
                .len(&doc.doc().transact());
        }
    }
}
