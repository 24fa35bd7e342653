//! A node's answers to its peers: Raft RPCs for its group, proposals and read-index requests
//! forwarded by followers, status, clock samples and admin changes.

use std::sync::Arc;
use std::time::Duration;

use croupier_core::codec::{decode_proposal, encode_results};
use openraft::error::RaftError;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::cluster_mode::{self, AdminRequest, LocalStatus};
use crate::raft_codec as codec;
use crate::transport::{u64_at, BoxFuture, GroupService, Kind, RemoteError, Reply};
use crate::{Node, ProposeError};

/// The group service of one node (registered with the process's peer listener).
pub(crate) struct NodeService {
    pub(crate) node: Node,
}

fn refused(error: impl std::fmt::Display) -> RemoteError {
    RemoteError::Refused(error.to_string())
}

fn unavailable(error: impl std::fmt::Display) -> RemoteError {
    RemoteError::Unavailable(error.to_string())
}

impl GroupService for NodeService {
    fn handle(&self, kind: Kind, payload: Vec<u8>) -> BoxFuture<Reply> {
        let node = self.node.clone();
        Box::pin(async move {
            match kind {
                Kind::AppendEntries => append_entries(&node, &payload).await,
                Kind::Vote => vote(&node, &payload, Ballot::Real).await,
                Kind::PreVote => vote(&node, &payload, Ballot::Pre).await,
                Kind::Propose => propose(&node, &payload).await,
                Kind::ReadIndex => read_index(&node).await,
                Kind::Status => Ok(LocalStatus::of(&node).encode()),
                Kind::Clock => Ok(cluster_mode::wall_clock_ns(&node).to_le_bytes().to_vec()),
                Kind::Admin => {
                    let request = AdminRequest::decode(&payload).map_err(refused)?;
                    cluster_mode::admin(&node, request)
                        .await
                        .map(|()| Vec::new())
                }
                Kind::HoldElections => hold_elections(&node, &payload),
                Kind::Campaign => {
                    node.raft()
                        .trigger()
                        .elect(false)
                        .await
                        .map_err(unavailable)?;
                    Ok(Vec::new())
                }
                Kind::SnapshotBegin | Kind::SnapshotChunk | Kind::SnapshotEnd => {
                    Err(refused("checkpoint frames outside a checkpoint stream"))
                }
            }
        })
    }

    fn receive_snapshot(
        &self,
        begin: Vec<u8>,
        chunks: mpsc::Receiver<Vec<u8>>,
    ) -> BoxFuture<Reply> {
        let node = self.node.clone();
        Box::pin(async move { receive_snapshot(&node, &begin, chunks).await })
    }
}

async fn append_entries(node: &Node, payload: &[u8]) -> Reply {
    let request = codec::decode_append_request(payload).map_err(refused)?;
    let response = node
        .raft()
        .append_entries(request)
        .await
        .map_err(raft_error)?;
    let mut out = Vec::new();
    codec::encode_append_response(&response, &mut out);
    Ok(out)
}

/// A real vote, or a pre-vote (the same question, asked without changing anything).
#[derive(Clone, Copy)]
enum Ballot {
    Real,
    Pre,
}

async fn vote(node: &Node, payload: &[u8], ballot: Ballot) -> Reply {
    if node.is_repairing() {
        // It may have acknowledged entries it lost: its vote could elect a candidate that
        // lacks them. To the candidate this looks like an unreachable voter.
        return Err(unavailable(
            "repairing corrupt storage: not voting until caught up",
        ));
    }
    let request = codec::decode_vote_request(payload).map_err(refused)?;
    let response = match ballot {
        Ballot::Real => node.raft().vote(request).await,
        Ballot::Pre => node.raft().pre_vote(request).await,
    }
    .map_err(raft_error)?;
    let mut out = Vec::new();
    codec::encode_vote_response(&response, &mut out);
    Ok(out)
}

fn raft_error<E: std::error::Error>(error: RaftError<crate::types::TypeConfig, E>) -> RemoteError {
    unavailable(error)
}

/// A follower's batch: proposed here only if this node leads (never forwarded again, so a
/// stale view of the leader cannot bounce a batch around).
async fn propose(node: &Node, payload: &[u8]) -> Reply {
    let proposal = decode_proposal(payload).map_err(refused)?;
    let results = node
        .propose_as_leader(proposal.commands)
        .await
        .map_err(|error| match error {
            ProposeError::NotLeader { leader } => RemoteError::NotLeader { leader },
            other => unavailable(other),
        })?;
    let mut out = Vec::new();
    encode_results(&results, &mut out);
    Ok(out)
}

async fn read_index(node: &Node) -> Reply {
    let index = node
        .leader_read_index()
        .await
        .map_err(|error| match error {
            ProposeError::NotLeader { leader } => RemoteError::NotLeader { leader },
            other => unavailable(other),
        })?;
    Ok(index.to_le_bytes().to_vec())
}

fn hold_elections(node: &Node, payload: &[u8]) -> Reply {
    let ms = u64_at(payload, 0).ok_or_else(|| refused("HoldElections needs a duration"))?;
    cluster_mode::hold_elections(node, Duration::from_millis(ms.min(10_000)));
    Ok(Vec::new())
}

/// Writes the streamed archive into a staging file and installs it as this node's state.
async fn receive_snapshot(node: &Node, begin: &[u8], mut chunks: mpsc::Receiver<Vec<u8>>) -> Reply {
    let (vote, meta) = decode_snapshot_begin(begin).map_err(refused)?;
    // A second stream waits here until the first is installed or has failed (regression: two
    // streams writing one staging file installed a mix of two checkpoints).
    let _one_at_a_time = node.one_checkpoint_at_a_time().await;
    let mut data = node.receiving_checkpoint().map_err(unavailable)?;
    let mut received = 0u64;
    loop {
        let Some(chunk) = chunks.recv().await else {
            return Err(refused("the checkpoint stream broke off"));
        };
        if chunk.is_empty() {
            break;
        }
        received += chunk.len() as u64;
        data.write_all(&chunk).await.map_err(unavailable)?;
    }
    data.flush().await.map_err(unavailable)?;
    tracing::info!(bytes = received, last = ?meta.last_log_id, "checkpoint received; installing");
    let snapshot = openraft::storage::Snapshot {
        meta,
        snapshot: data,
    };
    let response = node
        .raft()
        .install_full_snapshot(vote, snapshot)
        .await
        .map_err(unavailable)?;
    let mut out = Vec::new();
    codec::encode_snapshot_response(&response, &mut out);
    Ok(out)
}

use crate::types::SnapshotMeta;

fn decode_snapshot_begin(begin: &[u8]) -> Result<(crate::types::Vote, SnapshotMeta), String> {
    let vote_len = begin
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(|b| u32::from_le_bytes(b) as usize)
        .ok_or("checkpoint header truncated")?;
    let vote_bytes = begin
        .get(4..4 + vote_len)
        .ok_or("checkpoint vote truncated")?;
    let vote = codec::decode_vote(vote_bytes).map_err(|e| e.to_string())?;
    let meta = codec::decode_snapshot_meta(&begin[4 + vote_len..]).map_err(|e| e.to_string())?;
    Ok((vote, meta))
}

/// Registers `node` with the process's peer listener.
pub(crate) fn register(node: &Node, registry: &crate::transport::Registry, group_id: u64) {
    registry.register(group_id, Arc::new(NodeService { node: node.clone() }));
}
