//! The node-to-node frame: one request or response on a TCP connection.
//!
//! ```text
//! u32 body_len | u32 crc32c(body) | body = u8 kind | u64 request_id | u64 group_id | payload
//! ```
//! Little-endian; `body_len` counts the body (17 bytes of header and the payload). The checksum
//! makes a damaged or misaligned stream a closed connection, never a message read from the
//! wrong bytes (TCP's own checksum is 16 bits; a simulated network drops segments outright). `group_id` names the Raft group the message is for, so one listener and one
//! connection per peer serve every group a process hosts. A response carries the request's id
//! and kind with `RESPONSE` set, or `ERROR` with an encoded `RemoteError`. Requests on one
//! connection are pipelined: responses come back in any order and are matched by id.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

/// Fixed part of a frame after the length field.
pub(crate) const HEADER_BYTES: usize = 1 + 8 + 8;
/// The largest frame accepted: a batch of log entries (each at most a few MiB) fits well below.
pub(crate) const FRAME_BYTES_MAX: usize = 256 << 20;

/// Set on the kind of a response frame.
pub(crate) const RESPONSE: u8 = 0x80;
/// The kind of an error response (payload: `RemoteError`).
pub(crate) const ERROR: u8 = 0xFF;

/// What a frame carries. Requests; a response is `kind | RESPONSE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    AppendEntries = 1,
    Vote = 2,
    /// Opens a checkpoint stream on a connection of its own: vote and snapshot meta.
    SnapshotBegin = 3,
    /// A piece of the checkpoint archive: its position (u64) and bytes.
    SnapshotChunk = 4,
    /// The archive is complete (its length u64 and CRC32C u32): install it (answers a
    /// `SnapshotResponse`).
    SnapshotEnd = 5,
    /// A follower hands a batch of commands to the leader.
    Propose = 6,
    /// A follower asks the leader for an index to read at (linearizable follower reads).
    ReadIndex = 7,
    /// This node's role, term and log positions.
    Status = 8,
    /// The peer's wall clock (cluster clock check).
    Clock = 9,
    /// Membership and leadership changes, forwarded to the leader.
    Admin = 10,
    /// Stop campaigning for a while (a leadership transfer to another node is under way).
    HoldElections = 11,
    /// Campaign now (the target of a leadership transfer).
    Campaign = 12,
    /// Would you vote for me? Asked before a real election, changes nothing on the voter.
    PreVote = 13,
}

impl Kind {
    pub(crate) fn from_u8(byte: u8) -> Option<Kind> {
        use Kind::*;
        Some(match byte {
            1 => AppendEntries,
            2 => Vote,
            3 => SnapshotBegin,
            4 => SnapshotChunk,
            5 => SnapshotEnd,
            6 => Propose,
            7 => ReadIndex,
            8 => Status,
            9 => Clock,
            10 => Admin,
            11 => HoldElections,
            12 => Campaign,
            13 => PreVote,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Frame {
    pub kind: u8,
    pub request_id: u64,
    pub group_id: u64,
    pub payload: Vec<u8>,
}

impl Frame {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let body_len = HEADER_BYTES + self.payload.len();
        debug_assert!(body_len <= FRAME_BYTES_MAX);
        out.reserve(8 + body_len);
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        let crc_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let body_at = out.len();
        out.push(self.kind);
        out.extend_from_slice(&self.request_id.to_le_bytes());
        out.extend_from_slice(&self.group_id.to_le_bytes());
        out.extend_from_slice(&self.payload);
        let crc = crc32c::crc32c(&out[body_at..]);
        out[crc_at..body_at].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Frame>> {
    let mut prefix = [0u8; 8];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let body_len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes"));
    if !(HEADER_BYTES..=FRAME_BYTES_MAX).contains(&body_len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer frame of {body_len} bytes (allowed {HEADER_BYTES}..={FRAME_BYTES_MAX})"),
        ));
    }
    let mut header = [0u8; HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    let mut payload = vec![0u8; body_len - HEADER_BYTES];
    reader.read_exact(&mut payload).await?;
    let computed = crc32c::crc32c_append(crc32c::crc32c(&header), &payload);
    if computed != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer frame of {body_len} bytes fails its checksum"),
        ));
    }
    Ok(Some(Frame {
        kind: header[0],
        request_id: u64::from_le_bytes(header[1..9].try_into().expect("8 bytes")),
        group_id: u64::from_le_bytes(header[9..17].try_into().expect("8 bytes")),
        payload,
    }))
}

/// The little-endian u64 at `at`, if `bytes` holds one there (payloads of peer messages).
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    bytes.get(at..end)?.try_into().ok().map(u64::from_le_bytes)
}

