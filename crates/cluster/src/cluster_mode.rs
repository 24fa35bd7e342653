//! A node as a member of a replicated group: where writes and reads go when this node does not
//! lead, the cluster's status, membership changes and leadership transfer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use croupier_core::codec::{decode_results, encode_proposal};
use croupier_core::command::Proposal;
use croupier_core::{Command, CommandResult};
use openraft::{BasicNode, ChangeMembers, ServerState};

use crate::clock::{ClockGuard, ClockVerdict};
use crate::host::HostNetwork;
use crate::transport::{u64_at, CallError, Kind, PeerSecret, Peers, Registry, RemoteError};
use crate::{Node, ProposeError};

/// The Raft group of the ledger. Every frame and every group-scoped record names its group.
pub const LEDGER_GROUP_ID: u64 = 1;

/// A member of the initial cluster (from the cluster config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node_id: u64,
    /// Node-to-node address.
    pub peer_addr: String,
    /// HTTP API address.
    pub api_addr: String,
}

/// How a node takes part in a replicated cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where this node listens for its peers.
    pub peer_listen: String,
    /// This node's HTTP address, as reported in the cluster's status.
    pub api_addr: String,
    /// The initial members; the lowest id among them forms the cluster on first start.
    pub members: Vec<Member>,
    /// The peer address of a member to ask for admission (a node that joins a running cluster).
    pub join: Option<String>,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A leader whose wall clock is farther than this from a quorum's refuses to propose.
    pub clock_skew_max_ms: u64,
    /// Fault injection: this node's wall clock reads this many ms off.
    pub clock_offset_ms: i64,
    /// Fault injection: (member peer address, address to dial instead) for this node's
    /// outgoing connections, so a test can route every directed link through a proxy.
    pub fault_peer_routes: Vec<(String, String)>,
    /// On corrupt storage, move it to quarantine and catch up from the other replicas (not
    /// voting until caught up) instead of refusing to start.
    pub repair_from_peers: bool,
    /// The secret every member proves on each node-to-node connection. Without one the peer
    /// listener must be on a loopback address (as Redis's protected mode).
    pub peer_secret: PeerSecret,
}

impl ClusterOptions {
    pub fn new(peer_listen: impl Into<String>, api_addr: impl Into<String>) -> Self {
        ClusterOptions {
            peer_listen: peer_listen.into(),
            api_addr: api_addr.into(),
            members: Vec::new(),
            join: None,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            clock_skew_max_ms: 500,
            clock_offset_ms: 0,
            fault_peer_routes: Vec::new(),
            repair_from_peers: false,
            peer_secret: PeerSecret::none(),
        }
    }
}

/// A node's cluster parts: the host's peer connections and listener registry, and what this
/// group's member keeps about leadership and clocks.
pub(crate) struct ClusterParts {
    pub(crate) options: ClusterOptions,
    pub(crate) peers: Peers,
    pub(crate) registry: Registry,
    pub(crate) peer_addr: String,
    /// Until this many ms since the Unix epoch, writes are held (a leadership transfer).
    pub(crate) writes_held_until_ms: AtomicU64,
    /// Until this many ms since the Unix epoch, this node does not campaign.
    pub(crate) elections_held_until_ms: AtomicU64,
    /// The leader's view of its peers' clocks.
    pub(crate) clock: std::sync::Mutex<ClockGuard>,
    /// When a clock refusal was last logged (ms since the Unix epoch): one line a second.
    pub(crate) clock_warned_ms: AtomicU64,
}

impl ClusterParts {
    pub(crate) fn new(options: &ClusterOptions, network: &HostNetwork) -> ClusterParts {
        ClusterParts {
            options: options.clone(),
            peers: network.peers.clone(),
            registry: network.registry.clone(),
            peer_addr: options.peer_listen.clone(),
            writes_held_until_ms: AtomicU64::new(0),
            elections_held_until_ms: AtomicU64::new(0),
            clock: std::sync::Mutex::new(ClockGuard::new(
                options.clock_skew_max_ms * 1_000_000,
                Duration::from_millis(CLOCK_SAMPLE_AGE_MAX_MS),
            )),
            clock_warned_ms: AtomicU64::new(0),
        }
    }
}

