//! What one process shares among the Raft groups it hosts: one consensus runtime (every
//! group's Raft core, state machine worker and background tasks are tasks on it), one log
//! writer thread (one fsync stream for every group's log) and, in a cluster, one node-to-node
//! listener and one connection per peer (the group id travels in every frame).
//!
//! A group is opened with `Host::start_group(group_id, config)`: adding one is configuration
//! (an id and a data directory), not code, and costs tasks, not threads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::log_writer::LogWriter;
use crate::transport::{self, PeerNet, PeerSecret, Peers, Registry, TcpNet};
use crate::{ClusterError, Node, NodeConfig};

/// Worker threads of the consensus runtime by default: the Raft cores and the state machine
/// workers run in parallel, so the fsync of one entry overlaps the apply of the previous one.
pub const CONSENSUS_WORKER_THREADS_DEFAULT: usize = 2;
/// Threads for the groups' blocking calls (free-space samples, checkpoint file writes), shared
/// by every group: more groups queue for them rather than add threads.
pub const CONSENSUS_BLOCKING_THREADS_MAX: usize = 4;

/// How a process takes part in consensus, whatever groups it hosts.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// This process's node id, the same in every group it is a member of.
    pub node_id: u64,
    pub consensus_worker_threads: usize,
    /// The node-to-node listener (None: groups without peers).
    pub peers: Option<PeerEndpoint>,
    pub execution: Execution,
}

/// Where the host's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Execution {
    /// A consensus runtime and a log writer thread of the host's own (every real node).
    #[default]
    Threads,
    /// Everything on the tokio runtime that starts the host, the log written and synced in
    /// place: no thread of its own, so a deterministic simulation decides every interleaving.
    Inline,
}

/// The process's node-to-node listener and how it dials its peers.
#[derive(Debug, Clone)]
pub struct PeerEndpoint {
    pub listen: String,
    /// Every connection, both ways, proves this secret. Without one the listener must be on a
    /// loopback address.
    pub secret: PeerSecret,
    /// Fault injection: (member peer address, address to dial instead).
    pub routes: Vec<(String, String)>,
    /// TCP on a real node; a simulated network under deterministic simulation.
    pub net: Arc<dyn PeerNet>,
}

impl HostConfig {
    /// The host a single-group node needs (`Node::start`).
    pub fn for_node(config: &NodeConfig) -> HostConfig {
        HostConfig {
            node_id: config.node_id,
            consensus_worker_threads: CONSENSUS_WORKER_THREADS_DEFAULT,
            peers: config.cluster.as_ref().map(|options| PeerEndpoint {
                listen: options.peer_listen.clone(),
                secret: options.peer_secret.clone(),
                routes: options.fault_peer_routes.clone(),
                net: Arc::new(TcpNet),
            }),
            execution: Execution::Threads,
        }
    }
}

/// The shared parts (cheap to clone). Stop it with `shutdown` once its groups are shut down.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    node_id: u64,
    runtime: Mutex<Option<ConsensusRuntime>>,
    runtime_handle: tokio::runtime::Handle,
    writer: LogWriter,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    network: Option<HostNetwork>,
    /// The groups started and not yet shut down (weak: a group's last handle still frees it).
    groups: Mutex<BTreeMap<u64, Weak<crate::NodeInner>>>,
    stopped: AtomicBool,
}

/// The process's peer connections and the listener's group registry.
pub(crate) struct HostNetwork {
    pub(crate) peers: Peers,
    pub(crate) registry: Registry,
    pub(crate) local_addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Host {
    /// Starts the runtime, the log writer thread and (with `peers`) the listener.
    pub async fn start(config: HostConfig) -> Result<Host, ClusterError> {
        let runtime = match config.execution {
            Execution::Threads => Some(
                ConsensusRuntime::spawn(config.consensus_worker_threads.max(1)).map_err(|e| {
                    ClusterError::Raft(format!("cannot start the consensus runtime: {e}"))
                })?,
            ),
            Execution::Inline => None,
        };
        let runtime_handle = runtime
            .as_ref()
            .map_or_else(tokio::runtime::Handle::current, |r| r.runtime.clone());
        let network = match &config.peers {
            Some(endpoint) => match start_listener(endpoint, &runtime_handle).await {
                Ok(network) => Some(network),
                Err(error) => {
                    stop_runtime(runtime).await;
                    return Err(error);
                }
            },
            None => None,
        };
        let (writer, writer_thread) = match start_writer(config.execution) {
            Ok(started) => started,
            Err(error) => {
                if let Some(network) = &network {
                    let _ = network.stop.send(true);
                }
                stop_runtime(runtime).await;
                return Err(error);
            }
        };
        Ok(Host {
            inner: Arc::new(HostInner {
                node_id: config.node_id,
                runtime_handle,
                runtime: Mutex::new(runtime),
                writer,
                writer_thread: Mutex::new(writer_thread),
                network,
                groups: Mutex::new(BTreeMap::new()),
                stopped: AtomicBool::new(false),
            }),
        })
    }

    /// Opens (and recovers) a group's data directory and starts its Raft member on this host.
    /// `config.node_id` must be the host's; its peer listener settings are the host's.
    pub async fn start_group(
        &self,
        group_id: u64,
        config: NodeConfig,
    ) -> Result<Node, ClusterError> {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(ClusterError::Config("the host has stopped".to_string()));
        }
        if config.node_id != self.inner.node_id {
            return Err(ClusterError::Config(format!(
                "group {group_id} is configured as node {} on host node {}",
                config.node_id, self.inner.node_id
            )));
        }
        if config.cluster.is_some() != self.inner.network.is_some() {
            return Err(ClusterError::Config(format!(
                "group {group_id} and its host disagree on whether they have peers"
            )));
        }
        let claimed = {
            let mut groups = lock(&self.inner.groups);
            groups.retain(|_, node| node.strong_count() > 0);
            groups.insert(group_id, Weak::new()).is_none()
        };
        if !claimed {
            return Err(ClusterError::Config(format!(
                "group {group_id} is already running on this host"
            )));
        }
        let started = Node::start_on(self.clone(), group_id, config).await;
        let mut groups = lock(&self.inner.groups);
        match &started {
            Ok(node) => {
                groups.insert(group_id, node.downgrade());
            }
            Err(_) => {
                groups.remove(&group_id);
            }
        }
        started
    }

