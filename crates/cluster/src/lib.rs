//! Croupier's consensus layer: openraft behind our own `Consensus` trait so its API churn stays
//! here. Owns the node lifecycle (a fresh node initializes itself as a one-voter cluster), the
//! log-storage and state-machine adaptors over `croupier_store` and `croupier_core::Ledger`,
//! and proposing a batch of commands as one log entry stamped with the leader's time.
//!
//! It must not know: HTTP, JSON or the API's shapes.
//!
//! Write path: `propose` → openraft (leader appends the entry) → the log writer thread (encode,
//! CRC + chain hash, one write and ONE fdatasync for everything queued) → openraft commits →
//! the state machine applies the entry to the ledger (the entry comes from an in-memory cache,
//! never from disk on this path) → the results go back to the proposer. The disk write of one
//! entry overlaps the apply of the previous one.

// openraft's `StorageError` is large and its traits return it by value; boxing ours would not help.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use croupier_core::command::Proposal;
use croupier_core::{Command, CommandResult};
use croupier_store::{ConsumerCursors, DataDirLock};
use openraft::error::{ClientWriteError, Fatal, InitializeError, LinearizableReadError, RaftError};
use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::sync::watch;

mod clock;
mod cluster_mode;
mod entry_cache;
pub mod events;
mod health;
mod host;
mod install;
mod log_storage;
mod log_writer;
mod metric_names;
mod network;
mod peer_service;
mod raft_codec;
pub mod raft_runtime;
mod recovery;
mod repair;
pub mod simulation;
mod snapshot_data;
mod state_machine;
mod ticker;
mod transport;
mod types;
mod view;
pub mod wall_clock;

use log_writer::WriterHandle;
use state_machine::SharedState;
use types::{ProposalData, TypeConfig};

/// openraft's handle on this crate's group: the type config and the ledger state machine.
pub(crate) type Raft = openraft::Raft<TypeConfig, state_machine::LedgerStateMachine>;

type RaftMetrics = openraft::RaftMetrics<TypeConfig>;

pub use cluster_mode::{
    AdminError, AdminRequest, ClusterOptions, ClusterStatus, Member, NodeStatus, Role,
    LEDGER_GROUP_ID,
};
pub use events::{CommittedEvent, EventPage, EventSubscription};
pub use health::{FreeSpaceProbe, NodeHealth};
pub use host::{
    Execution, Host, HostConfig, PeerEndpoint, CONSENSUS_BLOCKING_THREADS_MAX,
    CONSENSUS_WORKER_THREADS_DEFAULT,
};
pub use recovery::StorageOptions;
pub use transport::{
    CallError, NetFuture, PeerAcceptor, PeerIo, PeerNet, PeerSecret, PeerStream, RemoteError,
    TcpNet, HANDSHAKE_CALLER_BYTES, HANDSHAKE_LISTENER_BYTES, PEER_SECRET_BYTES_MIN,
};
pub use view::{LedgerView, OperatorTrailPage, ReadError};

