//! The openraft type configuration. Every openraft type stays inside this crate.

use std::sync::Arc;

use croupier_core::codec::{decode_proposal, DecodeError};
use croupier_core::command::Proposal;
use croupier_core::CommandResult;

openraft::declare_raft_types!(
    /// Croupier's Raft: u64 node ids, a batch of commands per entry, one result per command.
    pub(crate) TypeConfig:
        D = ProposalData,
        R = Vec<CommandResult>,
        NodeId = u64,
        Node = openraft::BasicNode,
        // Standard Raft: one leader per term, so a committed log id is (term, index) exactly
        // as the store records it.
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        // tokio, with election timeouts a simulation can seed (raft_runtime.rs).
        AsyncRuntime = crate::raft_runtime::CroupierRuntime,
);

/// What openraft's committed leader id is under `leader_id_std`: the term alone.
pub(crate) type CommittedLeaderId = openraft::type_config::alias::CommittedLeaderIdOf<TypeConfig>;
pub(crate) type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub(crate) type Payload = openraft::type_config::alias::EntryPayloadOf<TypeConfig>;
pub(crate) type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub(crate) type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub(crate) type Membership = openraft::Membership<u64, openraft::BasicNode>;
pub(crate) type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub(crate) type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;

/// The payload of a normal entry. Cheap to clone because openraft clones entries (cache, apply)
/// and one entry can carry a ~1 MB batch. An entry read back from disk stays encoded until the
/// state machine applies it: openraft scans the log for membership entries at start-up and
/// must not pay for decoding every batch twice.
#[derive(Clone)]
pub(crate) enum ProposalData {
    Decoded(Arc<Proposal>),
    Encoded(Arc<[u8]>),
}

impl ProposalData {
    pub(crate) fn decoded(&self) -> Result<Arc<Proposal>, DecodeError> {
        match self {
            ProposalData::Decoded(proposal) => Ok(Arc::clone(proposal)),
            ProposalData::Encoded(bytes) => decode_proposal(bytes).map(Arc::new),
        }
    }
}

impl std::fmt::Debug for ProposalData {
    // Commands may carry player ids and amounts: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposalData::Decoded(p) => write!(f, "Proposal({} commands)", p.commands.len()),
            ProposalData::Encoded(b) => write!(f, "Proposal({} encoded bytes)", b.len()),
        }
    }
}

impl std::fmt::Display for ProposalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

pub(crate) fn log_id(term: u64, index: u64) -> LogId {
    // With `single-term-leader` a committed leader id is the term alone.
    openraft::LogId::new(CommittedLeaderId::new(term), index)
}
