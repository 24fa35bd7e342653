//! Byte layout of segment headers and log record frames (see docs/storage-format.md).
//!
//! Record frame, integers little-endian:
//! `[len u32][crc u32][index u64][term u64][kind u8][prev_chain_hash 32][payload]`
//! where `len` counts the bytes after `crc` and `crc` = CRC32C(len ‖ index ‖ … ‖ payload).

use crate::{ChainHash, RecordKind, RecordRef};

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CRPRLOG\x01";
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 1;
/// magic 8 | version u32 | first_index u64 | crc32c u32 (over the 20 bytes before it).
pub(crate) const SEGMENT_HEADER_BYTES: usize = 24;

/// len u32 | crc u32.
pub(crate) const FRAME_PREFIX_BYTES: usize = 8;
/// index u64 | term u64 | kind u8 | prev_chain_hash 32: what `len` counts besides the payload.
pub(crate) const RECORD_FIXED_BYTES: usize = 8 + 8 + 1 + 32;
pub(crate) const FRAME_MIN_BYTES: usize = FRAME_PREFIX_BYTES + RECORD_FIXED_BYTES;
/// Bounded so a corrupted length can never make the reader allocate or scan gigabytes, and so
/// `len` always fits its u32. Real entries are at most a few MB.
pub(crate) const RECORD_PAYLOAD_MAX_BYTES: usize = 256 << 20;

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
            HeaderProblem::UnsupportedVersion(v) => format!("unsupported segment format version {v}"),
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
    let len = (RECORD_FIXED_BYTES + record.payload.len()) as u32;
    out.reserve(FRAME_PREFIX_BYTES + len as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&record.index.to_le_bytes());
    out.extend_from_slice(&record.term.to_le_bytes());
    out.push(record.kind.to_u8());
    out.extend_from_slice(prev);
    out.extend_from_slice(record.payload);
    let crc = frame_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32C over the length field and everything after the CRC field.
fn frame_crc(frame: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&frame[..4]);
    crc32c::crc32c_append(crc, &frame[FRAME_PREFIX_BYTES..])
}

/// A frame whose checksum matched. Its fields may still be wrong for its place in the log
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

/// Why the bytes at an offset are not a checksum-valid frame. Any of these at the very end of
/// the last segment is what a torn write looks like.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameProblem {
    /// Fewer bytes than a frame prefix, or than the length field announces.
    Short {
        available: usize,
        needed: usize,
    },
    BadLength(u32),
    BadChecksum,
}

impl FrameProblem {
    pub(crate) fn describe(&self) -> String {
        match self {
            FrameProblem::Short { available, needed } => {
                format!("incomplete record: {available} bytes left, {needed} needed")
            }
            FrameProblem::BadLength(len) => format!("impossible record length {len}"),
            FrameProblem::BadChecksum => "record checksum mismatch".into(),
        }
    }
}

/// Decodes the frame starting at the beginning of `bytes` (which may hold more after it).
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameProblem> {
    if bytes.len() < FRAME_PREFIX_BYTES {
        return Err(FrameProblem::Short { available: bytes.len(), needed: FRAME_PREFIX_BYTES });
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    if (len as usize) < RECORD_FIXED_BYTES || len as usize > RECORD_FIXED_BYTES + RECORD_PAYLOAD_MAX_BYTES {
        return Err(FrameProblem::BadLength(len));
    }
    let total = FRAME_PREFIX_BYTES + len as usize;
    if bytes.len() < total {
        return Err(FrameProblem::Short { available: bytes.len(), needed: total });
    }
    let frame = &bytes[..total];
    let stored_crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    if frame_crc(frame) != stored_crc {
        return Err(FrameProblem::BadChecksum);
    }
    Ok(parse_checked(frame))
}

fn parse_checked(frame: &[u8]) -> Frame<'_> {
    let body = &frame[FRAME_PREFIX_BYTES..];
    Frame {
        index: u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
        term: u64::from_le_bytes(body[8..16].try_into().expect("8 bytes")),
        kind_raw: body[16],
        prev: body[17..49].try_into().expect("32 bytes"),
        payload: &body[RECORD_FIXED_BYTES..],
        total_bytes: frame.len(),
    }
}

/// Looks for a checksum-valid frame starting anywhere in `bytes[from..]` whose index is at
/// least `index_min`: if one exists after a bad record, the bad record is not a torn tail.
/// Cheap field checks run before the CRC so scanning garbage stays linear in practice.
pub(crate) fn find_valid_frame_after(bytes: &[u8], from: usize, index_min: u64) -> Option<usize> {
    let last_start = bytes.len().checked_sub(FRAME_MIN_BYTES)?;
    let records_max = (bytes.len() / FRAME_MIN_BYTES) as u64 + 1;
    (from..=last_start).find(|&offset| {
        let candidate = &bytes[offset..];
        let len = u32::from_le_bytes(candidate[..4].try_into().expect("4 bytes")) as usize;
        let plausible_len = len >= RECORD_FIXED_BYTES && FRAME_PREFIX_BYTES + len <= candidate.len();
        if !plausible_len || RecordKind::from_u8(candidate[24]).is_none() {
            return false;
        }
        let index = u64::from_le_bytes(candidate[8..16].try_into().expect("8 bytes"));
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
    fn cut_frame_is_short() {
        let bytes = sample(b"payload");
        assert!(matches!(decode_frame(&bytes[..bytes.len() - 1]), Err(FrameProblem::Short { .. })));
        assert!(matches!(decode_frame(&bytes[..3]), Err(FrameProblem::Short { .. })));
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
    fn segment_names_sort_like_their_indexes() {
        assert_eq!(segment_file_name(12), "00000000000000000012.seg");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("12.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000012.seg.tmp"), None);
    }
}