/// What the API layer needs from consensus. Implemented by `Node` (openraft underneath).
pub trait Consensus: Clone + Send + Sync + 'static {
    /// Proposes `commands` as ONE log entry stamped with the leader's wall-clock time; resolves
    /// with one result per command once the entry is durable (fsynced), committed and applied.
    fn propose(
        &self,
        commands: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<CommandResult>, ProposeError>> + Send;

    /// Runs `read` against the applied ledger (hot state and history) after a
    /// linearizability check (leader only).
    fn read<R, F>(&self, read: F) -> impl Future<Output = Result<R, ProposeError>> + Send
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static;

    /// Runs `read` against this node's applied ledger without asking the leader: possibly
    /// stale on a follower (an explicit opt-in), never ahead of what was committed.
    fn read_stale<R, F>(&self, read: F) -> impl Future<Output = Result<R, ProposeError>> + Send
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        self.read(read)
    }

    /// The cluster's members as this node sees them (a one-node status when not clustered).
    fn cluster_status(&self) -> impl Future<Output = Option<ClusterStatus>> + Send {
        async { None }
    }

    /// A membership or leadership change, run by the leader.
    fn cluster_admin(
        &self,
        _request: AdminRequest,
    ) -> impl Future<Output = Result<(), AdminError>> + Send {
        async { Err(AdminError::NotClustered) }
    }

    /// Committed events after `after` (0: from the oldest retained), at most `limit`.
    fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<EventPage, ReadError>> + Send;

    /// Resolves once an event after `after` is committed (or the node stops).
    fn wait_for_event_after(&self, after: u64) -> impl Future<Output = ()> + Send;

    /// The position of the last event this node applied (0: none, or unknown).
    fn events_last(&self) -> u64 {
        0
    }

    /// True once this node is leader and accepts writes (not a member that forwards them).
    fn is_serving_writes(&self) -> bool {
        self.health() == NodeHealth::Serving
    }

    /// The Raft term this node leads in while it serves writes (None otherwise). Work that
    /// only the leadership that decided it may commit binds its command to this term (the
    /// state machine refuses it in an entry of any other term).
    fn serving_term(&self) -> Option<u64> {
        self.is_serving_writes().then_some(0)
    }

    /// What the node can do right now, and if not, why.
    fn health(&self) -> NodeHealth;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("node is shutting down")]
    ShuttingDown,
    /// Writes are refused for now (e.g. the disk is almost full); reads are served.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    #[error("storage failure: {0}")]
    Storage(String),
    #[error("consensus failure: {0}")]
    Fatal(String),
    /// No leader is known (an election is under way, or no quorum is reachable).
    #[error("no leader is known right now")]
    NoLeader,
    /// The leader could not take it now; nothing was applied.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The proposal was handed to the leader but no answer came back: it may or may not be
    /// applied. Retrying with the same ids is safe (every write is idempotent by id).
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// This leader's clock is too far from its peers' to stamp entries.
    #[error("clock unsynchronized: {0}")]
    ClockUnsynchronized(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Another process holds the data directory.
    #[error("{0}")]
    Locked(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("consensus: {0}")]
    Raft(String),
    #[error("node did not become leader within {0} ms")]
    NoLeader(u64),
    /// The node's configuration cannot work (an address that cannot be bound, ...).
    #[error("{0}")]
    Config(String),
    /// Bytes in the data directory that cannot be right (a damaged log record, checkpoint or
    /// history); the node refuses them. A cluster member may repair from its peers.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// Take a checkpoint (and compact the log behind it) after this many entries...
    pub checkpoint_entries_since_last: u64,
    /// ...or once this many log bytes were written since the last one, whichever comes first.
    pub checkpoint_log_bytes_since_last: u64,
    pub log_segment_size_max_bytes: u64,
    /// Entries kept in the log behind the latest checkpoint (for followers that lag a little).
    pub log_entries_kept_after_checkpoint: u64,
    /// Memory for recent entries, so applying never reads the disk on the hot path.
    pub log_cache_size_max_bytes: usize,
    /// History, index and event storage settings (memory budgets, retention).
    pub storage: StorageOptions,
    /// Writes are refused while the data directory's file system has less free space.
    pub disk_reserve_bytes: u64,
    pub free_space_probe: FreeSpaceProbe,
    /// Every file the node touches goes through this (tests put a simulated file system here
    /// to crash the node at any write or fsync).
    pub file_system: Arc<dyn croupier_store::fs::FileSystem>,
    /// Member of a replicated cluster (None: a one-node cluster without peers).
    pub cluster: Option<ClusterOptions>,
    /// Take the data directory's lock (one process per directory). Off only for simulated
    /// file systems, which no other process can reach.
    pub lock_data_dir: bool,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            node_id: 1,
            checkpoint_entries_since_last: 20_000,
            checkpoint_log_bytes_since_last: 256 << 20,
            log_segment_size_max_bytes: 64 << 20,
            log_entries_kept_after_checkpoint: 1_000,
            log_cache_size_max_bytes: 64 << 20,
            storage: StorageOptions::default(),
            disk_reserve_bytes: DISK_RESERVE_BYTES_DEFAULT,
            free_space_probe: FreeSpaceProbe::FileSystem,
            file_system: Arc::new(croupier_store::fs::OsFileSystem),
            cluster: None,
            lock_data_dir: true,
        }
    }

    /// Runs the node over `file_system` (a simulated one in crash tests), without the data
    /// directory lock.
    pub fn with_file_system(
        mut self,
        file_system: Arc<dyn croupier_store::fs::FileSystem>,
    ) -> Self {
        self.file_system = file_system;
        self.lock_data_dir = false;
        self
    }

    /// Splits a memory budget for everything that grows with history (index memtables and
    /// filters, the log entry cache) across its users. Hot state (accounts, open pendings) is
    /// not part of it: it is bounded by the number of accounts, not by history.
    pub fn with_cache_size_max(mut self, cache_size_max_bytes: u64) -> Self {
        let budget = usize::try_from(cache_size_max_bytes).unwrap_or(usize::MAX);
        self.log_cache_size_max_bytes = (budget / 8).max(8 << 20);
        self.storage = StorageOptions::with_budget(budget - budget / 8);
        self
    }
}

