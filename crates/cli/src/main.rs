//! The `croupier` binary: parses the command line and hands each subcommand to its module.
//! Exit codes: 0 success, 1 a check failed (audit, rng test, games verify, check bank) or a
//! server refused (cluster), 2 bad usage/input.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The HTTP path allocates small objects at a high rate from many threads; glibc malloc took
/// about 13% of CPU there, mimalloc about a quarter less user time in the measured benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The environment variable with which an operator hands the huge-page choice back to
/// mimalloc (`MIMALLOC_ALLOW_THP=1`: it then asks for them, as it does by default).
const ALLOW_THP_VARIABLE: &str = "MIMALLOC_ALLOW_THP";

/// mimalloc asks the kernel for transparent huge pages on its memory, so the first touch of
/// each 2 MiB region zeroes all of it on the spot. When thousands of requests arrive at once
/// (a round opening, players reconnecting after a failover) the request threads pay that on the
/// request path: 47% of the server's CPU went to `clear_page_erms` in the first 400 ms of
/// `croupier bench live`, and bets due then waited 100-300 ms. With huge pages off the same
/// moment has no slow bet, and batch ledger throughput is unchanged (README, "Live tables").
/// The flag is the process's and its children's; failing to set it only costs that speed.
fn keep_transparent_huge_pages_off() {
    if std::env::var_os(ALLOW_THP_VARIABLE).is_none() {
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

mod audit_cmd;
mod bank_cmd;
mod bench_cmd;
mod certify_cmd;
mod cluster_cmd;
mod config;
mod config_cmd;
mod demo;
mod fair_cmd;
mod games_cmd;
mod keys_cmd;
mod operator_key;
mod payments_cmd;
mod rng_cmd;
mod sandbox_cmd;
mod serve_cmd;
mod studio_cmd;

#[derive(Parser)]
#[command(
    name = "croupier",
    version,
    about = "High-availability core for online wagering"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: durable ledger, HTTP API, metrics.
    Serve(Box<serve_cmd::ServeArgs>),
    /// serve's settings: the default file, and a check of a file with the environment.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Cluster membership and leadership, and local clusters for development and drills.
    #[command(subcommand)]
    Cluster(cluster_cmd::ClusterCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
    /// Verify what a workload recorded.
    #[command(subcommand)]
    Check(bank_cmd::CheckCommand),
    /// Offline audit of a stopped node's data directory.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// The certified random number generator: raw output, scaled outcomes, statistical tests.
    #[command(subcommand)]
    Rng(rng_cmd::RngCommand),
    /// Provably-fair proofs: floats from seeds, verification, hash chains.
    #[command(subcommand)]
    Fair(fair_cmd::FairCommand),
    /// Game definitions, exact RTP, simulation, and their certification (keygen, sign, verify).
    #[command(subcommand)]
    Games(games_cmd::GamesCommand),
    /// Seeded program verification: HMAC-SHA256 under a verifier's seed of this executable and
    /// of every game definition file, to compare with a certified copy.
    Certify(certify_cmd::CertifyArgs),
    /// Operator and provider keys (create, list, revoke).
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// A live studio's console: its key, and signed results for its tables' rounds.
    #[command(subcommand)]
    Studio(studio_cmd::StudioCommand),
    /// Sandboxes of the outside world (identity provider, ...) as their own processes, for tests and demos.
    #[command(subcommand)]
    Sandbox(sandbox_cmd::SandboxCommand),
    /// The banks: reconcile a bank statement with the ledger.
    #[command(subcommand)]
    Payments(payments_cmd::PaymentsCommand),
}

fn main() -> ExitCode {
    keep_transparent_huge_pages_off();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve_cmd::run(*args),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Cluster(cmd) => cluster_cmd::run(cmd),
        Command::Bench(cmd) => bench_cmd::run(cmd),
        Command::Check(cmd) => bank_cmd::run_check_command(cmd),
        Command::Audit(cmd) => audit_cmd::run(cmd),
        Command::Rng(cmd) => rng_cmd::run(cmd),
        Command::Fair(cmd) => fair_cmd::run(cmd),
        Command::Games(cmd) => games_cmd::run(cmd),
        Command::Certify(args) => certify_cmd::run(args),
        Command::Keys(cmd) => keys_cmd::run(cmd),
        Command::Studio(cmd) => studio_cmd::run(cmd),
        Command::Sandbox(cmd) => sandbox_cmd::run(cmd),
        Command::Payments(cmd) => payments_cmd::run(cmd),
    };
    match outcome {
        Ok(code) => code,
        // The reader went away (`croupier games list | head -1`): it has what it wanted.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
