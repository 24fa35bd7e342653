//! `croupier serve`: a durable node with the HTTP API, until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use croupier_server::ServeConfig;
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Where the log, snapshots and vote are kept (created if missing).
    #[arg(long, default_value = "./croupier-data")]
    data_dir: PathBuf,
    /// Address for the HTTP API (host:port). Default 127.0.0.1:8080, or this node's `api`
    /// in the cluster config.
    #[arg(long)]
    listen: Option<String>,
    /// This node's id in its cluster (a positive integer, unique among the members).
    #[arg(long, default_value_t = 1)]
    node_id: u64,
    /// Address for node-to-node traffic (host:port). Makes the node a cluster member; default:
    /// this node's `peer` in the cluster config.
    #[arg(long)]
    peer_listen: Option<String>,
    /// A TOML file naming the cluster's initial members (`[[node]] id, api, peer`); on first
    /// start the lowest id forms the cluster.
    #[arg(long, conflicts_with = "join")]
    cluster_config: Option<PathBuf>,
    /// Join a running cluster through this member's peer address (it forwards to the leader).
    #[arg(long)]
    join: Option<String>,
    /// Raft heartbeat interval; elections start after 4-8 heartbeats without a leader.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// In a cluster: if this node's storage is corrupt, move it to DIR/quarantine-<ms>/ and
    /// catch up from the other replicas (granting no votes until caught up) instead of
    /// refusing to start.
    #[arg(long)]
    repair_from_peers: bool,
    /// A leader whose clock is farther than this from a quorum's refuses to propose.
    #[arg(long, default_value_t = 500)]
    clock_skew_max_ms: u64,
    /// Fault injection for drills and tests: this node's clock reads this many ms off.
    #[arg(long, hide = true, default_value_t = 0, allow_hyphen_values = true)]
    fault_clock_offset_ms: i64,
    /// Fault injection for partition tests: a file of `MEMBER_PEER_ADDR DIAL_ADDR` lines; this
    /// node dials the second address whenever it connects to the first.
    #[arg(long, hide = true)]
    fault_peer_routes: Option<PathBuf>,
    /// Commands waiting for the next log entry before requests answer 503 overloaded.
    #[arg(long, default_value_t = croupier_server::GroupCommitConfig::default().queue_depth_max)]
    queue_depth_max: usize,
    /// ...or once the waiting commands hold this many bytes (e.g. 64MiB; at least one full
    /// request, about 0.8MB).
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    queue_bytes_max: u64,
    /// Log entries proposed and not yet durable at once.
    #[arg(long, default_value_t = croupier_server::GroupCommitConfig::default().proposals_in_flight_max)]
    proposals_in_flight_max: usize,
    /// Memory budget for everything that grows with history (id index memtables and filters,
    /// the log entry cache), e.g. 1GiB, 512MiB, 268435456. Accounts and open pending transfers
    /// are held in memory besides it.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    cache_size_max: u64,
    /// Take a checkpoint after this many log bytes since the last one (e.g. 256MiB).
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    checkpoint_log_bytes: u64,
    /// ...or after this many log entries since the last one, whichever comes first.
    #[arg(long, default_value_t = 20_000)]
    checkpoint_entries: u64,
    /// Log entries kept behind the latest checkpoint, so a follower that lags by less catches
    /// up from the log instead of receiving a whole checkpoint.
    #[arg(long, default_value_t = 1_000)]
    log_entries_kept: u64,
    /// Keep committed events up to this size on disk (0: keep them all). Opening the event log
    /// reads the retained events once, so this also bounds that part of a restart.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    event_retention_size: u64,
    /// Keep committed events at most this many seconds (0: whatever their age).
    #[arg(long, default_value_t = 0)]
    event_retention_s: u64,
    /// Refuse writes (503 storage_unavailable) while the data directory's disk has less free
    /// space than this; writes resume by themselves once space returns.
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    disk_reserve: u64,
    /// Fault injection for drills and tests: read the free disk space from this file (a byte
    /// count) instead of the file system.
    #[arg(long, hide = true)]
    fault_free_bytes_file: Option<PathBuf>,
}