/// How often a leader samples its voters' clocks.
const CLOCK_SAMPLE_INTERVAL_MS: u64 = 500;
/// A clock sample older than this no longer counts.
pub(crate) const CLOCK_SAMPLE_AGE_MAX_MS: u64 = 5_000;

/// While this node leads, samples every voter's wall clock (one round trip each) so proposals
/// can be checked against a quorum's time.
pub(crate) fn spawn_clock_sampler(node: Node) {
    node.consensus_runtime().spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(CLOCK_SAMPLE_INTERVAL_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if node.is_stopped() {
                return;
            }
            if node.is_leader() {
                sample_clocks(&node).await;
                if check_leader_clock(&node).is_err() {
                    step_down_for_clock(&node).await;
                }
            }
        }
    });
}

async fn sample_clocks(node: &Node) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    let metrics = node.metrics();
    let membership = metrics.membership_config.membership();
    let peers: Vec<(u64, String)> = membership
        .voter_ids()
        .filter(|id| *id != node.node_id())
        .filter_map(|id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
        .collect();
    let asks = peers.iter().map(|(peer, addr)| async move {
        let t0 = wall_clock_ns(node);
        let timeout = Duration::from_millis(PEER_QUERY_TIMEOUT_MS);
        let answer = cluster
            .peers
            .call(addr, node.group_id(), Kind::Clock, Vec::new(), timeout)
            .await;
        let t1 = wall_clock_ns(node);
        let remote = u64_at(&answer.ok()?, 0)?;
        Some((*peer, t0, remote, t1))
    });
    let samples = futures_util::future::join_all(asks).await;
    let mut clock = cluster.clock.lock().unwrap_or_else(|p| p.into_inner());
    for (peer, t0, remote, t1) in samples.into_iter().flatten() {
        clock.record(peer, t0, remote, t1, monotonic_now());
    }
}

/// A leader whose clock is off hands leadership to a voter with the whole log and does not
/// campaign while its clock stays off: the cluster keeps taking writes, stamped by a good clock.
async fn step_down_for_clock(node: &Node) {
    let metrics = node.metrics();
    let target = metrics.replication.as_ref().and_then(|replication| {
        replication
            .iter()
            .filter(|(id, _)| **id != node.node_id())
            .filter(|(id, _)| {
                metrics
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == **id)
            })
            .max_by_key(|(_, matched)| matched.map(|m| m.index))
            .map(|(id, _)| *id)
    });
    let Some(target) = target else { return };
    tracing::warn!(
        target,
        "handing leadership over: this node's clock is off its peers'"
    );
    let hold = Duration::from_millis(CLOCK_SAMPLE_AGE_MAX_MS * 2);
    if let Err(error) = transfer_leadership(node, target).await {
        tracing::warn!(%error, "leadership hand-over failed; proposals stay refused");
    }
    hold_elections(node, hold);
}

fn clock_verdict(node: &Node, cluster: &ClusterParts) -> ClockVerdict {
    let voters: Vec<u64> = node
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    cluster
        .clock
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .verdict(node.node_id(), &voters, monotonic_now())
}

/// Before a leader stamps an entry: its clock must agree with a quorum's within the bound.
/// Right after an election there are no fresh samples yet: take them now (one round trip). A
/// leader that still cannot confirm its clock refuses too: a quorum that answers Raft but not
/// a clock query is rare, and stamping unchecked is what this guards against.
pub(crate) async fn ensure_leader_clock(node: &Node) -> Result<(), ProposeError> {
    let Some(cluster) = node.cluster() else {
        return Ok(());
    };
    if matches!(clock_verdict(node, cluster), ClockVerdict::Unknown) {
        sample_clocks(node).await;
        if matches!(clock_verdict(node, cluster), ClockVerdict::Unknown) {
            return Err(ProposeError::ClockUnsynchronized(
                "the leader cannot confirm its clock with a quorum of its peers yet; retry shortly"
                    .into(),
            ));
        }
    }
    check_leader_clock(node)
}

