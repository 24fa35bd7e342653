//! `cluster local` (a cluster of `croupier serve` child processes on 127.0.0.1, in the
//! foreground) and `cluster restart-node` (one of its nodes again, detached).
//!
//! A node that dies is left dead on purpose: these commands exist for fault drills, where the
//! operator kills nodes and decides when they come back.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::config::{ClusterConfig, DEFAULT_BASE_PORT, DEFAULT_NODES};
use super::process::{self, LocalDir};
use crate::bench_cmd::client::{self, HttpConnection};
use crate::operator_key::{CredentialsRefused, KeyArgs};

const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// One status probe while waiting for a leader: short, so a node still starting is skipped.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(clap::Args)]
pub struct LocalArgs {
    /// Nodes in the cluster [default: 3, or what DIR/cluster.toml says].
    #[arg(long)]
    nodes: Option<usize>,
    /// Directory for the membership file and each node's data, log and pid file.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// HTTP port of node 1; node i (from 0) uses BASE_PORT+i for HTTP and BASE_PORT+100+i for
    /// peers [default: 8000, or what DIR/cluster.toml says].
    #[arg(long, value_name = "PORT")]
    base_port: Option<u16>,
    /// Give up (and stop the nodes) when no node reports a leader within this many seconds.
    #[arg(long, default_value_t = 60)]
    startup_timeout_s: u64,
    /// On Ctrl-C, how long each node may take to stop after SIGTERM before it gets SIGKILL.
    #[arg(long, default_value_t = 10)]
    stop_timeout_s: u64,
    // Needed once DIR/keys.toml has an operator key: the wait for a leader reads the cluster
    // status, an operator route.
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(clap::Args)]
pub struct RestartArgs {
    /// The node's index in the directory (node-I), from 0; its node id is I+1.
    #[arg(value_name = "I")]
    index: usize,
    /// The `cluster local` directory.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Fail when the node does not answer HTTP within this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
}

