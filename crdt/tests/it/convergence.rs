//! N peers edit concurrently and exchange updates through
//! `SharedDoc::apply` in random orders with duplicates; all must converge,
//! and so must a server copy, a snapshot reload and a merged compaction.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Any, Array, ArrayPrelim, Doc, Map, MapPrelim, StateVector, Text, Transact};

use crowdroom_crdt::SharedDoc;
use crowdroom_crdt::doc::DocError;
use crowdroom_crdt::doc::merge_updates;

use crate::{rng_for, seeds};

const PEERS: usize = 4;
const STEPS: usize = 250;
/// Characters for text edits: all in the Basic Multilingual Plane, so a
/// random UTF-16 offset never falls inside a surrogate pair.
const ALPHABET: &[char] = &['a', 'b', 'z', ' ', 'é', 'ж', '中', '\n'];

struct Peer {
    doc: SharedDoc,
    /// `delivered[i]`: whether log entry `i` was applied here.
    delivered: Vec<bool>,
}

fn declare_roots(doc: &Doc) {
    doc.get_or_insert_text("text");
    doc.get_or_insert_map("map");
    doc.get_or_insert_array("list");
}

fn random_value(rng: &mut StdRng) -> Any {
    match rng.random_range(0..5) {
        0 => Any::from(rng.random_range(-1000..1000)),
        1 => Any::from(rng.random::<f64>()),
        2 => Any::from(random_text(rng, 4)),
        3 => Any::from(rng.random_bool(0.5)),
        _ => Any::from(vec![Any::from("x"), Any::Null, Any::from(1)]),
    }
}

fn random_text(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(1..=max);
    (0..len).map(|_| *ALPHABET.choose(rng).unwrap()).collect()
}

/// One random local edit; returns the update it produced.
fn random_edit(rng: &mut StdRng, doc: &Doc) -> Vec<u8> {
    let text = doc.get_or_insert_text("text");
    let map = doc.get_or_insert_map("map");
    let list = doc.get_or_insert_array("list");
    let mut txn = doc.transact_mut();
    match rng.random_range(0..7) {
        0 | 1 => {
            let index = rng.random_range(0..=text.len(&txn));
            text.insert(&mut txn, index, &random_text(rng, 6));
        }
        2 => {
            let len = text.len(&txn);
            if len > 0 {
                let start = rng.random_range(0..len);
                let count = rng.random_range(1..=(len - start).min(5));
                text.remove_range(&mut txn, start, count);
            }
        }
        3 => {
            let key = format!("k{}", rng.random_range(0..6));
            map.insert(&mut txn, key, random_value(rng));
        }
        4 => {
            if rng.random_bool(0.5) {
                list.push_back(&mut txn, random_value(rng));
            } else {
                let nested = list.push_back(&mut txn, MapPrelim::default());
                nested.insert(&mut txn, "label", Any::from(random_text(rng, 3)));
                nested.insert(&mut txn, "items", ArrayPrelim::default());
            }
        }
        5 => {
            let len = list.len(&txn);
            if len > 0 {
                let index = rng.random_range(0..len);
                list.remove(&mut txn, index);
            }
        }
        _ => {
            let key = format!("k{}", rng.random_range(0..6));
            map.remove(&mut txn, &key);
        }
    }
    txn.commit();
    txn.encode_update_v1()
}

/// Applies one log entry. An entry that would leave a gap in its client's
/// clocks is refused (as the server refuses it live) and stays undelivered:
/// its sender sends it again later, as a y-websocket client resends what
/// the server lacks in its next sync. Any other refusal fails the test.
fn deliver(peer: &mut Peer, log: &[Vec<u8>], index: usize) {
    match peer.doc.apply(&log[index]) {
        Ok(_) => peer.delivered[index] = true,
        Err(DocError::Rejected(reason)) if reason.contains("gap") => {}
        Err(error) => panic!("entry {index} refused: {error}"),
    }
}

/// Applies a random batch of log entries (some repeated) in random order.
fn deliver_some(rng: &mut StdRng, peer: &mut Peer, log: &[Vec<u8>]) {
    let batch = rng.random_range(1..=4);
    for _ in 0..batch {
        let index = rng.random_range(0..log.len());
        deliver(peer, log, index);
    }
}

