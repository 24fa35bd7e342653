//! `croupier bench ledger`: TigerBeetle's benchmark workload (create accounts without balance
//! limits, then transfers between random distinct accounts in large batches) against an
//! embedded durable node in a temporary directory, or through the HTTP API with many
//! concurrent single-transfer requests (`--http`).
//!
//! Output follows TigerBeetle's `benchmark` lines (`load accepted = N tx/s`,
//! `batch latency p50  = N ms`) so one script can read both. Every transfer must answer `ok`;
//! failures are counted, printed and make the command exit 1.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use croupier_cluster::{Consensus, Node, NodeConfig};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, LedgerCode, NewAccount, NewTransfer,
    TransferFlags, BATCH_ITEMS_MAX,
};
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp, Uniform, Zipf};
use tokio::task::JoinSet;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// TigerBeetle's benchmark workload against an embedded durable node (or the HTTP API).
    Ledger(LedgerArgs),
}

#[derive(clap::Args)]
pub struct LedgerArgs {
    /// Accounts to create before the timed part.
    #[arg(long, default_value_t = 10_000)]
    accounts: u64,
    /// Transfers to create [default: 10000000, or 200000 with --http].
    #[arg(long)]
    transfers: Option<u64>,
    /// Transfers per log entry (embedded mode).
    #[arg(long, default_value_t = BATCH_ITEMS_MAX)]
    batch: usize,
    /// How transfers pick their accounts: uniform, zipf (exponent 1) or hot (every transfer
    /// debits account 1).
    #[arg(long, value_enum, default_value_t = AccountDistribution::Uniform)]
    distribution: AccountDistribution,
    /// Drive the real HTTP server (in-process, 127.0.0.1) with single-transfer requests.
    #[arg(long)]
    http: bool,
    /// Concurrent keep-alive HTTP/1.1 connections (with --http).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Batches in flight at once (embedded mode), so the fsync of one overlaps the apply of
    /// the previous.
    #[arg(long, default_value_t = 3)]
    pipeline: usize,
    /// Seed of the workload generator (TigerBeetle's default is 42 too).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum AccountDistribution {
    Uniform,
    Zipf,
    Hot,
}

const TRANSFERS_DEFAULT: u64 = 10_000_000;
const TRANSFERS_HTTP_DEFAULT: u64 = 200_000;
const CONNECTIONS_MAX: usize = 16_384;
const PIPELINE_MAX: usize = 64;
/// Mean transfer amount (TigerBeetle draws amounts from an exponential with this mean).
const AMOUNT_MEAN: f64 = 10_000.0;
/// Latency histogram: 1 ms buckets up to 10 s, as TigerBeetle's benchmark keeps them.
const HISTOGRAM_MS_MAX: usize = 10_000;

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Ledger(args) => run_ledger(args),
    }
}