pub fn run_local(args: LocalArgs) -> anyhow::Result<ExitCode> {
    if args.startup_timeout_s == 0 || args.stop_timeout_s == 0 {
        bail!("--startup-timeout-s and --stop-timeout-s must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(local(args))
}

async fn local(args: LocalArgs) -> anyhow::Result<ExitCode> {
    // Listening first: from here on a Ctrl-C is ours to handle, even during startup.
    let mut stop = StopSignals::new()?;
    let dir = LocalDir::open(&args.data_dir)?;
    let existed = dir.config().exists();
    let config = prepare_config(&dir, args.nodes, args.base_port)?;
    clear_pid_files(&dir)?;
    if existed {
        println!("restarting the cluster of {}", dir.config().display());
    }
    for node in &config.nodes {
        check_port_free(&node.api)?;
        check_port_free(&node.peer)?;
    }
    let mut children = Vec::new();
    for index in 0..config.nodes.len() {
        match dir.start_node(index) {
            Ok(child) => children.push((index, child)),
            Err(error) => {
                stop_nodes(&dir, &mut children, args.stop_timeout_s);
                return Err(error);
            }
        }
    }
    print_nodes(&dir, &config, &children);
    let startup = Duration::from_secs(args.startup_timeout_s);
    let started = tokio::select! {
        name = stop.recv() => Err(Interrupted(name)),
        outcome = wait_for_leader(&dir, &config, &mut children, startup, &args.key) => Ok(outcome),
    };
    match started {
        Err(Interrupted(name)) => println!("{name}: stopping the cluster"),
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            stop_nodes(&dir, &mut children, args.stop_timeout_s);
            return Ok(ExitCode::from(1));
        }
        Ok(Ok(())) => {
            print_usage(&dir, &config);
            let name = supervise(&dir, &mut children, &mut stop).await;
            println!("{name}: stopping the cluster");
        }
    }
    Ok(if stop_nodes(&dir, &mut children, args.stop_timeout_s) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct Interrupted(&'static str);

/// SIGINT and SIGTERM, caught rather than fatal, so the nodes are stopped before we exit.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<Self> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// The membership: DIR/cluster.toml when it exists (it must agree with the flags given), else
/// the layout the flags ask for, written there.
fn prepare_config(
    dir: &LocalDir,
    nodes: Option<usize>,
    base_port: Option<u16>,
) -> anyhow::Result<ClusterConfig> {
    let path = dir.config();
    if path.exists() {
        let config = ClusterConfig::read(&path)?;
        config.check_local(nodes, base_port).with_context(|| {
            format!(
                "{} is from an earlier cluster and does not match the flags; drop the flags to \
                 restart that cluster, or use another --data-dir",
                path.display()
            )
        })?;
        return Ok(config);
    }
    let config = ClusterConfig::local(
        nodes.unwrap_or(DEFAULT_NODES),
        base_port.unwrap_or(DEFAULT_BASE_PORT),
    )?;
    config.write(&path)?;
    Ok(config)
}

/// Refuses to start while a node of an earlier run is still alive; removes stale pid files.
fn clear_pid_files(dir: &LocalDir) -> anyhow::Result<()> {
    let mut alive = Vec::new();
    for (index, _) in dir.recorded()? {
        match dir.live_pid(index)? {
            Some(pid) => alive.push(format!("node {} (pid {pid})", index + 1)),
            None => dir.remove_pid(index),
        }
    }
    if !alive.is_empty() {
        bail!(
            "{} of an earlier run in {} still running; stop them first (kill PID) or use \
             another --data-dir",
            alive.join(", "),
            dir.root.display()
        );
    }
    Ok(())
}

/// A clear refusal now rather than a node failing to bind later. Only "in use" counts: an
/// address this machine cannot bind for other reasons is the node's business.
fn check_port_free(addr: &str) -> anyhow::Result<()> {
    let Ok(socket) = addr.parse::<SocketAddr>() else {
        return Ok(());
    };
    match TcpListener::bind(socket) {
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("{addr} is in use by another program; pick another --base-port")
        }
        _ => Ok(()),
    }
}

fn print_nodes(dir: &LocalDir, config: &ClusterConfig, children: &[(usize, Child)]) {
    println!(
        "cluster of {} nodes in {} (membership: {})",
        config.nodes.len(),
        dir.root.display(),
        dir.config().display()
    );
    for (index, child) in children {
        let node = config.node(*index).expect("children follow the config");
        println!(
            "  node {}: api http://{}  peer {}  pid {}  log {}",
            node.id,
            node.api,
            node.peer,
            child.id(),
            dir.log_file(*index).display()
        );
    }
}

fn print_usage(dir: &LocalDir, config: &ClusterConfig) {
    let apis: Vec<&str> = config.nodes.iter().map(|node| node.api.as_str()).collect();
    let data_dir = dir.root.display();
    println!("try:");
    println!("  croupier cluster status --server {}", apis[0]);
    println!(
        "  croupier bench bank --servers {} --history bank.jsonl",
        apis.join(",")
    );
    println!("  kill PID; croupier cluster restart-node I --data-dir {data_dir}");
    println!("a node that exits is not restarted; Ctrl-C stops every node");
}

/// Polls the nodes until one reports a leader; fails when a node exits or time runs out.
async fn wait_for_leader(
    dir: &LocalDir,
    config: &ClusterConfig,
    children: &mut Vec<(usize, Child)>,
    timeout: Duration,
    key: &KeyArgs,
) -> anyhow::Result<()> {
    println!("waiting for a leader (up to {timeout:?})");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(index) = reap_exited(dir, children).first() {
            bail!(
                "node {} exited during startup; see {}",
                index + 1,
                dir.log_file(*index).display()
            );
        }
        for node in &config.nodes {
            if let Some((leader, term)) = leader_seen_by(&node.api, key.bearer()).await? {
                println!(
                    "node {leader} is the leader (term {term}, seen by node {})",
                    node.id
                );
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "no node reported a leader within {timeout:?}; see the logs {}/node-*.log",
                dir.root.display()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The leader id and term that the node at `api` reports, if it reports one; an error when
/// it refuses the credentials (waiting longer would not change that).
async fn leader_seen_by(
    api: &str,
    key: Option<&str>,
) -> Result<Option<(String, String)>, CredentialsRefused> {
    let Ok(addr) = client::parse_server_address(api) else {
        return Ok(None);
    };
    let answer = client::within(PROBE_TIMEOUT, async {
        let mut connection = HttpConnection::open(addr).await?;
        connection
            .request_json_as("GET", "/v1/cluster/status", None, key)
            .await
    })
    .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(_) => return Ok(None),
    };
    if let Some(refused) = CredentialsRefused::from_status(answer.status, key.is_some()) {
        return Err(refused);
    }
    if answer.status != 200 {
        return Ok(None);
    }
    Ok(leader_and_term(&answer.body))
}

fn leader_and_term(status: &[u8]) -> Option<(String, String)> {
    let status: Value = serde_json::from_slice(status).ok()?;
    let leader = status.get("leader_id").filter(|leader| !leader.is_null())?;
    let term = status.get("term").map_or("?".to_owned(), Value::to_string);
    Some((leader.to_string(), term))
}

/// Until a stop signal: reports each node that exits. Returns the signal's name.
async fn supervise(
    dir: &LocalDir,
    children: &mut Vec<(usize, Child)>,
    stop: &mut StopSignals,
) -> &'static str {
    loop {
        tokio::select! {
            name = stop.recv() => return name,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        for index in reap_exited(dir, children) {
            println!(
                "  `croupier cluster restart-node {index} --data-dir {}` starts it again",
                dir.root.display()
            );
        }
    }
}

/// Reaps the children that exited, printing a line for each; returns their indices.
fn reap_exited(dir: &LocalDir, children: &mut Vec<(usize, Child)>) -> Vec<usize> {
    let mut exited = Vec::new();
    children.retain_mut(|(index, child)| match child.try_wait() {
        Ok(Some(status)) => {
            println!(
                "node {} (pid {}) exited ({status}); its output is in {}",
                *index + 1,
                child.id(),
                dir.log_file(*index).display()
            );
            exited.push(*index);
            false
        }
        _ => true,
    });
    exited
}

/// Stops every recorded node; false (after printing why) when one would not stop.
fn stop_nodes(dir: &LocalDir, children: &mut [(usize, Child)], stop_timeout_s: u64) -> bool {
    match process::stop_all(dir, children, Duration::from_secs(stop_timeout_s)) {
        Ok(()) => {
            println!("all nodes stopped");
            true
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            false
        }
    }
}

pub fn run_restart(args: RestartArgs) -> anyhow::Result<ExitCode> {
    if args.timeout_s == 0 {
        bail!("--timeout-s: must be at least 1");
    }
    let dir = LocalDir::existing(&args.data_dir)?;
    let config_path = dir.config();
    if !config_path.exists() {
        bail!(
            "{} does not exist: start the cluster with `croupier cluster local --data-dir {}`",
            config_path.display(),
            dir.root.display()
        );
    }
    let config = ClusterConfig::read(&config_path)?;
    config.check_local(None, None)?;
    let Some(node) = config.node(args.index).cloned() else {
        bail!(
            "node index {}: {} has nodes 0 to {}",
            args.index,
            config_path.display(),
            config.nodes.len() - 1
        );
    };
    if let Some(pid) = dir.live_pid(args.index)? {
        bail!("node {} is already running (pid {pid})", node.id);
    }
    check_port_free(&node.api)?;
    check_port_free(&node.peer)?;
    let child = dir.start_node(args.index)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_secs(args.timeout_s);
    let outcome = runtime.block_on(wait_until_answering(&node.api, child, timeout));
    let log = dir.log_file(args.index);
    match outcome {
        Answering::Yes(pid) => {
            println!(
                "node {} is up (pid {pid}): api http://{}, log {}",
                node.id,
                node.api,
                log.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Answering::Exited(status) => {
            dir.remove_pid(args.index);
            eprintln!(
                "error: node {} exited ({status}); see {}",
                node.id,
                log.display()
            );
        }
        Answering::NotInTime(pid) => eprintln!(
            "error: node {} (pid {pid}, still running) did not answer HTTP within {timeout:?}; \
             see {}",
            node.id,
            log.display()
        ),
    }
    Ok(ExitCode::from(1))
}

enum Answering {
    Yes(u32),
    Exited(std::process::ExitStatus),
    NotInTime(u32),
}

/// Waits until `GET /healthz` gets any HTTP answer: the node is listening, whether or not it
/// has joined the cluster yet.
async fn wait_until_answering(api: &str, mut child: Child, timeout: Duration) -> Answering {
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    let addr = client::parse_server_address(api).ok();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Answering::Exited(status);
        }
        if let Some(addr) = addr {
            let probe = client::within(PROBE_TIMEOUT, async {
                HttpConnection::open(addr).await?.get("/healthz").await
            });
            if probe.await.is_ok() {
                return Answering::Yes(pid);
            }
        }
        if Instant::now() >= deadline {
            return Answering::NotInTime(pid);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart(dir: &std::path::Path, index: usize) -> String {
        let args = RestartArgs {
            index,
            data_dir: dir.to_owned(),
            timeout_s: 1,
        };
        format!("{:#}", run_restart(args).map(|_| ()).unwrap_err())
    }

    #[test]
    fn first_run_writes_the_layout_and_reruns_keep_it_unless_flags_disagree() {
        let temp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(temp.path()).unwrap();
        let written = prepare_config(&dir, Some(2), Some(9000)).unwrap();
        assert_eq!(written, ClusterConfig::local(2, 9000).unwrap());
        assert_eq!(prepare_config(&dir, None, None).unwrap(), written);
        assert_eq!(prepare_config(&dir, Some(2), Some(9000)).unwrap(), written);
        let error = format!("{:#}", prepare_config(&dir, Some(3), None).unwrap_err());
        assert!(error.contains("does not match the flags"), "{error}");
        let fresh = LocalDir::open(&temp.path().join("fresh")).unwrap();
        let defaults = prepare_config(&fresh, None, None).unwrap();
        assert_eq!(defaults, ClusterConfig::local(3, 8000).unwrap());
    }

    #[test]
    fn a_live_node_of_an_earlier_run_blocks_a_rerun_and_stale_pid_files_go() {
        let temp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(temp.path()).unwrap();
        dir.write_pid(0, u32::MAX - 1).unwrap();
        clear_pid_files(&dir).unwrap();
        assert_eq!(dir.recorded().unwrap(), vec![]);

        // A stand-in node: its command line names `serve` and node-1's data directory.
        let mut node = std::process::Command::new("sh")
            .args([
                "-c",
                "trap 'kill $!; exit 0' TERM; sleep 10 & wait",
                "serve",
            ])
            .arg(dir.node_data(1))
            .spawn()
            .unwrap();
        dir.write_pid(1, node.id()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let error = format!("{:#}", clear_pid_files(&dir).unwrap_err());
        process::signal(node.id(), "TERM");
        let _ = node.wait();
        assert!(
            error.contains(&format!("node 2 (pid {})", node.id())),
            "{error}"
        );
    }

    #[test]
    fn restart_node_needs_a_cluster_directory_and_a_node_in_it() {
        let temp = tempfile::tempdir().unwrap();
        let missing = restart(&temp.path().join("nothing"), 0);
        assert!(missing.contains("does not exist"), "{missing}");
        let no_config = restart(temp.path(), 0);
        assert!(
            no_config.contains("cluster.toml does not exist"),
            "{no_config}"
        );
        let dir = LocalDir::open(temp.path()).unwrap();
        ClusterConfig::local(3, 8000)
            .unwrap()
            .write(&dir.config())
            .unwrap();
        let outside = restart(temp.path(), 3);
        assert!(outside.contains("has nodes 0 to 2"), "{outside}");
    }

    #[test]
    fn a_port_in_use_is_refused_before_any_node_starts() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let error = check_port_free(&addr).unwrap_err().to_string();
        assert!(error.contains("in use"), "{error}");
        drop(listener);
        check_port_free(&addr).unwrap();
        check_port_free("not-an-address").unwrap();
    }
}
