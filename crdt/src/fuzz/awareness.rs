//! Fuzzing awareness updates and the registry: decoding, round trips, and
//! random operations from several connections against its invariants.

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;

use super::config;
use crate::awareness::{MAX_CLIENTS_PER_OWNER, MAX_SAFE_INTEGER, MAX_STATE_BYTES};
use crate::{AwarenessEntry, AwarenessRegistry, AwarenessUpdate};

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
