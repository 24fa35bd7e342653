//! `croupier-sim`: runs seeds of the deterministic cluster simulation and reports each.
//!
//!   croupier-sim --seeds 200                 seeds 1..=200 (what CI runs)
//!   croupier-sim --first 5000 --seeds 10000  thousands, from another start
//!   croupier-sim --seed 42 --history h.jsonl one seed, its Jepsen history written out
//!   croupier-sim --seed 42 --replay          the same seed twice: the traces must match
//!
//! Each seed of a range runs in a process of its own (this program again, with `--seed`):
//! tokio numbers tasks process-wide, and a crash drops a host's tasks in that order, so a seed
//! run after others in one process could differ from the same seed run alone. In its own
//! process a seed replays exactly (with `--cfg tokio_unstable`, which lets turmoil seed
//! tokio's own scheduling randomness; scripts/simulate.sh builds it so).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use croupier_sim::{run_seed, SimOptions};

#[derive(Parser)]
#[command(
    name = "croupier-sim",
    about = "Deterministic simulation of a Croupier cluster"
)]
struct Args {
    /// Run this seed only.
    #[arg(long, conflicts_with_all = ["first", "seeds"])]
    seed: Option<u64>,
    /// The first seed of a range.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// How many seeds, from --first.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Client operations per client process.
    #[arg(long, default_value_t = 40)]
    operations: u64,
    /// No faults (a calm run).
    #[arg(long)]
    no_faults: bool,
    /// Write the history of the (single) seed as JSON lines here.
    #[arg(long, requires = "seed")]
    history: Option<std::path::PathBuf>,
    /// Run each seed again in a new process and fail unless both runs leave the same trace
    /// (a failing seed must reproduce exactly where someone reruns it).
    #[arg(long)]
    replay: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // CROUPIER_SIM_LOG=debug (any tracing filter) shows the nodes' logs and the faults.
    if let Ok(filter) = std::env::var("CROUPIER_SIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_timer(SimulatedTime)
            .with_ansi(false)
            .init();
    }
    let options = SimOptions {
        operations_per_client: args.operations,
        faults: !args.no_faults,
        ..SimOptions::default()
    };
    if let Some(seed) = args.seed {
        return match run_one(seed, &options, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{message}");
                eprintln!("reproduce: croupier-sim --seed {seed} --history history.jsonl");
                ExitCode::FAILURE
            }
        };
    }
    let started = std::time::Instant::now();
    let last = args.first.saturating_add(args.seeds.saturating_sub(1));
    for seed in args.first..=last {
        match run_in_new_process(seed, &args) {
            Ok(line) => println!("{line}"),
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "simulation: {} seeds passed in {:.1} s",
        args.seeds,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn run_one(seed: u64, options: &SimOptions, args: &Args) -> Result<(), String> {
    let (report, history) = run_seed(seed, options).map_err(|e| e.to_string())?;
    if let Some(path) = &args.history {
        let mut file =
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in &history {
            writeln!(file, "{line}").map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    println!(
        "seed {}: {} acknowledged, {} refused, {} unknown, {} reads; {} crashes, {} partitions, {} disk faults, {} frames duplicated, {} reordered; {} ms simulated; trace {}",
        report.seed, report.acknowledged, report.refused, report.unknown, report.reads,
        report.crashes, report.partitions, report.disk_faults, report.duplicated, report.reordered,
        report.simulated_ms, report.trace
    );
    if args.replay {
        let again = replay_in_new_process(seed, args)?;
        if again != report.trace {
            return Err(format!(
                "seed {seed} is not deterministic: trace {} then {again}",
                report.trace
            ));
        }
    }
    Ok(())
}

/// Runs `seed` again in a child process; its trace.
fn replay_in_new_process(seed: u64, args: &Args) -> Result<String, String> {
    let line = child(seed, args, false)?;
    line.rsplit_once("trace ")
        .map(|(_, trace)| trace.trim().to_string())
        .ok_or_else(|| format!("the rerun of seed {seed} printed no trace: {line}"))
}

/// Runs `seed` (with `--replay` if asked) in a child process; its report line.
fn run_in_new_process(seed: u64, args: &Args) -> Result<String, String> {
    child(seed, args, args.replay)
}

fn child(seed: u64, args: &Args, replay: bool) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = std::process::Command::new(exe);
    child.args([
        "--seed",
        &seed.to_string(),
        "--operations",
        &args.operations.to_string(),
    ]);
    if args.no_faults {
        child.arg("--no-faults");
    }
    if replay {
        child.arg("--replay");
    }
    let output = child
        .output()
        .map_err(|e| format!("cannot run seed {seed}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .lines()
        .rfind(|line| line.starts_with("seed "))
        .map(str::to_string)
        .ok_or_else(|| format!("seed {seed} printed no report: {stdout}"))
}

/// Log lines carry the simulated time (ms), so two runs of one seed compare line by line.
struct SimulatedTime;

impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        write!(w, "{:>9.3}", elapsed.as_secs_f64() * 1_000.0)
    }
}
