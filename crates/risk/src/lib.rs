//! Croupier's risk and compliance *policy*: today the verification of identity attestations
//! ([`identity`]: who a player is, how old, where they live, as a trusted identity provider
//! signed it); later the AML and fraud scoring rules.
//!
//! It decides, and nothing else. It must not know: I/O (files, sockets, HTTP), storage, the
//! ledger state machine, or the clock. Time comes in as an argument (`now_unix_s`), keys and
//! trusted issuers as values the caller loaded, random bytes as bytes the caller drew; so the
//! same inputs always give the same verdict, in a node, an auditor's replay or a test.
//! Failures are typed (`thiserror`): a rejection names a stable code the HTTP API returns.

pub mod identity;
