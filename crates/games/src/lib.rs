//! Croupier's game math: each game is a definition (data, embedded TOML pinned by SHA-256 in a
//! manifest) plus pure functions from random draws to an outcome and from an outcome and a bet
//! to a payout; exact RTP by enumeration or closed form; a Monte Carlo simulator.
//!
//! It must not know: the ledger, money movement, clocks, tokio, HTTP, JSON or disks. Random
//! draws come in through `croupier_rng` sampling over any `RngCore`.
