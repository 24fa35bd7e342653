//! Croupier's randomness: entropy sources, the certified generator (NIST SP 800-90A CTR_DRBG
//! with AES-256) with reseeding and SP 800-90B continuous health tests, unbiased scaling
//! (integers in a range, shuffles, weighted choice), the GLI-11 statistical test suite and
//! provably-fair commit/reveal proofs and hash chains.
//!
//! It must not know: games, money, the ledger, tokio, HTTP, JSON or disks. Sampling functions
//! are generic over `rand_core::RngCore` so game math can be driven by the certified
//! generator, a provably-fair byte stream or a seeded simulator generator alike. Its only
//! contact with the outside world is the live generator's entropy sources (getrandom,
//! RDSEED/RDRAND) and the monotonic clock it reseeds by; everything else is pure.

pub mod certified;
pub mod drbg;
pub mod entropy;
pub mod fair;
pub mod gli;
pub mod health;
pub mod sample;

pub use certified::{CertifiedRng, ReseedPolicy, RngError, Round};
pub use drbg::SeededDrbg;
pub use health::{health, HealthStatus, HealthTest};
pub use rand_core::{CryptoRng, RngCore, SeedableRng, TryRngCore};

/// The generator for simulations: fast, reproducible from a seed, never used for live play.
pub type SimRng = rand_chacha::ChaCha8Rng;

/// A simulator generator for `seed` (reproducible runs).
pub fn sim_rng(seed: u64) -> SimRng {
    SimRng::seed_from_u64(seed)
}
