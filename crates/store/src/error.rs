//! The store's error type: every corruption names its file and byte offset.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Bytes on disk that cannot be right: the node must not start on them.
    #[error("corrupt {}{} at byte {offset}: {reason}", file.display(), EntrySuffix(*index))]
    Corrupt { file: PathBuf, offset: u64, index: Option<u64>, reason: String },
    /// An earlier write or sync failed; what reached the disk is unknown until the log is
    /// opened again (fsync errors are not retryable: the kernel may have dropped the pages).
    #[error("the log refuses writes after an earlier write or sync failure; reopen it to recover from disk")]
    Poisoned,
    #[error("the log was opened read-only")]
    ReadOnly,
    #[error("entries {from}..{to_exclusive} are not all in the log (it holds {})", HeldRange(*first, *last))]
    OutOfRange { from: u64, to_exclusive: u64, first: Option<u64>, last: Option<u64> },
    #[error("record {index} has a {bytes}-byte payload; at most {max} bytes fit in a frame")]
    RecordTooLarge { index: u64, bytes: usize, max: usize },
    #[error("cannot purge through {index}: the log ends at {}; use purge_through_snapshot", OptionalIndex(*last))]
    PurgeBeyondLog { index: u64, last: Option<u64> },
    #[error("cannot truncate from {index}: entries through {purged} are already purged")]
    TruncatePurged { index: u64, purged: u64 },
    /// The record or event at `position` was deleted by retention; `start` is the oldest one
    /// still held.
    #[error("position {position} is before the oldest retained one ({start}): retention deleted it")]
    BeforeRetention { position: u64, start: u64 },
    #[error("position {position} is at or past the end of the published log ({end})")]
    PastEnd { position: u64, end: u64 },
    #[error("a {bytes}-byte record payload is larger than the {max}-byte limit")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("position {position} is not the start of a record in {}", file.display())]
    NotRecordBoundary { position: u64, file: PathBuf },
    #[error("invalid consumer name {name:?}: {reason}")]
    InvalidConsumerName { name: String, reason: &'static str },
    #[error("subscription {name} cannot acknowledge event {position}: it has delivered only through {delivered}")]
    AckBeyondDelivered { name: String, position: u64, delivered: u64 },
    #[error("snapshot at {index} has chain head {snapshot}, but the log's entry {index} hashes to {log}")]
    SnapshotConflict { index: u64, snapshot: String, log: String },
    /// Another open `DataDirLock` holds the directory (another process, or this one).
    #[error("data directory {} is in use by another croupier process ({}); stop it first", dir.display(), HolderPid(*pid))]
    Locked { dir: PathBuf, pid: Option<u32> },
    /// A background flush or merge of the id index failed (or its thread panicked): nothing more
    /// is written. What the manifest names on disk is intact; reopen the index to recover.
    #[error("the id index stopped after a background failure ({reason}); reopen it to recover from disk")]
    IndexFailed { reason: String },
    /// The id index's background work was stopped (its node is shutting down) while a caller
    /// waited for a flush: nothing more is inserted or flushed.
    #[error("the id index was stopped (shutting down) before the flush it waited for")]
    IndexStopped,
    /// A history record that is there but does not decode (damage the CRC did not catch, or a
    /// record written by another version).
    #[error("history {what} at position {position} does not decode: {reason}")]
    Undecodable { what: &'static str, position: u64, reason: String },
}

impl StoreError {
    pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io { op, path: path.to_path_buf(), source }
    }

    pub(crate) fn corrupt(file: &Path, offset: u64, index: Option<u64>, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { file: file.to_path_buf(), offset, index, reason: reason.into() }
    }
}

struct EntrySuffix(Option<u64>);

impl fmt::Display for EntrySuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, " (entry {index})"),
            None => Ok(()),
        }
    }
}

struct HeldRange(Option<u64>, Option<u64>);

impl fmt::Display for HeldRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(first), Some(last)) => write!(f, "{first}..={last}"),
            _ => f.write_str("no entries"),
        }
    }
}

struct HolderPid(Option<u32>);

impl fmt::Display for HolderPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pid) => write!(f, "pid {pid}"),
            None => f.write_str("pid unknown"),
        }
    }
}

struct OptionalIndex(Option<u64>);

impl fmt::Display for OptionalIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, "{index}"),
            None => f.write_str("nothing (empty)"),
        }
    }
}
