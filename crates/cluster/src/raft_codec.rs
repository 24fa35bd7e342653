//! Compact, deterministic binary encodings of the openraft values we persist ourselves: the
//! vote, membership entries and the membership a snapshot covers. Little-endian, versioned,
//! BTree order for sets and maps, so the same value always gives the same bytes (the log is
//! hash-chained and audited).

use std::collections::{BTreeMap, BTreeSet};

use openraft::BasicNode;

use crate::types::{log_id, Membership, StoredMembership, Vote};

const FORMAT_VERSION: u8 = 1;
/// A bound on decoded collection sizes so a corrupted length cannot allocate gigabytes.
const MEMBERSHIP_ITEMS_MAX: u32 = 4096;
const NODE_ADDR_LEN_MAX: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub(crate) struct RaftCodecError {
    what: &'static str,
    reason: String,
}

pub(crate) fn encode_vote(vote: &Vote) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    out.extend_from_slice(&vote.leader_id.term.to_le_bytes());
    match vote.leader_id.voted_for {
        Some(node) => {
            out.push(1);
            out.extend_from_slice(&node.to_le_bytes());
        }
        None => out.push(0),
    }
    out.push(vote.committed as u8);
    out
}

pub(crate) fn decode_vote(bytes: &[u8]) -> Result<Vote, RaftCodecError> {
    let mut reader = Reader::new(bytes, "vote");
    reader.version()?;
    let term = reader.u64()?;
    let voted_for = if reader.flag()? {
        Some(reader.u64()?)
    } else {
        None
    };
    let committed = reader.flag()?;
    reader.finish()?;
    let mut vote = Vote::default();
    vote.leader_id.term = term;
    vote.leader_id.voted_for = voted_for;
    vote.committed = committed;
    Ok(vote)
}

pub(crate) fn encode_membership(membership: &Membership) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    write_membership(membership, &mut out);
    out
}

pub(crate) fn decode_membership(bytes: &[u8]) -> Result<Membership, RaftCodecError> {
    let mut reader = Reader::new(bytes, "membership");
    reader.version()?;
    let membership = read_membership(&mut reader)?;
    reader.finish()?;
    Ok(membership)
}

pub(crate) fn encode_stored_membership(stored: &StoredMembership) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    match stored.log_id() {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.leader_id.term.to_le_bytes());
            out.extend_from_slice(&id.index.to_le_bytes());
        }
        None => out.push(0),
    }
    write_membership(stored.membership(), &mut out);
    out
}

pub(crate) fn decode_stored_membership(bytes: &[u8]) -> Result<StoredMembership, RaftCodecError> {
    let mut reader = Reader::new(bytes, "snapshot membership");
    reader.version()?;
    let id = if reader.flag()? {
        let term = reader.u64()?;
        let index = reader.u64()?;
        Some(log_id(term, index))
    } else {
        None
    };
    let membership = read_membership(&mut reader)?;
    reader.finish()?;
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
        out.extend_from_slice(&(node.addr.len() as u32).to_le_bytes());
        out.extend_from_slice(node.addr.as_bytes());
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
        let addr_len = reader.count(NODE_ADDR_LEN_MAX)?;
        let addr = reader.bytes(addr_len as usize)?;
        let addr = String::from_utf8(addr.to_vec())
            .map_err(|_| reader.error("node address is not UTF-8"))?;
        nodes.insert(id, BasicNode { addr });
    }
    Ok(Membership::new(configs, nodes))
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

    fn u64(&mut self) -> Result<u64, RaftCodecError> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn count(&mut self, max: u32) -> Result<u32, RaftCodecError> {
        let count = u32::from_le_bytes(self.bytes(4)?.try_into().expect("4 bytes"));
        if count > max {
            return Err(self.error("count too large"));
        }
        Ok(count)
    }

    fn flag(&mut self) -> Result<bool, RaftCodecError> {
        match self.bytes(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error("flag is neither 0 nor 1")),
        }
    }

    fn version(&mut self) -> Result<(), RaftCodecError> {
        match self.bytes(1)?[0] {
            FORMAT_VERSION => Ok(()),
            _ => Err(self.error("unsupported format version")),
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
    use super::*;

    fn two_voters_one_learner() -> Membership {
        let voters = BTreeSet::from([1, 2]);
        let nodes = BTreeMap::from([
            (1, BasicNode::new("10.0.0.1:7000")),
            (2, BasicNode::new("10.0.0.2:7000")),
            (3, BasicNode::new("10.0.0.3:7000")),
        ]);
        Membership::new(vec![voters], nodes)
    }

    #[test]
    fn vote_round_trips_with_and_without_candidate() {
        let mut vote = Vote::default();
        vote.leader_id.term = 7;
        vote.leader_id.voted_for = Some(3);
        vote.committed = true;
        assert_eq!(decode_vote(&encode_vote(&vote)).unwrap(), vote);
        let empty = Vote::default();
        assert_eq!(decode_vote(&encode_vote(&empty)).unwrap(), empty);
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
}
