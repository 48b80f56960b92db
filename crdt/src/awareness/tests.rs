#![allow(clippy::unwrap_used)]

use super::*;

fn entry(client_id: u64, clock: u64, state: &str) -> AwarenessEntry {
    AwarenessEntry {
        client_id,
        clock,
        state: state.to_owned(),
    }
}

fn update(entries: &[(u64, u64, &str)]) -> AwarenessUpdate {
    AwarenessUpdate {
        entries: entries
            .iter()
            .map(|(client_id, clock, state)| entry(*client_id, *clock, state))
            .collect(),
    }
}

fn decoded(bytes: Option<Vec<u8>>) -> Vec<AwarenessEntry> {
    AwarenessUpdate::decode(&bytes.unwrap()).unwrap().entries
}

#[test]
fn update_round_trips_and_matches_y_protocols_bytes() {
    let original = update(&[
        (1, 0, "{}"),
        (300, 7, r#"{"user":{"name":"Ada"}}"#),
        (2, 1, "null"),
    ]);
    assert_eq!(AwarenessUpdate::decode(&original.encode()), Ok(original));
    // encodeAwarenessUpdate for client 1 at clock 2 with state {} in y-protocols.
    let bytes = update(&[(1, 2, "{}")]).encode();
    assert_eq!(bytes, [1, 1, 2, 2, b'{', b'}']);
    assert_eq!(
        AwarenessUpdate::decode(&[0]),
        Ok(AwarenessUpdate::default())
    );
}

#[test]
fn decode_rejects_truncation_and_lies() {
    let bytes = update(&[(1, 0, "{}"), (2, 5, r#"{"a":1}"#)]).encode();
    for cut in 0..bytes.len() {
        assert!(
            AwarenessUpdate::decode(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // A count of 2^62 entries in a 4-byte buffer fails without allocating.
    let mut huge = Vec::new();
    write_var_u64(&mut huge, 1 << 62);
    huge.extend_from_slice(&[1, 1, 0]);
    assert_eq!(AwarenessUpdate::decode(&huge), Err(DecodeError::Truncated));
    assert_eq!(
        AwarenessUpdate::decode(&[1, 1, 1, 1, 0xff]),
        Err(DecodeError::InvalidUtf8)
    );
}

#[test]
fn newer_clock_wins_older_and_equal_lose() {
    let mut registry = AwarenessRegistry::new();
    assert!(registry.apply(10, &update(&[(1, 3, r#"{"a":1}"#)]), 0));
    assert!(
        !registry.apply(10, &update(&[(1, 3, r#"{"a":2}"#)]), 1),
        "equal clock, not null"
    );
    assert!(
        !registry.apply(10, &update(&[(1, 2, r#"{"a":3}"#)]), 2),
        "older clock"
    );
    assert!(registry.apply(10, &update(&[(1, 4, r#"{"a":4}"#)]), 3));
    assert_eq!(decoded(registry.encode_all()), [entry(1, 4, r#"{"a":4}"#)]);
    assert_eq!(registry.live_count(), 1);
}

#[test]
fn unknown_client_wins_at_clock_zero() {
    let mut registry = AwarenessRegistry::new();
    assert!(registry.apply(10, &update(&[(5, 0, "{}")]), 0));
    assert_eq!(registry.live_count(), 1);
}

#[test]
fn null_removes_and_keeps_clock() {
    let mut registry = AwarenessRegistry::new();
    registry.apply(10, &update(&[(1, 3, "{}")]), 0);
    // Equal clock with null removes a live client (its owner's tab hid it).
    assert!(registry.apply(10, &update(&[(1, 3, "null")]), 1));
    assert_eq!(registry.live_count(), 0);
    assert_eq!(registry.encode_all(), None);
    // Null again at the same clock changes nothing.
    assert!(!registry.apply(20, &update(&[(1, 3, "null")]), 2));
    // A stale relay of the old state loses to the remembered clock.
    assert!(!registry.apply(30, &update(&[(1, 3, "{}")]), 3));
    assert!(!registry.apply(30, &update(&[(1, 2, "{}")]), 3));
    // Null for a client never seen is not a change.
    assert!(!registry.apply(30, &update(&[(99, 9, "null")]), 3));
    // A newer state revives it.
    assert!(registry.apply(10, &update(&[(1, 4, "{}")]), 4));
    assert_eq!(registry.owned_by(10), [1]);
}

#[test]
fn apply_accepted_returns_only_winners() {
    let mut registry = AwarenessRegistry::new();
    registry.apply(10, &update(&[(1, 5, "{}")]), 0);
    let mixed = update(&[
        (1, 4, r#"{"old":true}"#),
        (2, 1, r#"{"new":true}"#),
        (3, 1, "not json"),
    ]);
    let accepted = registry.apply_accepted(10, &mixed, 1);
    assert_eq!(decoded(accepted), [entry(2, 1, r#"{"new":true}"#)]);
    assert_eq!(
        registry.apply_accepted(10, &update(&[(1, 5, "{}")]), 2),
        None
    );
}

#[test]
fn remove_owner_announces_null_with_next_clock() {
    let mut registry = AwarenessRegistry::new();
    registry.apply(10, &update(&[(1, 3, "{}"), (2, 7, r#"{"x":1}"#)]), 0);
    registry.apply(20, &update(&[(3, 1, "{}")]), 0);
    let removal = decoded(registry.remove_owner(10));
    assert_eq!(removal, [entry(1, 4, "null"), entry(2, 8, "null")]);
    assert_eq!(registry.live_count(), 1);
    assert_eq!(registry.remove_owner(10), None);
    // The old clock now loses; the client shows up again on its next renewal.
    assert!(!registry.apply(30, &update(&[(1, 4, "{}")]), 1));
    assert!(registry.apply(30, &update(&[(1, 5, "{}")]), 1));
    assert_eq!(registry.owned_by(30), [1]);
}

#[test]
fn another_owners_live_client_is_neither_changed_nor_removed() {
    let mut registry = AwarenessRegistry::new();
    registry.apply(10, &update(&[(1, 1, r#"{"me":10}"#)]), 0);
    // A newer state, a removal at the same clock, a removal far ahead, and
    // one entry of its own among them: only its own goes through.
    let hostile = update(&[
        (1, 2, r#"{"me":20}"#),
        (1, 1, "null"),
        (1, 99, "null"),
        (2, 1, "{}"),
    ]);
    assert_eq!(
        decoded(registry.apply_accepted(20, &hostile, 1)),
        [entry(2, 1, "{}")]
    );
    assert_eq!(registry.owned_by(10), [1]);
    assert_eq!(
        decoded(registry.encode_all()),
        [entry(1, 1, r#"{"me":10}"#), entry(2, 1, "{}")]
    );
    // Its owner still changes it, and once it left the id is free again.
    assert!(registry.apply(10, &update(&[(1, 2, r#"{"me":"ten"}"#)]), 2));
    assert_eq!(decoded(registry.remove_owner(10)), [entry(1, 3, "null")]);
    assert!(registry.apply(20, &update(&[(1, 4, "{}")]), 3));
    assert_eq!(registry.owned_by(20), [1, 2]);
}

#[test]
fn a_trusted_owner_takes_a_client_over() {
    let mut registry = AwarenessRegistry::new();
    registry.apply(10, &update(&[(1, 1, "{}")]), 0);
    // The same tab reconnected before the old socket was noticed as closed.
    let trusted = |previous: u64| previous == 10;
    let moved = registry.apply_accepted_with(20, &update(&[(1, 2, "{}")]), 1, trusted);
    assert_eq!(decoded(moved), [entry(1, 2, "{}")]);
    assert_eq!(registry.owned_by(10), Vec::<u64>::new());
    assert_eq!(registry.owned_by(20), [1]);
    assert_eq!(registry.remove_owner(10), None);
    assert_eq!(registry.live_count(), 1);
    // Trust is per previous owner: 30 may not take it from 20.
    let refused = registry.apply_accepted_with(30, &update(&[(1, 3, "null")]), 2, trusted);
    assert_eq!(refused, None);
    assert_eq!(registry.owned_by(20), [1]);
}

#[test]
fn expire_removes_silent_clients_and_renewal_keeps_them() {
    let mut registry = AwarenessRegistry::new();
    registry.apply(10, &update(&[(1, 1, "{}"), (2, 1, "{}")]), 0);
    // Client 1 renews at 15 s with clock + 1, as y-protocols does.
    registry.apply(10, &update(&[(1, 2, "{}")]), 15_000);
    assert_eq!(
        registry.expire(30_000, 30_000),
        None,
        "exactly the timeout is not more"
    );
    let removal = decoded(registry.expire(30_001, 30_000));
    assert_eq!(removal, [entry(2, 2, "null")]);
    assert_eq!(registry.owned_by(10), [1]);
    let removal = decoded(registry.expire(45_001, 30_000));
    assert_eq!(removal, [entry(1, 3, "null")]);
    assert_eq!(registry.live_count(), 0);
    // Removals older than the timeout are forgotten: the old clock wins again.
    assert_eq!(registry.expire(100_000, 30_000), None);
    assert!(registry.apply(10, &update(&[(2, 1, "{}")]), 100_000));
}

#[test]
fn caps_bound_what_one_owner_stores() {
    let mut registry = AwarenessRegistry::new();
    let many: Vec<(u64, u64, &str)> = (0..100).map(|client_id| (client_id, 1, "{}")).collect();
    let accepted = decoded(registry.apply_accepted(10, &update(&many), 0));
    assert_eq!(accepted.len(), MAX_CLIENTS_PER_OWNER);
    assert_eq!(registry.live_count(), MAX_CLIENTS_PER_OWNER);
    // An owned client can still be updated at the cap.
    assert!(registry.apply(10, &update(&[(0, 2, r#"{"b":1}"#)]), 1));
    // Another owner is not affected by the first one's cap.
    assert!(registry.apply(11, &update(&[(500, 1, "{}")]), 1));

    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_STATE_BYTES));
    assert!(!registry.apply(12, &update(&[(600, 1, &big)]), 1));
    let unsafe_id = MAX_SAFE_INTEGER + 1;
    assert!(!registry.apply(12, &update(&[(unsafe_id, 1, "{}")]), 1));
    assert!(!registry.apply(12, &update(&[(601, unsafe_id, "{}")]), 1));
    assert!(!registry.apply(12, &update(&[(602, 1, "{unquoted: 1}")]), 1));
}

#[test]
fn tombstones_are_bounded() {
    let mut registry = AwarenessRegistry::new();
    for round in 0..(MAX_TOMBSTONES as u64 / 32 + 8) {
        let ids: Vec<(u64, u64, &str)> =
            (0..32).map(|index| (round * 32 + index, 1, "{}")).collect();
        registry.apply(round, &update(&ids), round);
        registry.remove_owner(round);
    }
    assert!(registry.clients.len() <= MAX_TOMBSTONES);
    assert!(registry.tombstone_order.len() <= MAX_TOMBSTONES);
    assert_eq!(registry.live_count(), 0);
}
