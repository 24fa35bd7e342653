//! Jepsen's bank test for Croupier: `bench bank` moves money between a fixed set of player
//! accounts from concurrent clients (on one or several nodes) while reading every balance,
//! and writes what each operation did to a history file; `check bank` then verifies that
//! history, and with `--server` the ledger's final state, against the bank's invariants (see
//! `checker`).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use croupier_core::LedgerCode;
use tokio::task::JoinSet;

use crate::bench_cmd::client;
use crate::operator_key::{self, KeyArgs, OperatorKey};

mod api;
mod checker;
mod history;
mod workload;

use api::{BankLayout, Session};
use workload::{HistoryWriter, Shared, Tally};

/// A read looks up every account at once; more accounts would only make reads slower.
pub const ACCOUNTS_MAX: usize = 1024;
const CLIENTS_MAX: usize = 256;
/// Setup is retried (it is idempotent) while a cluster elects a leader or a node starts.
const SETUP_ATTEMPTS: u32 = 20;
const SETUP_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Violations printed by `check bank`; the rest are counted.
const VIOLATIONS_SHOWN: usize = 20;

#[derive(clap::Args)]
pub struct BenchBankArgs {
    /// Servers to spread the clients over (round-robin): host:port or http://host:port,
    /// comma-separated.
    #[arg(long, value_name = "URL", value_delimiter = ',', required = true)]
    servers: Vec<String>,
    /// Player accounts.
    #[arg(long, default_value_t = 8)]
    accounts: usize,
    /// Each player's starting balance; transfers move 1 to balance/4.
    #[arg(long, default_value_t = 1000)]
    balance: u64,
    /// Concurrent clients, each with one operation in flight.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// How long the clients run.
    #[arg(long, default_value_t = 30)]
    duration_s: u64,
    /// Where to write the history (JSON lines; replaced if it exists).
    #[arg(long, value_name = "FILE")]
    history: PathBuf,
    /// The ledger of the bank's accounts; their ids derive from it, so a new ledger is a new
    /// bank and rerunning on the same one reuses the same accounts.
    #[arg(long, default_value = "BANK", value_name = "CODE")]
    ledger: String,
    /// Seed of the clients' choices [default: random; printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Percentage of operations that read every balance; the rest are transfers.
    #[arg(long, default_value_t = 20)]
    read_percent: u32,
    /// A request not answered within this many seconds ends its operation (`info` for a
    /// transfer, whose outcome is then unknown).
    #[arg(long, default_value_t = 5)]
    request_timeout_s: u64,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(clap::Args)]
pub struct CheckBankArgs {
    /// The history `bench bank` wrote.
    #[arg(long, value_name = "FILE")]
    history: PathBuf,
    /// The money in the bank: accounts × balance of the run.
    #[arg(long)]
    total: i64,
    /// Also read the final balances and every account's transfers from this server
    /// (host:port or http://host:port); run it once no transfer can still be in flight.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Give up on one request after this many seconds.
    #[arg(long, default_value_t = 30)]
    request_timeout_s: u64,
    // Used with --server only.
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(clap::Subcommand)]
pub enum CheckCommand {
    /// Verify a `bench bank` history (and the server's final state): exit 0 when valid, 1
    /// when not, 2 when the history cannot be read.
    Bank(CheckBankArgs),
}

pub fn run_check_command(cmd: CheckCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CheckCommand::Bank(args) => run_check(args),
    }
}

/// Validated `bench bank` settings.
struct BenchPlan {
    servers: Vec<SocketAddr>,
    layout: BankLayout,
    seed: u64,
    duration: Duration,
    request_timeout: Duration,
    key: Option<OperatorKey>,
}

fn plan(args: &BenchBankArgs) -> anyhow::Result<BenchPlan> {
    let servers = args
        .servers
        .iter()
        .map(|server| client::parse_server_address(server.trim()))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("--servers")?;
    if !(2..=ACCOUNTS_MAX).contains(&args.accounts) {
        bail!(
            "--accounts: must be between 2 and {ACCOUNTS_MAX}, got {}",
            args.accounts
        );
    }
    if args.balance < 4 {
        bail!("--balance: must be at least 4 (transfers move 1 to balance/4)");
    }
    if (args.accounts as u128) * u128::from(args.balance) > i64::MAX as u128 {
        bail!("--accounts × --balance must fit in a signed 64-bit integer");
    }
    if !(1..=CLIENTS_MAX).contains(&args.clients) {
        bail!(
            "--clients: must be between 1 and {CLIENTS_MAX}, got {}",
            args.clients
        );
    }
    if args.duration_s == 0 || args.request_timeout_s == 0 {
        bail!("--duration-s and --request-timeout-s must be at least 1");
    }
    if args.read_percent > 100 {
        bail!(
            "--read-percent: must be between 0 and 100, got {}",
            args.read_percent
        );
    }
    let ledger = LedgerCode::parse(&args.ledger)
        .map_err(|error| anyhow::anyhow!("--ledger {:?}: {error}", args.ledger))?;
    Ok(BenchPlan {
        servers,
        layout: BankLayout::new(ledger, args.accounts, args.balance),
        seed: args.seed.unwrap_or_else(|| random_u64() >> 1),
        duration: Duration::from_secs(args.duration_s),
        request_timeout: Duration::from_secs(args.request_timeout_s),
        key: args.key.key().cloned(),
    })
}

