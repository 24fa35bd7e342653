//! The Raft transport. A single node has no peers, so every target is unreachable; the cluster
//! issue replaces this factory with a real transport without touching the rest of the crate.

use std::future::Future;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};

use crate::snapshot_data::CheckpointData;
use crate::types::{TypeConfig, Vote};

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable: this build has no Raft transport (single node)")]
struct NoTransport(u64);

type RpcResult<T> = Result<T, RPCError<TypeConfig>>;
type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, CheckpointData>;

#[derive(Clone, Default)]
pub(crate) struct NoPeers;

pub(crate) struct NoPeerClient {
    target: u64,
}

impl NoPeerClient {
    fn unreachable(&self) -> Unreachable<TypeConfig> {
        Unreachable::new(&NoTransport(self.target))
    }
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeerClient;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        NoPeerClient { target }
    }
}

impl RaftNetworkV2<TypeConfig> for NoPeerClient {
    type SnapshotData = CheckpointData;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<TypeConfig>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Unreachable(self.unreachable()))
    }
}
