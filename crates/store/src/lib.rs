//! Croupier's durable storage: the append-only log as segment files of CRC32C-framed records,
//! each carrying the SHA-256 chain hash of the record before it; the Raft vote; state-machine
//! snapshots that record the chain head they cover; and offline audit verification.
//!
//! It must not know: openraft, tokio, HTTP or JSON. It stores opaque payloads tagged with a
//! kind; only the audit decodes ledger payloads (through `croupier_core::codec`).
