//! `croupier rng`: the certified generator's raw output (for external suites), scaled outcomes
//! (the "final outcomes" a test lab collects), the GLI-11 statistical tests and its status.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use croupier_rng::gli::{self, TestReport};
use croupier_rng::{sample, CertifiedRng, SeededDrbg};

/// Bytes generated and written per write(2) by `rng raw`.
const RAW_CHUNK_BYTES: usize = 1 << 20;
/// Outcomes drawn per generator round by `rng scaled` (a reseed can happen between rounds).
const SCALED_ROUND_OUTCOMES: u64 = 4096;
/// Longest `--seed` accepted by `rng test`, in bytes.
const TEST_SEED_BYTES_MAX: usize = 1024;

#[derive(clap::Subcommand)]
pub enum RngCommand {
    /// Write raw generator output to stdout, unbounded without --bytes
    /// (e.g. `croupier rng raw | dieharder -g 200 -a`).
    Raw {
        /// Stop after this many bytes.
        #[arg(long)]
        bytes: Option<u64>,
    },
    /// Print uniform outcomes in [0, RANGE), one per line (add 1 for 1..=RANGE numbering).
    Scaled {
        /// Number of possible outcomes (at least 1).
        #[arg(long)]
        range: u64,
        /// How many outcomes to print.
        #[arg(long)]
        count: u64,
    },
    /// Run the GLI-11 statistical tests on fresh output at 99% confidence; exit 1 on failure.
    Test {
        /// Values each test draws.
        #[arg(long, default_value_t = gli::SAMPLES_DEFAULT)]
        samples: u64,
        /// Test the reproducible DRBG stream instantiated from this text instead of live output
        /// (to re-run a report exactly; the live generator is what gets certified).
        #[arg(long)]
        seed: Option<String>,
    },
    /// Show the generator's construction, entropy sources, reseed policy and health counters.
    Info,
}

pub fn run(cmd: RngCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RngCommand::Raw { bytes } => raw(bytes),
        RngCommand::Scaled { range, count } => scaled(range, count),
        RngCommand::Test { samples, seed } => test(samples, seed),
        RngCommand::Info => info(),
    }
}

/// A generator failure is a failed check (exit 1), not bad usage.
fn generator_failed(error: croupier_rng::RngError) -> anyhow::Result<ExitCode> {
    eprintln!("error: certified generator: {error}");
    Ok(ExitCode::from(1))
}

/// Exit quietly when the reader went away (`| head -c N`): that is how a pipe ends.
fn write_or_stop(out: &mut impl Write, data: &[u8]) -> io::Result<bool> {
    match out.write_all(data) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error),
    }
}

