//! Verifying one segment's bytes on open: header, every frame's checksums, contiguous indexes
//! and the chain. Decides whether a bad record is a torn write (only possible at the end of the
//! last segment after a crash, and only if the bytes look like an interrupted write; see
//! `frame::torn_write_explains`) or corruption.

use std::path::{Path, PathBuf};

use crate::frame::{
    decode_frame, decode_segment_header, find_valid_frame_after, torn_write_explains, Frame, FrameProblem,
    HeaderProblem, SEGMENT_HEADER_BYTES,
};
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

/// A bad region at the end of the last segment that an interrupted write explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TornRegion {
    pub(crate) offset: u64,
    pub(crate) bytes: u64,
    pub(crate) reason: String,
}

/// What the segment's place in the log allows at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegmentRole {
    /// Fsynced before the next segment was created: every byte must be valid.
    Sealed,
    /// The last segment of a log that `LogStore::close` left: every byte was synced.
    LastClosedCleanly,
    /// The last segment after a crash (or a drop without `close`): may end in a torn write.
    LastAfterCrash,
}

impl SegmentRole {
    /// Why nothing in the segment may be torn; `None` when a torn tail is possible.
    fn untearable_because(self) -> Option<&'static str> {
        match self {
            SegmentRole::Sealed => Some("the segment was sealed (fsynced before the next one was created)"),
            SegmentRole::LastClosedCleanly => Some("the log was closed cleanly, so its end holds no torn write"),
            SegmentRole::LastAfterCrash => None,
        }
    }
}

pub(crate) struct SegmentInput<'a> {
    pub(crate) path: &'a Path,
    pub(crate) bytes: &'a [u8],
    /// The first index the file name declares.
    pub(crate) name_index: u64,
    /// The hash of the entry before this segment, when an earlier segment supplied it.
    pub(crate) expected_prev: Option<ChainHash>,
    pub(crate) role: SegmentRole,
}

pub(crate) fn scan_segment(input: SegmentInput<'_>) -> Result<(ScannedSegment, Option<TornRegion>), StoreError> {
    let mut segment = ScannedSegment {
        first_index: input.name_index,
        path: input.path.to_path_buf(),
        slots: Vec::new(),
        first_prev: None,
        valid_len: 0,
    };
    if let Some(torn) = check_segment_header(&input)? {
        return Ok((segment, Some(torn)));
    }
    let bytes = input.bytes;
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut prev = input.expected_prev;
    let mut torn = None;
    while offset < bytes.len() {
        let index = input.name_index + segment.slots.len() as u64;
        let frame = match decode_frame(&bytes[offset..]) {
            Ok(frame) => frame,
            Err(problem) => {
                torn = Some(classify_bad_record(&input, offset, index, &problem)?);
                break;
            }
        };
        let record_prev = check_record(&input, offset, index, &frame, prev)?;
        if segment.slots.is_empty() {
            segment.first_prev = Some(record_prev);
        }
        let record =
            RecordRef { index, term: frame.term, kind: frame.kind().expect("checked"), payload: frame.payload };
        let hash = compute_chain_hash(&record_prev, record);
        segment.slots.push(Slot { offset: offset as u64, hash });
        prev = Some(hash);
        offset += frame.total_bytes;
    }
    assert!(offset <= bytes.len(), "valid frames lie inside the file");
    segment.valid_len = offset as u64;
    if let Some(because) = input.role.untearable_because().filter(|_| segment.slots.is_empty()) {
        let reason = format!("segment holds no records; {because}");
        return Err(StoreError::corrupt(input.path, SEGMENT_HEADER_BYTES as u64, None, reason));
    }
    Ok((segment, torn))
}

