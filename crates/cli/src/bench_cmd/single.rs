//! `--http`: single-transfer JSON requests on many keep-alive connections to an HTTP server
//! started inside this process (client and server share the process and its cores). The
//! request bodies are built before the clock starts: this mode measures the per-request cost
//! of the HTTP path, not TigerBeetle's batch workload.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use croupier_core::BATCH_ITEMS_MAX;
use tokio::task::JoinSet;

use super::client::{self, Encoding, HttpConnection, Items};
use super::workload::{Workload, WorkloadConfig};
use super::{merge_failures, progress_bar, LatencyHistogram, LedgerArgs, Outcome};

/// Where the server's time went, from its own metrics (on stderr: not part of the TB format).
async fn print_server_metrics(addr: SocketAddr) {
    const SHOWN: [&str; 5] = [
        "croupier_log_fsync_seconds",
        "croupier_apply_seconds",
        "croupier_commands_per_entry",
        "croupier_group_commit_commands_per_entry",
        "croupier_group_commit_propose_duration_seconds",
    ];
    let scraped = match HttpConnection::open(addr).await {
        Ok(mut connection) => connection.get("/metrics").await,
        Err(error) => Err(error),
    };
    let text = match scraped {
        Ok((200, body)) => String::from_utf8_lossy(&body).into_owned(),
        Ok((status, _)) => return eprintln!("server metrics: GET /metrics answered {status}"),
        Err(error) => return eprintln!("server metrics: {error:#}"),
    };
    let value = |name: &str| -> Option<f64> {
        text.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    };
    for metric in SHOWN {
        if let (Some(sum), Some(count)) = (
            value(&format!("{metric}_sum")),
            value(&format!("{metric}_count")),
        ) {
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            eprintln!("server {metric}: count {count} mean {mean:.6}");
        }
    }
}

/// One POST per transfer, built before the clock starts.
fn single_transfer_requests(workload: &mut Workload, key: Option<&str>) -> Vec<Vec<u8>> {
    let mut requests = Vec::new();
    loop {
        let batch = workload.next_batch(BATCH_ITEMS_MAX);
        if batch.is_empty() {
            return requests;
        }
        requests.extend(batch.iter().map(|transfer| {
            let body = client::transfers_json(std::slice::from_ref(transfer));
            HttpConnection::post_request_as(key, "/v1/transfers", "application/json", &body)
        }));
    }
}

async fn create_accounts(
    addr: SocketAddr,
    workload: &Workload,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let mut setup = HttpConnection::open(addr).await?;
    for chunk in workload.accounts().chunks(BATCH_ITEMS_MAX) {
        let body = client::accounts_json(chunk);
        let request =
            HttpConnection::post_request_as(key, "/v1/accounts", "application/json", &body);
        let (status, answer) = setup.send(&request).await?;
        let mut failures = BTreeMap::new();
        client::count_failures(
            status,
            &answer,
            chunk.len(),
            Encoding::Json,
            Items::Accounts,
            &mut failures,
        );
        if !failures.is_empty() {
            bail!("creating the benchmark accounts failed: {failures:?}");
        }
    }
    Ok(())
}

/// Each connection takes the next request until none is left.
async fn drive(
    connections: Vec<HttpConnection>,
    requests: Arc<Vec<Vec<u8>>>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(LatencyHistogram, BTreeMap<String, u64>)> {
    let next_request = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    for mut connection in connections {
        let (requests, next_request, bar) = (
            Arc::clone(&requests),
            Arc::clone(&next_request),
            bar.clone(),
        );
        clients.spawn(async move {
            let mut latencies = LatencyHistogram::new();
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            while let Some(request) = requests.get(next_request.fetch_add(1, Ordering::Relaxed)) {
                let sent = Instant::now();
                let (status, answer) = connection.send(request).await?;
                latencies.record(sent.elapsed());
                client::count_failures(
                    status,
                    &answer,
                    1,
                    Encoding::Json,
                    Items::Transfers,
                    &mut failures,
                );
                bar.inc(1);
            }
            anyhow::Ok((latencies, failures))
        });
    }
    let mut latencies = LatencyHistogram::new();
    let mut failures = BTreeMap::new();
    while let Some(done) = clients.join_next().await {
        let (client_latencies, client_failures) = done.context("benchmark connection task")??;
        latencies.merge(&client_latencies);
        merge_failures(&mut failures, client_failures);
    }
    Ok((latencies, failures))
}

/// A finance key in the node's keys file, and rate limits high enough never to refuse.
fn with_operator_key(config: &mut croupier_server::ServeConfig) -> anyhow::Result<String> {
    use croupier_server::auth::keys::{KeysFile, Role};
    let path = config.auth.keys_file.clone().context("a keys file")?;
    let mut keys = KeysFile::default();
    let key = keys.add_operator(Role::Finance, "bench");
    keys.save(&path)?;
    config.auth.limits.per_key_per_s = 100_000_000;
    config.auth.limits.per_address_per_s = 100_000_000;
    Ok(key)
}

pub async fn run(args: &LedgerArgs, transfers: u64) -> anyhow::Result<Outcome> {
    eprintln!(
        "generating {transfers} single-transfer requests ({:?})",
        args.distribution
    );
    let mut workload = Workload::new(WorkloadConfig {
        accounts: args.accounts,
        transfers,
        distribution: args.distribution,
        seed: args.seed,
        id_high: args.id_high.unwrap_or(0),
    })?;
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let mut config = croupier_server::ServeConfig::new(dir.path(), listen);
    let key = args
        .auth
        .then(|| with_operator_key(&mut config))
        .transpose()?;
    let requests = Arc::new(single_transfer_requests(&mut workload, key.as_deref()));
    let server = croupier_server::start(config).await?;
    let addr = server.local_addr();
    create_accounts(addr, &workload, key.as_deref()).await?;

    let mut connections = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        connections.push(HttpConnection::open(addr).await?);
    }
    let bar = progress_bar(transfers, "requests");
    let started = Instant::now();
    let (latencies, failures) = drive(connections, requests, &bar).await?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    print_server_metrics(addr).await;
    if let Err(error) = server.shutdown().await {
        eprintln!("warning: the benchmark's node did not stop cleanly: {error}");
    }
    Ok(Outcome {
        mode: format!(
            "in-process HTTP: server and client in this process over 127.0.0.1, {} connections, \
             single-transfer JSON requests built before the clock starts{}",
            args.connections,
            if args.auth {
                ", operator key and rate limits on every request"
            } else {
                ", protected mode (no key)"
            }
        ),
        batches: transfers,
        batch_size: 1,
        transfers,
        elapsed,
        latencies,
        failures,
    })
}
