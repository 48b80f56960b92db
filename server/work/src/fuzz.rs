//! Property-based fuzzing of the work engine's functions that take client
//! input: answer validation for every schema, the live decision for every
//! schema, and the consensus estimators, within their documented domains
//! and outside them (NaN weights, empty sets, huge ids and offsets).
//!
//! Every property asserts more than "no panic" where it can: a well-formed
//! answer validates, a decision lies among or between its answers, a
//! unanimous vote returns its answer, posteriors sum to one.
//!
//! Inputs are kept small (texts of a few hundred characters, a few votes),
//! so the module runs with the unit tests in a few seconds of a debug build.
//!
//! Replaying a failure: each test prints `proptest seed N` on stderr, which
//! the harness shows when the test fails, next to proptest's
//! `minimal failing input: ...`. Run
//! `PROPTEST_RNG_SEED=N cargo test -p crowdroom-work --lib fuzz::NAME` to
//! draw the same cases again and reach the same minimal input. Nothing is
//! written to disk (`failure_persistence: None`): turn a minimal input
//! worth keeping into a plain unit test. `PROPTEST_CASES=N` fuzzes longer.
//! The server's own fuzzing (the live channel's decoder) is in the
//! server's `fuzz.rs`, with the same helpers.

#![allow(clippy::unwrap_used)]

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{Value, json};

mod answers;
mod consensus;

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
// JSON values.

/// Numbers at the edges of what JSON and the decoders handle.
fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..400).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        any::<f64>().prop_map(|number| json!(number)),
        Just(json!(1e300)),
        Just(json!(0.5)),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        ".{0,20}".prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}
