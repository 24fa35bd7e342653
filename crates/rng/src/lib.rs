//! Croupier's randomness: entropy sources, the certified generator (DRBG) with reseeding and
//! continuous health tests, unbiased scaling (integers in a range, shuffles, weighted choice)
//! and provably-fair commit/reveal proofs.
//!
//! It must not know: games, money, the ledger, tokio, HTTP, JSON or disks. Sampling functions
//! are generic over `rand_core::RngCore` so game math can be driven by the certified
//! generator, a provably-fair byte stream or a seeded simulator generator alike.

pub mod sample;

pub use rand_core::{RngCore, SeedableRng};

/// The generator for simulations: fast, reproducible from a seed, never used for live play.
pub type SimRng = rand_chacha::ChaCha8Rng;

/// A simulator generator for `seed` (reproducible runs).
pub fn sim_rng(seed: u64) -> SimRng {
    SimRng::seed_from_u64(seed)
}