impl BenchPlan {
    fn session(&self, server: SocketAddr) -> Session {
        Session::new(server, self.request_timeout, self.key.clone())
    }
}

/// A random number: std seeds `RandomState` from the OS's random source.
fn random_u64() -> u64 {
    RandomState::new().hash_one((Instant::now(), std::process::id()))
}

pub fn run_bench(args: BenchBankArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(bench(&args, plan)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn bench(args: &BenchBankArgs, plan: BenchPlan) -> anyhow::Result<()> {
    let total = plan.layout.balance * plan.layout.players.len() as u64;
    println!(
        "bank on ledger {}: {} accounts of {} (total {total}), seed {}",
        plan.layout.ledger,
        plan.layout.players.len(),
        plan.layout.balance,
        plan.seed
    );
    set_up(&plan).await?;
    let shared = Arc::new(Shared {
        layout: plan.layout.clone(),
        history: HistoryWriter::create(&args.history)?,
        run: (random_u64() % u64::from(u32::MAX)) as u32 + 1,
        next_sequence: AtomicU32::new(1),
        clients: args.clients,
        read_percent: args.read_percent,
        deadline: Instant::now() + plan.duration,
        stop: AtomicBool::new(false),
    });
    let mut tally = Tally::default();
    if !first_read(&plan, &shared, &mut tally).await? {
        bail!(
            "the first read of every balance failed on every server: see {}",
            args.history.display()
        );
    }
    let started = Instant::now();
    tally.merge(run_clients(&plan, &shared).await?);
    print!("{}", workload::summary(&tally, started.elapsed()));
    let servers: Vec<String> = plan.servers.iter().map(ToString::to_string).collect();
    // The key itself is a secret: the suggested command names the flag only.
    let key = if plan.key.is_some() { " --key KEY" } else { "" };
    println!(
        "history in {}; check it with\n  croupier check bank --history {} --total {total} --server {}{key}",
        args.history.display(),
        args.history.display(),
        servers[0]
    );
    Ok(())
}

/// A read before any transfer puts every account of the bank in the history; each server is
/// tried in turn. True when one succeeded.
async fn first_read(plan: &BenchPlan, shared: &Shared, tally: &mut Tally) -> anyhow::Result<bool> {
    for &server in &plan.servers {
        let mut session = plan.session(server);
        if workload::read(0, &mut session, shared, tally).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs the clients until the deadline or a Ctrl-C (which lets operations in flight finish).
async fn run_clients(plan: &BenchPlan, shared: &Arc<Shared>) -> anyhow::Result<Tally> {
    let mut clients = JoinSet::new();
    for index in 0..shared.clients {
        let server = plan.servers[index % plan.servers.len()];
        let session = plan.session(server);
        let shared = Arc::clone(shared);
        clients.spawn(workload::client(index, session, shared, plan.seed));
    }
    let stopper = Arc::clone(shared);
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            println!("SIGINT: finishing the operations in flight");
            stopper.stop.store(true, Ordering::Relaxed);
        }
    });
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.merge(done.context("a bank client task")??);
    }
    interrupt.abort();
    Ok(tally)
}

/// Creates and funds the bank, trying each server in turn until one succeeds.
async fn set_up(plan: &BenchPlan) -> anyhow::Result<()> {
    let mut last_error = None;
    for attempt in 0..SETUP_ATTEMPTS {
        let server = plan.servers[attempt as usize % plan.servers.len()];
        let mut session = plan.session(server);
        match session.set_up(&plan.layout).await {
            Ok(existed) => {
                if existed {
                    println!(
                        "note: the accounts exist from an earlier run on ledger {}; `check bank \
                         --server` will report that run's transfers as never invoked (use a new \
                         --ledger for a clean check)",
                        plan.layout.ledger
                    );
                }
                return Ok(());
            }
            // Every node reads the same keys file: another node or attempt would refuse too.
            Err(error) if operator_key::is_refused(&error) => {
                return Err(error.context(format!("setting up the bank on {server}")));
            }
            Err(error) => {
                last_error = Some(error.context(format!("setting up the bank on {server}")))
            }
        }
        tokio::time::sleep(SETUP_RETRY_PAUSE).await;
    }
    Err(last_error.expect("at least one attempt"))
}

