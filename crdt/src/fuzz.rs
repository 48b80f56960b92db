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

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

use crate::Message;
use crate::encoding::{Reader, write_var_u64};

mod awareness;
mod doc;

/// The proptest configuration of every property here: `cases` cases (or
/// `PROPTEST_CASES`), a seed that is printed (or `PROPTEST_RNG_SEED`), and
/// no regression files.
pub(crate) fn config(cases: u32) -> ProptestConfig {
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
