//! `croupier bench failover`: how long a replicated cluster takes to serve writes again after
//! its leader is killed with SIGKILL. It starts an N-node cluster of `croupier serve` child
//! processes on 127.0.0.1, keeps writers sending single transfers to every live node, and
//! `--kills` times: kills the leader, measures the time from the kill to the first
//! acknowledged write sent after it, restarts the killed node and waits until it caught up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::client::HttpConnection;

#[derive(clap::Args)]
pub struct FailoverArgs {
    /// Leader kills to measure.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Concurrent writers (each sends one transfer at a time to the live nodes in turn).
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Where the nodes keep their data and logs [default: a temporary directory].
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// How long the cluster may take to elect a leader or let a node catch up before the run fails.
const WAIT_S: u64 = 30;
const REQUEST_TIMEOUT_MS: u64 = 2_000;
const CLEARING_ID: u128 = 1;
const PLAYER_ID: u128 = 2;

struct LocalNode {
    id: u64,
    api: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

fn write_cluster_config(dir: &Path, nodes: usize) -> anyhow::Result<(PathBuf, Vec<LocalNode>)> {
    let config = dir.join("cluster.toml");
    let mut text = String::new();
    let mut local = Vec::new();
    for i in 0..nodes {
        let (api, peer) = (free_addr()?, free_addr()?);
        let id = i as u64 + 1;
        text += &format!("[[node]]\nid = {id}\napi = \"{api}\"\npeer = \"{peer}\"\n\n");
        local.push(LocalNode {
            id,
            api,
            dir: dir.join(format!("node-{i}")),
            child: None,
        });
    }
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok((config, local))
}

fn start_node(node: &mut LocalNode, config: &Path) -> anyhow::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node.dir.with_extension("log"))?;
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--node-id", &node.id.to_string(), "--data-dir"])
        .arg(&node.dir)
        .arg("--cluster-config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting croupier serve")?;
    node.child = Some(child);
    Ok(())
}

async fn request(
    addr: SocketAddr,
    send: impl FnOnce(HttpConnection) -> RequestFuture,
) -> Option<(u16, Vec<u8>)> {
    let attempt = async {
        let connection = HttpConnection::open(addr).await.ok()?;
        send(connection).await.ok()
    };
    tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), attempt)
        .await
        .ok()
        .flatten()
}

type RequestFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<(u16, Vec<u8>)>> + Send>>;

async fn get(addr: SocketAddr, path: &'static str) -> Option<(u16, Vec<u8>)> {
    request(addr, move |mut c| {
        Box::pin(async move { c.get(path).await })
    })
    .await
}

async fn post_json(addr: SocketAddr, path: &'static str, body: String) -> Option<(u16, Vec<u8>)> {
    request(addr, move |mut c| {
        Box::pin(async move { c.post(path, "application/json", body.as_bytes()).await })
    })
    .await
}

/// (leader id, each node's lag) as the node at `addr` reports them.
async fn status(addr: SocketAddr) -> Option<(Option<u64>, Vec<(u64, Option<u64>)>)> {
    let (200, body) = get(addr, "/v1/cluster/status").await? else {
        return None;
    };
    let status: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let lags = status["nodes"]
        .as_array()?
        .iter()
        .filter_map(|n| Some((n["node_id"].as_u64()?, n["lag"].as_u64())))
        .collect();
    Some((status["leader_id"].as_u64(), lags))
}

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(WAIT_S);
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {WAIT_S} s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the writers share: which nodes are up, and the first write acknowledged after a kill.
struct Shared {
    alive: Mutex<Vec<(u64, SocketAddr)>>,
    killed_at: Mutex<Option<Instant>>,
    first_ack_after_kill: Mutex<Option<Duration>>,
    next_id: AtomicU64,
    acks: AtomicU64,
    stop: AtomicBool,
}

