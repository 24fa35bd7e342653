//! The clean-close marker `log/closed`: written by `LogStore::close` after a final sync, it
//! records where the log ends (last segment, its length, last entry and that entry's hash).
//! While it exists, nothing at the end of the log can be a torn write, so the next open holds
//! the last segment to the standard of a sealed one and checks that the log ends exactly where
//! the marker says: a cut-off or damaged final record is `Corrupt`, not silently dropped.
//!
//! An open for writing deletes the marker (durably, with the directory fsync that ends every
//! open) before the log can change, so a marker never describes a log that moved on.
//!
//! Payload (in the atomic-file envelope): `segment_first_index u64 | segment_len u64 |
//! last_index u64 | last_chain_hash 32`, with `segment_len` 0 for a log without segments.

use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::frame::{segment_file_name, SEGMENT_HEADER_BYTES};
use crate::fs::FileSystem;
use crate::{ChainHash, StoreError};

const CLOSE_MARKER_FILE: &str = "closed";
const CLOSE_MARKER_MAGIC: &[u8; 8] = b"CRPCLOS\x01";
const CLOSE_MARKER_PAYLOAD_BYTES: usize = 8 + 8 + 8 + 32;

/// What `LogStore::close` recorded: the end of the log, `None` for a log without segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CloseMarker {
    pub(crate) tail: Option<LogTail>,
}

/// The end of the log: the last segment and its last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogTail {
    pub(crate) segment_first_index: u64,
    pub(crate) segment_len: u64,
    pub(crate) last_index: u64,
    pub(crate) last_hash: ChainHash,
}

/// The end of the log found on open, with where its last record sits (for error messages).
pub(crate) struct FoundTail<'a> {
    pub(crate) tail: LogTail,
    pub(crate) path: &'a Path,
    pub(crate) last_offset: u64,
}

fn marker_path(dir: &Path) -> PathBuf {
    dir.join(CLOSE_MARKER_FILE)
}

/// `None` when there is no marker: the log was not closed cleanly (a crash), or is open.
pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<CloseMarker>, StoreError> {
    let path = marker_path(dir);
    let Some(payload) = atomic_file::load(fs, &path, CLOSE_MARKER_MAGIC)? else { return Ok(None) };
    if payload.len() != CLOSE_MARKER_PAYLOAD_BYTES {
        return Err(StoreError::corrupt(&path, 16, None, "clean-close marker has the wrong size"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
    let segment_len = u64_at(8);
    if segment_len == 0 {
        return Ok(Some(CloseMarker { tail: None }));
    }
    if segment_len <= SEGMENT_HEADER_BYTES as u64 {
        return Err(StoreError::corrupt(&path, 24, None, "clean-close marker names a segment without records"));
    }
    let tail = LogTail {
        segment_first_index: u64_at(0),
        segment_len,
        last_index: u64_at(16),
        last_hash: payload[24..56].try_into().expect("32 bytes"),
    };
    Ok(Some(CloseMarker { tail: Some(tail) }))
}

pub(crate) fn save(fs: &dyn FileSystem, dir: &Path, marker: CloseMarker) -> Result<(), StoreError> {
    let mut payload = Vec::with_capacity(CLOSE_MARKER_PAYLOAD_BYTES);
    let tail =
        marker.tail.unwrap_or(LogTail { segment_first_index: 0, segment_len: 0, last_index: 0, last_hash: [0; 32] });
    assert!(tail.segment_len == 0 || tail.segment_len > SEGMENT_HEADER_BYTES as u64, "a last segment holds records");
    payload.extend_from_slice(&tail.segment_first_index.to_le_bytes());
    payload.extend_from_slice(&tail.segment_len.to_le_bytes());
    payload.extend_from_slice(&tail.last_index.to_le_bytes());
    payload.extend_from_slice(&tail.last_hash);
    atomic_file::save(fs, &marker_path(dir), CLOSE_MARKER_MAGIC, &payload)
}

/// Deletes the marker; durable once the caller fsyncs `dir`.
pub(crate) fn remove(fs: &dyn FileSystem, dir: &Path) -> Result<(), StoreError> {
    let path = marker_path(dir);
    fs.remove_file(&path).map_err(StoreError::io("remove", &path))
}

/// The log must end exactly where the marker says it ended when it was closed.
pub(crate) fn check(dir: &Path, marker: CloseMarker, found: Option<FoundTail<'_>>) -> Result<(), StoreError> {
    let Some(closed) = marker.tail else {
        return match found {
            None => Ok(()),
            Some(found) => {
                let reason = "the log was closed cleanly without segments, yet this segment exists";
                Err(StoreError::corrupt(found.path, 0, None, reason))
            }
        };
    };
    let closed_at = format!(
        "the log was closed cleanly with this segment ending at byte {} after entry {}",
        closed.segment_len, closed.last_index
    );
    let expected_path = dir.join(segment_file_name(closed.segment_first_index));
    let Some(found) = found else {
        let reason = format!("{closed_at}, but no segment is left");
        return Err(StoreError::corrupt(&expected_path, 0, Some(closed.last_index), reason));
    };
    let tail = found.tail;
    if tail.segment_first_index < closed.segment_first_index {
        let reason = format!("{closed_at}, but the file is missing");
        return Err(StoreError::corrupt(&expected_path, 0, Some(closed.last_index), reason));
    }
    if tail.segment_first_index > closed.segment_first_index {
        let reason = format!("segment created after the log was closed cleanly with {} last", expected_path.display());
        return Err(StoreError::corrupt(found.path, 0, None, reason));
    }
    if tail.segment_len != closed.segment_len {
        let reason = format!("{closed_at}, but it ends at byte {} after entry {}", tail.segment_len, tail.last_index);
        let offset = tail.segment_len.min(closed.segment_len);
        return Err(StoreError::corrupt(found.path, offset, Some(closed.last_index.min(tail.last_index + 1)), reason));
    }
    if (tail.last_index, tail.last_hash) != (closed.last_index, closed.last_hash) {
        let reason = format!("{closed_at} and a different last entry or chain hash");
        return Err(StoreError::corrupt(found.path, found.last_offset, Some(tail.last_index), reason));
    }
    Ok(())
}
