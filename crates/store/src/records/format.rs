//! Byte layout of record-log segment headers and frames (docs/storage-format.md, "Record
//! logs"). Integers are little-endian; checksums are CRC32C.
//!
//! Segment header: `magic 8 | version u32 | first_position u64 | tag u64 | crc u32` where the
//! CRC covers the 28 bytes before it. Frame: `len u32 | crc u32 | payload` where `len` is the
//! payload length and the CRC covers `len` and the payload.

use std::ops::ControlFlow;

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CRPRECS\x01";
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 1;
/// magic 8 | version u32 | first_position u64 | tag u64 | crc32c u32.
pub const RECORD_SEGMENT_HEADER_BYTES: usize = 32;
/// Bytes a frame adds to its payload: `len u32 | crc32c u32`. A record of `n` payload bytes
/// occupies `n + RECORD_FRAME_OVERHEAD_BYTES` positions, so fixed-size records sit at
/// `sequence × (n + RECORD_FRAME_OVERHEAD_BYTES)`.
pub const RECORD_FRAME_OVERHEAD_BYTES: usize = 8;
/// History records are small (a transfer is 128 bytes); the bound keeps a damaged length field
/// from making a reader allocate gigabytes.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 16 << 20;

const SEGMENT_FILE_SUFFIX: &str = ".rec";
const SEGMENT_NAME_DIGITS: usize = 20;

pub(crate) fn segment_file_name(first_position: u64) -> String {
    format!("{first_position:020}{SEGMENT_FILE_SUFFIX}")
}

pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_FILE_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) first_position: u64,
    pub(crate) tag: u64,
}

pub(crate) fn encode_segment_header(header: SegmentHeader, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&SEGMENT_MAGIC);
    out.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&header.first_position.to_le_bytes());
    out.extend_from_slice(&header.tag.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(out.len() - start, RECORD_SEGMENT_HEADER_BYTES);
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Short,
    BadMagic,
    BadChecksum,
    UnsupportedVersion(u32),
}

impl HeaderProblem {
    pub(crate) fn describe(&self) -> String {
        match self {
            HeaderProblem::Short => "segment header is incomplete".into(),
            HeaderProblem::BadMagic => "segment header has the wrong magic".into(),
            HeaderProblem::BadChecksum => "segment header checksum mismatch".into(),
            HeaderProblem::UnsupportedVersion(v) => format!("unsupported record segment format version {v}"),
        }
    }

    /// What a header that never fully reached the disk looks like (as opposed to a header that
    /// was written whole and says something wrong).
    pub(crate) fn could_be_torn(&self) -> bool {
        matches!(self, HeaderProblem::Short | HeaderProblem::BadMagic | HeaderProblem::BadChecksum)
    }
}

pub(crate) fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
    let header = bytes.get(..RECORD_SEGMENT_HEADER_BYTES).ok_or(HeaderProblem::Short)?;
    if header[..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let stored_crc = u32::from_le_bytes(header[28..32].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..28]) != stored_crc {
        return Err(HeaderProblem::BadChecksum);
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != SEGMENT_FORMAT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion(version));
    }
    Ok(SegmentHeader {
        first_position: u64::from_le_bytes(header[12..20].try_into().expect("8 bytes")),
        tag: u64::from_le_bytes(header[20..28].try_into().expect("8 bytes")),
    })
}

/// Appends one frame whose payload is the concatenation of `parts` (so callers can prepend a
/// small header to a body without copying it first).
pub(crate) fn encode_frame(parts: &[&[u8]], out: &mut Vec<u8>) {
    let payload_bytes: usize = parts.iter().map(|part| part.len()).sum();
    assert!(payload_bytes <= RECORD_PAYLOAD_BYTES_MAX, "caller checks the payload size");
    let len = (payload_bytes as u32).to_le_bytes();
    let crc = parts.iter().fold(crc32c::crc32c(&len), |crc, part| crc32c::crc32c_append(crc, part));
    out.reserve(RECORD_FRAME_OVERHEAD_BYTES + payload_bytes);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Why the bytes at an offset are not a checksum-valid frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameProblem {
    /// Fewer bytes than the prefix, or than the length field announces.
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
                format!("incomplete record frame: {available} bytes left, {needed} needed")
            }
            FrameProblem::BadLength(len) => format!("impossible record length {len}"),
            FrameProblem::BadChecksum => "record checksum mismatch".into(),
        }
    }
}