async fn writer(shared: Arc<Shared>, n: usize) {
    let mut turn = n;
    while !shared.stop.load(Ordering::SeqCst) {
        turn += 1;
        let target = {
            let alive = shared.alive.lock().unwrap_or_else(|p| p.into_inner());
            alive.get(turn % alive.len().max(1)).map(|(_, addr)| *addr)
        };
        let Some(addr) = target else { continue };
        let id = 1_000_000 + u128::from(shared.next_id.fetch_add(1, Ordering::SeqCst));
        let body = format!(
            r#"[{{"id":"{id}","debit_account_id":"{CLEARING_ID}","credit_account_id":"{PLAYER_ID}","amount":1,"ledger":"EUR"}}]"#
        );
        let sent_at = Instant::now();
        match post_json(addr, "/v1/transfers", body).await {
            Some((200, _)) => {
                shared.acks.fetch_add(1, Ordering::SeqCst);
                let killed_at = *shared.killed_at.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(killed_at) = killed_at.filter(|k| sent_at >= *k) {
                    let mut first = shared
                        .first_ack_after_kill
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    first.get_or_insert(killed_at.elapsed());
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

pub fn run(args: FailoverArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.nodes >= 3,
        "--nodes must be at least 3 (a leader must be able to fail)"
    );
    anyhow::ensure!(
        args.kills >= 1 && args.writers >= 1,
        "--kills and --writers must be at least 1"
    );
    let temp;
    let dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a work dir")?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(args, &dir))
}

async fn measure(args: FailoverArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let (config, mut nodes) = write_cluster_config(dir, args.nodes)?;
    for node in nodes.iter_mut() {
        start_node(node, &config)?;
    }
    let first = nodes[0].api;
    wait_for("electing a first leader", || async {
        status(first).await.and_then(|s| s.0)
    })
    .await?;
    let accounts = format!(
        r#"[{{"id":"{CLEARING_ID}","ledger":"EUR","kind":"clearing"}},{{"id":"{PLAYER_ID}","ledger":"EUR","kind":"player"}}]"#
    );
    wait_for("creating the accounts", || {
        let accounts = accounts.clone();
        async move {
            matches!(
                post_json(first, "/v1/accounts", accounts).await,
                Some((200, _))
            )
            .then_some(())
        }
    })
    .await?;
    let shared = Arc::new(Shared {
        alive: Mutex::new(nodes.iter().map(|n| (n.id, n.api)).collect()),
        killed_at: Mutex::new(None),
        first_ack_after_kill: Mutex::new(None),
        next_id: AtomicU64::new(0),
        acks: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let writers: Vec<_> = (0..args.writers)
        .map(|n| tokio::spawn(writer(Arc::clone(&shared), n)))
        .collect();
    println!(
        "mode = failover: {} nodes, {} writers, SIGKILL of the leader {} times",
        args.nodes, args.writers, args.kills
    );
    let mut times = Vec::new();
    let outcome = kill_leaders(&args, &config, &mut nodes, &shared, &mut times).await;
    shared.stop.store(true, Ordering::SeqCst);
    for writer in writers {
        let _ = writer.await;
    }
    outcome?;
    report(&mut times, shared.acks.load(Ordering::SeqCst));
    Ok(ExitCode::SUCCESS)
}

async fn kill_leaders(
    args: &FailoverArgs,
    config: &Path,
    nodes: &mut [LocalNode],
    shared: &Shared,
    times: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    for kill in 1..=args.kills {
        let apis: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
        let leader = wait_for("finding the leader", || {
            let apis = apis.clone();
            async move {
                for api in apis {
                    if let Some((Some(leader), _)) = status(api).await {
                        return Some(leader);
                    }
                }
                None
            }
        })
        .await?;
        let index = nodes
            .iter()
            .position(|n| n.id == leader)
            .context("leader is not a local node")?;
        *shared
            .first_ack_after_kill
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        shared
            .alive
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != leader);
        *shared.killed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        if let Some(mut child) = nodes[index].child.take() {
            child.kill().context("SIGKILL of the leader")?;
            child.wait()?;
        }
        let took = wait_for("a write acknowledged after the kill", || async {
            *shared
                .first_ack_after_kill
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        })
        .await?;
        println!(
            "kill {kill:>2}: leader {leader} killed; first acknowledged write after {} ms",
            took.as_millis()
        );
        times.push(took);
        start_node(&mut nodes[index], config)?;
        let restarted = nodes[index].api;
        wait_for("the restarted node catching up", || async move {
            let (_, lags) = status(restarted).await?;
            let lag = lags.iter().find(|(id, _)| *id == leader)?.1?;
            (lag < 5).then_some(())
        })
        .await?;
        shared
            .alive
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((leader, restarted));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

fn report(times: &mut [Duration], acks: u64) {
    times.sort_unstable();
    let ms = |d: Duration| d.as_millis();
    let median = times[times.len() / 2];
    println!("writes acknowledged = {acks}");
    println!("failover min       = {} ms", ms(times[0]));
    println!("failover median    = {} ms", ms(median));
    println!("failover max       = {} ms", ms(times[times.len() - 1]));
}
