//! The simulated cluster: one turmoil host per node, each running a real `Host` with the
//! ledger group over its own simulated disk (`SimFileSystem`), and what the fault schedule does
//! to them (crash with power loss, restart).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use croupier_cluster::{
    ClusterOptions, Execution, FreeSpaceProbe, Host, HostConfig, Member, Node, NodeConfig,
    PeerEndpoint, PeerSecret, LEDGER_GROUP_ID,
};
use croupier_store::sim_fs::SimFileSystem;

use crate::net::{MessageFaults, SimNet};

/// Where every node listens for its peers.
pub const PEER_PORT: u16 = 9000;

/// The nodes as the harness and the clients see them.
#[derive(Clone)]
pub struct Nodes {
    /// The running members, by node id (a crashed node is absent until it is back).
    live: Arc<Mutex<BTreeMap<u64, Node>>>,
    /// Each node's disk, kept across crashes.
    disks: Arc<BTreeMap<u64, SimFileSystem>>,
    /// Why each node last stopped or failed to start (for the report of a stuck run).
    stops: Arc<Mutex<BTreeMap<u64, String>>>,
    /// Duplicated and reordered frames on every node's connections.
    pub message_faults: Arc<MessageFaults>,
}

pub fn host_name(node_id: u64) -> String {
    format!("node-{node_id}")
}

impl Nodes {
    pub fn new(count: u64, message_faults: MessageFaults) -> Nodes {
        Nodes {
            message_faults: Arc::new(message_faults),
            live: Arc::default(),
            stops: Arc::default(),
            disks: Arc::new((1..=count).map(|id| (id, SimFileSystem::new())).collect()),
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.disks.keys().copied().collect()
    }

    pub fn live(&self) -> BTreeMap<u64, Node> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, node_id: u64) -> Option<Node> {
        self.live().get(&node_id).cloned()
    }

    /// A node's software, as turmoil restarts it: open the disk, start, serve until it fails.
    /// A node that cannot start (a disk fault during recovery) or that fails (a storage fault)
    /// ends as a process would; the harness restarts it, and the run fails if it never comes
    /// back once the faults stop.
    pub async fn run(&self, node_id: u64) -> turmoil::Result {
        let stopped = match self.start(node_id).await {
            Ok(node) => {
                let reason = node.failed().await;
                self.forget(node_id);
                format!("failed: {reason}")
            }
            Err(error) => format!("did not start: {error}"),
        };
        tracing::info!(node_id, %stopped, "node stopped");
        self.stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_id, stopped);
        Ok(())
    }

    async fn start(&self, node_id: u64) -> Result<Node, croupier_cluster::ClusterError> {
        let net = SimNet::new(Arc::clone(&self.message_faults));
        let host = Host::start(host_config(node_id, net)).await?;
        let disk = self.disks[&node_id].clone();
        let config = node_config(node_id, &self.ids(), disk);
        let node = match host.start_group(LEDGER_GROUP_ID, config).await {
            Ok(node) => node,
            Err(error) => {
                let _ = host.shutdown().await;
                return Err(error);
            }
        };
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_id, node.clone());
        Ok(node)
    }

    /// Why `node_id` last stopped, if it did.
    pub fn last_stop(&self, node_id: u64) -> Option<String> {
        self.stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node_id)
            .cloned()
    }

    /// Power loss: the node's threads stop, its disk keeps only what a real disk could.
    pub fn kill(&self, node_id: u64, seed: u64) {
        let disk = &self.disks[&node_id];
        disk.freeze();
        if let Some(node) = self.forget(node_id) {
            node.stop_background_work();
        }
        disk.crash(seed);
        disk.clear_faults();
    }

    pub fn disk(&self, node_id: u64) -> &SimFileSystem {
        &self.disks[&node_id]
    }

    fn forget(&self, node_id: u64) -> Option<Node> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node_id)
    }
}

fn secret() -> PeerSecret {
    PeerSecret::new(b"croupier simulation cluster secret".to_vec()).expect("long enough")
}

fn host_config(node_id: u64, net: SimNet) -> HostConfig {
    HostConfig {
        node_id,
        consensus_worker_threads: 1,
        peers: Some(PeerEndpoint {
            listen: format!("{}:{PEER_PORT}", host_name(node_id)),
            secret: secret(),
            routes: Vec::new(),
            net: Arc::new(net),
        }),
        execution: Execution::Inline,
    }
}

fn node_config(node_id: u64, members: &[u64], disk: SimFileSystem) -> NodeConfig {
    let peer_addr = |id: u64| format!("{}:{PEER_PORT}", host_name(id));
    let mut options = ClusterOptions::new(peer_addr(node_id), format!("api-{node_id}"));
    options.members = members
        .iter()
        .map(|&id| Member {
            node_id: id,
            peer_addr: peer_addr(id),
            api_addr: format!("api-{id}"),
        })
        .collect();
    options.peer_secret = secret();
    // Simulated clocks agree; the clock check still runs.
    let mut config = NodeConfig::new(format!("/{}", host_name(node_id)))
        .with_cache_size_max(16 << 20)
        .with_file_system(Arc::new(disk));
    config.node_id = node_id;
    config.cluster = Some(options);
    // Checkpoints, log compaction and checkpoint installs happen within a short run.
    config.checkpoint_entries_since_last = 40;
    config.log_entries_kept_after_checkpoint = 8;
    config.log_segment_size_max_bytes = 16 << 10;
    config.free_space_probe = FreeSpaceProbe::File("/nonexistent/croupier-sim-free-bytes".into());
    config
}