pub fn run_check(args: CheckBankArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.history)
        .with_context(|| format!("cannot read the history {}", args.history.display()))?;
    let ops = history::parse_history(&text)?;
    let history = checker::pair(&ops).context("the history is malformed")?;
    let server = args
        .server
        .as_deref()
        .map(client::parse_server_address)
        .transpose()
        .context("--server")?;
    if args.request_timeout_s == 0 {
        bail!("--request-timeout-s: must be at least 1");
    }
    let final_state = match server {
        Some(addr) => {
            let accounts = checker::accounts(&history);
            let timeout = Duration::from_secs(args.request_timeout_s);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let key = args.key.key().cloned();
            match runtime.block_on(final_state(addr, &accounts, timeout, key)) {
                Ok(state) => Some(state),
                Err(error) => {
                    eprintln!("error: cannot read the final state from {addr}: {error:#}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => None,
    };
    let report = checker::check(&history, args.total, final_state.as_ref());
    print_report(&report, final_state.as_ref());
    Ok(if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every bank account's balance and listed transfers, as the server holds them now.
async fn final_state(
    addr: SocketAddr,
    accounts: &BTreeSet<u128>,
    timeout: Duration,
    key: Option<OperatorKey>,
) -> anyhow::Result<checker::FinalState> {
    let accounts: Vec<u128> = accounts.iter().copied().collect();
    let mut session = Session::new(addr, timeout, key);
    let balances = session.read_balances(&accounts).await?;
    let mut listed = Vec::new();
    for &account in &accounts {
        listed.extend(session.account_transfers(account).await?);
    }
    Ok(checker::FinalState { balances, listed })
}

fn print_report(report: &checker::Report, final_state: Option<&checker::FinalState>) {
    for violation in report.violations.iter().take(VIOLATIONS_SHOWN) {
        println!("violation: {violation}");
    }
    if report.violations.len() > VIOLATIONS_SHOWN {
        println!(
            "... and {} more",
            report.violations.len() - VIOLATIONS_SHOWN
        );
    }
    println!("{} accounts", report.accounts);
    for ((f, outcome), count) in &report.counts {
        println!("{f} {outcome}: {count}");
    }
    match final_state {
        Some(state) => println!(
            "final state: {} balances, {} transfer listings",
            state.balances.len(),
            state.listed.len()
        ),
        None => println!("final state: not checked (no --server)"),
    }
    if report.violations.is_empty() {
        println!("valid");
    } else {
        println!("INVALID: {} violations", report.violations.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchBankArgs,
    }

    fn plan_of(extra: &[&str]) -> anyhow::Result<BenchPlan> {
        let mut argv = vec![
            "bench",
            "--servers",
            "127.0.0.1:1,http://127.0.0.1:2",
            "--history",
            "h",
        ];
        argv.extend_from_slice(extra);
        plan(&Cli::try_parse_from(argv).unwrap().bench)
    }

    #[test]
    fn bench_bank_accepts_server_lists_in_both_forms() {
        let plan = plan_of(&["--seed", "5"]).unwrap();
        assert_eq!(
            plan.servers,
            [
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap()
            ]
        );
        assert_eq!(plan.seed, 5);
        assert_eq!(plan.layout.players.len(), 8);
    }

    #[test]
    fn bench_bank_refuses_settings_that_make_no_bank() {
        for (flags, complaint) in [
            (&["--accounts", "1"][..], "--accounts"),
            (&["--balance", "3"], "--balance"),
            (&["--clients", "0"], "--clients"),
            (&["--duration-s", "0"], "--duration-s"),
            (&["--read-percent", "101"], "--read-percent"),
            (&["--ledger", "bank"], "--ledger"),
            (
                &["--accounts", "1024", "--balance", "18446744073709551615"],
                "fit",
            ),
        ] {
            let error = plan_of(flags)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(complaint), "{flags:?}: {error:?}");
        }
        let error = plan(
            &Cli::try_parse_from(["bench", "--servers", "localhost", "--history", "h"])
                .unwrap()
                .bench,
        );
        assert!(error.is_err());
    }
}
