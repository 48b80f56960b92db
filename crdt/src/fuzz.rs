//! Property-based fuzzing of everything in this crate that reads client
//! bytes: the y-websocket frame decoder, lib0 varints, awareness updates and
//! the awareness registry, and [`SharedDoc`] fed with arbitrary bytes and
//! with valid updates that were corrupted.
//!
//! Every property asserts more than "no panic" where it can: what decodes
//! re-encodes to itself, a refused input leaves the state as it was, and a
//! document that refused an input still applies the next valid update and
//! reloads from its own snapshot.
//!
//! The case counts are modest, so the module runs with the ordinary unit
//! tests (and in CI, on a stable toolchain) in a few seconds.
//!
//! Replaying a failure: each test prints `proptest seed N` on stderr, which
//! the test harness shows when the test fails, next to proptest's
//! `minimal failing input: ...`. Run
//! `PROPTEST_RNG_SEED=N cargo test -p crowdroom-crdt --lib fuzz::NAME` to
//! draw the same cases again and reach the same minimal input. Nothing is
//! written to disk (`failure_persistence: None`): turn a minimal input worth
//! keeping into a plain unit test. `PROPTEST_CASES=N` fuzzes longer.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact};

use crate::awareness::{MAX_CLIENTS_PER_OWNER, MAX_SAFE_INTEGER, MAX_STATE_BYTES};
use crate::doc::{merge_updates, not_covered};
use crate::encoding::{Reader, write_var_u64};
use crate::{AwarenessEntry, AwarenessRegistry, AwarenessUpdate, DocError, Message, SharedDoc};

/// The proptest configuration of every property here: `cases` cases (or
/// `PROPTEST_CASES`), a seed that is printed (or `PROPTEST_RNG_SEED`), and
/// no regression files.
fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("proptest seed {seed} (replay with PROPTEST_RNG_SEED={seed})");
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default().cases
    } else {
        cases
    };
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// y-websocket frames and lib0 varints.

/// A [`Message`] that owns its payload, so a strategy can generate it.
#[derive(Debug, Clone)]
enum OwnedMessage {
    SyncStep1(Vec<u8>),
    SyncStep2(Vec<u8>),
    Update(Vec<u8>),
    Awareness(Vec<u8>),
    QueryAwareness,
    PermissionDenied(String),
}

impl OwnedMessage {
    fn message(&self) -> Message<'_> {
        match self {
            OwnedMessage::SyncStep1(bytes) => Message::SyncStep1(bytes),
            OwnedMessage::SyncStep2(bytes) => Message::SyncStep2(bytes),
            OwnedMessage::Update(bytes) => Message::Update(bytes),
            OwnedMessage::Awareness(bytes) => Message::Awareness(bytes),
            OwnedMessage::QueryAwareness => Message::QueryAwareness,
            OwnedMessage::PermissionDenied(reason) => Message::PermissionDenied(reason),
        }
    }
}

/// Payloads up to 300 bytes, so lengths take one and two varint bytes.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..300)
}

fn owned_message() -> impl Strategy<Value = OwnedMessage> {
    prop_oneof![
        payload().prop_map(OwnedMessage::SyncStep1),
        payload().prop_map(OwnedMessage::SyncStep2),
        payload().prop_map(OwnedMessage::Update),
        payload().prop_map(OwnedMessage::Awareness),
        Just(OwnedMessage::QueryAwareness),
        ".{0,80}".prop_map(OwnedMessage::PermissionDenied),
    ]
}

/// Frames that look like y-websocket messages (a known or unknown type, a
/// length that may lie, random content), so the decoder is driven past its
/// first byte; and plain random bytes.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just(vec![0, 0]),
        Just(vec![0, 1]),
        Just(vec![0, 2]),
        Just(vec![0, 3]),
        Just(vec![1]),
        Just(vec![2, 0]),
        Just(vec![2, 1]),
        Just(vec![3]),
        vec(any::<u8>(), 0..3),
    ];
    let length = prop_oneof![0u64..64, any::<u64>(), Just(u64::MAX)];
    let shaped = (header, length, vec(any::<u8>(), 0..64)).prop_map(|(header, length, body)| {
        let mut frame = header;
        write_var_u64(&mut frame, length);
        frame.extend(body);
        frame
    });
    prop_oneof![shaped, vec(any::<u8>(), 0..64)]
}