/// Refuses a proposal when this leader's clock is off a quorum's by more than the bound.
pub(crate) fn check_leader_clock(node: &Node) -> Result<(), ProposeError> {
    let Some(cluster) = node.cluster() else {
        return Ok(());
    };
    let ClockVerdict::Skewed { offset_ns } = clock_verdict(node, cluster) else {
        return Ok(());
    };
    metrics::counter!(crate::metric_names::CLOCK_REFUSALS).increment(1);
    let offset_ms = offset_ns / 1_000_000;
    let now_ms = unix_ms();
    if cluster.clock_warned_ms.swap(now_ms, Ordering::SeqCst) + 1_000 <= now_ms {
        tracing::warn!(
            offset_ms,
            bound_ms = cluster.options.clock_skew_max_ms,
            "this leader's clock is off its peers': proposals refused instead of moving ledger time"
        );
    }
    Err(ProposeError::ClockUnsynchronized(format!(
        "the leader's clock is {offset_ms} ms off a quorum of its peers (bound {} ms): it refuses to stamp entries until its clock is fixed or another node leads",
        cluster.options.clock_skew_max_ms
    )))
}

/// Time a forwarded call may take (a proposal waits for its entry's fsync and apply).
const FORWARD_TIMEOUT_MS: u64 = 10_000;
/// Time a status or clock call to a peer may take.
const PEER_QUERY_TIMEOUT_MS: u64 = 500;
/// How many times a proposal follows a leader change before giving up.
const LEADER_CHANGES_FOLLOWED_MAX: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Unreachable,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Unreachable => "unreachable",
        }
    }

    fn of(state: ServerState) -> Role {
        match state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner | ServerState::Shutdown => Role::Learner,
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Role {
        match code {
            0 => Role::Leader,
            1 => Role::Follower,
            2 => Role::Candidate,
            3 => Role::Learner,
            _ => Role::Unreachable,
        }
    }
}

/// One node as the cluster status shows it; `None` where an unreachable node could not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    pub role: Role,
    pub voter: bool,
    pub term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Entries the node's applied state is behind the leader's last log index.
    pub lag: Option<u64>,
    pub peer_addr: String,
    pub api_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub nodes: Vec<NodeStatus>,
}

/// What a node says of itself to a status query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalStatus {
    node_id: u64,
    role: Role,
    term: u64,
    last_log_index: u64,
    applied_index: u64,
    api_addr: String,
}

impl LocalStatus {
    pub(crate) fn of(node: &Node) -> LocalStatus {
        let metrics = node.metrics();
        LocalStatus {
            node_id: node.node_id(),
            role: Role::of(metrics.state),
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied_index: node.applied_index(),
            api_addr: node
                .cluster()
                .map(|c| c.options.api_addr.clone())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.node_id.to_le_bytes());
        out.push(self.role.code());
        for n in [self.term, self.last_log_index, self.applied_index] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(self.api_addr.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<LocalStatus> {
        let number = |at: usize| u64_at(bytes, at);
        Some(LocalStatus {
            node_id: number(0)?,
            role: Role::from_code(*bytes.get(8)?),
            term: number(9)?,
            last_log_index: number(17)?,
            applied_index: number(25)?,
            api_addr: String::from_utf8_lossy(bytes.get(33..)?).into_owned(),
        })
    }
}

/// A membership or leadership change, executed by the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    AddNode { node_id: u64, peer_addr: String },
    RemoveNode { node_id: u64 },
    TransferLeader { node_id: u64 },
}

impl AdminRequest {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let (code, node_id, text) = match self {
            AdminRequest::AddNode { node_id, peer_addr } => (1u8, *node_id, peer_addr.as_str()),
            AdminRequest::RemoveNode { node_id } => (2, *node_id, ""),
            AdminRequest::TransferLeader { node_id } => (3, *node_id, ""),
        };
        out.push(code);
        out.extend_from_slice(&node_id.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<AdminRequest, String> {
        let node_id = u64_at(bytes, 1).ok_or("admin request truncated")?;
        let text = || String::from_utf8(bytes[9..].to_vec()).map_err(|_| "address is not UTF-8");
        match bytes[0] {
            1 => Ok(AdminRequest::AddNode {
                node_id,
                peer_addr: text()?,
            }),
            2 => Ok(AdminRequest::RemoveNode { node_id }),
            3 => Ok(AdminRequest::TransferLeader { node_id }),
            other => Err(format!("unknown admin request {other}")),
        }
    }
}

/// Why a membership or leadership change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("no leader is known right now; retry shortly")]
    NoLeader,
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("this node is not part of a cluster")]
    NotClustered,
}