/// Free space the node keeps in reserve by default: room for the largest entries in flight,
/// history appends and a checkpoint's hot file.
pub const DISK_RESERVE_BYTES_DEFAULT: u64 = 256 << 20;

/// Proposals queued for the Raft core before callers wait.
const API_CHANNEL_PROPOSALS_MAX: u64 = 1024;
/// How long a starting node waits to lead its one-voter cluster.
const LEADER_WAIT_MS: u64 = 10_000;
/// How long a starting node may spend re-applying its log after the latest snapshot.
const REPLAY_WAIT_MS: u64 = 600_000;

/// A running node (cheap to clone).
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    node_id: u64,
    group_id: u64,
    raft: Raft,
    metrics: watch::Receiver<RaftMetrics>,
    shared: Arc<SharedState>,
    consumers: Arc<ConsumerCursors>,
    writer: WriterHandle,
    /// The runtime, log writer thread and peer listener this group shares with the others.
    host: Host,
    /// Set for a node started alone (`Node::start`): its shutdown stops the host too.
    owns_host: AtomicBool,
    stopped: AtomicBool,
    disk: Arc<health::DiskGuard>,
    /// Held until `shutdown` (or the last clone's drop): one process per data directory.
    lock: Mutex<Option<DataDirLock>>,
    cluster: Option<cluster_mode::ClusterParts>,
    /// Repairing corrupt storage from the peers: no votes until caught up (`repair`).
    repairing: AtomicBool,
    data_dir: PathBuf,
    /// Every file of the node goes through it (a simulated disk in simulations and crash tests).
    file_system: Arc<dyn croupier_store::fs::FileSystem>,
    /// Held while a checkpoint streams in and installs: the leader may open a second stream
    /// (it gave up waiting for the first), and both would write the one staging file.
    checkpoint_reception: tokio::sync::Mutex<()>,
}

impl Node {
    /// Opens (and recovers) the data dir and starts Raft for the ledger group on a host of
    /// its own. Alone (no `cluster` options) it initializes a one-voter cluster on a fresh dir
    /// and waits until it leads; as a member of a cluster it starts its peer listener, forms
    /// the cluster (the lowest member id, on a fresh dir) or asks to join, and returns once it
    /// knows a leader or after a short wait. Refuses to start on corrupted storage.
    pub async fn start(config: NodeConfig) -> Result<Node, ClusterError> {
        let host = Host::start(HostConfig::for_node(&config)).await?;
        match host.start_group(LEDGER_GROUP_ID, config).await {
            Ok(node) => {
                node.inner.owns_host.store(true, Ordering::SeqCst);
                Ok(node)
            }
            Err(error) => {
                let _ = host.shutdown().await;
                Err(error)
            }
        }
    }

    /// Starts group `group_id` on `host` (see `Host::start_group`).
    pub(crate) async fn start_on(
        host: Host,
        group_id: u64,
        config: NodeConfig,
    ) -> Result<Node, ClusterError> {
        let (opened, repairing) = open_or_quarantine(&config, host.log_writer())?;
        let node = Node::create(&config, opened, host, group_id).await?;
        node.inner.repairing.store(repairing, Ordering::SeqCst);
        if repairing {
            repair::spawn_watch(node.clone());
        }
        let started = match &config.cluster {
            None => node.become_leader_and_catch_up().await,
            Some(options) => node.take_part_in_cluster(options).await,
        };
        if let Err(error) = started {
            let _ = node.shutdown_group().await;
            return Err(error);
        }
        let runtime = node.consensus_runtime();
        let watcher = node.clone();
        node.inner
            .disk
            .spawn_sampler(&runtime, move || watcher.is_stopped());
        ticker::spawn(node.clone(), &runtime);
        spawn_stop_recorder(node.clone(), &runtime);
        if node.cluster().is_some() {
            cluster_mode::spawn_clock_sampler(node.clone());
        }
        recovery::spawn_checkpoint_trigger(node.clone(), &config);
        Ok(node)
    }

