//! Byte layout of segment headers and log record frames (see docs/storage-format.md), and the
//! rule that tells a torn write from damage.
//!
//! Record frame (format version 2), integers little-endian:
//! `[header_crc u32][payload_len u32][body_crc u32][index u64][term u64][kind u8][prev_chain_hash 32]`
//! `[payload][end marker "CRPE"]`, where `header_crc` = CRC32C of the 57 header bytes after it
//! and `body_crc` = CRC32C(payload ‖ end marker). The header checksum makes "the header is
//! intact and says the record is N bytes long" a checkable fact; the non-zero end marker makes
//! zeros at the end of a record proof that bytes never reached the disk.

use crate::{ChainHash, RecordKind, RecordRef};

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CRPRLOG\x01";
/// Version 1 (one CRC over the whole frame, no end marker) is refused: no such data exists.
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 2;
/// magic 8 | version u32 | first_index u64 | crc32c u32 (over the 20 bytes before it).
pub(crate) const SEGMENT_HEADER_BYTES: usize = 24;

/// header_crc u32 | payload_len u32 | body_crc u32 | index u64 | term u64 | kind u8 |
/// prev_chain_hash 32.
pub(crate) const FRAME_HEADER_BYTES: usize = 4 + 4 + 4 + 8 + 8 + 1 + 32;
/// Ends every frame. Not zero anywhere: a torn write that zero-fills the end of a record can
/// then never be mistaken for a record whose payload happens to end in zeros.
pub(crate) const FRAME_END_MARKER: [u8; 4] = *b"CRPE";
pub(crate) const FRAME_MIN_BYTES: usize = FRAME_HEADER_BYTES + FRAME_END_MARKER.len();
/// Bounded so a corrupted length can never make the reader allocate or scan gigabytes, and so
/// `payload_len` always fits its u32. Real entries are at most a few MB.
pub(crate) const RECORD_PAYLOAD_MAX_BYTES: usize = 256 << 20;
/// The unit in which data reaches the disk: devices persist whole 512-byte sectors and file
/// systems write whole blocks (multiples of it), so bytes of an interrupted write that never
/// reached the disk start at a multiple of this in the file (or where the last sync ended).
pub(crate) const WRITE_SECTOR_BYTES: usize = 512;

pub(crate) fn segment_file_name(first_index: u64) -> String {
    format!("{first_index:020}.seg")
}

pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_segment_header(first_index: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&SEGMENT_MAGIC);
    out.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&first_index.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, SEGMENT_HEADER_BYTES);
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Short,
    BadMagic,
    BadChecksum,
    UnsupportedVersion(u32),
    NameMismatch { declared: u64, name: u64 },
}

impl HeaderProblem {
    pub(crate) fn describe(&self) -> String {
        match self {
            HeaderProblem::Short => "segment header is incomplete".into(),
            HeaderProblem::BadMagic => "segment header has the wrong magic".into(),
            HeaderProblem::BadChecksum => "segment header checksum mismatch".into(),
            HeaderProblem::UnsupportedVersion(v) => {
                format!(
                    "unsupported segment format version {v} (this build reads only version {SEGMENT_FORMAT_VERSION})"
                )
            }
            HeaderProblem::NameMismatch { declared, name } => {
                format!("segment header says its first entry is {declared}, the file name says {name}")
            }
        }
    }
}

/// The first index a segment header declares.
pub(crate) fn decode_segment_header(bytes: &[u8]) -> Result<u64, HeaderProblem> {
    let header = bytes.get(..SEGMENT_HEADER_BYTES).ok_or(HeaderProblem::Short)?;
    if header[..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let stored_crc = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..20]) != stored_crc {
        return Err(HeaderProblem::BadChecksum);
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != SEGMENT_FORMAT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion(version));
    }
    Ok(u64::from_le_bytes(header[12..20].try_into().expect("8 bytes")))
}

pub(crate) fn frame_bytes(payload_len: usize) -> usize {
    FRAME_MIN_BYTES + payload_len
}

