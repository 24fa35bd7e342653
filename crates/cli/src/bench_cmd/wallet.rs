//! `croupier bench wallet`: single wallet bets (`POST /v1/wallet/bet`, a game provider's call)
//! from this process to a `croupier serve` child, then single withdrawal scores
//! (`POST /v1/risk/withdrawal-score`) of the same players. With `--limits`, every player has all
//! nine money limits, a session limit and a reality-check interval set (none of them reached),
//! so each bet runs every responsible-gambling check in the apply; run it with and without to
//! see what the checks cost on the path that has them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use croupier_cluster::{Node, NodeConfig};
use croupier_core::compliance::{
    ComplianceCommand, LimitChange, LimitsRequest, LIMIT_SLOTS, SESSION_MINUTES_MAX,
};
use croupier_core::{Command as LedgerCommand, CommandResult, LedgerCode};
use tokio::task::JoinSet;

use super::client::HttpConnection;
use super::live_setup::{self, ServerProcess, StageConfig};
use super::LatencyHistogram;

#[derive(clap::Args)]
pub struct WalletArgs {
    /// Funded players the bets are spread over (round robin).
    #[arg(long, default_value_t = 1_000)]
    players: usize,
    /// Wallet bets to send (each 0.01 EUR, each its own request).
    #[arg(long, default_value_t = 200_000)]
    bets: usize,
    /// Withdrawal scores to ask for after the bets (0: none).
    #[arg(long, default_value_t = 20_000)]
    scores: usize,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Give every player every limit (far above what the run stakes), a session limit and a
    /// reality-check interval, so every bet is checked against all of them.
    #[arg(long)]
    limits: bool,
}

/// Far above the run's stakes: the limits are checked on every bet, never reached.
const LIMIT_AMOUNT: u64 = 1_000_000_000_000;
const PLAYERS_MAX: usize = 100_000;
const CONNECTIONS_MAX: usize = 4_096;

pub fn run(args: WalletArgs) -> anyhow::Result<ExitCode> {
    if args.players == 0 || args.players > PLAYERS_MAX {
        bail!("--players: must be between 1 and {PLAYERS_MAX}");
    }
    if args.connections == 0 || args.connections > CONNECTIONS_MAX {
        bail!("--connections: must be between 1 and {CONNECTIONS_MAX}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: WalletArgs) -> anyhow::Result<ExitCode> {
    let work = tempfile::tempdir().context("creating a work directory")?;
    let data = work.path().join("data");
    eprintln!("seeding {} funded players", args.players);
    let players = live_setup::seed(&data, args.players).await?;
    let ids: Vec<u128> = players.iter().map(|p| p.player_id).collect();
    if args.limits {
        set_every_limit(&data, &ids).await?;
    }
    let stage = StageConfig {
        window_ms: 8_000,
        connections: args.connections + 64,
    };
    let server = ServerProcess::start(work.path(), &data, &stage).await?;
    let bets = bet_requests(&ids, args.bets);
    let label = match args.limits {
        true => "every limit set",
        false => "no limits",
    };
    let outcome = drive(server.addr, args.connections, bets).await?;
    outcome.print(&format!("wallet bets ({label})"));
    if args.scores > 0 {
        let scores = score_requests(&ids, args.scores);
        let outcome = drive(server.addr, args.connections, scores).await?;
        outcome.print("withdrawal scores");
    }
    server.stop()?;
    Ok(ExitCode::SUCCESS)
}

/// All nine money limits, a 24-hour session limit and a 24-hour reality-check interval.
async fn set_every_limit(data: &Path, ids: &[u128]) -> anyhow::Result<()> {
    let node = Node::start(NodeConfig::new(data)).await?;
    let eur = LedgerCode::parse("EUR").expect("a valid code");
    let day = u64::try_from(SESSION_MINUTES_MAX).unwrap_or(1_440);
    for chunk in ids.chunks(500) {
        let mut commands = Vec::with_capacity(chunk.len() * 2);
        for &player_id in chunk {
            let limits = LimitsRequest {
                player_id,
                ledger: eur,
                money: [Some(LimitChange::Set(LIMIT_AMOUNT)); LIMIT_SLOTS],
                session_minutes: Some(LimitChange::Set(day)),
            };
            commands.push(LedgerCommand::Compliance(ComplianceCommand::SetLimits(
                limits,
            )));
            commands.push(LedgerCommand::Compliance(
                ComplianceCommand::SetRealityCheck {
                    player_id,
                    minutes: LimitChange::Set(day),
                },
            ));
        }
        for result in live_setup::propose(&node, commands).await? {
            if !matches!(&result, CommandResult::Compliance(outcome) if outcome.code() == "ok") {
                bail!("setting a benchmark player's limits answered {result:?}");
            }
        }
    }
    node.shutdown().await?;
    Ok(())
}

fn bet_requests(ids: &[u128], count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| {
            let player = ids[n % ids.len()];
            let body = format!(
                r#"{{"transaction_id":"b{n}","player_id":"{player}","round_id":"r{n}","amount":1,"ledger":"EUR"}}"#
            );
            HttpConnection::post_request("/v1/wallet/bet", "application/json", body.as_bytes())
        })
        .collect()
}

fn score_requests(ids: &[u128], count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| {
            let player = ids[n % ids.len()];
            let body = format!(r#"{{"player_id":"{player}","amount":250000,"ledger":"EUR"}}"#);
            let path = "/v1/risk/withdrawal-score";
            HttpConnection::post_request(path, "application/json", body.as_bytes())
        })
        .collect()
}

struct RunOutcome {
    requests: usize,
    elapsed: Duration,
    latencies: LatencyHistogram,
    /// Answers other than 200, by status.
    failures: BTreeMap<u16, u64>,
}

impl RunOutcome {
    fn print(&self, what: &str) {
        let per_s = self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{what}: {} requests in {:.2} s = {per_s:.0} /s; latency p50 {} ms, p99 {} ms, p100 {} ms; \
             not 200: {:?}",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.latencies.percentile_ms(50),
            self.latencies.percentile_ms(99),
            self.latencies.percentile_ms(100),
            self.failures,
        );
    }
}

/// Every connection takes the next request until none is left; the clock runs from the first
/// request to the last answer (connections are opened before).
async fn drive(
    addr: std::net::SocketAddr,
    connections: usize,
    requests: Vec<Vec<u8>>,
) -> anyhow::Result<RunOutcome> {
    let count = requests.len();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(HttpConnection::open(addr).await?);
    }
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for mut connection in opened {
        let (requests, next) = (Arc::clone(&requests), Arc::clone(&next));
        clients.spawn(async move {
            let mut latencies = LatencyHistogram::new();
            let mut failures: BTreeMap<u16, u64> = BTreeMap::new();
            while let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed)) {
                let sent = Instant::now();
                let (status, _) = connection.send(request).await?;
                latencies.record(sent.elapsed());
                if status != 200 {
                    *failures.entry(status).or_default() += 1;
                }
            }
            anyhow::Ok((latencies, failures))
        });
    }
    let mut latencies = LatencyHistogram::new();
    let mut failures = BTreeMap::new();
    while let Some(done) = clients.join_next().await {
        let (client_latencies, client_failures) = done.context("benchmark connection task")??;
        latencies.merge(&client_latencies);
        for (status, n) in client_failures {
            *failures.entry(status).or_default() += n;
        }
    }
    Ok(RunOutcome {
        requests: count,
        elapsed: started.elapsed(),
        latencies,
        failures,
    })
}
