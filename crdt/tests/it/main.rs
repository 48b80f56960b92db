//! Integration tests of the public API: random concurrent editing must
//! converge in any delivery order, and no input may panic or abort.
//!
//! Randomized tests print their seed; rerun one with `CRDT_SEED=<seed>`.

#![allow(clippy::unwrap_used)]

mod convergence;
mod fuzz;

use rand::SeedableRng;
use rand::rngs::StdRng;

/// The seeds to run: `CRDT_SEED` alone if set, else `rounds` fresh ones.
pub fn seeds(rounds: usize) -> Vec<u64> {
    match std::env::var("CRDT_SEED") {
        Ok(seed) => vec![seed.parse().expect("CRDT_SEED must be a u64")],
        Err(_) => (0..rounds).map(|_| rand::random()).collect(),
    }
}

/// A deterministic generator for `seed`, announcing the seed so a failing
/// run can be replayed (the harness shows it only on failure).
pub fn rng_for(test: &str, seed: u64) -> StdRng {
    eprintln!("{test}: seed {seed} (rerun with CRDT_SEED={seed})");
    StdRng::seed_from_u64(seed)
}
