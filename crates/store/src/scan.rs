//! Verifying one segment's bytes on open: header, every frame's CRC, contiguous indexes and the
//! chain. Decides whether a bad record is a torn tail (last segment, nothing valid after it) or
//! corruption.

use std::path::{Path, PathBuf};

use crate::frame::{decode_frame, decode_segment_header, find_valid_frame_after, HeaderProblem, SEGMENT_HEADER_BYTES};
use crate::{compute_chain_hash, ChainHash, RecordRef, StoreError};

/// Where one record sits in its segment and the chain hash it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) offset: u64,
    pub(crate) hash: ChainHash,
}

#[derive(Debug)]
pub(crate) struct ScannedSegment {
    pub(crate) first_index: u64,
    pub(crate) path: PathBuf,
    /// Slot `i` holds entry `first_index + i`.
    pub(crate) slots: Vec<Slot>,
    /// The chain hash carried by the first record (the hash of the entry before it).
    pub(crate) first_prev: Option<ChainHash>,
    /// Bytes up to the end of the last valid record (the header alone when there is none).
    pub(crate) valid_len: u64,
}

/// A bad region at the end of the last segment that nothing valid follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TornRegion {
    pub(crate) offset: u64,
    pub(crate) bytes: u64,
    pub(crate) reason: String,
}

pub(crate) struct SegmentInput<'a> {
    pub(crate) path: &'a Path,
    pub(crate) bytes: &'a [u8],
    /// The first index the file name declares.
    pub(crate) name_index: u64,
    /// The hash of the entry before this segment, when an earlier segment supplied it.
    pub(crate) expected_prev: Option<ChainHash>,
    pub(crate) is_last: bool,
}

pub(crate) fn scan_segment(input: SegmentInput<'_>) -> Result<(ScannedSegment, Option<TornRegion>), StoreError> {
    let SegmentInput { path, bytes, name_index, expected_prev, is_last } = input;
    let mut segment = ScannedSegment {
        first_index: name_index,
        path: path.to_path_buf(),
        slots: Vec::new(),
        first_prev: None,
        valid_len: 0,
    };
    if let Err(problem) = decode_segment_header(bytes).and_then(|declared| check_declared(declared, name_index)) {
        // A header that never fully reached the disk (short, zeros, bad CRC) is a torn tail; a
        // well-formed header that disagrees with the file name or format is not.
        let could_be_torn =
            matches!(problem, HeaderProblem::Short | HeaderProblem::BadMagic | HeaderProblem::BadChecksum);
        if is_last && could_be_torn && find_valid_frame_after(bytes, 0, name_index).is_none() {
            let torn = TornRegion { offset: 0, bytes: bytes.len() as u64, reason: problem.describe() };
            return Ok((segment, Some(torn)));
        }
        return Err(StoreError::corrupt(path, 0, None, problem.describe()));
    }

    let mut offset = SEGMENT_HEADER_BYTES;
    let mut prev = expected_prev;
    let mut torn = None;
    while offset < bytes.len() {
        let index = name_index + segment.slots.len() as u64;
        let frame = match decode_frame(&bytes[offset..]) {
            Ok(frame) => frame,
            Err(problem) => {
                if !is_last {
                    return Err(StoreError::corrupt(path, offset as u64, Some(index), problem.describe()));
                }
                if let Some(valid_at) = find_valid_frame_after(bytes, offset + 1, index) {
                    let reason = format!(
                        "{}; a valid record follows at byte {valid_at}, so this is damage inside the log, not a torn write",
                        problem.describe()
                    );
                    return Err(StoreError::corrupt(path, offset as u64, Some(index), reason));
                }
                let cut = (bytes.len() - offset) as u64;
                torn = Some(TornRegion { offset: offset as u64, bytes: cut, reason: problem.describe() });
                break;
            }
        };
        let at = offset as u64;
        if frame.index != index {
            let reason = format!("record carries index {}, expected {index}", frame.index);
            return Err(StoreError::corrupt(path, at, Some(index), reason));
        }
        let kind = frame.kind().ok_or_else(|| {
            StoreError::corrupt(path, at, Some(index), format!("unknown record kind {}", frame.kind_raw))
        })?;
        if prev.is_some_and(|expected| expected != frame.prev) {
            let reason = format!(
                "chain broken: the previous-entry hash this record carries is not the hash of entry {}; one of the two was altered",
                index.wrapping_sub(1)
            );
            return Err(StoreError::corrupt(path, at, Some(index), reason));
        }
        if segment.slots.is_empty() {
            segment.first_prev = Some(frame.prev);
        }
        let record = RecordRef { index, term: frame.term, kind, payload: frame.payload };
        let hash = compute_chain_hash(&frame.prev, record);
        segment.slots.push(Slot { offset: at, hash });
        prev = Some(hash);
        offset += frame.total_bytes;
    }
    segment.valid_len = offset.min(bytes.len()) as u64;
    if let Some(torn) = &torn {
        segment.valid_len = torn.offset;
    }
    if !is_last && segment.slots.is_empty() {
        return Err(StoreError::corrupt(path, SEGMENT_HEADER_BYTES as u64, None, "sealed segment holds no records"));
    }
    Ok((segment, torn))
}

fn check_declared(declared: u64, name_index: u64) -> Result<u64, HeaderProblem> {
    if declared == name_index {
        Ok(declared)
    } else {
        Err(HeaderProblem::NameMismatch { declared, name: name_index })
    }
}
