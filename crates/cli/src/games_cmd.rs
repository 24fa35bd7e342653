//! `croupier games`: list the games, exact RTP, Monte Carlo simulation, PAR sheets and the
//! integrity check of the certified definitions.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use croupier_games::{chunk_count, chunk_rounds, Game, SimTotals, GAME_NAMES, Z_99};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(clap::Subcommand)]
pub enum GamesCommand {
    /// List the games this build ships.
    List,
    /// Exact RTP per bet, by enumeration or closed form (no sampling).
    Rtp {
        /// Game name (see `croupier games list`).
        game: String,
        /// Print a JSON array of {"bet", "rtp"} instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Monte Carlo simulation: per bet RTP with its 99% confidence interval, hit frequency
    /// and standard deviation. The same seed gives the same numbers on any thread count.
    Simulate(SimulateArgs),
    /// Check every game definition against the certified SHA-256 manifest (exit 1 on mismatch).
    Verify,
    /// Print a game's PAR sheet (Markdown), as published in docs/par-sheets/.
    Par {
        /// Game name (see `croupier games list`).
        game: String,
    },
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Game name (see `croupier games list`).
    game: String,
    /// Rounds to play.
    #[arg(long)]
    rounds: u64,
    /// Worker threads (default: the machine's available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the simulator generator (default: from the clock, printed on stderr).
    #[arg(long)]
    seed: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Upper bound on `--threads`: more than this only adds contention.
const THREADS_MAX: usize = 256;

pub fn run(cmd: GamesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GamesCommand::List => list(),
        GamesCommand::Rtp { game, json } => rtp(&load(&game)?, json),
        GamesCommand::Simulate(args) => simulate(args),
        GamesCommand::Verify => verify(),
        GamesCommand::Par { game } => {
            let sheet = load(&game)?.par_sheet();
            std::io::stdout().lock().write_all(sheet.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(name: &str) -> anyhow::Result<Game> {
    Ok(croupier_games::load(name)?)
}

fn list() -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for name in GAME_NAMES {
        let game = load(name)?;
        writeln!(
            out,
            "{name:<16} {:>3} bets  {}",
            game.bet_names().len(),
            game.title()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rtp(game: &Game, json: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let figures = game.exact();
    if json {
        let rows: Vec<_> = figures
            .iter()
            .map(|f| serde_json::json!({ "bet": f.bet, "rtp": f.rtp_f64() }))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} — {} (exact, win cap {}x)",
        game.name(),
        game.title(),
        game.win_cap()
    )?;
    writeln!(
        out,
        "{:<14} {:>12} {:>11} {:>12} {:>10} {:>12}",
        "bet", "rtp", "house edge", "hit freq", "std dev", "max payout"
    )?;
    for f in &figures {
        writeln!(
            out,
            "{:<14} {:>12} {:>10.4}% {:>12.8} {:>10.4} {:>11}x",
            f.bet,
            croupier_games::to_decimal(&f.rtp, 8),
            (1.0 - f.rtp_f64()) * 100.0,
            f.hit_frequency_f64(),
            f.std_dev_f64(),
            f.max_payout(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let game = load(&args.game)?;
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let threads = match args.threads {
        Some(t) => t,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    anyhow::ensure!(
        (1..=THREADS_MAX).contains(&threads),
        "--threads must be in 1..={THREADS_MAX}"
    );
    let seed = args.seed.unwrap_or_else(seed_from_clock);
    if args.seed.is_none() {
        eprintln!("seed {seed} (pass --seed {seed} to reproduce)");
    }

    let progress = ProgressBar::with_draw_target(Some(args.rounds), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rounds {per_sec} eta {eta}")
            .context("progress template")?,
    );
    let started = Instant::now();
    let totals = run_chunks(&game, args.rounds, seed, threads, &progress)?;
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    eprintln!(
        "{} rounds in {elapsed:.2} s ({:.0} rounds/s) on {threads} threads, seed {seed}",
        totals.rounds,
        totals.rounds as f64 / elapsed.max(1e-9)
    );

    let exact = game.exact();
    let mut out = std::io::stdout().lock();
    let figures = totals.figures(&game.bet_names(), Z_99);
    if args.json {
        let bets: Vec<_> = figures
            .iter()
            .zip(&exact)
            .map(|(s, e)| {
                serde_json::json!({
                    "bet": s.bet,
                    "rtp": s.rtp,
                    "ci99_low": s.ci_low,
                    "ci99_high": s.ci_high,
                    "hit_frequency": s.hit_frequency,
                    "std_dev": s.std_dev,
                    "exact_rtp": e.rtp_f64(),
                })
            })
            .collect();
        let report = serde_json::json!({
            "game": game.name(),
            "rounds": totals.rounds,
            "seed": seed,
            "threads": threads,
            "bets": bets,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} — {} rounds, seed {seed}",
        game.name(),
        totals.rounds
    )?;
    writeln!(
        out,
        "{:<14} {:>10} {:>23} {:>10} {:>10} {:>9}",
        "bet", "rtp", "99% interval", "exact", "hit freq", "std dev"
    )?;
    for (s, e) in figures.iter().zip(&exact) {
        writeln!(
            out,
            "{:<14} {:>10.6} [{:>10.6}, {:>10.6}] {:>10.6} {:>10.6} {:>9.4}",
            s.bet,
            s.rtp,
            s.ci_low,
            s.ci_high,
            e.rtp_f64(),
            s.hit_frequency,
            s.std_dev
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Spreads the run's chunks over `threads` workers. Chunk k always uses the same generator
/// and integer totals merge in any order, so the result depends only on (rounds, seed).
fn run_chunks(
    game: &Game,
    rounds: u64,
    seed: u64,
    threads: usize,
    progress: &ProgressBar,
) -> anyhow::Result<SimTotals> {
    let chunks = chunk_count(rounds);
    let next_chunk = AtomicU64::new(0);
    let bet_count = game.bet_names().len();
    let worker = || {
        let mut totals = SimTotals::new(bet_count);
        loop {
            let index = next_chunk.fetch_add(1, Ordering::Relaxed);
            if index >= chunks {
                return totals;
            }
            let rounds_in_chunk = chunk_rounds(rounds, index);
            totals.merge(&game.simulate_chunk(seed, index, rounds_in_chunk));
            progress.inc(rounds_in_chunk);
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        let mut totals = SimTotals::new(bet_count);
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a simulation thread panicked"))?;
            totals.merge(&part);
        }
        Ok(totals)
    })
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn verify() -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let reports = croupier_games::verify_embedded()?;
    let mut all_ok = true;
    for report in &reports {
        let status = match (&report.expected, &report.load_error) {
            (None, _) => "NOT IN MANIFEST".to_string(),
            (Some(expected), _) if *expected != report.actual => {
                format!("MISMATCH (manifest {expected})")
            }
            (Some(_), Some(error)) => format!("INVALID ({error})"),
            (Some(_), None) => "OK".to_string(),
        };
        all_ok &= report.ok();
        writeln!(out, "{:<16} {}  {status}", report.game, report.actual)?;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
