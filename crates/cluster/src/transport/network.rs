//! openraft's `RaftNetworkV2` over the peer connections: each Raft RPC is one frame carrying the
//! group id; a checkpoint streams on a connection of its own, in chunks.

use std::future::Future;
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::checkpoint_stream;
use super::client::{connect, CallError, Peers};
use super::frame::{read_frame, Frame, Kind, RemoteError, ERROR, RESPONSE};
use crate::raft_codec as codec;
use crate::snapshot_data::CheckpointData;
use crate::types::{TypeConfig, Vote};

type RpcResult<T> = Result<T, RPCError<TypeConfig>>;
type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, CheckpointData>;

/// Bytes of checkpoint per chunk frame.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// How long the receiver may take to install a complete checkpoint before answering.
const SNAPSHOT_INSTALL_TIMEOUT_MS: u64 = 600_000;

/// Makes a client per target node of one group.
#[derive(Clone)]
pub(crate) struct PeerNetwork {
    pub(crate) peers: Peers,
    pub(crate) group_id: u64,
}

pub(crate) struct PeerClient {
    peers: Peers,
    group_id: u64,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient {
            peers: self.peers.clone(),
            group_id: self.group_id,
            target,
            addr: node.addr.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("node {target}: {error}")]
struct PeerFailure {
    target: u64,
    error: String,
}

impl PeerClient {
    async fn call(
        &self,
        kind: Kind,
        payload: Vec<u8>,
        ttl: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.peers
            .call(&self.addr, self.group_id, kind, payload, ttl)
            .await
    }

    fn failure(&self, error: impl std::fmt::Display) -> PeerFailure {
        PeerFailure {
            target: self.target,
            error: error.to_string(),
        }
    }

    /// Unreachable makes openraft back off before retrying; a lost answer is a network error.
    fn rpc_error(&self, error: CallError) -> RPCError<TypeConfig> {
        match &error {
            CallError::Unreachable { .. }
            | CallError::Remote(RemoteError::UnknownGroup(_))
            | CallError::Remote(RemoteError::Unavailable(_)) => {
                RPCError::Unreachable(Unreachable::new(&self.failure(error)))
            }
            _ => RPCError::Network(NetworkError::new(&self.failure(error))),
        }
    }

    fn undecodable(&self, error: impl std::fmt::Display) -> RPCError<TypeConfig> {
        RPCError::Network(NetworkError::new(
            &self.failure(format!("undecodable answer: {error}")),
        ))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = CheckpointData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<TypeConfig>> {
        let mut payload = Vec::new();
        codec::encode_append_request(&rpc, &mut payload);
        let answer = self
            .call(Kind::AppendEntries, payload, option.hard_ttl())
            .await
            .map_err(|e| self.rpc_error(e))?;
        codec::decode_append_response(&answer).map_err(|e| self.undecodable(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        self.ask_vote(Kind::Vote, &rpc, option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        self.ask_vote(Kind::PreVote, &rpc, option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let send = self.stream_snapshot(vote, snapshot);
        tokio::select! {
            // Fixed polling order: a simulation replays the same choice for the same seed.
            biased;
            sent = send => sent,
            closed = cancel => Err(StreamingError::Closed(closed)),
        }
    }
}

impl PeerClient {
    /// A vote or pre-vote request (same message, different question).
    async fn ask_vote(
        &self,
        kind: Kind,
        rpc: &VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        let mut payload = Vec::new();
        codec::encode_vote_request(rpc, &mut payload);
        let answer = self
            .call(kind, payload, option.hard_ttl())
            .await
            .map_err(|e| self.rpc_error(e))?;
        codec::decode_vote_response(&answer).map_err(|e| self.undecodable(e))
    }

    /// Sends a checkpoint: SnapshotBegin (vote, meta), the archive in chunks, SnapshotEnd, and
    /// waits for the receiver to install it.
    async fn stream_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let unreachable =
            |e: String| StreamingError::Unreachable(Unreachable::new(&self.failure(e)));
        let network = |e: String| StreamingError::Network(NetworkError::new(&self.failure(e)));
        let stream = connect(
            self.peers.net(),
            self.peers.route(&self.addr),
            self.peers.secret(),
        )
        .await
        .map_err(|e| unreachable(e.to_string()))?;
        let (mut read_half, write_half) = tokio::io::split(stream);
        let mut writer = BufWriter::with_capacity(SNAPSHOT_CHUNK_BYTES + 64, write_half);
        let mut begin = Vec::new();
        let vote_bytes = codec::encode_vote(&vote);
        begin.extend_from_slice(&(vote_bytes.len() as u32).to_le_bytes());
        begin.extend_from_slice(&vote_bytes);
        codec::encode_snapshot_meta(&snapshot.meta, &mut begin);
        let frame = |kind: Kind, payload: Vec<u8>| Frame {
            kind: kind as u8,
            request_id: 1,
            group_id: self.group_id,
            payload,
        };
        let mut bytes = Vec::new();
        frame(Kind::SnapshotBegin, begin).encode(&mut bytes);
        write_within(&mut writer, &bytes).await.map_err(network)?;
        let mut data = snapshot.snapshot;
        let mut chunk = vec![0u8; SNAPSHOT_CHUNK_BYTES];
        let mut sent = 0u64;
        let mut digest = 0u32;
        loop {
            let n = data
                .read(&mut chunk)
                .await
                .map_err(|e| network(format!("reading the local checkpoint: {e}")))?;
            if n == 0 {
                break;
            }
            bytes.clear();
            let piece = checkpoint_stream::encode_chunk(sent, &chunk[..n]);
            frame(Kind::SnapshotChunk, piece).encode(&mut bytes);
            sent += n as u64;
            digest = crc32c::crc32c_append(digest, &chunk[..n]);
            write_within(&mut writer, &bytes).await.map_err(network)?;
        }
        bytes.clear();
        frame(
            Kind::SnapshotEnd,
            checkpoint_stream::encode_end(sent, digest),
        )
        .encode(&mut bytes);
        write_within(&mut writer, &bytes).await.map_err(network)?;
        writer.flush().await.map_err(|e| network(e.to_string()))?;
        tracing::info!(
            target_node = self.target,
            bytes = sent,
            "checkpoint sent; waiting for the install"
        );
        let answer = tokio::time::timeout(
            Duration::from_millis(SNAPSHOT_INSTALL_TIMEOUT_MS),
            read_frame(&mut read_half),
        )
        .await
        .map_err(|_| network("no answer to the checkpoint".into()))?
        .map_err(|e| network(e.to_string()))?
        .ok_or_else(|| network("the receiver closed the connection".into()))?;
        match answer.kind {
            ERROR => Err(network(RemoteError::decode(&answer.payload).to_string())),
            kind if kind == Kind::SnapshotBegin as u8 | RESPONSE => {
                codec::decode_snapshot_response(&answer.payload).map_err(|e| network(e.to_string()))
            }
            other => Err(network(format!("unexpected answer kind {other}"))),
        }
    }
}

/// Writes a checkpoint frame, giving up on a receiver that stopped reading.
async fn write_within<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
) -> Result<(), String> {
    let wait = Duration::from_millis(crate::transport::server::SNAPSHOT_FRAME_WAIT_MS);
    match tokio::time::timeout(wait, writer.write_all(bytes)).await {
        Ok(written) => written.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "the receiver took nothing for {} ms",
            wait.as_millis()
        )),
    }
}
