//! Compact, deterministic binary encodings of openraft values: the ones we persist ourselves
//! (the vote, membership entries, the membership a snapshot covers) and the RPC messages one
//! node sends another (AppendEntries, Vote, snapshot meta and answers). Little-endian,
//! versioned, BTree order for sets and maps, so the same value always gives the same bytes (the
//! log is hash-chained and audited). Decoding never panics and never allocates from a count the
//! remaining input could not hold.
//!
//! ```text
//! log id           = u8 0 | u8 1, u64 term, u64 index      (a committed leader id is the term)
//! vote             = u64 term, u8 0 | u8 1 u64 voted_for, u8 committed
//! entry            = u64 term, u64 index, u8 kind (as `RecordKind`), u32 n, n payload bytes
//!                    (the payload exactly as the log stores it: see `write_payload`)
//! append request   = version, vote, log id prev, log id leader_commit, u32 n, n × entry
//! append response  = version, u8 0 success | 1 log id (partial) | 2 conflict | 3 vote (higher)
//! vote request     = version, vote, log id last, u8 leadership transfer
//! vote response    = version, vote, u8 granted, log id last
//! snapshot meta    = version, log id last, log id membership, membership
//! snapshot answer  = version, vote
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use croupier_core::codec::encode_proposal;
use croupier_store::RecordKind;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload};

use crate::types::{
    log_id, Entry, LogId, Membership, Payload, ProposalData, SnapshotMeta, StoredMembership,
    TypeConfig, Vote,
};

/// The version of the values this node persists (vote, memberships): unchanged since 0.9.
const FORMAT_VERSION: u8 = 1;
/// The version of the node-to-node messages. 2 since openraft 0.10: a vote request says whether
/// it is part of a leadership transfer, and snapshot meta no longer carries an id. Nodes of
/// different message versions refuse each other's messages (no mixed-version clusters).
const RPC_FORMAT_VERSION: u8 = 2;
/// A bound on decoded collection sizes so a corrupted length cannot allocate gigabytes.
const MEMBERSHIP_ITEMS_MAX: u32 = 4096;
const NODE_ADDR_LEN_MAX: u32 = 4096;
/// Most entries one AppendEntries message may carry: far above what openraft batches
/// (`max_payload_entries`), far below what would make a corrupt count expensive.
const APPEND_ENTRIES_MAX: u32 = 1 << 20;
/// Smallest encoded entry (a blank one): term, index, kind, payload length.
const ENTRY_BYTES_MIN: usize = 8 + 8 + 1 + 4;

const APPEND_SUCCESS: u8 = 0;
const APPEND_PARTIAL_SUCCESS: u8 = 1;
const APPEND_CONFLICT: u8 = 2;
const APPEND_HIGHER_VOTE: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub(crate) struct RaftCodecError {
    what: &'static str,
    reason: String,
}

pub(crate) fn encode_vote(vote: &Vote) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    write_vote(vote, &mut out);
    out
}

pub(crate) fn decode_vote(bytes: &[u8]) -> Result<Vote, RaftCodecError> {
    decode_versioned(bytes, "vote", read_vote)
}

pub(crate) fn encode_membership(membership: &Membership) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    write_membership(membership, &mut out);
    out
}

pub(crate) fn decode_membership(bytes: &[u8]) -> Result<Membership, RaftCodecError> {
    decode_versioned(bytes, "membership", read_membership)
}

pub(crate) fn encode_stored_membership(stored: &StoredMembership) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    write_stored_membership(stored, &mut out);
    out
}

pub(crate) fn decode_stored_membership(bytes: &[u8]) -> Result<StoredMembership, RaftCodecError> {
    decode_versioned(bytes, "snapshot membership", read_stored_membership)
}

/// Appends the bytes of an entry's payload as the log stores them and returns their kind.
/// The log writer and the transport both use it, so an entry crosses the network with the
/// very bytes it has on disk (and a follower stores what the leader stored).
pub(crate) fn write_payload(payload: &Payload, out: &mut Vec<u8>) -> RecordKind {
    match payload {
        EntryPayload::Blank => RecordKind::Blank,
        EntryPayload::Normal(ProposalData::Decoded(proposal)) => {
            encode_proposal(proposal, out);
            RecordKind::Normal
        }
        EntryPayload::Normal(ProposalData::Encoded(bytes)) => {
            out.extend_from_slice(bytes);
            RecordKind::Normal
        }
        EntryPayload::Membership(membership) => {
            out.extend_from_slice(&encode_membership(membership));
            RecordKind::Membership
        }
    }
}