    /// Starts Raft over the opened storage, on the host's runtime and peer network.
    async fn create(
        config: &NodeConfig,
        opened: recovery::Opened,
        host: Host,
        group_id: u64,
    ) -> Result<Node, ClusterError> {
        let recovery::Opened {
            lock,
            writer,
            log_storage,
            state_machine,
            shared,
            consumers,
        } = opened;
        let node_id = config.node_id;
        let runtime = host.runtime();
        let cluster = match (&config.cluster, host.network()) {
            (Some(options), Some(network)) => {
                Some(cluster_mode::ClusterParts::new(options, network))
            }
            _ => None,
        };
        let network = cluster.as_ref().map(|c| transport::PeerNetwork {
            peers: c.peers.clone(),
            group_id,
        });
        let raft = runtime
            .spawn(create_raft(
                node_id,
                raft_config(config)?,
                network,
                log_storage,
                state_machine,
            ))
            .await
            .map_err(|e| ClusterError::Raft(format!("consensus start-up task failed: {e}")))
            .and_then(|created| created.map_err(fatal_to_cluster_error));
        let raft = match raft {
            Ok(raft) => raft,
            Err(error) => {
                let _ = writer.shutdown().await;
                return Err(error);
            }
        };
        Ok(Node {
            inner: Arc::new(NodeInner {
                node_id,
                group_id,
                metrics: bridge_metrics(&raft, &runtime),
                raft,
                shared,
                consumers,
                writer,
                host,
                owns_host: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                disk: health::DiskGuard::new(
                    config.data_dir.clone(),
                    config.disk_reserve_bytes,
                    config.free_space_probe.clone(),
                ),
                lock: Mutex::new(lock),
                cluster,
                repairing: AtomicBool::new(false),
                data_dir: config.data_dir.clone(),
                file_system: Arc::clone(&config.file_system),
                checkpoint_reception: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Registers with the peer listener, then forms or joins the cluster.
    async fn take_part_in_cluster(&self, options: &ClusterOptions) -> Result<(), ClusterError> {
        let cluster = self.cluster().expect("a clustered node has cluster parts");
        peer_service::register(self, &cluster.registry, self.group_id());
        let node_id = self.node_id();
        let initialized = self
            .inner
            .raft
            .is_initialized()
            .await
            .map_err(fatal_to_cluster_error)?;
        let founder = options.members.iter().map(|m| m.node_id).min();
        if !initialized && options.join.is_none() && founder == Some(node_id) {
            let members = cluster_mode::members_map(&options.members);
            match self.inner.raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(error) => return Err(ClusterError::Raft(error.to_string())),
            }
            tracing::info!(members = options.members.len(), "formed the cluster");
        }
        if let (false, Some(via)) = (initialized, options.join.clone()) {
            self.consensus_runtime()
                .spawn(cluster_mode::join(self.clone(), via));
        }
        let mut metrics = self.metrics_watch();
        let wait = Duration::from_millis(options.election_timeout_max_ms * 5);
        match tokio::time::timeout(wait, metrics.wait_for(|m| m.current_leader.is_some())).await {
            Ok(Ok(m)) => {
                tracing::info!(leader = ?m.current_leader, term = m.current_term, "cluster member up")
            }
            _ => tracing::warn!("no leader known yet; serving once one is elected"),
        }
        Ok(())
    }

    /// Stops Raft, flushes storage and releases the data directory (a new node may open it
    /// right away, even while clones of this one are alive); a node started alone stops its
    /// host too. Calling it again does nothing.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        let group = self.shutdown_group().await;
        if self.inner.owns_host.load(Ordering::SeqCst) {
            let host = self.inner.host.shutdown().await;
            return group.and(host);
        }
        group
    }

    /// Stops this group only; the host's runtime, writer and listener serve the others.
    pub(crate) async fn shutdown_group(&self) -> Result<(), ClusterError> {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(cluster) = &self.inner.cluster {
            cluster.registry.unregister(self.group_id());
        }
        let raft_outcome = self
            .inner
            .raft
            .shutdown()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()));
        let writer_outcome = self.inner.writer.shutdown().await;
        // Nothing of this node may write to the directory once the lock goes: the indexes'
        // background flushes and merges stop too (a clone of the node kept by the caller would
        // otherwise keep them, and the lock, alive). Then a new node may open the directory,
        // in this process or another.
        self.inner.shared.history().stop_background();
        drop(
            self.inner
                .lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        self.inner.host.group_stopped(self.group_id());
        raft_outcome?;
        writer_outcome.map_err(|e| ClusterError::Storage(e.0))
    }

    /// Runs `future` on the runtime of this node's host. A simulation's clients call the node
    /// this way: each simulated host has its own clock, and the node must read its own.
    pub fn spawn_on_host<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.consensus_runtime().spawn(future)
    }

    /// One line on where this member stands in its group (for diagnostics and simulations).
    pub fn raft_summary(&self) -> String {
        let m = self.metrics();
        format!(
            "node {} {:?} term {} leader {:?} last_log {:?} applied {} committed {:?} purged {:?} snapshot {:?} repairing {}",
            m.id,
            m.state,
            m.current_term,
            m.current_leader,
            m.last_log_index,
            self.applied_index(),
            m.last_applied.map(|id| id.index),
            m.purged.map(|id| id.index),
            m.snapshot.map(|id| id.index),
            self.is_repairing(),
        )
    }

    /// Stops the threads that write this node's history indexes, without the runtime: what a
    /// simulation does to a node it "kills", so no thread of the dead node writes to the disk
    /// the restarted node will read.
    pub fn stop_background_work(&self) {
        self.inner.shared.history().stop_background();
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<NodeInner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(inner: &std::sync::Weak<NodeInner>) -> Option<Node> {
        inner.upgrade().map(|inner| Node { inner })
    }

    /// The Raft group this node is a member of.
    pub fn group_id(&self) -> u64 {
        self.inner.group_id
    }

    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub(crate) fn metrics(&self) -> RaftMetrics {
        self.inner.metrics.borrow().clone()
    }

    pub(crate) fn metrics_watch(&self) -> watch::Receiver<RaftMetrics> {
        self.inner.metrics.clone()
    }

    pub(crate) fn cluster(&self) -> Option<&cluster_mode::ClusterParts> {
        self.inner.cluster.as_ref()
    }

    pub(crate) fn inner_repairing(&self) -> &AtomicBool {
        &self.inner.repairing
    }

    /// True while this node repairs corrupt storage from its peers (it grants no votes).
    pub fn is_repairing(&self) -> bool {
        self.inner.repairing.load(Ordering::SeqCst)
    }

    /// True while this node leads its group.
    pub fn is_leader(&self) -> bool {
        let metrics = self.inner.metrics.borrow();
        metrics.state.is_leader() && metrics.current_leader == Some(self.inner.node_id)
    }

    /// Index of the last log entry applied to the ledger.
    pub fn applied_index(&self) -> u64 {
        self.inner.shared.applied.borrow().index
    }

    pub(crate) fn log_bytes_written(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.inner.writer.bytes_written()
    }

    pub(crate) fn consensus_runtime(&self) -> tokio::runtime::Handle {
        self.inner.host.runtime()
    }

    /// Resolves with a one-line reason if storage or consensus fails for good (never after a
    /// clean `shutdown`).
    pub async fn failed(&self) -> String {
        let mut metrics = self.inner.metrics.clone();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return self.failure_reason(fatal);
            }
            if metrics.changed().await.is_err() {
                if self.is_stopped() {
                    std::future::pending::<()>().await;
                }
                return "the consensus engine stopped unexpectedly".to_string();
            }
        }
    }

