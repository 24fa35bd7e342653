//! Croupier's consensus layer: openraft behind our own `Consensus` trait so its API churn stays
//! here. Owns the node lifecycle (a fresh node initializes itself as a one-voter cluster), the
//! log-storage and state-machine adaptors over `croupier_store` and `croupier_core::Ledger`,
//! and proposing a batch of commands as one log entry stamped with the leader's time.
//!
//! It must not know: HTTP, JSON or the API's shapes.