proptest! {
    #![proptest_config(config(2000))]

    /// Any bytes decode or fail cleanly; what decodes re-encodes to a frame
    /// that decodes to the same message and is no longer than the input
    /// (lib0 accepts non-minimal varints, so it may be shorter).
    #[test]
    fn frame_decoding_is_total_and_canonical(bytes in frame()) {
        if let Ok(message) = Message::decode(&bytes) {
            let encoded = message.encode();
            prop_assert_eq!(Message::decode(&encoded), Ok(message));
            prop_assert!(encoded.len() <= bytes.len());
        }
    }

    /// Every message round-trips; cutting its frame anywhere fails, and a
    /// byte after it is reported as one trailing byte.
    #[test]
    fn messages_round_trip(owned in owned_message(), extra in any::<u8>(), cut in any::<Index>()) {
        let message = owned.message();
        let frame = message.encode();
        prop_assert_eq!(Message::decode(&frame), Ok(message));
        let cut = cut.index(frame.len());
        prop_assert!(Message::decode(&frame[..cut]).is_err());
        let mut longer = frame.clone();
        longer.push(extra);
        prop_assert_eq!(
            Message::decode(&longer),
            Err(crate::ProtocolError::TrailingBytes(1))
        );
    }

    /// Varints round-trip; any bytes read as a varint either fail or yield a
    /// value whose minimal encoding is no longer than what was read.
    #[test]
    fn varints_round_trip(value in any::<u64>(), bytes in vec(any::<u8>(), 0..12)) {
        let mut encoded = Vec::new();
        write_var_u64(&mut encoded, value);
        let mut reader = Reader::new(&encoded);
        prop_assert_eq!(reader.read_var_u64(), Ok(value));
        prop_assert!(reader.is_empty());

        let mut reader = Reader::new(&bytes);
        if let Ok(read) = reader.read_var_u64() {
            let consumed = bytes.len() - reader.remaining();
            let mut minimal = Vec::new();
            write_var_u64(&mut minimal, read);
            prop_assert!(minimal.len() <= consumed && consumed <= 10);
        }
    }
}

// ---------------------------------------------------------------------------
// Awareness updates and the registry.

/// Client ids and clocks: a few small ones (so entries meet), and the edges
/// of what the registry accepts.
fn awareness_number() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..8,
        1 => Just(MAX_SAFE_INTEGER),
        1 => Just(MAX_SAFE_INTEGER + 1),
        1 => any::<u64>(),
    ]
}

/// States: live, removed (`null`, with spaces too), not JSON, too big.
fn awareness_state() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just(" null ".to_owned()),
        Just("{}".to_owned()),
        Just(r#"{"user":{"name":"a"},"cursor":null}"#.to_owned()),
        Just(String::new()),
        Just("{".to_owned()),
        Just(format!("\"{}\"", "x".repeat(MAX_STATE_BYTES))),
        "[a-z0-9{}\\[\\]\":, ]{0,16}",
        ".{0,16}",
    ]
}

fn awareness_entry() -> impl Strategy<Value = AwarenessEntry> {
    (awareness_number(), awareness_number(), awareness_state()).prop_map(
        |(client_id, clock, state)| AwarenessEntry {
            client_id,
            clock,
            state,
        },
    )
}

/// Owners (connections) the registry operations use.
const OWNERS: u64 = 4;

#[derive(Debug, Clone)]
enum AwarenessOp {
    Apply {
        owner: u64,
        update: AwarenessUpdate,
        now_ms: u64,
    },
    /// Random bytes through the decoder, applied if they decode.
    ApplyBytes {
        owner: u64,
        bytes: Vec<u8>,
        now_ms: u64,
    },
    RemoveOwner(u64),
    Expire {
        now_ms: u64,
        timeout_ms: u64,
    },
}