/// Applies every entry not yet delivered, shuffled, plus a few repeats,
/// until all are in (each pass delivers at least the earliest missing one).
fn deliver_rest(rng: &mut StdRng, peer: &mut Peer, log: &[Vec<u8>]) {
    let repeats: Vec<usize> = (0..log.len() / 10)
        .map(|_| rng.random_range(0..log.len()))
        .collect();
    for index in repeats {
        deliver(peer, log, index);
    }
    loop {
        let mut order: Vec<usize> = (0..log.len())
            .filter(|&index| !peer.delivered[index])
            .collect();
        if order.is_empty() {
            return;
        }
        let missing = order.len();
        order.shuffle(rng);
        for index in order {
            deliver(peer, log, index);
        }
        let left = peer.delivered.iter().filter(|done| !**done).count();
        assert!(
            left < missing,
            "a pass delivered nothing: {left} entries stuck"
        );
    }
}

/// The document as JSON, read from a fresh copy loaded from its snapshot
/// with the roots declared, so every doc is compared the same way.
fn json_of(doc: &SharedDoc) -> Any {
    let fresh = SharedDoc::load(Some(&doc.snapshot()), []).unwrap();
    declare_roots(fresh.doc());
    fresh.doc().to_json(&fresh.doc().transact())
}

fn state_vector(doc: &SharedDoc) -> StateVector {
    StateVector::decode_v1(&doc.state_vector()).unwrap()
}

#[test]
fn random_concurrent_edits_converge_in_any_order() {
    for seed in seeds(12) {
        let mut rng = rng_for("convergence", seed);
        let mut log: Vec<Vec<u8>> = Vec::new();
        let mut peers: Vec<Peer> = (0..PEERS)
            .map(|_| {
                let doc = SharedDoc::with_client_id(rng.random_range(1..1 << 32));
                declare_roots(doc.doc());
                Peer {
                    doc,
                    delivered: Vec::new(),
                }
            })
            .collect();
        for _ in 0..STEPS {
            let who = rng.random_range(0..PEERS);
            let peer = &mut peers[who];
            if log.is_empty() || rng.random_bool(0.55) {
                log.push(random_edit(&mut rng, peer.doc.doc()));
                for other in peers.iter_mut() {
                    other.delivered.push(false);
                }
                peers[who].delivered[log.len() - 1] = true;
            } else {
                for other in peers.iter_mut() {
                    other.delivered.resize(log.len(), false);
                }
                deliver_some(&mut rng, &mut peers[who], &log);
            }
        }

        // A server that sees everything in a random order, with repeats.
        let mut server = Peer {
            doc: SharedDoc::with_client_id(0),
            delivered: vec![false; log.len()],
        };
        deliver_rest(&mut rng, &mut server, &log);
        let server = server.doc;
        assert!(!server.has_pending(), "every dependency was delivered");

        for peer in peers.iter_mut() {
            deliver_rest(&mut rng, peer, &log);
        }
        let expected = json_of(&server);
        for (index, peer) in peers.iter().enumerate() {
            assert!(
                !peer.doc.has_pending(),
                "peer {index} kept integrable blocks pending (seed {seed})"
            );
            assert_eq!(
                json_of(&peer.doc),
                expected,
                "peer {index} diverged (seed {seed})"
            );
            assert_eq!(
                state_vector(&peer.doc),
                state_vector(&server),
                "peer {index} state vector"
            );
            // Live docs (not reloaded) agree too.
            let live = peer.doc.doc().to_json(&peer.doc.doc().transact());
            assert_eq!(live, expected, "peer {index} live doc (seed {seed})");
        }

        // Compaction: the merge of the whole log is the same document.
        let borrowed: Vec<&[u8]> = log.iter().map(Vec::as_slice).collect();
        let merged = SharedDoc::load(Some(&merge_updates(&borrowed).unwrap()), []).unwrap();
        assert_eq!(json_of(&merged), expected, "merged log (seed {seed})");
        // Snapshot plus a tail of updates, as the server loads from storage.
        let split = rng.random_range(0..=log.len());
        let head = SharedDoc::load(None, borrowed[..split].iter().copied()).unwrap();
        let reloaded =
            SharedDoc::load(Some(&head.snapshot()), borrowed[split..].iter().copied()).unwrap();
        assert_eq!(
            json_of(&reloaded),
            expected,
            "snapshot + tail (seed {seed})"
        );
    }
}
