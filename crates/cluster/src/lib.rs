//! Croupier's consensus layer: openraft behind our own `Consensus` trait so its API churn stays
//! here. Owns the node lifecycle (a fresh node initializes itself as a one-voter cluster), the
//! log-storage and state-machine adaptors over `croupier_store` and `croupier_core::Ledger`,
//! and proposing a batch of commands as one log entry stamped with the leader's time.
//!
//! It must not know: HTTP, JSON or the API's shapes.

use std::future::Future;
use std::path::PathBuf;

use croupier_core::{Command, CommandResult, Ledger};

/// What the API layer needs from consensus. Implemented by `Node` (openraft underneath).
pub trait Consensus: Clone + Send + Sync + 'static {
    /// Proposes `commands` as ONE log entry stamped with the leader's wall-clock time; resolves
    /// with one result per command once the entry is durable (fsynced), committed and applied.
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<CommandResult>, ProposeError>> + Send;

    /// Runs `read` against the applied ledger after a linearizability check (leader only).
    fn read<R, F>(&self, read: F) -> impl Future<Output = Result<R, ProposeError>> + Send
    where
        R: Send + 'static,
        F: FnOnce(&Ledger) -> R + Send + 'static;

    /// True once this node is leader and accepts writes.
    fn is_serving_writes(&self) -> bool;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("node is shutting down")]
    ShuttingDown,
    #[error("storage failure: {0}")]
    Storage(String),
    #[error("consensus failure: {0}")]
    Fatal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("consensus: {0}")]
    Raft(String),
    #[error("node did not become leader within {0} ms")]
    NoLeader(u64),
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// Take a state-machine snapshot (and compact the log behind it) after this many entries.
    pub snapshot_entries_since_last: u64,
    pub log_segment_size_max_bytes: u64,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            node_id: 1,
            snapshot_entries_since_last: 20_000,
            log_segment_size_max_bytes: 64 << 20,
        }
    }
}

/// A running node (cheap to clone). Skeleton until the cluster helper lands it.
#[derive(Clone)]
pub struct Node {
    _private: (),
}

impl Node {
    /// Opens (and recovers) the data dir, starts Raft, initializes a one-voter cluster on a
    /// fresh dir, and waits until this node leads. Refuses to start on corrupted storage.
    pub async fn start(_config: NodeConfig) -> Result<Node, ClusterError> {
        todo!("cluster node")
    }

    /// Stops Raft and flushes storage.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        todo!()
    }
}

impl Consensus for Node {
    async fn propose(&self, _commands: Vec<Command>) -> Result<Vec<CommandResult>, ProposeError> {
        todo!()
    }

    async fn read<R, F>(&self, _read: F) -> Result<R, ProposeError>
    where
        R: Send + 'static,
        F: FnOnce(&Ledger) -> R + Send + 'static,
    {
        todo!()
    }

    fn is_serving_writes(&self) -> bool {
        todo!()
    }
}