    /// Why the node failed: the state machine's own failure when there was one (openraft may
    /// report only its consequence), else openraft's.
    fn failure_reason(&self, fatal: &Fatal<TypeConfig>) -> String {
        match self.inner.shared.failure.get() {
            Some(reason) => reason.clone(),
            None => fatal.to_string(),
        }
    }

    /// Resolves once the consensus engine has stopped (failed, shut down, or its task gone).
    ///
    /// A request racing the engine's stop can otherwise wait forever: openraft answers through
    /// a oneshot sent along its request channel, and a request pushed while the engine drops
    /// that channel's receiver stays queued (tokio drains the queue on drop, but a send that
    /// passed the "closed" check just before it lands after the drain). The queue lives as
    /// long as any `Raft` handle, i.e. as long as the waiting caller's own clone of the node.
    async fn consensus_stopped(&self) -> Fatal<TypeConfig> {
        let mut metrics = self.inner.metrics.clone();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return fatal.clone();
            }
            if metrics.changed().await.is_err() {
                return Fatal::Stopped;
            }
        }
    }

    /// Asks for a checkpoint now (the log behind it is compacted once it is durable).
    pub async fn trigger_checkpoint(&self) -> Result<(), ClusterError> {
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(fatal_to_cluster_error)
    }

    /// A durable, named consumer of the committed event feed: it resumes after its last
    /// acknowledged position (see `EventSubscription`).
    pub fn subscribe(&self, name: &str) -> Result<EventSubscription, ReadError> {
        EventSubscription::open(
            self.clone(),
            &self.inner.shared.events(),
            Arc::clone(&self.inner.consumers),
            name,
        )
    }

    /// One checkpoint comes in at a time: hold the guard from the first chunk to the install.
    pub(crate) async fn one_checkpoint_at_a_time(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.checkpoint_reception.lock().await
    }

    /// A fresh staging file for a checkpoint streamed in from the leader (under
    /// `one_checkpoint_at_a_time`).
    pub(crate) fn receiving_checkpoint(&self) -> std::io::Result<snapshot_data::CheckpointData> {
        let path = self
            .inner
            .data_dir
            .join(state_machine::INCOMING_ARCHIVE_NAME);
        snapshot_data::CheckpointData::incoming(Arc::clone(&self.inner.file_system), path)
    }

    pub(crate) fn shared(&self) -> &Arc<SharedState> {
        &self.inner.shared
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    async fn become_leader_and_catch_up(&self) -> Result<(), ClusterError> {
        let raft = &self.inner.raft;
        let node_id = self.inner.node_id;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(fatal_to_cluster_error)?;
        if !initialized {
            let voters = BTreeMap::from([(node_id, BasicNode::default())]);
            match raft.initialize(voters).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(error) => return Err(ClusterError::Raft(error.to_string())),
            }
        }
        raft.wait(Some(Duration::from_millis(LEADER_WAIT_MS)))
            .metrics(
                |m| m.current_leader == Some(node_id) && m.state.is_leader(),
                "this node leads",
            )
            .await
            .map_err(|_| ClusterError::NoLeader(LEADER_WAIT_MS))?;
        // Serve only once the log after the latest snapshot is applied again.
        raft.wait(Some(Duration::from_millis(REPLAY_WAIT_MS)))
            .metrics(
                |m| m.last_applied.map(|id| id.index) >= m.last_log_index,
                "log replayed",
            )
            .await
            .map_err(|e| ClusterError::Raft(format!("log replay did not finish: {e}")))?;
        Ok(())
    }
}