fn awareness_op() -> impl Strategy<Value = AwarenessOp> {
    let time = prop_oneof![4 => 0u64..100_000, 1 => any::<u64>()];
    prop_oneof![
        6 => (0..OWNERS, vec(awareness_entry(), 0..6), time.clone()).prop_map(
            |(owner, entries, now_ms)| AwarenessOp::Apply {
                owner,
                update: AwarenessUpdate { entries },
                now_ms,
            }
        ),
        1 => (0..OWNERS, vec(any::<u8>(), 0..40), time.clone())
            .prop_map(|(owner, bytes, now_ms)| AwarenessOp::ApplyBytes { owner, bytes, now_ms }),
        1 => (0..OWNERS).prop_map(AwarenessOp::RemoveOwner),
        1 => (time, prop_oneof![0u64..60_000, any::<u64>()])
            .prop_map(|(now_ms, timeout_ms)| AwarenessOp::Expire { now_ms, timeout_ms }),
    ]
}

/// Everything observable of a registry, to compare before and after.
fn observe(registry: &AwarenessRegistry) -> (Option<Vec<u8>>, Vec<Vec<u64>>) {
    let owners = (0..OWNERS).map(|owner| registry.owned_by(owner)).collect();
    (registry.encode_all(), owners)
}

/// The registry's invariants: owners' live sets are disjoint, bounded and
/// add up to the live count, and the announced state is exactly the live
/// clients, each with JSON that is not `null` and ids a browser can read.
fn check_registry(registry: &AwarenessRegistry) -> Result<(), TestCaseError> {
    let mut all = BTreeSet::new();
    for owner in 0..OWNERS {
        let owned = registry.owned_by(owner);
        prop_assert!(owned.len() <= MAX_CLIENTS_PER_OWNER);
        for client_id in owned {
            prop_assert!(all.insert(client_id), "client {} has two owners", client_id);
        }
    }
    prop_assert_eq!(all.len(), registry.live_count());
    match registry.encode_all() {
        None => prop_assert_eq!(registry.live_count(), 0),
        Some(bytes) => {
            let update = AwarenessUpdate::decode(&bytes).unwrap();
            let announced: BTreeSet<u64> =
                update.entries.iter().map(|entry| entry.client_id).collect();
            prop_assert_eq!(&announced, &all);
            for entry in &update.entries {
                prop_assert!(entry.client_id <= MAX_SAFE_INTEGER);
                prop_assert!(entry.clock <= MAX_SAFE_INTEGER);
                prop_assert!(entry.state.trim() != "null");
                prop_assert!(entry.state.len() <= MAX_STATE_BYTES);
                prop_assert!(serde_json::from_str::<serde_json::Value>(&entry.state).is_ok());
            }
        }
    }
    Ok(())
}

/// A removal update: every entry says `null`.
fn check_removals(bytes: Option<Vec<u8>>) -> Result<usize, TestCaseError> {
    let Some(bytes) = bytes else { return Ok(0) };
    let update = AwarenessUpdate::decode(&bytes).unwrap();
    prop_assert!(!update.entries.is_empty());
    for entry in &update.entries {
        prop_assert_eq!(entry.state.as_str(), "null");
    }
    Ok(update.entries.len())
}

