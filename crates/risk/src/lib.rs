//! Croupier's risk and compliance *policy*: the verification of identity attestations
//! ([`identity`]: who a player is, how old, where they live, as a trusted identity provider
//! signed it) and AML and fraud scoring ([`aml`]: facts over a player's recent money events,
//! rules as data in CEL, a score with reasons and the action it maps to), and the case as a
//! suspicious-transaction report in goAML XML ([`goaml`]).
//!
//! It decides and formats, and nothing else. It must not know: I/O (files, sockets, HTTP), storage, the
//! ledger state machine, or the clock. Time comes in as an argument (`now_unix_s`, `now_ns`),
//! keys, trusted issuers and rule sets as values the caller loaded, random bytes as bytes the
//! caller drew; so the same inputs always give the same verdict, in a node, an auditor's
//! replay or a test.
//! Failures are typed (`thiserror`): a rejection names a stable code the HTTP API returns.

pub mod aml;
pub mod goaml;
pub mod identity;