/// Decodes the frame at the start of `bytes` (which may hold more after it): the payload and
/// the frame's total size.
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<(&[u8], usize), FrameProblem> {
    let Some(prefix) = bytes.get(..RECORD_FRAME_OVERHEAD_BYTES) else {
        return Err(FrameProblem::Short { available: bytes.len(), needed: RECORD_FRAME_OVERHEAD_BYTES });
    };
    let len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes"));
    if len as usize > RECORD_PAYLOAD_BYTES_MAX {
        return Err(FrameProblem::BadLength(len));
    }
    let total = RECORD_FRAME_OVERHEAD_BYTES + len as usize;
    let Some(frame) = bytes.get(..total) else {
        return Err(FrameProblem::Short { available: bytes.len(), needed: total });
    };
    let stored_crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    let payload = &frame[RECORD_FRAME_OVERHEAD_BYTES..];
    if crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), payload) != stored_crc {
        return Err(FrameProblem::BadChecksum);
    }
    Ok((payload, total))
}

/// Looks for a checksum-valid frame starting anywhere in `bytes[from..]`: if one exists after a
/// bad frame, the bad frame is damage inside the log, not a torn write. The length check runs
/// before the CRC, so zero fill and most garbage are rejected without hashing.
pub(crate) fn find_valid_frame_after(bytes: &[u8], from: usize) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_FRAME_OVERHEAD_BYTES)?;
    let found = (from..=last_start).try_for_each(|offset| {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        let fits = len <= RECORD_PAYLOAD_BYTES_MAX && RECORD_FRAME_OVERHEAD_BYTES + len <= bytes.len() - offset;
        if fits && decode_frame(&bytes[offset..]).is_ok() {
            ControlFlow::Break(offset)
        } else {
            ControlFlow::Continue(())
        }
    });
    match found {
        ControlFlow::Break(offset) => Some(offset),
        ControlFlow::Continue(()) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&[payload], &mut out);
        out
    }

    #[test]
    fn frame_round_trips_and_parts_concatenate() {
        let mut split = Vec::new();
        encode_frame(&[b"hel", b"", b"lo"], &mut split);
        assert_eq!(split, frame(b"hello"));
        assert_eq!(decode_frame(&split), Ok((&b"hello"[..], 5 + RECORD_FRAME_OVERHEAD_BYTES)));
        let empty = frame(b"");
        assert_eq!(decode_frame(&empty), Ok((&b""[..], RECORD_FRAME_OVERHEAD_BYTES)));
    }

    #[test]
    fn any_flipped_bit_in_a_frame_fails_its_check() {
        let bytes = frame(b"payload bytes");
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            assert!(decode_frame(&damaged).is_err(), "flip at {position} went unnoticed");
        }
    }

    #[test]
    fn zero_fill_is_never_a_frame() {
        assert_eq!(decode_frame(&[0u8; 64]), Err(FrameProblem::BadChecksum));
        assert_eq!(find_valid_frame_after(&[0u8; 64], 0), None);
    }

    #[test]
    fn valid_frame_is_found_behind_garbage() {
        let mut bytes = vec![0xAB; 100];
        let at = bytes.len();
        bytes.extend_from_slice(&frame(b"x"));
        assert_eq!(find_valid_frame_after(&bytes, 0), Some(at));
        assert_eq!(find_valid_frame_after(&bytes[..bytes.len() - 1], 0), None);
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader { first_position: 42, tag: 7 };
        let mut out = Vec::new();
        encode_segment_header(header, &mut out);
        assert_eq!(decode_segment_header(&out), Ok(header));
        out[21] ^= 1;
        assert_eq!(decode_segment_header(&out), Err(HeaderProblem::BadChecksum));
        assert_eq!(decode_segment_header(&out[..10]), Err(HeaderProblem::Short));
    }

    #[test]
    fn segment_names_sort_like_their_positions() {
        assert_eq!(segment_file_name(12), "00000000000000000012.rec");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("12.rec"), None);
        assert_eq!(parse_segment_file_name("00000000000000000012.seg"), None);
    }
}