/// Writes queued frames to `writer` until the queue closes, flushing only when nothing else is
/// queued: frames queued together share one write.
pub(crate) async fn pump_frames<W: AsyncWrite + Unpin>(
    writer: W,
    frames: &mut mpsc::Receiver<Frame>,
) -> io::Result<()> {
    let mut writer = BufWriter::with_capacity(256 << 10, writer);
    let mut bytes = Vec::new();
    while let Some(frame) = frames.recv().await {
        bytes.clear();
        frame.encode(&mut bytes);
        writer.write_all(&bytes).await?;
        if frames.is_empty() {
            writer.flush().await?;
        }
    }
    Ok(())
}

/// Why a peer refused or could not serve a request. Travels in an `ERROR` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The peer is not the leader; it names the one it knows, if any.
    #[error("node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The peer hosts no such group (yet).
    #[error("group {0} is not hosted by this node")]
    UnknownGroup(u64),
    /// The peer cannot serve it now (shutting down, storage unavailable, clock unsynchronized).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request was refused as invalid (a malformed payload or a refused change).
    #[error("refused: {0}")]
    Refused(String),
}

impl RemoteError {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            RemoteError::NotLeader { leader } => {
                out.push(1);
                out.extend_from_slice(&leader.map_or(0, |id| id.wrapping_add(1)).to_le_bytes());
            }
            RemoteError::UnknownGroup(group) => {
                out.push(2);
                out.extend_from_slice(&group.to_le_bytes());
            }
            RemoteError::Unavailable(message) => {
                out.push(3);
                out.extend_from_slice(message.as_bytes());
            }
            RemoteError::Refused(message) => {
                out.push(4);
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> RemoteError {
        let number = |rest: &[u8]| u64_at(rest, 0);
        let text = |rest: &[u8]| String::from_utf8_lossy(rest).into_owned();
        match bytes.split_first() {
            Some((1, rest)) => RemoteError::NotLeader {
                leader: number(rest).and_then(|n| n.checked_sub(1)),
            },
            Some((2, rest)) => RemoteError::UnknownGroup(number(rest).unwrap_or(0)),
            Some((3, rest)) => RemoteError::Unavailable(text(rest)),
            Some((4, rest)) => RemoteError::Refused(text(rest)),
            _ => RemoteError::Refused("malformed error frame".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_a_clean_end_reads_as_none() {
        let frame = Frame {
            kind: Kind::Vote as u8,
            request_id: 7,
            group_id: 3,
            payload: vec![1, 2, 3],
        };
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let mut reader = &bytes[..];
        let read = read_frame(&mut reader).await.unwrap().unwrap();
        assert_eq!((read.kind, read.request_id, read.group_id), (2, 7, 3));
        assert_eq!(read.payload, vec![1, 2, 3]);
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_oversized_or_undersized_length_is_refused_before_allocating() {
        for len in [0u32, 5, (FRAME_BYTES_MAX + 1) as u32, u32::MAX] {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[0; 4]);
            let mut reader = &bytes[..];
            let error = read_frame(&mut reader).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[tokio::test]
    async fn a_frame_with_any_byte_changed_fails_its_checksum() {
        let frame = Frame {
            kind: Kind::AppendEntries as u8,
            request_id: 9,
            group_id: 1,
            payload: vec![5; 40],
        };
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        // Every byte after the length: the checksum itself, the header and the payload.
        for at in 4..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let mut reader = &damaged[..];
            let error = read_frame(&mut reader).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "byte {at}");
        }
    }

    #[test]
    fn numbers_are_read_only_where_a_whole_one_is_present() {
        let bytes = [7u8, 1, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(u64_at(&bytes, 1), Some(1));
        assert_eq!(u64_at(&bytes, 2), None);
        assert_eq!(u64_at(&bytes, usize::MAX), None);
        assert_eq!(u64_at(&[], 0), None);
    }

    #[test]
    fn remote_errors_round_trip() {
        for error in [
            RemoteError::NotLeader { leader: Some(0) },
            RemoteError::NotLeader { leader: Some(3) },
            RemoteError::NotLeader { leader: None },
            RemoteError::UnknownGroup(9),
            RemoteError::Unavailable("disk full".into()),
            RemoteError::Refused("bad".into()),
        ] {
            assert_eq!(RemoteError::decode(&error.encode()), error);
        }
        assert!(matches!(RemoteError::decode(&[]), RemoteError::Refused(_)));
    }
}