    /// The groups running on this host, by id.
    pub fn group_ids(&self) -> Vec<u64> {
        let groups = lock(&self.inner.groups);
        groups
            .iter()
            .filter(|(_, node)| node.strong_count() > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// Where the node-to-node listener listens (None without peers).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.network.as_ref().map(|n| n.local_addr)
    }

    /// Shuts down every group still running, then the listener, the log writer and the
    /// runtime. Calling it again does nothing.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let running: Vec<Node> = {
            let groups = lock(&self.inner.groups);
            groups.values().filter_map(Node::upgrade).collect()
        };
        let mut outcome = Ok(());
        for node in running {
            if let Err(error) = node.shutdown_group().await {
                outcome = outcome.and(Err(error));
            }
        }
        if let Some(network) = &self.inner.network {
            let _ = network.stop.send(true);
        }
        let stopped = self.inner.writer.stop().await;
        let thread = lock(&self.inner.writer_thread).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let runtime = lock(&self.inner.runtime).take();
        stop_runtime(runtime).await;
        outcome.and(stopped.map_err(|e| ClusterError::Storage(e.0)))
    }

    pub(crate) fn runtime(&self) -> tokio::runtime::Handle {
        self.inner.runtime_handle.clone()
    }

    pub(crate) fn log_writer(&self) -> &LogWriter {
        &self.inner.writer
    }

    pub(crate) fn network(&self) -> Option<&HostNetwork> {
        self.inner.network.as_ref()
    }

    /// Forgets a group that shut down (its id may be started again).
    pub(crate) fn group_stopped(&self, group_id: u64) {
        lock(&self.inner.groups).remove(&group_id);
    }
}

fn start_writer(execution: Execution) -> Result<(LogWriter, Option<JoinHandle<()>>), ClusterError> {
    match execution {
        Execution::Inline => Ok((LogWriter::inline(), None)),
        Execution::Threads => LogWriter::spawn()
            .map(|(writer, thread)| (writer, Some(thread)))
            .map_err(|e| ClusterError::Storage(format!("cannot start the log writer thread: {e}"))),
    }
}

async fn stop_runtime(runtime: Option<ConsensusRuntime>) {
    if let Some(runtime) = runtime {
        runtime.stop().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds the node-to-node listener on the consensus runtime.
async fn start_listener(
    endpoint: &PeerEndpoint,
    runtime: &tokio::runtime::Handle,
) -> Result<HostNetwork, ClusterError> {
    let registry = Registry::default();
    let (stop, stopped) = watch::channel(false);
    let addr = endpoint.listen.clone();
    let secret = endpoint.secret.clone();
    let net = Arc::clone(&endpoint.net);
    let listening = runtime
        .spawn({
            let registry = registry.clone();
            async move { transport::listen(net.as_ref(), &addr, registry, stopped, secret).await }
        })
        .await
        .map_err(|e| ClusterError::Raft(format!("peer listener task failed: {e}")))?;
    let local = listening.map_err(|e| {
        ClusterError::Config(format!(
            "cannot listen for peers on {}: {e}",
            endpoint.listen
        ))
    })?;
    if endpoint.secret.is_none() && !local.ip().is_loopback() {
        let _ = stop.send(true);
        return Err(ClusterError::Config(format!(
            "the peer listener {local} is not a loopback address and no cluster secret is set: \
             anyone who reaches it could send Raft messages (set [cluster] secret_file)"
        )));
    }
    tracing::info!(peer_addr = %local, authenticated = !endpoint.secret.is_none(), "listening for peers");
    let routes = endpoint.routes.iter().cloned().collect();
    Ok(HostNetwork {
        peers: Peers::new(routes, endpoint.secret.clone(), Arc::clone(&endpoint.net)),
        registry,
        local_addr: local,
        stop,
    })
}

/// openraft's tasks (the Raft cores and the state machine workers) run on a runtime of their
/// own: on a runtime shared with hundreds of HTTP connections, every wake-up of a Raft core
/// (several per entry) would wait behind them in the run queue.
struct ConsensusRuntime {
    runtime: tokio::runtime::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl ConsensusRuntime {
    fn spawn(worker_threads: usize) -> std::io::Result<ConsensusRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .max_blocking_threads(CONSENSUS_BLOCKING_THREADS_MAX)
            .thread_name("croupier-consensus")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("croupier-consensus".to_string())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(ConsensusRuntime {
            runtime: handle,
            stop,
            thread,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