fn raw(bytes: Option<u64>) -> anyhow::Result<ExitCode> {
    let mut rng = match CertifiedRng::new() {
        Ok(rng) => rng,
        Err(error) => return generator_failed(error),
    };
    let mut out = raw_stdout()?;
    let mut buffer = vec![0u8; RAW_CHUNK_BYTES];
    let mut left = bytes.unwrap_or(u64::MAX);
    while left > 0 {
        let chunk = &mut buffer[..left.min(RAW_CHUNK_BYTES as u64) as usize];
        if let Err(error) = rng.fill(chunk) {
            return generator_failed(error);
        }
        if !write_or_stop(&mut out, chunk).context("writing to stdout")? {
            return Ok(ExitCode::SUCCESS);
        }
        if bytes.is_some() {
            left -= chunk.len() as u64;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Stdout without the line buffering std puts on it: raw output goes out in 1 MiB writes.
#[cfg(unix)]
fn raw_stdout() -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    let fd = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stdout")?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn raw_stdout() -> anyhow::Result<io::Stdout> {
    Ok(io::stdout())
}

fn scaled(range: u64, count: u64) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        range >= 1,
        "--range must be at least 1 (outcomes are drawn from [0, range))"
    );
    let mut rng = match CertifiedRng::new() {
        Ok(rng) => rng,
        Err(error) => return generator_failed(error),
    };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut text = String::new();
    let mut left = count;
    while left > 0 {
        let batch = left.min(SCALED_ROUND_OUTCOMES);
        let mut round = match rng.round() {
            Ok(round) => round,
            Err(error) => return generator_failed(error),
        };
        text.clear();
        for _ in 0..batch {
            let outcome = sample::below(&mut round, range);
            text.push_str(&outcome.to_string());
            text.push('\n');
        }
        drop(round);
        if !write_or_stop(&mut out, text.as_bytes()).context("writing to stdout")? {
            return Ok(ExitCode::SUCCESS);
        }
        left -= batch;
    }
    match out.flush() {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            Err(error).context("writing to stdout")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn test(samples: u64, seed: Option<String>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        samples >= gli::SAMPLES_MIN,
        "--samples must be at least {} (fewer values leave the chi-square cells too empty)",
        gli::SAMPLES_MIN
    );
    let mut reports = Vec::new();
    let source = match seed {
        Some(seed) => {
            anyhow::ensure!(
                !seed.is_empty() && seed.len() <= TEST_SEED_BYTES_MAX,
                "--seed must be 1 to {TEST_SEED_BYTES_MAX} bytes of text"
            );
            let mut rng = SeededDrbg::from_seed(seed.as_bytes());
            for test in gli::tests() {
                reports.push(gli::run_test(test, &mut rng, samples));
            }
            format!("the reproducible CTR_DRBG stream of seed {seed:?}")
        }
        None => {
            let mut rng = match CertifiedRng::new() {
                Ok(rng) => rng,
                Err(error) => return generator_failed(error),
            };
            let source = format!(
                "the live CTR_DRBG (entropy: {})",
                rng.source_names().join(" + ")
            );
            // One round per test: the generator checks health and reseeds between tests.
            for test in gli::tests() {
                let mut round = match rng.round() {
                    Ok(round) => round,
                    Err(error) => return generator_failed(error),
                };
                reports.push(gli::run_test(test, &mut round, samples));
            }
            source
        }
    };
    print_report(&source, samples, &reports);
    let passed = reports.iter().all(|r| r.passed);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(source: &str, samples: u64, reports: &[TestReport]) {
    println!("GLI-11 statistical tests on {source}");
    println!(
        "{samples} values per test; each test at alpha = {} (99% confidence), re-run once on fresh \
         output when p < alpha",
        gli::SIGNIFICANCE
    );
    println!();
    println!(
        "{:<20} {:>14} {:>5} {:>10} {:>10}  verdict",
        "test", "statistic", "df", "p-value", "retry p"
    );
    for report in reports {
        let df = report
            .first
            .degrees_of_freedom
            .map_or("z".to_owned(), |df| df.to_string());
        let retry = report
            .retry
            .map_or("-".to_owned(), |r| format!("{:.6}", r.p_value));
        let verdict = if report.passed { "pass" } else { "FAIL" };
        println!(
            "{:<20} {:>14.4} {:>5} {:>10.6} {:>10}  {verdict}",
            report.name, report.first.value, df, report.first.p_value, retry
        );
    }
    let passed = reports.iter().filter(|r| r.passed).count();
    println!();
    let verdict = if passed == reports.len() {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "result: {verdict} ({passed}/{} tests passed)",
        reports.len()
    );
}

fn info() -> anyhow::Result<ExitCode> {
    let rng = match CertifiedRng::new() {
        Ok(rng) => rng,
        Err(error) => return generator_failed(error),
    };
    let policy = rng.policy();
    let health = croupier_rng::health();
    println!("generator: NIST SP 800-90A CTR_DRBG, AES-256, derivation function, no prediction resistance");
    println!("entropy sources: {}", rng.source_names().join(", "));
    println!(
        "reseed: every {} requests (at most {} bytes each) or {} ms, whichever comes first",
        policy.reseed_interval_requests,
        croupier_rng::drbg::REQUEST_BYTES_MAX,
        policy.reseed_interval_ms
    );
    println!(
        "health tests (SP 800-90B 4.4, H = {} bits/byte, alpha = 2^-{}): repetition count cutoff {}, \
         adaptive proportion cutoff {} in {}",
        croupier_rng::health::CLAIMED_ENTROPY_BITS_PER_SAMPLE,
        croupier_rng::health::FALSE_POSITIVE_LOG2,
        croupier_rng::health::REPETITION_CUTOFF_SAMPLES,
        croupier_rng::health::PROPORTION_CUTOFF_SAMPLES,
        croupier_rng::health::PROPORTION_WINDOW_SAMPLES
    );
    println!(
        "health counters: {} test failures, {} source failures, {} (re)seeds",
        health.health_test_failures_total,
        health.entropy_source_failures_total,
        health.reseeds_total
    );
    Ok(ExitCode::SUCCESS)
}