/// The payload `write_payload` wrote. A proposal stays encoded: the state machine decodes it
/// when it applies the entry, and openraft scanning the log for memberships never pays for it.
pub(crate) fn read_payload(kind: RecordKind, bytes: &[u8]) -> Result<Payload, RaftCodecError> {
    match kind {
        RecordKind::Blank if bytes.is_empty() => Ok(EntryPayload::Blank),
        RecordKind::Blank => Err(RaftCodecError {
            what: "entry",
            reason: format!("blank entry with {} payload bytes", bytes.len()),
        }),
        RecordKind::Normal => Ok(EntryPayload::Normal(ProposalData::Encoded(Arc::from(
            bytes,
        )))),
        RecordKind::Membership => decode_membership(bytes).map(EntryPayload::Membership),
    }
}

pub(crate) fn encode_log_id(id: &Option<LogId>, out: &mut Vec<u8>) {
    match id {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.leader_id.term.to_le_bytes());
            out.extend_from_slice(&id.index.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn read_log_id(reader: &mut Reader<'_>) -> Result<Option<LogId>, RaftCodecError> {
    if !reader.flag()? {
        return Ok(None);
    }
    let term = reader.u64()?;
    let index = reader.u64()?;
    Ok(Some(log_id(term, index)))
}

fn write_vote(vote: &Vote, out: &mut Vec<u8>) {
    out.extend_from_slice(&vote.leader_id.term.to_le_bytes());
    // Always 1 since openraft 0.10 (a vote always names its candidate); the flag keeps the
    // layout of vote files written under 0.9.
    out.push(1);
    out.extend_from_slice(&vote.leader_id.voted_for.to_le_bytes());
    out.push(vote.committed as u8);
}

fn read_vote(reader: &mut Reader<'_>) -> Result<Vote, RaftCodecError> {
    let term = reader.u64()?;
    if !reader.flag()? {
        return Err(reader.error("vote names no candidate"));
    }
    let voted_for = reader.u64()?;
    let committed = reader.flag()?;
    Ok(if committed {
        Vote::new_committed(term, voted_for)
    } else {
        Vote::new(term, voted_for)
    })
}

fn write_stored_membership(stored: &StoredMembership, out: &mut Vec<u8>) {
    encode_log_id(stored.log_id(), out);
    write_membership(stored.membership(), out);
}

fn read_stored_membership(reader: &mut Reader<'_>) -> Result<StoredMembership, RaftCodecError> {
    let id = read_log_id(reader)?;
    let membership = read_membership(reader)?;
    Ok(StoredMembership::new(id, membership))
}

fn write_membership(membership: &Membership, out: &mut Vec<u8>) {
    let configs = membership.get_joint_config();
    out.extend_from_slice(&(configs.len() as u32).to_le_bytes());
    for config in configs {
        out.extend_from_slice(&(config.len() as u32).to_le_bytes());
        for id in config {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let nodes: Vec<(&u64, &BasicNode)> = membership.nodes().collect();
    out.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for (id, node) in nodes {
        out.extend_from_slice(&id.to_le_bytes());
        write_text(&node.addr, out);
    }
}

fn read_membership(reader: &mut Reader<'_>) -> Result<Membership, RaftCodecError> {
    let config_count = reader.count(MEMBERSHIP_ITEMS_MAX)?;
    let mut configs = Vec::with_capacity(config_count as usize);
    for _ in 0..config_count {
        let voter_count = reader.count(MEMBERSHIP_ITEMS_MAX)?;
        let mut voters = BTreeSet::new();
        for _ in 0..voter_count {
            voters.insert(reader.u64()?);
        }
        configs.push(voters);
    }
    let node_count = reader.count(MEMBERSHIP_ITEMS_MAX)?;
    let mut nodes = BTreeMap::new();
    for _ in 0..node_count {
        let id = reader.u64()?;
        let addr = reader.text(NODE_ADDR_LEN_MAX, "node address is not UTF-8")?;
        nodes.insert(id, BasicNode { addr });
    }
    Membership::new(configs, nodes).map_err(|e| reader.error(&format!("invalid membership: {e}")))
}

fn write_text(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Reads a whole value of format `version`: the version byte, the value, and nothing after it.
fn decode_whole<T>(
    bytes: &[u8],
    what: &'static str,
    version: u8,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, RaftCodecError>,
) -> Result<T, RaftCodecError> {
    let mut reader = Reader::new(bytes, what);
    reader.version(version)?;
    let value = read(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// A value this node persists.
fn decode_versioned<T>(
    bytes: &[u8],
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, RaftCodecError>,
) -> Result<T, RaftCodecError> {
    decode_whole(bytes, what, FORMAT_VERSION, read)
}

// The RPC messages the TCP transport sends.

/// A message from another node.
fn decode_rpc<T>(
    bytes: &[u8],
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, RaftCodecError>,
) -> Result<T, RaftCodecError> {
    decode_whole(bytes, what, RPC_FORMAT_VERSION, read)
}

/// Appends one entry; its payload is written in place (no copy of a batch of ~1 MB).
pub(crate) fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(&entry.log_id.leader_id.term.to_le_bytes());
    out.extend_from_slice(&entry.log_id.index.to_le_bytes());
    let header = out.len();
    out.extend_from_slice(&[0; 5]);
    let kind = write_payload(&entry.payload, out);
    // A payload is one proposal (a batch is at most a few MB) or a membership.
    let len = u32::try_from(out.len() - header - 5).expect("entry payload over 4 GiB");
    out[header] = kind.to_u8();
    out[header + 1..header + 5].copy_from_slice(&len.to_le_bytes());
}

fn read_entry(reader: &mut Reader<'_>) -> Result<Entry, RaftCodecError> {
    let term = reader.u64()?;
    let index = reader.u64()?;
    let raw_kind = reader.u8()?;
    let kind = RecordKind::from_u8(raw_kind).ok_or_else(|| reader.error("unknown entry kind"))?;
    let len = reader.u32()?;
    // `bytes` checks the length against what is left before anything is copied.
    let payload = reader.bytes(len as usize)?;
    Ok(Entry {
        log_id: log_id(term, index),
        payload: read_payload(kind, payload)?,
    })
}

fn read_entries(reader: &mut Reader<'_>) -> Result<Vec<Entry>, RaftCodecError> {
    let count = reader.count_fitting(APPEND_ENTRIES_MAX, ENTRY_BYTES_MIN)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(read_entry(reader)?);
    }
    Ok(entries)
}

pub(crate) fn encode_append_request(req: &AppendEntriesRequest<TypeConfig>, out: &mut Vec<u8>) {
    out.push(RPC_FORMAT_VERSION);
    write_vote(&req.vote, out);
    encode_log_id(&req.prev_log_id, out);
    encode_log_id(&req.leader_commit, out);
    let count = u32::try_from(req.entries.len())
        .ok()
        .filter(|&count| count <= APPEND_ENTRIES_MAX)
        // openraft batches at most `max_payload_entries` (default 300) per message.
        .expect("more entries in one AppendEntries than the decoder accepts");
    out.extend_from_slice(&count.to_le_bytes());
    for entry in &req.entries {
        encode_entry(entry, out);
    }
}

pub(crate) fn decode_append_request(
    bytes: &[u8],
) -> Result<AppendEntriesRequest<TypeConfig>, RaftCodecError> {
    decode_rpc(bytes, "append entries request", |reader| {
        Ok(AppendEntriesRequest {
            vote: read_vote(reader)?,
            prev_log_id: read_log_id(reader)?,
            leader_commit: read_log_id(reader)?,
            entries: read_entries(reader)?,
        })
    })
}

pub(crate) fn encode_append_response(resp: &AppendEntriesResponse<TypeConfig>, out: &mut Vec<u8>) {
    out.push(RPC_FORMAT_VERSION);
    match resp {
        AppendEntriesResponse::Success => out.push(APPEND_SUCCESS),
        AppendEntriesResponse::PartialSuccess(matching) => {
            out.push(APPEND_PARTIAL_SUCCESS);
            encode_log_id(matching, out);
        }
        AppendEntriesResponse::Conflict => out.push(APPEND_CONFLICT),
        AppendEntriesResponse::HigherVote(vote) => {
            out.push(APPEND_HIGHER_VOTE);
            write_vote(vote, out);
        }
    }
}

pub(crate) fn decode_append_response(
    bytes: &[u8],
) -> Result<AppendEntriesResponse<TypeConfig>, RaftCodecError> {
    decode_rpc(bytes, "append entries response", |reader| {
        match reader.u8()? {
            APPEND_SUCCESS => Ok(AppendEntriesResponse::Success),
            APPEND_PARTIAL_SUCCESS => {
                Ok(AppendEntriesResponse::PartialSuccess(read_log_id(reader)?))
            }
            APPEND_CONFLICT => Ok(AppendEntriesResponse::Conflict),
            APPEND_HIGHER_VOTE => Ok(AppendEntriesResponse::HigherVote(read_vote(reader)?)),
            _ => Err(reader.error("unknown append entries response")),
        }
    })
}

pub(crate) fn encode_vote_request(req: &VoteRequest<TypeConfig>, out: &mut Vec<u8>) {
    out.push(RPC_FORMAT_VERSION);
    write_vote(&req.vote, out);
    encode_log_id(&req.last_log_id, out);
    out.push(req.leadership_transfer as u8);
}

pub(crate) fn decode_vote_request(bytes: &[u8]) -> Result<VoteRequest<TypeConfig>, RaftCodecError> {
    decode_rpc(bytes, "vote request", |reader| {
        Ok(VoteRequest {
            vote: read_vote(reader)?,
            last_log_id: read_log_id(reader)?,
            leadership_transfer: reader.flag()?,
        })
    })
}

pub(crate) fn encode_vote_response(resp: &VoteResponse<TypeConfig>, out: &mut Vec<u8>) {
    out.push(RPC_FORMAT_VERSION);
    write_vote(&resp.vote, out);
    out.push(resp.vote_granted as u8);
    encode_log_id(&resp.last_log_id, out);
}

pub(crate) fn decode_vote_response(
    bytes: &[u8],
) -> Result<VoteResponse<TypeConfig>, RaftCodecError> {
    decode_rpc(bytes, "vote response", |reader| {
        Ok(VoteResponse {
            vote: read_vote(reader)?,
            vote_granted: reader.flag()?,
            last_log_id: read_log_id(reader)?,
        })
    })
}

pub(crate) fn encode_snapshot_meta(meta: &SnapshotMeta, out: &mut Vec<u8>) {
    out.push(RPC_FORMAT_VERSION);
    encode_log_id(&meta.last_log_id, out);
    write_stored_membership(&meta.last_membership, out);
}

pub(crate) fn decode_snapshot_meta(bytes: &[u8]) -> Result<SnapshotMeta, RaftCodecError> {
    decode_rpc(bytes, "snapshot meta", |reader| {
        Ok(SnapshotMeta {
            last_log_id: read_log_id(reader)?,
            last_membership: read_stored_membership(reader)?,
        })
    })
}

pub(crate) fn encode_snapshot_response(resp: &SnapshotResponse<TypeConfig>, out: &mut Vec<u8>) {
    out.push(RPC_FORMAT_VERSION);
    write_vote(&resp.vote, out);
}

pub(crate) fn decode_snapshot_response(
    bytes: &[u8],
) -> Result<SnapshotResponse<TypeConfig>, RaftCodecError> {
    decode_rpc(bytes, "snapshot response", |reader| {
        Ok(SnapshotResponse {
            vote: read_vote(reader)?,
        })
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            offset: 0,
            what,
        }
    }

    fn error(&self, reason: &str) -> RaftCodecError {
        RaftCodecError {
            what: self.what,
            reason: format!("{reason} at byte {}", self.offset),
        }
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], RaftCodecError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.error("truncated"))?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, RaftCodecError> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, RaftCodecError> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, RaftCodecError> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn count(&mut self, max: u32) -> Result<u32, RaftCodecError> {
        let count = self.u32()?;
        if count > max {
            return Err(self.error("count too large"));
        }
        Ok(count)
    }

    /// A count bounded by `max` whose items, each at least `item_bytes_min` long, must also fit
    /// in what is left: a corrupt count cannot allocate more than the input could hold.
    fn count_fitting(&mut self, max: u32, item_bytes_min: usize) -> Result<usize, RaftCodecError> {
        let count = self.count(max)? as usize;
        let left = self.bytes.len() - self.offset;
        if count.saturating_mul(item_bytes_min) > left {
            return Err(self.error("count exceeds the remaining bytes"));
        }
        Ok(count)
    }

    fn text(&mut self, len_max: u32, not_utf8: &str) -> Result<String, RaftCodecError> {
        let len = self.count(len_max)?;
        let bytes = self.bytes(len as usize)?;
        let text = std::str::from_utf8(bytes).map_err(|_| self.error(not_utf8))?;
        Ok(text.to_owned())
    }

    fn flag(&mut self) -> Result<bool, RaftCodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error("flag is neither 0 nor 1")),
        }
    }

    fn version(&mut self, expected: u8) -> Result<(), RaftCodecError> {
        if self.u8()? == expected {
            Ok(())
        } else {
            Err(self.error("unsupported format version"))
        }
    }

    fn finish(&self) -> Result<(), RaftCodecError> {
        if self.offset == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use croupier_core::command::Proposal;
    use croupier_core::Command;

    use super::*;

    fn two_voters_one_learner() -> Membership {
        let voters = BTreeSet::from([1, 2]);
        let nodes = BTreeMap::from([
            (1, BasicNode::new("10.0.0.1:7000")),
            (2, BasicNode::new("10.0.0.2:7000")),
            (3, BasicNode::new("10.0.0.3:7000")),
        ]);
        Membership::new(vec![voters], nodes).unwrap()
    }

    #[test]
    fn vote_round_trips_committed_or_not() {
        for committed in [false, true] {
            let vote = vote(7, 3, committed);
            assert_eq!(decode_vote(&encode_vote(&vote)).unwrap(), vote);
        }
    }

    /// openraft 0.9 could persist a vote naming no candidate; 0.10 has no such vote.
    #[test]
    fn a_vote_naming_no_candidate_is_refused() {
        let mut bytes = vec![FORMAT_VERSION];
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        assert!(decode_vote(&bytes).is_err());
    }

    #[test]
    fn membership_round_trips_and_encodes_deterministically() {
        let membership = two_voters_one_learner();
        let bytes = encode_membership(&membership);
        assert_eq!(decode_membership(&bytes).unwrap(), membership);
        assert_eq!(
            encode_membership(&decode_membership(&bytes).unwrap()),
            bytes
        );
    }

    #[test]
    fn stored_membership_keeps_its_log_id() {
        let stored = StoredMembership::new(Some(log_id(4, 19)), two_voters_one_learner());
        let decoded = decode_stored_membership(&encode_stored_membership(&stored)).unwrap();
        assert_eq!(decoded, stored);
    }

    #[test]
    fn truncated_or_padded_bytes_are_refused() {
        let bytes = encode_membership(&two_voters_one_learner());
        assert!(decode_membership(&bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode_membership(&padded).is_err());
        assert!(decode_vote(&[9, 0]).is_err());
    }

    fn vote(term: u64, voted_for: u64, committed: bool) -> Vote {
        if committed {
            Vote::new_committed(term, voted_for)
        } else {
            Vote::new(term, voted_for)
        }
    }

    fn proposal() -> Arc<Proposal> {
        Arc::new(Proposal {
            timestamp_ns: 1_700_000_000_000_000_000,
            commands: vec![Command::Tick, Command::Tick],
        })
    }

    fn proposal_bytes() -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_proposal(&proposal(), &mut bytes);
        bytes
    }

    /// Every kind of entry: blank, a proposal still decoded, one already encoded, a membership.
    fn every_entry() -> Vec<Entry> {
        vec![
            Entry {
                log_id: log_id(3, 10),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(3, 11),
                payload: EntryPayload::Normal(ProposalData::Decoded(proposal())),
            },
            Entry {
                log_id: log_id(3, 12),
                payload: EntryPayload::Normal(ProposalData::Encoded(Arc::from(proposal_bytes()))),
            },
            Entry {
                log_id: log_id(4, 13),
                payload: EntryPayload::Membership(two_voters_one_learner()),
            },
        ]
    }

    fn append_request(entries: Vec<Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: vote(4, 1, true),
            prev_log_id: Some(log_id(3, 9)),
            entries,
            leader_commit: Some(log_id(3, 8)),
        }
    }

    fn encoded<T>(value: &T, encode: fn(&T, &mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out);
        out
    }

    /// An entry as comparable data (openraft's `Entry` has no `PartialEq`): its log id, kind
    /// and payload bytes.
    fn entry_parts(entry: &Entry) -> (LogId, RecordKind, Vec<u8>) {
        let mut payload = Vec::new();
        let kind = write_payload(&entry.payload, &mut payload);
        (entry.log_id, kind, payload)
    }

    /// Every strict prefix and the value with a byte appended are refused.
    fn assert_exact<T>(bytes: &[u8], decode: fn(&[u8]) -> Result<T, RaftCodecError>) {
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes");
        }
        let mut padded = bytes.to_vec();
        padded.push(0);
        assert!(decode(&padded).is_err(), "padded");
    }

    #[test]
    fn append_request_round_trips_every_entry_kind() {
        let request = append_request(every_entry());
        let bytes = encoded(&request, encode_append_request);
        let decoded = decode_append_request(&bytes).unwrap();
        assert_eq!(decoded.vote, request.vote);
        assert_eq!(decoded.prev_log_id, request.prev_log_id);
        assert_eq!(decoded.leader_commit, request.leader_commit);
        let parts = |entries: &[Entry]| entries.iter().map(entry_parts).collect::<Vec<_>>();
        assert_eq!(parts(&decoded.entries), parts(&request.entries));
        assert!(matches!(
            decoded.entries[1].payload,
            EntryPayload::Normal(ProposalData::Encoded(_))
        ));
        assert_eq!(encoded(&decoded, encode_append_request), bytes);
    }

    #[test]
    fn a_decoded_and_an_encoded_proposal_cross_the_wire_as_the_same_bytes() {
        let entries = every_entry();
        let (decoded, encoded_entry) = (&entries[1], &entries[2]);
        let bytes = |entry: &Entry| {
            let mut entry_bytes = encoded(entry, encode_entry);
            entry_bytes.drain(..16);
            entry_bytes
        };
        assert_eq!(bytes(decoded), bytes(encoded_entry));
        let mut expected = vec![RecordKind::Normal.to_u8()];
        expected.extend_from_slice(&(proposal_bytes().len() as u32).to_le_bytes());
        expected.extend_from_slice(&proposal_bytes());
        assert_eq!(bytes(decoded), expected);
    }

    #[test]
    fn heartbeat_without_log_ids_round_trips() {
        let heartbeat = AppendEntriesRequest::<TypeConfig> {
            vote: vote(1, 1, false),
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        };
        let bytes = encoded(&heartbeat, encode_append_request);
        let decoded = decode_append_request(&bytes).unwrap();
        assert_eq!(decoded.vote, heartbeat.vote);
        assert_eq!((decoded.prev_log_id, decoded.leader_commit), (None, None));
        assert!(decoded.entries.is_empty());
        assert_eq!(bytes.len(), 1 + (8 + 1 + 8 + 1) + 1 + 1 + 4);
    }

    #[test]
    fn every_append_response_round_trips() {
        let responses = [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(None),
            AppendEntriesResponse::PartialSuccess(Some(log_id(2, 40))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(vote(9, 3, true)),
            AppendEntriesResponse::HigherVote(vote(9, 1, false)),
        ];
        for response in responses {
            let bytes = encoded(&response, encode_append_response);
            assert_eq!(decode_append_response(&bytes).unwrap(), response);
            assert_exact(&bytes, decode_append_response);
        }
        assert!(decode_append_response(&[RPC_FORMAT_VERSION, 4]).is_err());
        assert!(decode_append_response(&[FORMAT_VERSION, APPEND_SUCCESS]).is_err());
    }

    #[test]
    fn vote_messages_round_trip_with_and_without_last_log_id() {
        for (last_log_id, leadership_transfer) in [(None, false), (Some(log_id(5, 77)), true)] {
            let request = VoteRequest {
                vote: vote(6, 2, false),
                last_log_id,
                leadership_transfer,
            };
            let bytes = encoded(&request, encode_vote_request);
            assert_eq!(decode_vote_request(&bytes).unwrap(), request);
            assert_exact(&bytes, decode_vote_request);
            for granted in [false, true] {
                let response = VoteResponse::new(vote(6, 2, granted), last_log_id, granted);
                let bytes = encoded(&response, encode_vote_response);
                assert_eq!(decode_vote_response(&bytes).unwrap(), response);
                assert_exact(&bytes, decode_vote_response);
            }
        }
    }

    #[test]
    fn snapshot_meta_and_response_round_trip() {
        let metas = [
            SnapshotMeta::default(),
            SnapshotMeta {
                last_log_id: Some(log_id(4, 19)),
                last_membership: StoredMembership::new(
                    Some(log_id(4, 13)),
                    two_voters_one_learner(),
                ),
            },
        ];
        for meta in metas {
            let bytes = encoded(&meta, encode_snapshot_meta);
            assert_eq!(decode_snapshot_meta(&bytes).unwrap(), meta);
            assert_exact(&bytes, decode_snapshot_meta);
        }
        let response = SnapshotResponse::new(vote(4, 1, true));
        let bytes = encoded(&response, encode_snapshot_response);
        assert_eq!(decode_snapshot_response(&bytes).unwrap(), response);
        assert_exact(&bytes, decode_snapshot_response);
    }

    #[test]
    fn append_request_encodes_deterministically_and_refuses_truncation_and_padding() {
        let request = append_request(every_entry());
        let bytes = encoded(&request, encode_append_request);
        assert_eq!(encoded(&request.clone(), encode_append_request), bytes);
        assert_exact(&bytes, decode_append_request);
    }

    /// Offset of the entry count in `append_request`'s encoding: version, vote (term,
    /// voted_for, committed), two log ids.
    const ENTRY_COUNT_AT: usize = 1 + 8 + 9 + 1 + 17 + 17;

    #[test]
    fn an_absurd_entry_count_is_refused_before_allocating() {
        let mut bytes = encoded(&append_request(Vec::new()), encode_append_request);
        for count in [u32::MAX, APPEND_ENTRIES_MAX + 1, APPEND_ENTRIES_MAX, 1] {
            bytes[ENTRY_COUNT_AT..ENTRY_COUNT_AT + 4].copy_from_slice(&count.to_le_bytes());
            assert!(decode_append_request(&bytes).is_err(), "count {count}");
        }
    }

    #[test]
    fn an_absurd_payload_length_or_unknown_kind_is_refused() {
        let request = append_request(every_entry()[..1].to_vec());
        let bytes = encoded(&request, encode_append_request);
        let kind_at = ENTRY_COUNT_AT + 4 + 16;
        let mut unknown = bytes.clone();
        unknown[kind_at] = 3;
        assert!(decode_append_request(&unknown).is_err());
        let mut long = bytes.clone();
        long[kind_at + 1..kind_at + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_append_request(&long).is_err());
        // A blank entry carrying bytes is not what the encoder writes.
        let mut blank_with_payload = bytes.clone();
        blank_with_payload[kind_at + 1] = 1;
        blank_with_payload.push(0);
        assert!(decode_append_request(&blank_with_payload).is_err());
    }

    /// The persisted encodings kept their bytes when their writers were shared with the
    /// messages: votes and snapshot memberships already on disk must still decode.
    #[test]
    fn persisted_vote_and_snapshot_membership_bytes_are_pinned() {
        let mut expected = vec![FORMAT_VERSION];
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.push(1);
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.push(1);
        assert_eq!(encode_vote(&vote(7, 3, true)), expected);
        let stored = StoredMembership::new(Some(log_id(4, 19)), two_voters_one_learner());
        let mut expected = vec![FORMAT_VERSION, 1];
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.extend_from_slice(&19u64.to_le_bytes());
        expected.extend_from_slice(&encode_membership(stored.membership())[1..]);
        assert_eq!(encode_stored_membership(&stored), expected);
    }
}