fn apply_awareness(
    registry: &mut AwarenessRegistry,
    owner: u64,
    update: &AwarenessUpdate,
    now_ms: u64,
) -> Result<(), TestCaseError> {
    let before = observe(registry);
    match registry.apply_accepted(owner, update, now_ms) {
        // A refused update leaves nothing anyone can see changed.
        None => prop_assert_eq!(observe(registry), before),
        Some(accepted) => {
            let accepted = AwarenessUpdate::decode(&accepted).unwrap();
            prop_assert!(!accepted.entries.is_empty());
            for entry in &accepted.entries {
                prop_assert!(update.entries.contains(entry), "{:?} was not sent", entry);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    /// Any bytes decode or fail cleanly, and what decodes re-encodes to
    /// bytes that decode to the same update.
    #[test]
    fn awareness_decoding_is_total(bytes in vec(any::<u8>(), 0..64)) {
        if let Ok(update) = AwarenessUpdate::decode(&bytes) {
            prop_assert_eq!(AwarenessUpdate::decode(&update.encode()), Ok(update));
        }
    }

    /// Every update round-trips through its encoding, and every cut of it
    /// that drops part of an entry fails.
    #[test]
    fn awareness_updates_round_trip(entries in vec(awareness_entry(), 0..5)) {
        let update = AwarenessUpdate { entries };
        let bytes = update.encode();
        prop_assert_eq!(AwarenessUpdate::decode(&bytes), Ok(update.clone()));
        if !update.entries.is_empty() {
            prop_assert!(AwarenessUpdate::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    /// Random operations from several connections keep the registry's
    /// invariants; refused updates change nothing; a closed connection
    /// owns nothing afterwards.
    #[test]
    fn awareness_registry_keeps_its_invariants(ops in vec(awareness_op(), 1..40)) {
        let mut registry = AwarenessRegistry::new();
        for op in ops {
            match op {
                AwarenessOp::Apply { owner, update, now_ms } => {
                    apply_awareness(&mut registry, owner, &update, now_ms)?;
                }
                AwarenessOp::ApplyBytes { owner, bytes, now_ms } => {
                    if let Ok(update) = AwarenessUpdate::decode(&bytes) {
                        apply_awareness(&mut registry, owner, &update, now_ms)?;
                    }
                }
                AwarenessOp::RemoveOwner(owner) => {
                    let owned = registry.owned_by(owner).len();
                    let removed = check_removals(registry.remove_owner(owner))?;
                    prop_assert_eq!(removed, owned);
                    prop_assert!(registry.owned_by(owner).is_empty());
                }
                AwarenessOp::Expire { now_ms, timeout_ms } => {
                    let live = registry.live_count();
                    let removed = check_removals(registry.expire(now_ms, timeout_ms))?;
                    prop_assert_eq!(registry.live_count(), live - removed);
                }
            }
            check_registry(&registry)?;
        }
    }
}

// ---------------------------------------------------------------------------
// SharedDoc: arbitrary and corrupted updates.

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
    // A reload equals the live doc when neither holds blocks waiting for
    // predecessors; with pending blocks from corrupted updates it does not
    // yet (see the two ignored tests at the end of this module).
    if !doc.has_pending() && !reloaded.has_pending() {
        prop_assert_eq!(
            known_clocks(&reloaded.state_vector()),
            known_clocks(&doc.state_vector())
        );
    }
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

/// Found by `corrupted_updates_leave_the_doc_usable` (1 of 2): a block whose origin
/// is a later clock of its own client (update 3: clock 4, origin (1, 17);
/// no Yjs client makes one) waits, then integrates once that clock arrives
/// in a later update. The doc's snapshot holds both in one update, where
/// yrs integrates a client's blocks in clock order, so the reloaded doc
/// keeps them pending: a checkpoint (or a sync step 2 to a new peer) loses
/// that client's text from clock 4 on. npm Yjs does not wait for an
/// origin of the block's own client: it throws when it finds none.
#[test]
#[ignore = "finding: crdt/src/validate.rs should refuse origins in the sender's own future"]
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
/// update (update 2, a block at clock 0 overlapping the four known units of
/// client 1) stays pending in the live doc, whose state vector says
/// client 1 is at clock 4. The snapshot encodes that pending block so that
/// the reloaded doc integrates it and says client 1 is at clock 112: after
/// a reload, client 1's real edits at clocks 4 to 111 would be taken for
/// duplicates and dropped.
#[test]
#[ignore = "finding: a snapshot with pending blocks reloads to another state"]
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
