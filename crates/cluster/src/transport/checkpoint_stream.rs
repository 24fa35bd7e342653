//! The checkpoint stream's pieces: each chunk names its position in the archive and the end
//! names the archive's length and CRC32C, so the listener hands the group exactly the sender's
//! bytes, in order, or nothing.
//!
//! Why positions as well as a frame checksum: a frame that arrives twice (a resent frame, a
//! duplicating middlebox; the simulation injects both) was once written to the staging file
//! twice and the follower installed an archive with 759 bytes repeated. A per-frame CRC cannot
//! see that; a position and a whole-archive digest can.

/// One piece of a checkpoint stream after decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Chunk { offset: u64, bytes: Vec<u8> },
    End { total_bytes: u64, crc32c: u32 },
}

pub(crate) fn encode_chunk(offset: u64, bytes: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + bytes.len());
    payload.extend_from_slice(&offset.to_le_bytes());
    payload.extend_from_slice(bytes);
    payload
}

pub(crate) fn encode_end(total_bytes: u64, crc32c: u32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(12);
    payload.extend_from_slice(&total_bytes.to_le_bytes());
    payload.extend_from_slice(&crc32c.to_le_bytes());
    payload
}

pub(crate) fn decode_chunk(mut payload: Vec<u8>) -> Result<Piece, String> {
    if payload.len() < 8 {
        return Err("a checkpoint chunk shorter than its position".into());
    }
    let offset = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    payload.drain(..8);
    Ok(Piece::Chunk {
        offset,
        bytes: payload,
    })
}

pub(crate) fn decode_end(payload: &[u8]) -> Result<Piece, String> {
    if payload.len() != 12 {
        return Err(format!(
            "a checkpoint end of {} bytes, not 12",
            payload.len()
        ));
    }
    let total_bytes = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let crc32c = u32::from_le_bytes(payload[8..].try_into().expect("4 bytes"));
    Ok(Piece::End {
        total_bytes,
        crc32c,
    })
}

/// What to do with a piece, given what came before it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Accept {
    /// The next bytes of the archive: pass them on.
    Next(Vec<u8>),
    /// A chunk already received (a frame delivered twice): drop it.
    Repeated,
    /// The whole archive arrived intact.
    Complete,
}

/// The listener's side: the position reached and the digest of the bytes passed on so far.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    received_bytes: u64,
    crc32c: u32,
}

impl Reassembly {
    /// Accepts a piece or names why the stream cannot go on (a gap, a chunk that overlaps the
    /// received part with other bytes, or an end whose length or digest differs).
    pub(crate) fn accept(&mut self, piece: Piece) -> Result<Accept, String> {
        match piece {
            Piece::Chunk { offset, bytes } => self.accept_chunk(offset, bytes),
            Piece::End {
                total_bytes,
                crc32c,
            } => {
                if total_bytes != self.received_bytes {
                    return Err(format!(
                        "the checkpoint ends at {total_bytes} bytes but {} arrived",
                        self.received_bytes
                    ));
                }
                if crc32c != self.crc32c {
                    return Err(format!(
                        "the checkpoint's CRC32C is {crc32c:#010x} but the bytes received give {:#010x}",
                        self.crc32c
                    ));
                }
                Ok(Accept::Complete)
            }
        }
    }

    fn accept_chunk(&mut self, offset: u64, bytes: Vec<u8>) -> Result<Accept, String> {
        let end = offset.saturating_add(bytes.len() as u64);
        if offset == self.received_bytes {
            self.received_bytes = end;
            self.crc32c = crc32c::crc32c_append(self.crc32c, &bytes);
            return Ok(Accept::Next(bytes));
        }
        if end <= self.received_bytes {
            // Bytes already passed on; the end's digest catches a repeat whose bytes differ.
            return Ok(Accept::Repeated);
        }
        Err(format!(
            "a checkpoint chunk at byte {offset} while {} bytes had arrived",
            self.received_bytes
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, bytes: &[u8]) -> Piece {
        decode_chunk(encode_chunk(offset, bytes)).expect("decodes")
    }

    fn end_of(archive: &[u8]) -> Piece {
        decode_end(&encode_end(archive.len() as u64, crc32c::crc32c(archive))).expect("decodes")
    }

    #[test]
    fn a_chunk_delivered_twice_is_passed_on_once() {
        let mut reassembly = Reassembly::default();
        assert_eq!(
            reassembly.accept(chunk(0, b"hot")),
            Ok(Accept::Next(b"hot".to_vec()))
        );
        assert_eq!(reassembly.accept(chunk(0, b"hot")), Ok(Accept::Repeated));
        assert_eq!(
            reassembly.accept(chunk(3, b"history")),
            Ok(Accept::Next(b"history".to_vec()))
        );
        assert_eq!(
            reassembly.accept(end_of(b"hothistory")),
            Ok(Accept::Complete)
        );
    }

    #[test]
    fn a_gap_a_short_archive_or_other_bytes_fail_the_stream() {
        let mut gap = Reassembly::default();
        gap.accept(chunk(0, b"hot")).expect("first chunk");
        assert!(gap
            .accept(chunk(4, b"istory"))
            .unwrap_err()
            .contains("at byte 4"));

        let mut short = Reassembly::default();
        short.accept(chunk(0, b"hot")).expect("first chunk");
        assert!(short
            .accept(end_of(b"hothistory"))
            .unwrap_err()
            .contains("ends at 10 bytes"));

        let mut altered = Reassembly::default();
        altered.accept(chunk(0, b"hoT")).expect("first chunk");
        assert!(altered
            .accept(end_of(b"hot"))
            .unwrap_err()
            .contains("CRC32C"));
    }

    #[test]
    fn truncated_pieces_are_refused() {
        assert!(decode_chunk(vec![1, 2, 3]).is_err());
        assert!(decode_end(&[0; 11]).is_err());
    }
}