pub(crate) fn encode_frame(record: RecordRef<'_>, prev: &ChainHash, out: &mut Vec<u8>) {
    assert!(record.payload.len() <= RECORD_PAYLOAD_MAX_BYTES, "caller checks the payload size");
    let start = out.len();
    let body_crc = crc32c::crc32c_append(crc32c::crc32c(record.payload), &FRAME_END_MARKER);
    out.reserve(frame_bytes(record.payload.len()));
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(record.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&body_crc.to_le_bytes());
    out.extend_from_slice(&record.index.to_le_bytes());
    out.extend_from_slice(&record.term.to_le_bytes());
    out.push(record.kind.to_u8());
    out.extend_from_slice(prev);
    let header_crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(record.payload);
    out.extend_from_slice(&FRAME_END_MARKER);
    debug_assert_eq!(out.len() - start, frame_bytes(record.payload.len()));
}

/// A frame whose checksums matched. Its fields may still be wrong for its place in the log
/// (index, kind, chain): the caller checks those.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) kind_raw: u8,
    pub(crate) prev: ChainHash,
    pub(crate) payload: &'a [u8],
    pub(crate) total_bytes: usize,
}

impl Frame<'_> {
    pub(crate) fn kind(&self) -> Option<RecordKind> {
        RecordKind::from_u8(self.kind_raw)
    }
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameProblem {
    /// Fewer bytes left than a frame header.
    ShortHeader { available: usize },
    /// The header fails its checksum: damaged, or never completely written.
    BadHeaderChecksum,
    /// The header is intact but announces more payload than a frame may hold.
    BadLength(u32),
    /// The header is intact; the file ends before the `needed` bytes it announces.
    ShortBody { available: usize, needed: usize },
    /// The header is intact and all `total_bytes` it announces are present, but the payload or
    /// end marker fails the body checksum.
    BadBodyChecksum { total_bytes: usize },
}

impl FrameProblem {
    pub(crate) fn describe(&self) -> String {
        match self {
            FrameProblem::ShortHeader { available } => {
                format!("incomplete record header: {available} bytes left, {FRAME_HEADER_BYTES} needed")
            }
            FrameProblem::BadHeaderChecksum => "record header checksum mismatch".into(),
            FrameProblem::BadLength(len) => format!("intact record header announces an impossible length {len}"),
            FrameProblem::ShortBody { available, needed } => {
                format!("incomplete record: its intact header announces {needed} bytes, {available} are left")
            }
            FrameProblem::BadBodyChecksum { total_bytes } => format!(
                "record body checksum mismatch: the header is intact and all {total_bytes} bytes it announces are present"
            ),
        }
    }

    /// The bytes from the frame's start that an interrupted write must have left incomplete
    /// for this problem to be a torn write; `None` when no interrupted write can cause it.
    pub(crate) fn torn_write_span_bytes(&self) -> Option<usize> {
        match self {
            // The header is the first thing written: if it is not intact, it was not finished.
            FrameProblem::ShortHeader { .. } | FrameProblem::BadHeaderChecksum => Some(FRAME_HEADER_BYTES),
            FrameProblem::ShortBody { needed, .. } => Some(*needed),
            FrameProblem::BadBodyChecksum { total_bytes } => Some(*total_bytes),
            // The store never writes such a header.
            FrameProblem::BadLength(_) => None,
        }
    }
}

/// Decodes the frame starting at the beginning of `bytes` (which may hold more after it).
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameProblem> {
    let header = bytes.get(..FRAME_HEADER_BYTES).ok_or(FrameProblem::ShortHeader { available: bytes.len() })?;
    let stored_header_crc = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[4..]) != stored_header_crc {
        return Err(FrameProblem::BadHeaderChecksum);
    }
    let payload_len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if payload_len as usize > RECORD_PAYLOAD_MAX_BYTES {
        return Err(FrameProblem::BadLength(payload_len));
    }
    let total = frame_bytes(payload_len as usize);
    let frame = bytes.get(..total).ok_or(FrameProblem::ShortBody { available: bytes.len(), needed: total })?;
    let stored_body_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let end_marker = &frame[total - FRAME_END_MARKER.len()..];
    // The marker is covered by the checksum; compared too, so a CRC collision cannot pass it.
    if crc32c::crc32c(&frame[FRAME_HEADER_BYTES..]) != stored_body_crc || end_marker != FRAME_END_MARKER {
        return Err(FrameProblem::BadBodyChecksum { total_bytes: total });
    }
    Ok(Frame {
        index: u64::from_le_bytes(header[12..20].try_into().expect("8 bytes")),
        term: u64::from_le_bytes(header[20..28].try_into().expect("8 bytes")),
        kind_raw: header[28],
        prev: header[29..61].try_into().expect("32 bytes"),
        payload: &frame[FRAME_HEADER_BYTES..total - FRAME_END_MARKER.len()],
        total_bytes: total,
    })
}