fn raft_config(config: &NodeConfig) -> Result<Arc<Config>, ClusterError> {
    let raft_config = Config {
        cluster_name: "croupier".to_string(),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.checkpoint_entries_since_last),
        max_in_snapshot_log_to_keep: config.log_entries_kept_after_checkpoint,
        purge_batch_size: 1,
        // An entry can carry a ~1 MiB batch, and openraft gives an append one heartbeat
        // interval to be written and fsynced by the follower: two entries keep it well inside.
        max_payload_entries: 2,
        // A replica that lost its log (repaired from its peers after corruption) makes the
        // leader resend from the start instead of stopping it. Such a replica grants no votes
        // until it has caught up (`repair.rs`).
        allow_log_reversion: Some(true),
        // A node cut off from the others asks before it bumps its term, so rejoining does not
        // depose a healthy leader.
        enable_pre_vote: Some(true),
        // Standard Raft: a restarted leader holds an election (a new term) before it leads
        // again. openraft 0.10 sends entries to the followers while the leader's own fsync
        // runs, so followers may hold entries the leader lost in a crash; a leader restored
        // into its old term would write other entries under the same (term, index), and a
        // follower that already has that log id keeps its old entry (regression: an
        // acknowledged write missing on one replica after every node was killed at once).
        enable_leader_restore: Some(false),
        // Proposals waiting for the Raft core. Each is one entry of up to a few MiB; the HTTP
        // layer bounds what is in flight long before this (openraft's default is 65,536).
        api_channel_size: Some(API_CHANNEL_PROPOSALS_MAX),
        ..Default::default()
    };
    let raft_config = match &config.cluster {
        Some(options) => Config {
            heartbeat_interval: options.heartbeat_interval_ms,
            election_timeout_min: options.election_timeout_min_ms,
            election_timeout_max: options.election_timeout_max_ms,
            ..raft_config
        },
        None => raft_config,
    };
    raft_config
        .validate()
        .map(Arc::new)
        .map_err(|e| ClusterError::Raft(format!("invalid Raft configuration: {e}")))
}

/// Opens the data directory; a cluster member started with `repair_from_peers` whose storage
/// is corrupt moves it to quarantine and starts empty, to catch up from its peers.
fn open_or_quarantine(
    config: &NodeConfig,
    writer: &log_writer::LogWriter,
) -> Result<(recovery::Opened, bool), ClusterError> {
    let repairs = config.cluster.as_ref().is_some_and(|c| c.repair_from_peers);
    match recovery::open_storage(config, writer) {
        Err(ClusterError::Corrupt(reason)) if repairs => {
            tracing::error!(%reason, "storage is corrupt: moving it to quarantine and repairing from the other replicas");
            let moved = repair::quarantine(&config.data_dir).map_err(ClusterError::Storage)?;
            tracing::warn!(quarantine = %moved.display(), "damaged files kept for inspection");
            Ok((recovery::open_storage(config, writer)?, true))
        }
        other => other.map(|opened| (opened, false)),
    }
}