/// `Ok(Some(_))` when the header is a torn write (the whole file is then torn).
fn check_segment_header(input: &SegmentInput<'_>) -> Result<Option<TornRegion>, StoreError> {
    let declared = decode_segment_header(input.bytes);
    let Err(problem) = declared.and_then(|declared| check_declared(declared, input.name_index)) else {
        return Ok(None);
    };
    // A header that never fully reached the disk (short, zeros) may be torn; a well-formed
    // header that disagrees with the file name or format never is.
    let could_be_torn = matches!(problem, HeaderProblem::Short | HeaderProblem::BadMagic | HeaderProblem::BadChecksum);
    let tearable = input.role.untearable_because().is_none();
    if could_be_torn && tearable && torn_write_explains(input.bytes, 0, SEGMENT_HEADER_BYTES) {
        let torn = TornRegion { offset: 0, bytes: input.bytes.len() as u64, reason: problem.describe() };
        return Ok(Some(torn));
    }
    let mut reason = problem.describe();
    if could_be_torn {
        reason.push_str(&not_torn_because(input, 0, input.name_index));
    }
    Err(StoreError::corrupt(input.path, 0, None, reason))
}

/// A bad record is a torn tail only in the last segment after a crash, and only when an
/// interrupted write explains its bytes and everything after them; otherwise `Corrupt`.
fn classify_bad_record(
    input: &SegmentInput<'_>,
    offset: usize,
    index: u64,
    problem: &FrameProblem,
) -> Result<TornRegion, StoreError> {
    let span = problem.torn_write_span_bytes();
    let explained = span.is_some_and(|span| torn_write_explains(input.bytes, offset, offset + span));
    if explained && input.role.untearable_because().is_none() {
        let bytes = (input.bytes.len() - offset) as u64;
        return Ok(TornRegion { offset: offset as u64, bytes, reason: problem.describe() });
    }
    let mut reason = problem.describe();
    if span.is_some() {
        reason.push_str(&not_torn_because(input, offset, index));
    }
    Err(StoreError::corrupt(input.path, offset as u64, Some(index), reason))
}

/// Why bad bytes at `offset` that could look like an interrupted write are not one.
fn not_torn_because(input: &SegmentInput<'_>, offset: usize, index: u64) -> String {
    if let Some(because) = input.role.untearable_because() {
        return format!("; {because}");
    }
    match find_valid_frame_after(input.bytes, offset + 1, index) {
        Some(valid_at) => {
            format!("; a valid record follows at byte {valid_at}, so this is damage inside the log, not a torn write")
        }
        None => "; an interrupted write leaves a prefix of the record, then only zeros (from a sector boundary) \
                 or the end of the file, and these bytes are not that: damage, not a torn write"
            .into(),
    }
}

/// Checks index, kind and chain link of a frame whose checksums matched (it was written
/// whole, so nothing wrong here is torn). Returns the previous-entry hash it carries.
fn check_record(
    input: &SegmentInput<'_>,
    offset: usize,
    index: u64,
    frame: &Frame<'_>,
    prev: Option<ChainHash>,
) -> Result<ChainHash, StoreError> {
    let at = offset as u64;
    if frame.index != index {
        let reason = format!("record carries index {}, expected {index}", frame.index);
        return Err(StoreError::corrupt(input.path, at, Some(index), reason));
    }
    if frame.kind().is_none() {
        let reason = format!("unknown record kind {}", frame.kind_raw);
        return Err(StoreError::corrupt(input.path, at, Some(index), reason));
    }
    if prev.is_some_and(|expected| expected != frame.prev) {
        let reason = format!(
            "chain broken: the previous-entry hash this record carries is not the hash of entry {}; one of the two was altered",
            index.wrapping_sub(1)
        );
        return Err(StoreError::corrupt(input.path, at, Some(index), reason));
    }
    Ok(frame.prev)
}

fn check_declared(declared: u64, name_index: u64) -> Result<u64, HeaderProblem> {
    if declared == name_index {
        Ok(declared)
    } else {
        Err(HeaderProblem::NameMismatch { declared, name: name_index })
    }
}
