//! Shared by the property tests of this crate and the server's: the
//! proptest configuration (a printed, replayable seed; no regression
//! files) and strategies for arbitrary JSON. Compiled for tests, and for
//! other crates' tests through the `testkit` feature.

#![allow(clippy::unwrap_used)]

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{Value, json};

/// The proptest configuration of every property: `cases` cases (or
/// `PROPTEST_CASES`), a seed that is printed (or `PROPTEST_RNG_SEED`), and
/// no regression files.
pub fn config(cases: u32) -> ProptestConfig {
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
pub fn json_number() -> impl Strategy<Value = Value> {
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

pub fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        ".{0,20}".prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}