impl From<RemoteError> for AdminError {
    fn from(error: RemoteError) -> Self {
        match error {
            RemoteError::NotLeader { .. } => AdminError::NoLeader,
            RemoteError::Refused(message) => AdminError::Refused(message),
            other => AdminError::Unavailable(other.to_string()),
        }
    }
}

impl From<CallError> for AdminError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Remote(remote) => remote.into(),
            other => AdminError::Unavailable(other.to_string()),
        }
    }
}

/// Monotonic time as tokio's clock reads it (a simulation's clock when one runs).
fn monotonic_now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

pub(crate) fn unix_ms() -> u64 {
    crate::wall_clock::unix_time_ns() / 1_000_000
}

/// This node's wall clock as it reports it to peers (with the fault-injection offset).
pub(crate) fn wall_clock_ns(node: &Node) -> u64 {
    let offset_ms = node.cluster().map_or(0, |c| c.options.clock_offset_ms);
    crate::wall_clock::unix_time_ns().saturating_add_signed(offset_ms.saturating_mul(1_000_000))
}

/// Stops this node from campaigning for `duration` (another node is taking over).
pub(crate) fn hold_elections(node: &Node, duration: Duration) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    let until = unix_ms() + duration.as_millis() as u64;
    cluster
        .elections_held_until_ms
        .fetch_max(until, Ordering::SeqCst);
    node.raft().runtime_config().elect(false);
    let node = node.clone();
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        let held_until = node
            .cluster()
            .map_or(0, |c| c.elections_held_until_ms.load(Ordering::SeqCst));
        if unix_ms() >= held_until && !node.is_stopped() {
            node.raft().runtime_config().elect(true);
        }
    });
}

impl Node {
    /// The leader's peer address, if a leader other than this node is known.
    pub(crate) fn leader_peer(&self) -> Option<(u64, String)> {
        let metrics = self.metrics();
        let leader = metrics.current_leader?;
        if leader == self.node_id() {
            return None;
        }
        let node = metrics.membership_config.membership().get_node(&leader)?;
        Some((leader, node.addr.clone()))
    }

    /// Waits up to one election for some leader to be known.
    async fn wait_for_leader(&self) -> Option<u64> {
        let max_ms = self
            .cluster()
            .map_or(1_000, |c| c.options.election_timeout_max_ms * 2);
        let mut metrics = self.metrics_watch();
        let waited = tokio::time::timeout(
            Duration::from_millis(max_ms),
            metrics.wait_for(|m| m.current_leader.is_some()),
        )
        .await;
        match waited {
            Ok(Ok(m)) => m.current_leader,
            _ => None,
        }
    }