/// openraft's `Raft::new` with the transport the node has: peers in a cluster, none alone.
async fn create_raft(
    node_id: u64,
    raft_config: Arc<Config>,
    network: Option<transport::PeerNetwork>,
    log_storage: log_storage::LogStorage,
    state_machine: state_machine::LedgerStateMachine,
) -> Result<Raft, Fatal<TypeConfig>> {
    match network {
        Some(network) => Raft::new(node_id, raft_config, network, log_storage, state_machine).await,
        None => {
            Raft::new(
                node_id,
                raft_config,
                network::NoPeers,
                log_storage,
                state_machine,
            )
            .await
        }
    }
}

/// openraft's metrics as a tokio watch (its own receiver type offers no `wait_for`). The copy
/// follows every change and closes when openraft drops its sender (the engine stopped), as the
/// original would.
fn bridge_metrics(raft: &Raft, runtime: &tokio::runtime::Handle) -> watch::Receiver<RaftMetrics> {
    use openraft::async_runtime::WatchReceiver;
    let mut source = raft.metrics();
    let (copy, receiver) = watch::channel(source.borrow_and_update().clone());
    runtime.spawn(async move {
        while source.changed().await.is_ok() {
            copy.send_replace(source.borrow_and_update().clone());
        }
    });
    receiver
}

fn fatal_to_cluster_error(error: Fatal<TypeConfig>) -> ClusterError {
    match error {
        Fatal::StorageError(e) => ClusterError::Storage(e.to_string()),
        other => ClusterError::Raft(other.to_string()),
    }
}

fn fatal_to_propose_error(error: Fatal<TypeConfig>) -> ProposeError {
    match error {
        Fatal::Stopped => ProposeError::ShuttingDown,
        Fatal::StorageError(e) => ProposeError::Storage(e.to_string()),
        Fatal::Panicked => ProposeError::Fatal("consensus task panicked".to_string()),
    }
}

/// Runs an openraft API call on a task of its own, so dropping the caller does not drop the
/// call. openraft 0.10's calls are not cancel-safe once the engine has stopped: a call dropped
/// while it waits for the engine's task to end leaves openraft's record of that task half
/// updated, and every later call panics. Callers here do drop futures (a select on the
/// engine's stop, an HTTP client that goes away).
async fn run_to_completion<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    tokio::spawn(call)
        .await
        .map_err(|e| format!("consensus call failed: {e}"))
}

/// Once the engine stops on its own (a storage failure), lets openraft finish recording it on a
/// task nobody cancels; calls made after that get the failure instead of a panic.
fn spawn_stop_recorder(node: Node, runtime: &tokio::runtime::Handle) {
    runtime.spawn(async move {
        let _ = node.consensus_stopped().await;
        let _ = node.inner.raft.shutdown().await;
    });
}

fn disk_full_message(free: u64, reserve: u64) -> String {
    format!(
        "the data directory's disk is almost full ({} MiB free, {} MiB reserved): writes are refused until space returns; reads are served",
        free >> 20,
        reserve >> 20
    )
}

impl Node {
    /// Proposes on this node, which must lead: stamped with this node's clock.
    pub(crate) async fn propose_as_leader(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, ProposeError> {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        if let Some((free, reserve)) = self.inner.disk.full() {
            return Err(ProposeError::StorageUnavailable(disk_full_message(
                free, reserve,
            )));
        }
        if let Some(cluster) = &self.inner.cluster {
            if cluster.writes_held_until_ms.load(Ordering::SeqCst) > cluster_mode::unix_ms() {
                // Leadership is moving away: the caller follows it to the new leader.
                return Err(ProposeError::NotLeader { leader: None });
            }
            cluster_mode::ensure_leader_clock(self).await?;
        }
        let proposal = Proposal {
            timestamp_ns: cluster_mode::wall_clock_ns(self),
            commands,
        };
        let raft = self.inner.raft.clone();
        let write = run_to_completion(async move {
            raft.client_write(ProposalData::Decoded(Arc::new(proposal)))
                .await
        });
        let written = tokio::select! {
            biased; // an answer that is there wins over the engine's stop
            written = write => written.map_err(ProposeError::Fatal)?,
            fatal = self.consensus_stopped() => return Err(fatal_to_propose_error(fatal)),
        };
        match written {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ProposeError::Fatal(e.to_string()))
            }
            // Neither happens to a plain write (no preconditions, no discarding API in use);
            // if one did, nothing was applied.
            Err(RaftError::APIError(other)) => Err(ProposeError::Unavailable(other.to_string())),
            Err(RaftError::Fatal(fatal)) => Err(fatal_to_propose_error(fatal)),
        }
    }

    /// On the leader: confirms leadership with a quorum and returns the index a linearizable
    /// read must see (whoever reads waits until it applied that far).
    pub(crate) async fn leader_read_index(&self) -> Result<u64, ProposeError> {
        let raft = self.inner.raft.clone();
        let check = run_to_completion(async move {
            raft.get_read_log_id(openraft::ReadPolicy::ReadIndex)
                .await
                .map(|(read, _)| read.index())
        });
        let linearizable = tokio::select! {
            biased;
            checked = check => checked.map_err(ProposeError::Fatal)?,
            fatal = self.consensus_stopped() => return Err(fatal_to_propose_error(fatal)),
        };
        match linearizable {
            Ok(read_index) => Ok(read_index),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(forward))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(e))) => {
                tracing::warn!(error = %e, "read refused: leadership not confirmed by a quorum");
                Err(ProposeError::NotLeader { leader: None })
            }
            Err(RaftError::Fatal(fatal)) => Err(fatal_to_propose_error(fatal)),
        }
    }
}

