//! `--server URL`: this process is the client of a separately started `croupier serve`, as
//! TigerBeetle's `benchmark` is the client of its replica process.
//!
//! Like TigerBeetle: accounts are created first (not timed); then the clock starts and
//! `--clients` connections each keep one batch in flight, taking the next batch from one
//! shared generator when their previous one is answered, so generating the workload is inside
//! the timed window. A batch's latency runs from the moment its request is built and sent to
//! the moment its answer is read.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use croupier_core::BATCH_ITEMS_MAX;
use indicatif::ProgressBar;
use tokio::task::JoinSet;

use super::client::{self, Encoding, HttpConnection, Items};
use super::workload::{Workload, WorkloadConfig};
use super::{merge_failures, progress_bar, LatencyHistogram, LedgerArgs, Outcome};
use crate::operator_key::{CredentialsRefused, OperatorKey};

/// How long the server may take to answer `GET /healthz` (it may be replaying a long log).
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A random high id part for this run. std seeds `RandomState` from the OS's random source;
/// hashing the clock as well keeps two runs in one process apart. The top bit is cleared so
/// the ids never fall in the range the ledger reserves (top 32 bits all ones).
fn random_id_high() -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    RandomState::new().hash_one((now, std::process::id())) >> 1
}

async fn create_accounts(
    addr: SocketAddr,
    workload: &Workload,
    encoding: Encoding,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let mut connection = HttpConnection::open(addr).await?;
    for chunk in workload.accounts().chunks(BATCH_ITEMS_MAX) {
        let body = client::accounts_body(chunk, encoding)?;
        let request =
            HttpConnection::post_request_as(key, "/v1/accounts", encoding.content_type(), &body);
        let (status, answer) = connection.send(&request).await?;
        if let Some(refused) = CredentialsRefused::from_status(status, key.is_some()) {
            return Err(anyhow::Error::new(refused).context("creating the benchmark accounts"));
        }
        let mut failures = BTreeMap::new();
        client::count_failures(
            status,
            &answer,
            chunk.len(),
            encoding,
            Items::Accounts,
            &mut failures,
        );
        if failures.keys().all(|code| code.starts_with("exists")) && !failures.is_empty() {
            bail!("the benchmark accounts already exist on this server: pick another --id-high");
        }
        if !failures.is_empty() {
            bail!("creating the benchmark accounts failed: {failures:?}");
        }
    }
    Ok(())
}

/// What one client connection measured.
struct ClientResult {
    batches: u64,
    latencies: LatencyHistogram,
    failures: BTreeMap<String, u64>,
}

/// One connection: take a batch, send it, wait for its answer, repeat until none is left.
async fn client_loop(
    mut connection: HttpConnection,
    workload: Arc<Mutex<Workload>>,
    batch_size: usize,
    encoding: Encoding,
    key: Option<OperatorKey>,
    bar: ProgressBar,
) -> anyhow::Result<ClientResult> {
    let mut result = ClientResult {
        batches: 0,
        latencies: LatencyHistogram::new(),
        failures: BTreeMap::new(),
    };
    loop {
        let batch = workload
            .lock()
            .map_err(|_| anyhow::anyhow!("another client panicked"))?
            .next_batch(batch_size);
        if batch.is_empty() {
            return Ok(result);
        }
        let body = client::transfers_body(&batch, encoding)?;
        let request = HttpConnection::post_request_as(
            key.as_ref().map(OperatorKey::expose),
            "/v1/transfers",
            encoding.content_type(),
            &body,
        );
        let sent = Instant::now();
        let (status, answer) = connection.send(&request).await?;
        result.latencies.record(sent.elapsed());
        result.batches += 1;
        client::count_failures(
            status,
            &answer,
            batch.len(),
            encoding,
            Items::Transfers,
            &mut result.failures,
        );
        bar.inc(batch.len() as u64);
    }
}

/// Prints `progress: <s> s, <n> transfers, <rate> tx/s over the last interval` lines.
async fn report_progress(bar: ProgressBar, started: Instant, seconds: u64) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(seconds));
    interval.tick().await;
    let mut last = 0;
    loop {
        interval.tick().await;
        let done = bar.position();
        let rate = (done - last) / seconds;
        let elapsed_s = started.elapsed().as_secs();
        bar.suspend(|| {
            println!(
                "progress: {elapsed_s} s, {done} transfers, {rate} tx/s over the last {seconds} s"
            )
        });
        last = done;
    }
}

pub async fn run(args: &LedgerArgs, transfers: u64, url: &str) -> anyhow::Result<Outcome> {
    let addr = client::parse_server_url(url)?;
    client::wait_until_ready(addr, SERVER_READY_TIMEOUT).await?;
    let id_high = args.id_high.unwrap_or_else(random_id_high);
    // Printed at once: a failed run can be looked up on the server by these ids.
    println!("id high = {id_high} (ids are id_high * 2^64 + 1, 2, ...)");
    let workload = Workload::new(WorkloadConfig {
        accounts: args.accounts,
        transfers,
        distribution: args.distribution,
        seed: args.seed,
        id_high,
    })?;
    create_accounts(addr, &workload, args.encoding, args.key.bearer()).await?;
    let mut connections = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        connections.push(HttpConnection::open(addr).await?);
    }

    let workload = Arc::new(Mutex::new(workload));
    let bar = progress_bar(transfers, "transfers");
    let mut clients = JoinSet::new();
    let started = Instant::now();
    for connection in connections {
        let task = client_loop(
            connection,
            Arc::clone(&workload),
            args.batch,
            args.encoding,
            args.key.key().cloned(),
            bar.clone(),
        );
        clients.spawn(task);
    }
    let reporter = args
        .report_interval_s
        .filter(|&seconds| seconds > 0)
        .map(|seconds| tokio::spawn(report_progress(bar.clone(), started, seconds)));
    let mut batches = 0;
    let mut latencies = LatencyHistogram::new();
    let mut failures = BTreeMap::new();
    while let Some(done) = clients.join_next().await {
        let client = done.context("benchmark client task")??;
        batches += client.batches;
        latencies.merge(&client.latencies);
        merge_failures(&mut failures, client.failures);
    }
    let elapsed = started.elapsed();
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    bar.finish_and_clear();
    Ok(Outcome {
        mode: format!(
            "client-server: this process is the client of croupier serve at {url} (a separate \
             process), clients = {} with one batch in flight each, {} encoding",
            args.clients,
            args.encoding.name()
        ),
        batches,
        batch_size: args.batch,
        transfers,
        elapsed,
        latencies,
        failures,
    })
}
