//! `croupier bench ledger`: TigerBeetle's benchmark workload (create accounts without balance
//! limits, then transfers between random distinct accounts in large batches), three ways:
//!
//! - `--server URL`: this process is the client of a separately started `croupier serve`,
//!   with `--clients` connections each keeping one batch in flight, as TigerBeetle's
//!   `benchmark` drives its replica;
//! - default, "in-process": an embedded durable node in a temporary directory, no HTTP;
//! - `--http`: single-transfer HTTP requests on many connections to a server in this process.
//!
//! Output follows TigerBeetle's `benchmark` lines (`load accepted = N tx/s`,
//! `batch latency p50  = N ms`) so one script can read both; a `mode =` line first says which
//! of the three ran. Every transfer must answer `ok`; failures are counted, printed and make
//! the command exit 1.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use croupier_core::BATCH_ITEMS_MAX;
use indicatif::{ProgressBar, ProgressStyle};

/// Also the HTTP client of `bench bank`, `check bank` and `cluster`.
pub(crate) mod client;
mod embedded;
mod failover;
mod live;
mod live_setup;
mod payments;
mod remote;
mod single;
mod wallet;
mod workload;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Jepsen's bank workload against one or more nodes: transfers between player accounts
    /// and reads of every balance, recorded as a history for `croupier check bank`.
    Bank(crate::bank_cmd::BenchBankArgs),
    /// TigerBeetle's benchmark workload against `croupier serve` (--server), an embedded
    /// durable node (in-process, the default) or an in-process HTTP server (--http).
    Ledger(LedgerArgs),
    /// Leader fail-over time of a local replicated cluster under write load (SIGKILL of the
    /// leader, time to the first acknowledged write after it).
    Failover(failover::FailoverArgs),
    /// Players betting on a live table over HTTP while WebSocket subscribers watch it, against
    /// a `croupier serve` child process: accepted bets/s, bet latency, result delivery time.
    Live(live::LiveArgs),
    /// Single wallet bets, then single withdrawal scores, from this process to a `croupier
    /// serve` child: with `--limits` every responsible-gambling check runs on every bet.
    Wallet(wallet::WalletArgs),
    /// Withdrawals through the whole payments pipeline of a `croupier serve` child with two
    /// sandbox bank children (OBIE and Berlin Group): paid withdrawals/s, request to paid.
    Payments(payments::PaymentsArgs),
}

#[derive(clap::Args)]
pub struct LedgerArgs {
    /// Accounts to create before the timed part.
    #[arg(long, default_value_t = 10_000)]
    accounts: u64,
    /// Transfers to create [default: 10000000, or 200000 with --http].
    #[arg(long)]
    transfers: Option<u64>,
    /// Transfers per batch: per request with --server, per log entry in-process
    /// (TigerBeetle's --transfer-batch-count).
    #[arg(long, default_value_t = BATCH_ITEMS_MAX)]
    batch: usize,
    /// How transfers pick their accounts: uniform; zipf (TigerBeetle's shuffled zipfian,
    /// theta 0.99); hot (every transfer debits account 1, as TigerBeetle's
    /// --account-count-hot=1 --transfer-hot-percent=100).
    #[arg(long, value_enum, default_value_t = AccountDistribution::Uniform)]
    distribution: AccountDistribution,
    /// Drive a separately started `croupier serve` at this URL (http://host:port).
    #[arg(long, value_name = "URL", conflicts_with_all = ["http", "pipeline"])]
    server: Option<String>,
    /// Client connections with --server, each with one batch in flight (TigerBeetle's
    /// --clients).
    #[arg(long, default_value_t = 1, requires = "server")]
    clients: usize,
    /// Request encoding with --server.
    #[arg(long, value_enum, default_value_t = client::Encoding::Binary, requires = "server")]
    encoding: client::Encoding,
    // Used with --server only: the other modes start a node of their own.
    #[command(flatten)]
    key: crate::operator_key::KeyArgs,
    /// High 64 bits of every account and transfer id [default: random with --server, so runs
    /// against one server never clash; 0 otherwise].
    #[arg(long)]
    id_high: Option<u64>,
    /// With --server: print a line every this many seconds with the transfers done and the
    /// rate over the interval (to see whether throughput holds up over a long run).
    #[arg(long, requires = "server")]
    report_interval_s: Option<u64>,
    /// Drive an HTTP server in this process with single-transfer requests.
    #[arg(long)]
    http: bool,
    /// With --http: the server has an operator key (so protected mode is off) and per-key and
    /// per-address rate limits far above the load (so they run on every request), and every
    /// request carries the key: the cost of authentication and rate limiting.
    #[arg(long, requires = "http")]
    auth: bool,
    /// Concurrent keep-alive HTTP/1.1 connections (with --http).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Batches in flight at once (in-process), so the fsync of one overlaps the apply of the
    /// previous.
    #[arg(long, default_value_t = 3)]
    pipeline: usize,
    /// Seed of the workload generator (TigerBeetle's default is 42 too).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccountDistribution {
    Uniform,
    Zipf,
    Hot,
}

const TRANSFERS_DEFAULT: u64 = 10_000_000;
const TRANSFERS_HTTP_DEFAULT: u64 = 200_000;
const CONNECTIONS_MAX: usize = 16_384;
/// TigerBeetle's own limit on clients of one cluster.
const CLIENTS_MAX: usize = 64;
const PIPELINE_MAX: usize = 64;
/// Latency histogram: 1 ms buckets up to 10 s, as TigerBeetle's benchmark keeps them.
const HISTOGRAM_MS_MAX: usize = 10_000;

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Bank(args) => crate::bank_cmd::run_bench(args),
        BenchCommand::Ledger(args) => run_ledger(args),
        BenchCommand::Failover(args) => failover::run(args),
        BenchCommand::Live(args) => live::run(args),
        BenchCommand::Wallet(args) => wallet::run(args),
        BenchCommand::Payments(args) => payments::run(args),
    }
}

fn check_range(flag: &str, value: usize, max: usize) -> anyhow::Result<()> {
    if value == 0 || value > max {
        bail!("--{flag}: must be between 1 and {max}, got {value}");
    }
    Ok(())
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
    check_range("batch", args.batch, BATCH_ITEMS_MAX)?;
    check_range("connections", args.connections, CONNECTIONS_MAX)?;
    check_range("clients", args.clients, CLIENTS_MAX)?;
    check_range("pipeline", args.pipeline, PIPELINE_MAX)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = match (&args.server, args.http) {
        (Some(url), _) => runtime.block_on(remote::run(&args, transfers, url))?,
        (None, true) => runtime.block_on(single::run(&args, transfers))?,
        (None, false) => runtime.block_on(embedded::run(&args, transfers))?,
    };
    outcome.print();
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What a run measured.
struct Outcome {
    /// Which of the three ways ran, and how client and server were placed.
    mode: String,
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
        println!("mode = {}", self.mode);
        println!("{} batches in {seconds:.2} s", self.batches);
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

fn merge_failures(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (code, count) in from {
        *into.entry(code).or_default() += count;
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
}
