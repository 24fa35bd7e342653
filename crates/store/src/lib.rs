//! Croupier's durable storage: the append-only log as segment files of CRC32C-framed records,
//! each carrying the SHA-256 chain hash of the record before it; the Raft vote; state-machine
//! snapshots that record the chain head they cover; and offline audit verification.
//!
//! It must not know: openraft, tokio, HTTP or JSON. It stores opaque payloads tagged with a
//! kind; only the audit decodes ledger payloads (through `croupier_core::codec`).
//!
//! # Why our own framing and not a log crate
//!
//! The log needs three things at once: a per-record chain hash that the store itself computes
//! and verifies on every open (tamper evidence that survives compaction), exact torn-tail
//! semantics (bytes at the end of the last segment are cut only when an interrupted write
//! explains them — never after a clean close; any other damage, anywhere, is corruption and the
//! node refuses to start), and Raft's operations (truncate a suffix, purge a prefix while remembering the
//! purged entry's hash). We checked the maintained candidates: `okaywal` (0.3, 2023) states
//! that it is early in development with an unstable file format, frames chunks its own way and
//! checkpoints through a callback rather than truncating suffixes; `simple_wal` (0.3, 2020) is a
//! single file with CRC32 (not C), compacts by rewriting and silently cuts at the first bad
//! record, so it cannot tell a torn tail from mid-log corruption. Neither carries a chain hash.
//! What we write by hand is therefore only the framing and recovery rules (the product's own
//! durability core, see `docs/storage-format.md`); the checksums come from `crc32c` (SSE4.2 /
//! ARMv8 CRC instructions, ~10 GB/s) and `sha2` (SHA-NI when the CPU has it, detected at run
//! time), so hashing a 1 MB entry costs well under a millisecond.
//!
//! # Layout of a data directory
//!
//! `DIR/log/` holds the segments and the purge marker, `DIR/snapshots/` the snapshots and
//! `DIR/vote` the Raft vote. [`DataDir`] names these paths. `DIR/LOCK` is locked by the one
//! process using the directory ([`DataDirLock`]).
//!
//! # Test seam
//!
//! Every file operation goes through [`fs::FileSystem`]; [`sim_fs::SimFileSystem`] is an
//! in-memory implementation that can lose unsynced data ("crash") and inject I/O errors.

pub mod archive;
mod atomic_file;
pub mod audit;
mod checkpoint;
mod close_marker;
pub mod disk;
mod error;
pub mod events;
mod frame;
pub mod fs;
pub mod history;
pub mod index;
mod lock;
mod log;
pub mod records;
mod scan;
pub mod sim_fs;
mod vote;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use checkpoint::{CheckpointManifest, CheckpointStore, HotFileWriter};
pub use error::StoreError;
pub use events::{
    ConsumerCursors, Event, EventFeed, EventLog, EventLogOptions, EventOpenReport, EventPage, RetentionReport,
    Subscription,
};
pub use history::{HistoryEnds, HistoryOptions, HistoryReader, HistorySync, HistoryWriter, OpenedHistory};
pub use index::{IdIndex, IndexOptions, IndexStats, IndexWorkers};
pub use lock::{DataDirLock, LOCK_FILE_NAME};
pub use log::{LogOptions, LogStore, RecoveryReport, TornTail};
pub use records::{
    OpenReport, RecordLog, RecordLogOptions, RecordReader, RecordSync, SegmentInfo, RECORD_FRAME_OVERHEAD_BYTES,
};
pub use vote::VoteFile;

/// SHA-256 chain hash of a log record. The hash "before" the first entry ever written is
/// [`GENESIS_CHAIN_HASH`].
pub type ChainHash = [u8; 32];

/// The chain hash before the first record of a log that was never compacted.
pub const GENESIS_CHAIN_HASH: ChainHash = [0u8; 32];

/// What a log record holds; the cluster maps openraft's entry payloads onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// An entry without payload (a new leader's first entry).
    Blank = 0,
    /// A ledger proposal: `croupier_core::codec::encode_proposal` bytes.
    Normal = 1,
    /// A Raft membership change, encoded by the cluster.
    Membership = 2,
}

impl RecordKind {
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(raw: u8) -> Option<Self> {
        match raw {
            0 => Some(RecordKind::Blank),
            1 => Some(RecordKind::Normal),
            2 => Some(RecordKind::Membership),
            _ => None,
        }
    }
}

/// One log entry as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub index: u64,
    pub term: u64,
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

/// A borrowed log entry, for appending without copying the payload into a `LogRecord` first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub index: u64,
    pub term: u64,
    pub kind: RecordKind,
    pub payload: &'a [u8],
}

/// Anything `LogStore::append` can write: owned or borrowed records.
pub trait AsRecord {
    fn as_record(&self) -> RecordRef<'_>;
}

impl AsRecord for LogRecord {
    fn as_record(&self) -> RecordRef<'_> {
        RecordRef { index: self.index, term: self.term, kind: self.kind, payload: &self.payload }
    }
}

impl AsRecord for RecordRef<'_> {
    fn as_record(&self) -> RecordRef<'_> {
        *self
    }
}

/// hash(record) = SHA-256(prev_chain_hash ‖ index ‖ term ‖ kind ‖ payload), integers
/// little-endian. The chain depends only on the entries, never on how they sit in files.
pub fn compute_chain_hash(prev: &ChainHash, record: RecordRef<'_>) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(record.index.to_le_bytes());
    hasher.update(record.term.to_le_bytes());
    hasher.update([record.kind.to_u8()]);
    hasher.update(record.payload);
    hasher.finalize().into()
}

/// The paths inside a node's data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub fn vote_path(&self) -> PathBuf {
        self.root.join("vote")
    }

    /// The file [`DataDirLock::acquire`] locks.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE_NAME)
    }
}