/// Parses "1GiB", "512MiB", "64KiB", "1000" (bytes).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 1GiB, 512MiB or 1048576"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" => 10,
        "MiB" | "M" => 20,
        "GiB" | "G" => 30,
        "TiB" | "T" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let cluster = cluster_options(&args)?;
    let listen_text = match (&args.listen, &cluster) {
        (Some(listen), _) => listen.clone(),
        (None, Some(cluster)) => cluster.api_addr.clone(),
        (None, None) => "127.0.0.1:8080".to_string(),
    };
    let listen = resolve(&listen_text)?;
    anyhow::ensure!(
        args.queue_depth_max > 0,
        "--queue-depth-max must be at least 1"
    );
    anyhow::ensure!(
        args.proposals_in_flight_max > 0,
        "--proposals-in-flight-max must be at least 1"
    );
    anyhow::ensure!(
        args.cache_size_max >= 16 << 20,
        "--cache-size-max must be at least 16MiB"
    );
    anyhow::ensure!(
        args.checkpoint_log_bytes >= 1 << 20,
        "--checkpoint-log-bytes must be at least 1MiB"
    );
    let mut config = ServeConfig::new(&args.data_dir, listen);
    config.group_commit.queue_depth_max = args.queue_depth_max;
    config.group_commit.queue_bytes_max = usize::try_from(args.queue_bytes_max)?;
    config.group_commit.proposals_in_flight_max = args.proposals_in_flight_max;
    let node = config.node.clone().with_cache_size_max(args.cache_size_max);
    config.node = node;
    config.node.checkpoint_log_bytes_since_last = args.checkpoint_log_bytes;
    anyhow::ensure!(
        args.checkpoint_entries >= 1,
        "--checkpoint-entries must be at least 1"
    );
    config.node.checkpoint_entries_since_last = args.checkpoint_entries;
    config.node.log_entries_kept_after_checkpoint = args.log_entries_kept;
    config.node.storage.event_retention_bytes_max = args.event_retention_size;
    config.node.storage.event_retention_age_s_max = args.event_retention_s;
    config.node.disk_reserve_bytes = args.disk_reserve;
    config.node.node_id = args.node_id;
    let clustered = cluster.is_some();
    config.node.cluster = cluster;
    if let Some(path) = args.fault_free_bytes_file.clone() {
        config.node.free_space_probe = croupier_cluster::FreeSpaceProbe::File(path);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("croupier")
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let server = croupier_server::start(config)
            .await
            .with_context(|| format!("cannot serve from data dir {}", args.data_dir.display()))?;
        // The one start-up line an operator reads; scripts find the port by `addr=`.
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            addr = %server.local_addr(),
            data_dir = %args.data_dir.display(),
            node_id = server.node().node_id(),
            role = if clustered { "cluster member" } else { "single node" },
            "croupier is up"
        );
        let failure = tokio::select! {
            stop = wait_for_stop_signal() => { stop?; None }
            reason = server.failed() => Some(reason),
        };
        if let Some(reason) = failure {
            // A node whose storage or consensus failed must not linger answering 503: exit so a
            // supervisor restarts it and it recovers from what is on disk.
            anyhow::bail!("the node failed: {reason}");
        }
        tracing::info!("stopping: draining requests, then the node");
        server
            .shutdown()
            .await
            .context("the node did not stop cleanly")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            // One line and exit 1: a node that cannot start or that failed is not a usage
            // error (main's exit 2), and a supervisor must see it.
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

fn read_peer_routes(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the peer routes {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [from, to] => Ok((from.to_string(), to.to_string())),
                _ => anyhow::bail!("{}: {line:?} is not `FROM TO`", path.display()),
            },
        )
        .collect()
}

fn read_cluster_file(path: &std::path::Path) -> anyhow::Result<Vec<croupier_cluster::Member>> {
    let config = crate::cluster_cmd::config::ClusterConfig::read(path)?;
    Ok(config
        .nodes
        .into_iter()
        .map(|m| croupier_cluster::Member {
            node_id: m.id,
            peer_addr: m.peer,
            api_addr: m.api,
        })
        .collect())
}

/// The node's cluster membership from the flags, or None for a node on its own.
fn cluster_options(args: &ServeArgs) -> anyhow::Result<Option<croupier_cluster::ClusterOptions>> {
    anyhow::ensure!(args.node_id > 0, "--node-id must be a positive integer");
    let members = match &args.cluster_config {
        Some(path) => read_cluster_file(path)?,
        None => Vec::new(),
    };
    let this = members.iter().find(|m| m.node_id == args.node_id);
    if args.cluster_config.is_some() && this.is_none() {
        anyhow::bail!(
            "--node-id {} is not among the members of the cluster config",
            args.node_id
        );
    }
    let peer_listen = args
        .peer_listen
        .clone()
        .or_else(|| this.map(|m| m.peer_addr.clone()));
    let Some(peer_listen) = peer_listen else {
        anyhow::ensure!(
            args.join.is_none(),
            "--join needs --peer-listen (where the cluster reaches this node)"
        );
        return Ok(None);
    };
    resolve(&peer_listen).context("--peer-listen")?;
    let api_addr = args
        .listen
        .clone()
        .or_else(|| this.map(|m| m.api_addr.clone()))
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    anyhow::ensure!(
        args.heartbeat_ms >= 10,
        "--heartbeat-ms must be at least 10"
    );
    let mut options = croupier_cluster::ClusterOptions::new(peer_listen, api_addr);
    options.members = members;
    options.join = args.join.clone();
    options.heartbeat_interval_ms = args.heartbeat_ms;
    options.election_timeout_min_ms = args.heartbeat_ms * 4;
    options.election_timeout_max_ms = args.heartbeat_ms * 8;
    options.clock_skew_max_ms = args.clock_skew_max_ms;
    options.clock_offset_ms = args.fault_clock_offset_ms;
    options.repair_from_peers = args.repair_from_peers;
    if let Some(path) = &args.fault_peer_routes {
        options.fault_peer_routes = read_peer_routes(path)?;
    }
    if options.members.is_empty() && options.join.is_none() {
        // --peer-listen alone: a one-member cluster that others can join later.
        options.members.push(croupier_cluster::Member {
            node_id: args.node_id,
            peer_addr: options.peer_listen.clone(),
            api_addr: options.api_addr.clone(),
        });
    }
    Ok(Some(options))
}

fn init_tracing() {
    // openraft narrates every election and tick at info, and 0.10 warns about routine events
    // (a message from a vote it just replaced, a peer that is down, once per retry): operators
    // get its errors, and our own lines for what matters. `RUST_LOG=info` shows it all.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=error"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}

fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("{listen:?} is not a host:port address"))?
        .next()
        .with_context(|| format!("{listen:?} resolves to no address"))
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