/// Whether an interrupted write that began at `start` (the first byte not known to be whole)
/// can have left `bytes`, given that it cannot have finished `start..end`.
///
/// What a crash leaves of a write is a prefix of it, then, where the file size reached the
/// disk before the data, zeros up to the end of the file. The prefix ends either where the
/// file now ends, or where the zeros begin, which is at a sector boundary or at `start` (the
/// last sync ended there; its sector was written then). Hence: the file ends inside
/// `start..end`, or from some such boundary inside `start..end` to the end of the file there
/// is nothing but zeros. Bit rot, a flipped byte, stray data after the record: none of those
/// look like that.
pub(crate) fn torn_write_explains(bytes: &[u8], start: usize, end: usize) -> bool {
    assert!(start < end, "a write spans at least one byte");
    if bytes.len() < end {
        return true;
    }
    let zeros_from = bytes.iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
    let first_unwritten = if zeros_from <= start { start } else { zeros_from.next_multiple_of(WRITE_SECTOR_BYTES) };
    first_unwritten < end
}

/// Looks for a valid frame starting anywhere in `bytes[from..]` whose index is at least
/// `index_min` (for the diagnosis of damage: "a valid record follows at byte …"). Cheap field
/// checks run before the checksums so scanning garbage stays linear in practice.
pub(crate) fn find_valid_frame_after(bytes: &[u8], from: usize, index_min: u64) -> Option<usize> {
    let last_start = bytes.len().checked_sub(FRAME_MIN_BYTES)?;
    let records_max = (bytes.len() / FRAME_MIN_BYTES) as u64 + 1;
    (from..=last_start).find(|&offset| {
        let candidate = &bytes[offset..];
        let payload_len = u32::from_le_bytes(candidate[4..8].try_into().expect("4 bytes")) as usize;
        if frame_bytes(payload_len) > candidate.len() || RecordKind::from_u8(candidate[28]).is_none() {
            return false;
        }
        let index = u64::from_le_bytes(candidate[12..20].try_into().expect("8 bytes"));
        let plausible_index = index >= index_min && index - index_min <= records_max;
        plausible_index && decode_frame(candidate).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(RecordRef { index: 7, term: 3, kind: RecordKind::Normal, payload }, &[9u8; 32], &mut out);
        out
    }

    #[test]
    fn frame_round_trips_its_fields() {
        let bytes = sample(b"hello");
        let frame = decode_frame(&bytes).unwrap();
        assert_eq!((frame.index, frame.term, frame.kind(), frame.prev), (7, 3, Some(RecordKind::Normal), [9u8; 32]));
        assert_eq!(frame.payload, b"hello");
        assert_eq!(frame.total_bytes, bytes.len());
        assert_eq!(bytes.len(), frame_bytes(5));
        assert!(bytes.ends_with(&FRAME_END_MARKER));
    }

    #[test]
    fn any_flipped_bit_in_a_frame_fails_its_check() {
        let bytes = sample(b"payload bytes");
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            assert!(decode_frame(&damaged).is_err(), "flip at {position} went unnoticed");
        }
    }

    #[test]
    fn flip_in_the_header_is_a_header_problem_and_in_the_body_a_body_problem() {
        let bytes = sample(b"payload bytes");
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            let problem = decode_frame(&damaged).unwrap_err();
            if position < FRAME_HEADER_BYTES {
                assert_eq!(problem, FrameProblem::BadHeaderChecksum, "flip at {position}");
            } else {
                assert_eq!(problem, FrameProblem::BadBodyChecksum { total_bytes: bytes.len() }, "flip at {position}");
            }
        }
    }

    #[test]
    fn cut_frame_is_short_in_its_header_or_its_body() {
        let bytes = sample(b"payload");
        let needed = bytes.len();
        let short = |len: usize| decode_frame(&bytes[..len]).unwrap_err();
        assert_eq!(short(needed - 1), FrameProblem::ShortBody { available: needed - 1, needed });
        assert_eq!(short(FRAME_HEADER_BYTES), FrameProblem::ShortBody { available: FRAME_HEADER_BYTES, needed });
        assert_eq!(decode_frame(&bytes[..3]).unwrap_err(), FrameProblem::ShortHeader { available: 3 });
    }

    #[test]
    fn valid_frame_is_found_behind_garbage() {
        let mut bytes = vec![0xAB; 100];
        let at = bytes.len();
        bytes.extend_from_slice(&sample(b"x"));
        assert_eq!(find_valid_frame_after(&bytes, 0, 7), Some(at));
        assert_eq!(find_valid_frame_after(&bytes, 0, 8), None, "lower index than expected is ignored");
        assert_eq!(find_valid_frame_after(&bytes[..bytes.len() - 1], 0, 7), None);
    }

    /// A file whose record at `start` spans `start..start + len`, filled with `fill`.
    fn file_with_record_at(start: usize, len: usize, fill: u8) -> Vec<u8> {
        let mut bytes = vec![0x11; start];
        bytes.resize(start + len, fill);
        bytes
    }

    #[test]
    fn file_ending_inside_the_write_is_a_torn_write() {
        let bytes = file_with_record_at(1000, 100, 0x22);
        assert!(torn_write_explains(&bytes[..1050], 1000, 1100), "whatever the bytes present");
        assert!(torn_write_explains(&bytes[..1000], 1000, 1100));
    }

    #[test]
    fn zeros_from_a_sector_boundary_inside_the_write_to_the_end_of_the_file_are_a_torn_write() {
        let mut bytes = file_with_record_at(1000, 100, 0x22);
        bytes[1024..].fill(0);
        bytes.extend_from_slice(&[0u8; 300]); // the size got further ahead than the data
        assert!(torn_write_explains(&bytes, 1000, 1100));
    }

    #[test]
    fn zeros_from_where_the_last_sync_ended_are_a_torn_write() {
        let mut bytes = file_with_record_at(1000, 100, 0);
        bytes.extend_from_slice(&[0u8; 7]);
        assert!(torn_write_explains(&bytes, 1000, 1100));
    }

    #[test]
    fn zeros_starting_off_a_sector_boundary_are_damage() {
        let mut bytes = file_with_record_at(1000, 100, 0x22);
        bytes[1030..].fill(0); // no sector boundary inside 1030..1100
        assert!(!torn_write_explains(&bytes, 1000, 1100));
    }

    #[test]
    fn whole_write_present_without_trailing_zeros_is_damage() {
        let bytes = file_with_record_at(1000, 100, 0x22);
        assert!(!torn_write_explains(&bytes, 1000, 1100), "a flipped byte leaves no zeros");
        let mut followed = bytes.clone();
        followed.extend_from_slice(&[0u8; 600]);
        assert!(!torn_write_explains(&followed, 1000, 1100), "zeros only after the record");
        let mut stray = file_with_record_at(1000, 100, 0);
        stray.push(0x33);
        assert!(!torn_write_explains(&stray, 1000, 1100), "non-zero data after the record");
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let mut out = Vec::new();
        encode_segment_header(42, &mut out);
        assert_eq!(decode_segment_header(&out), Ok(42));
        out[13] ^= 1;
        assert_eq!(decode_segment_header(&out), Err(HeaderProblem::BadChecksum));
        assert_eq!(decode_segment_header(&out[..10]), Err(HeaderProblem::Short));
    }

    #[test]
    fn segment_of_format_version_1_is_refused_by_name() {
        let mut out = Vec::new();
        out.extend_from_slice(&SEGMENT_MAGIC);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&42u64.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let problem = decode_segment_header(&out).unwrap_err();
        assert_eq!(problem, HeaderProblem::UnsupportedVersion(1));
        assert!(problem.describe().contains("reads only version 2"), "{}", problem.describe());
    }

    #[test]
    fn segment_names_sort_like_their_indexes() {
        assert_eq!(segment_file_name(12), "00000000000000000012.seg");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("12.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000012.seg.tmp"), None);
    }
}