fn run_ledger(args: LedgerArgs) -> anyhow::Result<ExitCode> {
    let transfers = args.transfers.unwrap_or(if args.http {
        TRANSFERS_HTTP_DEFAULT
    } else {
        TRANSFERS_DEFAULT
    });
    if args.accounts < 2 {
        bail!(
            "--accounts: need at least two accounts, got {}",
            args.accounts
        );
    }
    if transfers == 0 {
        bail!("--transfers: need at least one transfer");
    }
    if args.batch == 0 || args.batch > BATCH_ITEMS_MAX {
        bail!(
            "--batch: must be between 1 and {BATCH_ITEMS_MAX}, got {}",
            args.batch
        );
    }
    if args.connections == 0 || args.connections > CONNECTIONS_MAX {
        bail!(
            "--connections: must be between 1 and {CONNECTIONS_MAX}, got {}",
            args.connections
        );
    }
    if args.pipeline == 0 || args.pipeline > PIPELINE_MAX {
        bail!(
            "--pipeline: must be between 1 and {PIPELINE_MAX}, got {}",
            args.pipeline
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = if args.http {
        runtime.block_on(run_http(&args, transfers))?
    } else {
        runtime.block_on(run_embedded(&args, transfers))?
    };
    outcome.print();
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ledger_code() -> LedgerCode {
    LedgerCode::parse("EUR").expect("valid ledger code")
}

fn new_accounts(count: u64) -> Vec<NewAccount> {
    (1..=count as u128)
        .map(|id| NewAccount {
            id,
            ledger: ledger_code(),
            // No balance limits, as in TigerBeetle's benchmark.
            kind: AccountKind::System,
            flags: AccountFlags::empty(),
        })
        .collect()
}

/// Picks (debit, credit) account indices in `0..accounts`, distinct, like TigerBeetle's
/// benchmark: when the credit side draws the debit account it takes the next one.
struct AccountPicker {
    accounts: u64,
    uniform: Uniform<u64>,
    zipf: Option<Zipf<f64>>,
    hot: bool,
}

impl AccountPicker {
    fn new(accounts: u64, distribution: AccountDistribution) -> anyhow::Result<Self> {
        let zipf = match distribution {
            AccountDistribution::Zipf => {
                Some(Zipf::new(accounts as f64, 1.0).context("zipf distribution")?)
            }
            _ => None,
        };
        Ok(AccountPicker {
            accounts,
            uniform: Uniform::new(0, accounts).context("uniform distribution")?,
            zipf,
            hot: matches!(distribution, AccountDistribution::Hot),
        })
    }

    fn index(&self, rng: &mut ChaCha8Rng) -> u64 {
        match &self.zipf {
            // Zipf ranks start at 1; rank 1 is the hottest account.
            Some(zipf) => (zipf.sample(rng) as u64).clamp(1, self.accounts) - 1,
            None => self.uniform.sample(rng),
        }
    }

    fn pair(&self, rng: &mut ChaCha8Rng) -> (u64, u64) {
        let debit = if self.hot { 0 } else { self.index(rng) };
        let mut credit = self.index(rng);
        if credit == debit {
            credit = (credit + 1) % self.accounts;
        }
        (debit, credit)
    }
}

/// The whole workload, generated before the clock starts.
fn generate_transfers(args: &LedgerArgs, transfers: u64) -> anyhow::Result<Vec<NewTransfer>> {
    let picker = AccountPicker::new(args.accounts, args.distribution)?;
    let amounts = Exp::new(1.0 / AMOUNT_MEAN).context("amount distribution")?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let ledger = ledger_code();
    let workload = (1..=transfers as u128)
        .map(|id| {
            let (debit, credit) = picker.pair(&mut rng);
            let amount: f64 = amounts.sample(&mut rng);
            NewTransfer {
                id,
                debit_account_id: debit as u128 + 1,
                credit_account_id: credit as u128 + 1,
                amount: (amount as u64).saturating_add(1),
                ledger,
                flags: TransferFlags::empty(),
                pending_id: 0,
                timeout_s: 0,
            }
        })
        .collect();
    Ok(workload)
}

/// What a run measured.
struct Outcome {
    label: &'static str,
    batches: u64,
    batch_size: usize,
    transfers: u64,
    elapsed: Duration,
    latencies: LatencyHistogram,
    /// Result code → count, for every transfer that did not answer `ok`.
    failures: BTreeMap<String, u64>,
}

impl Outcome {
    fn print(&self) {
        let seconds = self.elapsed.as_secs_f64();
        println!("{} {} in {seconds:.2} s", self.batches, self.label);
        println!("transfer batch size = {} txs", self.batch_size);
        let rate = (self.transfers as u128 * 1_000_000_000) / self.elapsed.as_nanos().max(1);
        println!("load accepted = {rate} tx/s");
        for percentile in [1, 50, 99, 100] {
            println!(
                "batch latency p{percentile:<3} = {} ms",
                self.latencies.percentile_ms(percentile)
            );
        }
        if self.failures.is_empty() {
            println!("all {} transfers answered ok", self.transfers);
        } else {
            let failed: u64 = self.failures.values().sum();
            println!(
                "FAILED: {failed} of {} transfers did not answer ok",
                self.transfers
            );
            for (code, count) in &self.failures {
                println!("  {code}: {count}");
            }
        }
    }
}

/// TigerBeetle's latency histogram: 1 ms buckets, the last one holding everything slower.
struct LatencyHistogram {
    buckets: Vec<u64>,
}

impl LatencyHistogram {
    fn new() -> Self {
        LatencyHistogram {
            buckets: vec![0; HISTOGRAM_MS_MAX + 1],
        }
    }

    fn record(&mut self, latency: Duration) {
        let ms = (latency.as_millis() as usize).min(HISTOGRAM_MS_MAX);
        self.buckets[ms] += 1;
    }

    fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }

    /// The first bucket at which the running count reaches `percentile`% of all samples.
    fn percentile_ms(&self, percentile: u64) -> usize {
        let total: u64 = self.buckets.iter().sum();
        let target = total * percentile / 100;
        let mut sum = 0;
        for (ms, count) in self.buckets.iter().enumerate() {
            sum += count;
            if sum >= target {
                return ms;
            }
        }
        HISTOGRAM_MS_MAX
    }
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!(
        "{{elapsed_precise}} {{wide_bar}} {{human_pos}}/{{human_len}} {what} ({{per_sec}})"
    );
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn record_transfer_failures(results: &[CommandResult], failures: &mut BTreeMap<String, u64>) {
    for result in results {
        match result {
            CommandResult::Transfers(items) => {
                for item in items.iter().filter(|r| r.code() != "ok") {
                    *failures.entry(item.code().to_string()).or_default() += 1;
                }
            }
            other => {
                *failures
                    .entry(format!("unexpected result {other:?}"))
                    .or_default() += 1
            }
        }
    }
}

async fn create_accounts_embedded(node: &Node, accounts: u64) -> anyhow::Result<()> {
    for chunk in new_accounts(accounts).chunks(BATCH_ITEMS_MAX) {
        let results = node
            .propose(vec![Command::CreateAccounts(chunk.to_vec())])
            .await?;
        let all_ok = matches!(&results[..], [CommandResult::Accounts(r)] if r.iter().all(|r| r.code() == "ok"));
        if !all_ok {
            bail!("creating the benchmark accounts failed: {results:?}");
        }
    }
    Ok(())
}

async fn run_embedded(args: &LedgerArgs, transfers: u64) -> anyhow::Result<Outcome> {
    eprintln!("generating {transfers} transfers ({:?})", args.distribution);
    let workload = generate_transfers(args, transfers)?;
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let node = Node::start(NodeConfig::new(dir.path())).await?;
    create_accounts_embedded(&node, args.accounts).await?;

    let mut batches: Vec<Vec<NewTransfer>> =
        Vec::with_capacity(workload.len().div_ceil(args.batch));
    let mut workload = workload.into_iter();
    loop {
        let batch: Vec<NewTransfer> = workload.by_ref().take(args.batch).collect();
        if batch.is_empty() {
            break;
        }
        batches.push(batch);
    }
    let batch_count = batches.len() as u64;

    let bar = progress_bar(transfers, "transfers");
    let mut latencies = LatencyHistogram::new();
    let mut failures = BTreeMap::new();
    let mut in_flight = JoinSet::new();
    let mut pending = batches.into_iter();
    let started = Instant::now();
    loop {
        while in_flight.len() < args.pipeline {
            let Some(batch) = pending.next() else { break };
            let node = node.clone();
            in_flight.spawn(async move {
                let size = batch.len() as u64;
                let sent = Instant::now();
                let results = node.propose(vec![Command::CreateTransfers(batch)]).await;
                (size, sent.elapsed(), results)
            });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let (size, latency, results) = done.context("benchmark task")?;
        let results = results.context("proposing a batch")?;
        latencies.record(latency);
        record_transfer_failures(&results, &mut failures);
        bar.inc(size);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    node.shutdown().await?;
    Ok(Outcome {
        label: "batches",
        batches: batch_count,
        batch_size: args.batch,
        transfers,
        elapsed,
        latencies,
        failures,
    })
}

fn transfer_body(transfer: &NewTransfer) -> String {
    format!(
        r#"[{{"id":"{}","debit_account_id":"{}","credit_account_id":"{}","amount":{},"ledger":"{}","flags":[]}}]"#,
        transfer.id,
        transfer.debit_account_id,
        transfer.credit_account_id,
        transfer.amount,
        transfer.ledger
    )
}

fn accounts_body(accounts: &[NewAccount]) -> String {
    let items: Vec<String> = accounts
        .iter()
        .map(|a| {
            format!(
                r#"{{"id":"{}","ledger":"{}","kind":"{}","flags":[]}}"#,
                a.id,
                a.ledger,
                a.kind.name()
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// One keep-alive HTTP/1.1 connection, one request at a time.
///
/// Written by hand over a TCP stream (httparse reads the answer's head) rather than with a
/// general client: a load generator on the same 2 cores must cost far less per request than
/// the server it measures, and hyper's client costs about as much as the server does.
struct HttpConnection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

/// Largest answer head or body the benchmark accepts.
const ANSWER_SIZE_MAX_BYTES: usize = 64 << 20;
const ANSWER_HEADERS_MAX: usize = 32;

impl HttpConnection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// A complete POST request (head and body), ready to write in one go.
    fn post_request(path: &str, body: &[u8]) -> Vec<u8> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        request
    }

    /// Sends a request made by `post_request`; returns the status and the answer's body.
    async fn send(&mut self, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(request)
            .await
            .context("sending a request")?;
        self.buffer.clear();
        loop {
            if let Some((status, head_len, body_len)) = parse_answer_head(&self.buffer)? {
                let total = head_len + body_len;
                while self.buffer.len() < total {
                    self.read_more().await?;
                }
                let body = self.buffer[head_len..total].to_vec();
                self.buffer.drain(..total);
                return Ok((status, body));
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        use tokio::io::AsyncReadExt;
        if self.buffer.len() >= ANSWER_SIZE_MAX_BYTES {
            bail!("answer larger than {ANSWER_SIZE_MAX_BYTES} bytes");
        }
        self.buffer.reserve(4096);
        let read = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .context("reading an answer")?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        self.send(&Self::post_request(path, body)).await
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        self.send(format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
    }
}

/// (status, head length, body length) once the whole head is in `buffer`.
fn parse_answer_head(buffer: &[u8]) -> anyhow::Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; ANSWER_HEADERS_MAX];
    let mut answer = httparse::Response::new(&mut headers);
    let head_len = match answer.parse(buffer).context("malformed answer head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = answer.code.context("answer without status")?;
    let content_length = answer
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"))
        .context("answer without content-length (the benchmark client needs one)")?;
    let body_len: usize = std::str::from_utf8(content_length.value)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&len| len <= ANSWER_SIZE_MAX_BYTES)
        .context("bad content-length")?;
    Ok(Some((status, head_len, body_len)))
}

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

/// The `result` of each item of a 200 answer, or the whole answer when it is not one.
fn item_results(status: u16, body: &[u8]) -> Vec<String> {
    const ONE_OK_SUFFIX: &[u8] = br#","result":"ok"}]"#;
    if status == 200
        && body.starts_with(br#"[{"id":"#)
        && body.ends_with(ONE_OK_SUFFIX)
        && body.len() < 64
    {
        // The common answer to one transfer: skip JSON parsing in the load generator.
        return vec!["ok".to_string()];
    }
    if status != 200 {
        return vec![format!("http {status}: {}", String::from_utf8_lossy(body))];
    }
    match serde_json::from_slice::<Vec<serde_json::Value>>(body) {
        Ok(items) => items
            .iter()
            .map(|item| {
                item.get("result")
                    .and_then(|r| r.as_str())
                    .unwrap_or("malformed answer")
                    .to_string()
            })
            .collect(),
        Err(_) => vec!["malformed answer".to_string()],
    }
}

async fn run_http(args: &LedgerArgs, transfers: u64) -> anyhow::Result<Outcome> {
    eprintln!(
        "generating {transfers} single-transfer requests ({:?})",
        args.distribution
    );
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        generate_transfers(args, transfers)?
            .iter()
            .map(|transfer| {
                HttpConnection::post_request("/v1/transfers", transfer_body(transfer).as_bytes())
            })
            .collect(),
    );
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let server =
        croupier_server::start(croupier_server::ServeConfig::new(dir.path(), listen)).await?;
    let addr = server.local_addr();

    let mut setup = HttpConnection::open(addr).await?;
    for chunk in new_accounts(args.accounts).chunks(BATCH_ITEMS_MAX) {
        let (status, body) = setup
            .post("/v1/accounts", accounts_body(chunk).as_bytes())
            .await?;
        if item_results(status, &body).iter().any(|r| r != "ok") {
            bail!(
                "creating the benchmark accounts failed: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    drop(setup);

    let mut connections = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        connections.push(HttpConnection::open(addr).await?);
    }
    let bar = progress_bar(transfers, "requests");
    let next_request = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    let started = Instant::now();
    for mut connection in connections {
        let (requests, next_request, bar) = (
            Arc::clone(&requests),
            Arc::clone(&next_request),
            bar.clone(),
        );
        clients.spawn(async move {
            let mut latencies = LatencyHistogram::new();
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let index = next_request.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(index) else {
                    break;
                };
                let sent = Instant::now();
                let (status, answer) = connection.send(request).await?;
                latencies.record(sent.elapsed());
                for result in item_results(status, &answer)
                    .into_iter()
                    .filter(|r| r != "ok")
                {
                    *failures.entry(result).or_default() += 1;
                }
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
        for (code, count) in client_failures {
            *failures.entry(code).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    print_server_metrics(addr).await;
    if let Err(error) = server.shutdown().await {
        eprintln!("warning: the benchmark's node did not stop cleanly: {error}");
    }
    Ok(Outcome {
        label: "requests",
        batches: transfers,
        batch_size: 1,
        transfers,
        elapsed,
        latencies,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_follow_tigerbeetle_buckets() {
        let mut histogram = LatencyHistogram::new();
        for ms in 1..=100u64 {
            histogram.record(Duration::from_millis(ms));
        }
        assert_eq!(histogram.percentile_ms(1), 1);
        assert_eq!(histogram.percentile_ms(50), 50);
        assert_eq!(histogram.percentile_ms(99), 99);
        assert_eq!(histogram.percentile_ms(100), 100);
        histogram.record(Duration::from_secs(60));
        assert_eq!(histogram.percentile_ms(100), HISTOGRAM_MS_MAX);
    }

    #[test]
    fn every_distribution_picks_two_distinct_existing_accounts() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for distribution in [
            AccountDistribution::Uniform,
            AccountDistribution::Zipf,
            AccountDistribution::Hot,
        ] {
            let picker = AccountPicker::new(10, distribution).unwrap();
            for _ in 0..10_000 {
                let (debit, credit) = picker.pair(&mut rng);
                assert!(
                    debit < 10 && credit < 10 && debit != credit,
                    "{distribution:?}: {debit} {credit}"
                );
            }
        }
    }

    #[test]
    fn hot_distribution_always_debits_the_first_account() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let picker = AccountPicker::new(1000, AccountDistribution::Hot).unwrap();
        assert!((0..1000).all(|_| picker.pair(&mut rng).0 == 0));
    }

    #[test]
    fn zipf_distribution_favours_low_ranks() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let picker = AccountPicker::new(10_000, AccountDistribution::Zipf).unwrap();
        let draws = 100_000;
        let top_ten = (0..draws).filter(|_| picker.index(&mut rng) < 10).count();
        // With exponent 1 over 10,000 ranks the ten hottest take about 30% of the draws.
        assert!(top_ten > draws / 5 && top_ten < draws / 2, "{top_ten}");
    }

    #[test]
    fn failures_are_counted_by_result_code() {
        use croupier_core::CreateTransferResult;
        let mut failures = BTreeMap::new();
        let results = vec![CommandResult::Transfers(vec![
            CreateTransferResult::Ok,
            CreateTransferResult::ExceedsCredits,
            CreateTransferResult::ExceedsCredits,
        ])];
        record_transfer_failures(&results, &mut failures);
        assert_eq!(
            failures,
            BTreeMap::from([("exceeds_credits".to_string(), 2)])
        );
    }

    #[test]
    fn answer_heads_give_status_and_body_length_once_complete() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 27\r\n\r\n[{";
        let (status, head_len, body_len) = parse_answer_head(answer).unwrap().unwrap();
        assert_eq!((status, body_len), (200, 27));
        assert_eq!(&answer[head_len..], b"[{");
        assert!(parse_answer_head(b"HTTP/1.1 200 OK\r\ncontent-le")
            .unwrap()
            .is_none());
        assert!(
            parse_answer_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err(),
            "no content-length"
        );
    }

    #[test]
    fn one_ok_answer_is_recognised_without_parsing_and_others_are_parsed() {
        assert_eq!(
            item_results(200, br#"[{"id":"7","result":"ok"}]"#),
            vec!["ok"]
        );
        assert_eq!(
            item_results(200, br#"[{"id":"7","result":"exceeds_credits"}]"#),
            vec!["exceeds_credits"]
        );
        assert_eq!(item_results(503, b"{}"), vec!["http 503: {}"]);
    }

    #[test]
    fn request_bodies_are_json_arrays_of_one_transfer() {
        let transfer = NewTransfer {
            id: 7,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 30,
            ledger: ledger_code(),
            flags: TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
        };
        let body: serde_json::Value = serde_json::from_str(&transfer_body(&transfer)).unwrap();
        assert_eq!(body[0]["id"], "7");
        assert_eq!(body[0]["amount"], 30);
        assert_eq!(body[0]["ledger"], "EUR");
    }
}
