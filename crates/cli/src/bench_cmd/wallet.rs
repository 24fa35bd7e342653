//! `croupier bench wallet`: single wallet bets (`POST /v1/wallet/bet`, a game provider's call)
//! from this process to a `croupier serve` child, then single withdrawal scores
//! (`POST /v1/risk/withdrawal-score`) of the same players. With `--limits`, every player has all
//! nine money limits, a session limit and a reality-check interval set (none of them reached),
//! so each bet runs every responsible-gambling check in the apply; run it with and without to
//! see what the checks cost on the path that has them.
//!
//! The AML pipeline: `--feed-events N` writes N wallet bets through the ledger before the
//! server starts, so its pipeline begins N events behind; the run times how fast it drains
//! them (its capacity, from `croupier_aml_events_total`), then reports its lag while the bets
//! of the HTTP phase stream in (`croupier_aml_lag_seconds`, that phase's samples only).

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
    /// Keep-alive connections for the bets, each with one request in flight.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Keep-alive connections for the withdrawal scores (a payment pipeline's few workers,
    /// not a crowd: with hundreds in flight the latency is the queue's).
    #[arg(long, default_value_t = 16)]
    score_connections: usize,
    /// Give every player every limit (far above what the run stakes), a session limit and a
    /// reality-check interval, so every bet is checked against all of them.
    #[arg(long)]
    limits: bool,
    /// Wallet bets written before the server starts, for the AML pipeline to catch up on.
    #[arg(long, default_value_t = 0)]
    feed_events: usize,
}

/// Far above the run's stakes: the limits are checked on every bet, never reached.
const LIMIT_AMOUNT: u64 = 1_000_000_000_000;
const PLAYERS_MAX: usize = 100_000;
const CONNECTIONS_MAX: usize = 4_096;

pub fn run(args: WalletArgs) -> anyhow::Result<ExitCode> {
    if args.players == 0 || args.players > PLAYERS_MAX {
        bail!("--players: must be between 1 and {PLAYERS_MAX}");
    }
    for (flag, value) in [
        ("connections", args.connections),
        ("score-connections", args.score_connections),
    ] {
        if value == 0 || value > CONNECTIONS_MAX {
            bail!("--{flag}: must be between 1 and {CONNECTIONS_MAX}");
        }
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
    if args.feed_events > 0 {
        eprintln!(
            "writing {} wallet bets for the AML pipeline",
            args.feed_events
        );
        write_backlog(&data, &ids, args.feed_events).await?;
    }
    let stage = StageConfig {
        window_ms: 8_000,
        bets_total_interval_ms: None,
        draw_delay_ms: None,
        connections: args.connections + 64,
    };
    let server = ServerProcess::start(work.path(), &data, &stage).await?;
    if args.feed_events > 0 {
        drain(server.addr, args.feed_events).await?;
    }
    let bets = bet_requests(&ids, args.bets);
    let label = match args.limits {
        true => "every limit set",
        false => "no limits",
    };
    let lag_before = scrape(server.addr).await?;
    let outcome = drive(server.addr, args.connections, bets).await?;
    outcome.print(&format!("wallet bets ({label})"));
    // The pipeline decides on the last bets a moment after they are answered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lag_after = scrape(server.addr).await?;
    print_lag(&lag_before, &lag_after);
    if args.scores > 0 {
        let scores = score_requests(&ids, args.scores);
        let outcome = drive(server.addr, args.score_connections, scores).await?;
        outcome.print(&format!(
            "withdrawal scores ({} connections)",
            args.score_connections
        ));
    }
    server.stop()?;
    Ok(ExitCode::SUCCESS)
}

/// All nine money limits, a 24-hour session limit and a 24-hour reality-check interval.
async fn set_every_limit(data: &Path, ids: &[u128]) -> anyhow::Result<()> {
    let node = Node::start(NodeConfig::new(data)).await?;
    let eur = LedgerCode::parse("EUR").expect("a valid code");
    let day = SESSION_MINUTES_MAX;
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

/// `count` wallet bets of 0.01 EUR, written through the ledger in large entries.
async fn write_backlog(data: &Path, ids: &[u128], count: usize) -> anyhow::Result<()> {
    let node = Node::start(NodeConfig::new(data)).await?;
    let eur = LedgerCode::parse("EUR").expect("a valid code");
    for first in (0..count).step_by(4_000) {
        let commands = (first..count.min(first + 4_000))
            .map(|n| {
                LedgerCommand::WalletBet(croupier_core::WalletBet {
                    transaction_id: format!("backlog-{n}"),
                    player_id: ids[n % ids.len()],
                    round_id: format!("backlog-{n}"),
                    amount: 1,
                    ledger: eur,
                })
            })
            .collect();
        live_setup::propose(&node, commands).await?;
    }
    node.shutdown().await?;
    Ok(())
}

/// Waits until the AML pipeline has caught up with the backlog (its counter reaches it and
/// then stands still for a second: every write of the set-up is decided), and prints the rate
/// between the first and the last increase it saw.
async fn drain(addr: std::net::SocketAddr, backlog: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let first = (Instant::now(), scrape(addr).await?.events);
    let mut last = first;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let decided = scrape(addr).await?.events;
        let now = Instant::now();
        if decided > last.1 {
            last = (now, decided);
        } else if decided >= backlog as f64 && now - last.0 > Duration::from_secs(1) {
            break;
        }
        if now > deadline {
            bail!("the AML pipeline decided only {decided:.0} events in 600 s");
        }
    }
    let seconds = (last.0 - first.0).as_secs_f64().max(1e-3);
    let events = last.1 - first.1;
    println!(
        "AML pipeline catching up: {events:.0} events decided in {seconds:.2} s = {:.0} events/s \
         ({:.0} were decided before the first look; the rule set runs on every money event)",
        events / seconds,
        first.1
    );
    Ok(())
}

/// The AML pipeline's counters from `/metrics`.
#[derive(Default)]
struct AmlMetrics {
    events: f64,
    /// `croupier_aml_lag_seconds` buckets: (upper bound in seconds, cumulative count).
    lag_buckets: Vec<(f64, f64)>,
}

async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<AmlMetrics> {
    let mut connection = HttpConnection::open(addr).await?;
    let (status, body) = connection.get("/metrics").await?;
    if status != 200 {
        bail!("GET /metrics answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let mut metrics = AmlMetrics::default();
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if name == "croupier_aml_events_total" {
            metrics.events = value;
        } else if let Some(bound) = name
            .strip_prefix("croupier_aml_lag_seconds_bucket{le=\"")
            .and_then(|rest| rest.strip_suffix("\"}"))
        {
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse()?
            };
            metrics.lag_buckets.push((bound, value));
        }
    }
    Ok(metrics)
}

/// The lag of the events decided between two scrapes: the bucket bounds of its p50 and p99.
fn print_lag(before: &AmlMetrics, after: &AmlMetrics) {
    let delta: Vec<(f64, f64)> = after
        .lag_buckets
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .lag_buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, c)| *c);
            (bound, count - earlier)
        })
        .collect();
    let total = delta.last().map_or(0.0, |(_, count)| *count);
    if total <= 0.0 {
        return println!("AML pipeline lag: no events decided during the bets");
    }
    let bound_at = |share: f64| {
        delta
            .iter()
            .find(|(_, count)| *count >= share * total)
            .map_or(f64::INFINITY, |(bound, _)| *bound)
    };
    println!(
        "AML pipeline lag during the bets ({total:.0} events): p50 <= {} s, p99 <= {} s \
         (Prometheus bucket bounds)",
        bound_at(0.50),
        bound_at(0.99)
    );
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