    /// Proposes on the leader, whichever node that is: here, or forwarded to it (following
    /// leader changes while the forwarded batch was certainly not applied).
    pub(crate) async fn propose_anywhere(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, ProposeError> {
        for _ in 0..LEADER_CHANGES_FOLLOWED_MAX {
            let Some(leader) = self.wait_for_leader().await else {
                return Err(ProposeError::NoLeader);
            };
            if leader == self.node_id() {
                // The batch moves into the log entry (no copy of up to ~1 MiB per write); a
                // leadership change at this very moment answers 503 not_leader, which clients
                // retry like any other 503.
                return self.propose_as_leader(commands).await;
            }
            let outcome = self.forward_proposal(&commands).await;
            match outcome {
                // Definitely not applied: follow the leader change.
                Err(ProposeError::NotLeader { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
        Err(ProposeError::NoLeader)
    }

    async fn forward_proposal(
        &self,
        commands: &[Command],
    ) -> Result<Vec<CommandResult>, ProposeError> {
        let (leader, addr) = self
            .leader_peer()
            .ok_or(ProposeError::NotLeader { leader: None })?;
        let cluster = self
            .cluster()
            .ok_or(ProposeError::NotLeader { leader: None })?;
        let proposal = Proposal {
            timestamp_ns: 0, // the leader stamps its own time
            commands: commands.to_vec(),
        };
        let mut payload = Vec::new();
        encode_proposal(&proposal, &mut payload);
        let answer = cluster
            .peers
            .call(
                &addr,
                self.group_id(),
                Kind::Propose,
                payload,
                Duration::from_millis(FORWARD_TIMEOUT_MS),
            )
            .await;
        match answer {
            Ok(bytes) => decode_results(&bytes).map_err(|e| {
                ProposeError::OutcomeUnknown(format!("leader {leader} answered garbage: {e}"))
            }),
            Err(CallError::Remote(RemoteError::NotLeader { leader })) => {
                Err(ProposeError::NotLeader { leader })
            }
            Err(CallError::Unreachable { reason, .. }) => {
                // Never sent: safe to report as not applied.
                tracing::debug!(leader, %reason, "leader unreachable for a forwarded proposal");
                Err(ProposeError::NotLeader { leader: None })
            }
            Err(CallError::Remote(remote)) => Err(ProposeError::Unavailable(remote.to_string())),
            Err(lost @ CallError::NoAnswer { .. }) => {
                Err(ProposeError::OutcomeUnknown(lost.to_string()))
            }
        }
    }

    /// The index a linearizable read must see, from the leader (here or over the network).
    pub(crate) async fn read_index_anywhere(&self) -> Result<u64, ProposeError> {
        let Some(leader) = self.wait_for_leader().await else {
            return Err(ProposeError::NoLeader);
        };
        if leader == self.node_id() {
            return self.leader_read_index().await;
        }
        let (_, addr) = self.leader_peer().ok_or(ProposeError::NoLeader)?;
        let cluster = self.cluster().ok_or(ProposeError::NoLeader)?;
        let answer = cluster
            .peers
            .call(
                &addr,
                self.group_id(),
                Kind::ReadIndex,
                Vec::new(),
                Duration::from_millis(FORWARD_TIMEOUT_MS),
            )
            .await
            .map_err(|e| match e {
                CallError::Remote(RemoteError::NotLeader { leader }) => {
                    ProposeError::NotLeader { leader }
                }
                other => ProposeError::Unavailable(other.to_string()),
            })?;
        let index = u64_at(&answer, 0)
            .ok_or_else(|| ProposeError::Unavailable("malformed read index".into()))?;
        Ok(index)
    }

    /// Waits until this node applied `index` (a follower read after a read index).
    pub(crate) async fn wait_applied(&self, index: u64) -> Result<(), ProposeError> {
        let mut applied = self.shared().applied.subscribe();
        let waited = tokio::time::timeout(
            Duration::from_millis(FORWARD_TIMEOUT_MS),
            applied.wait_for(|a| a.index >= index),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ProposeError::Unavailable(format!(
                "this node has not applied up to the leader's read index {index} yet"
            ))),
        }
    }

    /// The cluster as this node sees it, each member asked for its own view.
    pub async fn cluster_status(&self) -> ClusterStatus {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let nodes: Vec<(u64, BasicNode)> =
            membership.nodes().map(|(id, n)| (*id, n.clone())).collect();
        let asks = nodes
            .iter()
            .map(|(id, node)| self.ask_status(*id, node.addr.clone()));
        let answers = futures_util::future::join_all(asks).await;
        let leader_last = answers
            .iter()
            .flatten()
            .filter(|s| s.role == Role::Leader)
            .map(|s| s.last_log_index)
            .max();
        let nodes = nodes
            .into_iter()
            .zip(answers)
            .map(|((id, node), answer)| {
                node_status(id, &node, answer, voters.contains(&id), leader_last)
            })
            .collect();
        ClusterStatus {
            node_id: self.node_id(),
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            nodes,
        }
    }

    async fn ask_status(&self, node_id: u64, addr: String) -> Option<LocalStatus> {
        if node_id == self.node_id() {
            return Some(LocalStatus::of(self));
        }
        let cluster = self.cluster()?;
        let answer = cluster
            .peers
            .call(
                &addr,
                self.group_id(),
                Kind::Status,
                Vec::new(),
                Duration::from_millis(PEER_QUERY_TIMEOUT_MS),
            )
            .await
            .ok()?;
        LocalStatus::decode(&answer)
    }

    /// The leader's last log index, asked of the leader itself (None: no leader reachable).
    pub(crate) async fn leader_last_log_index(&self) -> Option<u64> {
        let (leader, addr) = self.leader_peer()?;
        let status = self.ask_status(leader, addr).await?;
        (status.role == Role::Leader).then_some(status.last_log_index)
    }

    /// Adds, removes a member or moves leadership; forwarded to the leader when needed.
    pub async fn admin(&self, request: AdminRequest) -> Result<(), AdminError> {
        admin(self, request).await.map_err(AdminError::from)
    }
}

fn node_status(
    node_id: u64,
    node: &BasicNode,
    answer: Option<LocalStatus>,
    voter: bool,
    leader_last: Option<u64>,
) -> NodeStatus {
    let peer_addr = node.addr.clone();
    match answer {
        Some(status) => NodeStatus {
            node_id,
            role: if voter || status.role != Role::Follower {
                status.role
            } else {
                Role::Learner
            },
            voter,
            term: Some(status.term),
            last_log_index: Some(status.last_log_index),
            applied_index: Some(status.applied_index),
            lag: leader_last.map(|last| last.saturating_sub(status.applied_index)),
            peer_addr,
            api_addr: Some(status.api_addr).filter(|a| !a.is_empty()),
        },
        None => NodeStatus {
            node_id,
            role: Role::Unreachable,
            voter,
            term: None,
            last_log_index: None,
            applied_index: None,
            lag: None,
            peer_addr,
            api_addr: None,
        },
    }
}

/// Runs an admin request on the leader: here if this node leads, else forwarded once.
pub(crate) async fn admin(node: &Node, request: AdminRequest) -> Result<(), RemoteError> {
    let cluster = node.cluster().ok_or(RemoteError::Refused(
        "this node is not part of a cluster".into(),
    ))?;
    let metrics = node.metrics();
    if metrics.current_leader == Some(node.node_id()) {
        return admin_as_leader(node, request).await;
    }
    let (_, addr) = node
        .leader_peer()
        .ok_or(RemoteError::NotLeader { leader: None })?;
    let timeout = Duration::from_millis(600_000); // adding a node waits for it to catch up
    match cluster
        .peers
        .call(
            &addr,
            node.group_id(),
            Kind::Admin,
            request.encode(),
            timeout,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(CallError::Remote(remote)) => Err(remote),
        Err(other) => Err(RemoteError::Unavailable(other.to_string())),
    }
}

async fn admin_as_leader(node: &Node, request: AdminRequest) -> Result<(), RemoteError> {
    let raft = node.raft();
    let refused = |e: String| RemoteError::Refused(e);
    match request {
        AdminRequest::AddNode { node_id, peer_addr } => {
            let membership = node.metrics().membership_config.membership().clone();
            if membership.voter_ids().any(|id| id == node_id) {
                return Ok(()); // already a voter: joining again (a restart) changes nothing
            }
            tracing::info!(node_id, %peer_addr, "adding a node: as a learner until it caught up");
            raft.add_learner(node_id, BasicNode::new(peer_addr), true)
                .await
                .map_err(|e| refused(e.to_string()))?;
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
                .await
                .map_err(|e| refused(e.to_string()))?;
            tracing::info!(node_id, "the node is a voter");
            Ok(())
        }
        AdminRequest::RemoveNode { node_id } => {
            let membership = node.metrics().membership_config.membership().clone();
            if membership.get_node(&node_id).is_none() {
                return Err(refused(format!("node {node_id} is not a member")));
            }
            let voters: BTreeSet<u64> =
                membership.voter_ids().filter(|id| *id != node_id).collect();
            if voters.is_empty() {
                return Err(refused("cannot remove the last voter".into()));
            }
            raft.change_membership(
                ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                false,
            )
            .await
            .map_err(|e| refused(e.to_string()))?;
            raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false)
                .await
                .map_err(|e| refused(e.to_string()))?;
            tracing::info!(node_id, "node removed from the cluster");
            Ok(())
        }
        AdminRequest::TransferLeader { node_id } => transfer_leadership(node, node_id).await,
    }
}

/// openraft 0.9 has no leadership transfer: this node holds writes and heartbeats, asks every
/// other voter to hold elections, waits out the followers' leader lease, and asks the target to
/// campaign. The target has the whole log (checked first), so it wins.
async fn transfer_leadership(node: &Node, target: u64) -> Result<(), RemoteError> {
    let cluster = node.cluster().ok_or(RemoteError::Refused(
        "this node is not part of a cluster".into(),
    ))?;
    if target == node.node_id() {
        return Ok(());
    }
    let membership = node.metrics().membership_config.membership().clone();
    if !membership.voter_ids().any(|id| id == target) {
        return Err(RemoteError::Refused(format!(
            "node {target} is not a voter"
        )));
    }
    wait_caught_up(node, target).await?;
    let lease_ms = cluster.options.election_timeout_max_ms;
    let hold_ms = lease_ms * 4;
    cluster
        .writes_held_until_ms
        .store(unix_ms() + hold_ms, Ordering::SeqCst);
    let raft = node.raft();
    raft.runtime_config().heartbeat(false);
    hold_elections(node, Duration::from_millis(hold_ms));
    let addrs: BTreeMap<u64, String> = membership
        .nodes()
        .map(|(id, n)| (*id, n.addr.clone()))
        .collect();
    for voter in membership
        .voter_ids()
        .filter(|id| *id != target && *id != node.node_id())
    {
        let payload = hold_ms.to_le_bytes().to_vec();
        let timeout = Duration::from_millis(PEER_QUERY_TIMEOUT_MS);
        let _ = cluster
            .peers
            .call(
                &addrs[&voter],
                node.group_id(),
                Kind::HoldElections,
                payload,
                timeout,
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(lease_ms + 50)).await;
    let campaign = cluster
        .peers
        .call(
            &addrs[&target],
            node.group_id(),
            Kind::Campaign,
            Vec::new(),
            Duration::from_millis(PEER_QUERY_TIMEOUT_MS),
        )
        .await;
    let mut metrics = node.metrics_watch();
    let moved = tokio::time::timeout(
        Duration::from_millis(hold_ms),
        metrics.wait_for(|m| m.current_leader == Some(target)),
    )
    .await
    .is_ok_and(|waited| waited.is_ok());
    raft.runtime_config().heartbeat(true);
    cluster.writes_held_until_ms.store(0, Ordering::SeqCst);
    match (campaign, moved) {
        (_, true) => {
            tracing::info!(target, "leadership transferred");
            Ok(())
        }
        (Err(error), _) => Err(RemoteError::Unavailable(format!(
            "node {target} did not campaign: {error}"
        ))),
        _ => Err(RemoteError::Unavailable(format!(
            "node {target} did not take over in time"
        ))),
    }
}

/// Waits (a few seconds at most) until `target` holds this leader's whole log.
async fn wait_caught_up(node: &Node, target: u64) -> Result<(), RemoteError> {
    let mut metrics = node.metrics_watch();
    let caught_up = tokio::time::timeout(
        Duration::from_millis(5_000),
        metrics.wait_for(|m| {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).cloned().flatten())
                .map(|id| id.index);
            matched.is_some() && matched >= m.last_log_index
        }),
    )
    .await;
    match caught_up {
        Ok(Ok(_)) => Ok(()),
        _ => Err(RemoteError::Unavailable(format!(
            "node {target} has not caught up with the leader's log"
        ))),
    }
}

/// Asks a member (by peer address) to admit this node; retried until it answers.
pub(crate) async fn join(node: Node, via: String) {
    let Some(cluster) = node.cluster() else {
        return;
    };
    let request = AdminRequest::AddNode {
        node_id: node.node_id(),
        peer_addr: cluster.peer_addr.clone(),
    };
    for attempt in 1u32.. {
        if node.is_stopped() {
            return;
        }
        let timeout = Duration::from_millis(600_000);
        match cluster
            .peers
            .call(
                &via,
                node.group_id(),
                Kind::Admin,
                request.encode(),
                timeout,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(via = %via, "joined the cluster as a voter");
                return;
            }
            Err(error) => {
                tracing::warn!(via = %via, attempt, %error, "cannot join the cluster yet; retrying");
                tokio::time::sleep(Duration::from_millis(1_000)).await;
            }
        }
    }
}

/// The initial members as openraft's membership map (peer addresses).
pub(crate) fn members_map(members: &[Member]) -> BTreeMap<u64, BasicNode> {
    members
        .iter()
        .map(|m| (m.node_id, BasicNode::new(m.peer_addr.clone())))
        .collect()
}
