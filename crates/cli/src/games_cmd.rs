//! `croupier games`: list the games, exact RTP, Monte Carlo simulation, PAR sheets, and the
//! certification workflow of a lab: `keygen`, `sign` (MANIFEST + MANIFEST.sig for a directory
//! of definitions) and `verify` (signature against trusted keys, then every definition's hash).
//! `read_definitions` is the one place a definitions directory is read (serve and certify too).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use croupier_games::certification::{self, CertifiedGames, DefinitionFiles, PublicKey, SecretKey};
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
    /// Check the manifest's signature against the trusted keys, then every definition against
    /// the manifest's SHA-256 (exit 1 on a bad or untrusted signature or any mismatch).
    Verify {
        /// A directory of definitions with MANIFEST and MANIFEST.sig (default: the embedded ones).
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
        /// A trusted public key: 64 hex digits, or a file holding them (repeatable; default:
        /// the development lab key).
        #[arg(long, value_name = "HEX|FILE")]
        pubkey: Vec<String>,
    },
    /// Sign a directory of definitions: write its MANIFEST (SHA-256 of every <game>.toml) and
    /// MANIFEST.sig (Ed25519 over the MANIFEST bytes) with a secret key from `games keygen`.
    Sign {
        /// The certifying secret key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The directory of <game>.toml files; MANIFEST and MANIFEST.sig are written there.
        #[arg(long, value_name = "DIR")]
        definitions: PathBuf,
    },
    /// Create a certifying key: write the secret to FILE (mode 0600, never overwritten) and
    /// print the public key that nodes trust (`[games] trusted_keys`).
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
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
        GamesCommand::Verify {
            definitions,
            pubkey,
        } => verify(definitions.as_deref(), &pubkey),
        GamesCommand::Sign { key, definitions } => sign(&key, &definitions),
        GamesCommand::Keygen { out } => keygen(&out),
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

/// The definition set in `dir` (every `<game>.toml`, `MANIFEST` and `MANIFEST.sig`), or the
/// one compiled into the binary.
pub fn read_definitions(dir: Option<&Path>) -> anyhow::Result<DefinitionFiles> {
    let Some(dir) = dir else {
        return Ok(DefinitionFiles::embedded());
    };
    let manifest_path = dir.join(certification::MANIFEST_FILE);
    let manifest = std::fs::read(&manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    let signature_path = dir.join(certification::SIGNATURE_FILE);
    let signature = std::fs::read_to_string(&signature_path).with_context(|| {
        format!(
            "cannot read the manifest signature {} (the definitions are not signed?)",
            signature_path.display()
        )
    })?;
    Ok(DefinitionFiles {
        manifest,
        signature,
        definitions: read_toml_files(dir)?,
    })
}

/// Every `*.toml` of `dir` by name without the extension (subdirectories are not read).
fn read_toml_files(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the definitions directory {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read the definitions directory {}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(game) = name.strip_suffix(".toml") else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        files.insert(game.to_string(), bytes);
    }
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no <game>.toml definition",
        dir.display()
    );
    Ok(files)
}

/// `--pubkey` values: hex, or a file holding the hex; none given: the development lab key.
fn trusted_keys(values: &[String]) -> anyhow::Result<Vec<PublicKey>> {
    if values.is_empty() {
        return Ok(vec![PublicKey::dev_lab()]);
    }
    values
        .iter()
        .map(|value| match PublicKey::from_hex(value) {
            Ok(key) => Ok(key),
            Err(_) if Path::new(value).is_file() => {
                let text = std::fs::read_to_string(value)
                    .with_context(|| format!("cannot read the public key file {value}"))?;
                PublicKey::from_file_text(&text).with_context(|| format!("--pubkey {value}"))
            }
            Err(error) => Err(anyhow::Error::new(error)
                .context(format!("--pubkey {value}: neither a public key nor a file"))),
        })
        .collect()
}

fn verify(dir: Option<&Path>, pubkeys: &[String]) -> anyhow::Result<ExitCode> {
    let trusted = trusted_keys(pubkeys)?;
    let files = read_definitions(dir)?;
    let report = certification::verify_set(&files, &trusted);
    let mut out = std::io::stdout().lock();
    match &report.signer {
        Ok(key) if key.is_dev_lab() => writeln!(
            out,
            "{:<16} OK, signed by {key} (the DEVELOPMENT lab key)",
            certification::SIGNATURE_FILE
        )?,
        Ok(key) => writeln!(
            out,
            "{:<16} OK, signed by {key}",
            certification::SIGNATURE_FILE
        )?,
        Err(error) => writeln!(
            out,
            "{:<16} REFUSED: {error}",
            certification::SIGNATURE_FILE
        )?,
    }
    for game in &report.games {
        let status = match (&game.expected, &game.load_error) {
            (None, _) => "NOT IN MANIFEST".to_string(),
            (Some(expected), _) if *expected != game.actual => {
                format!("MISMATCH (manifest {expected})")
            }
            (Some(_), Some(error)) => format!("INVALID ({error})"),
            (Some(_), None) => "OK".to_string(),
        };
        writeln!(out, "{:<16} {}  {status}", game.game, game.actual)?;
    }
    if let Some(error) = &report.set_error {
        writeln!(out, "{:<16} REFUSED: {error}", certification::MANIFEST_FILE)?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sign(key_path: &Path, dir: &Path) -> anyhow::Result<ExitCode> {
    let key_text = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read the secret key {}", key_path.display()))?;
    let key = SecretKey::from_file_text(&key_text)
        .with_context(|| format!("--key {}", key_path.display()))?;
    let mut files = DefinitionFiles {
        manifest: vec![],
        signature: String::new(),
        definitions: read_toml_files(dir)?,
    };
    files.manifest = files.render_manifest().into_bytes();
    files.signature = key.sign_manifest(&files.manifest);
    // A lab signs only what a node would load: every file a known game, every definition valid.
    let certified = CertifiedGames::verify(files, &[key.public()])
        .context("refusing to sign these definitions")?;
    let files = certified.files();
    let manifest_path = dir.join(certification::MANIFEST_FILE);
    std::fs::write(&manifest_path, &files.manifest)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    let signature_path = dir.join(certification::SIGNATURE_FILE);
    std::fs::write(&signature_path, &files.signature)
        .with_context(|| format!("cannot write {}", signature_path.display()))?;
    println!(
        "signed {} definitions with key {}: wrote {} and {}",
        certified.games().len(),
        key.public(),
        manifest_path.display(),
        signature_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let key = create_key_file(out, "Croupier games certifying key")?;
    println!("{}", key.public());
    Ok(ExitCode::SUCCESS)
}

/// A new Ed25519 key from the certified generator, written to `out` (which must not exist
/// yet; owner-only).
pub fn create_key_file(out: &Path, title: &str) -> anyhow::Result<SecretKey> {
    let mut secret = [0u8; 32];
    croupier_rng::CertifiedRng::new()
        .and_then(|mut rng| rng.fill(&mut secret))
        .context("the certified generator failed")?;
    let key = SecretKey::from_bytes(secret);
    secret.fill(0);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
    file.write_all(key.to_file_text_titled(title).as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(key)
}