impl Consensus for Node {
    /// The leader only. A member that knows a leader is healthy (`health` is `Serving`: it
    /// forwards writes), but the work that must run once per group (the table scheduler, the
    /// payment driver, webhooks, the AML pipeline) asks this. Regression: it asked `health`
    /// alone, so every member of a cluster drove payments and sent every webhook.
    fn is_serving_writes(&self) -> bool {
        self.is_leader() && self.health() == NodeHealth::Serving
    }

    fn serving_term(&self) -> Option<u64> {
        // One look at the metrics, so the term is the one this node leads in.
        let term = {
            let metrics = self.inner.metrics.borrow();
            let leads =
                metrics.state.is_leader() && metrics.current_leader == Some(self.inner.node_id);
            leads.then_some(metrics.current_term)
        };
        term.filter(|_| self.health() == NodeHealth::Serving)
    }

    async fn propose(&self, commands: Vec<Command>) -> Result<Vec<CommandResult>, ProposeError> {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        match self.inner.cluster {
            Some(_) => self.propose_anywhere(commands).await,
            None => self.propose_as_leader(commands).await,
        }
    }

    async fn read<R, F>(&self, read: F) -> Result<R, ProposeError>
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        if self.inner.cluster.is_some() && !self.is_leader() {
            let index = self.read_index_anywhere().await?;
            self.wait_applied(index).await?;
            return self.read_stale(read).await;
        }
        let index = self.leader_read_index().await?;
        self.wait_applied(index).await?;
        self.read_stale(read).await
    }

    async fn read_stale<R, F>(&self, read: F) -> Result<R, ProposeError>
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        let ledger = self.inner.shared.ledger.read().await;
        let history = self.inner.shared.history();
        Ok(read(&LedgerView::new(&ledger, &history)))
    }

    async fn cluster_status(&self) -> Option<ClusterStatus> {
        match self.inner.cluster {
            Some(_) => Some(Node::cluster_status(self).await),
            None => None,
        }
    }

    async fn cluster_admin(&self, request: AdminRequest) -> Result<(), AdminError> {
        match self.inner.cluster {
            Some(_) => self.admin(request).await,
            None => Err(AdminError::NotClustered),
        }
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<EventPage, ReadError> {
        let shared = &self.inner.shared;
        events::read_after(&shared.events(), &shared.history(), after, limit)
    }

    fn events_last(&self) -> u64 {
        self.inner.shared.applied.borrow().events_last
    }

    async fn wait_for_event_after(&self, after: u64) {
        let mut applied = self.inner.shared.applied.subscribe();
        let _ = applied
            .wait_for(|applied| applied.events_last > after)
            .await;
    }

    fn health(&self) -> NodeHealth {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return NodeHealth::Stopped;
        }
        let metrics = self.inner.metrics.borrow();
        if let Err(fatal) = &metrics.running_state {
            return NodeHealth::Failed(self.failure_reason(fatal));
        }
        let leads = metrics.state.is_leader() && metrics.current_leader == Some(self.inner.node_id);
        // A member serves (forwarding writes) while it knows a leader; alone, only as leader.
        let ready = leads || (self.inner.cluster.is_some() && metrics.current_leader.is_some());
        if !ready {
            return NodeHealth::NotReady;
        }
        match self.inner.disk.full() {
            Some((free_bytes, reserve_bytes)) => NodeHealth::DiskFull {
                free_bytes,
                reserve_bytes,
            },
            None => NodeHealth::Serving,
        }
    }
}
