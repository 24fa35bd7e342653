//! `croupier fair`: provably-fair seeds, commitments, outcome streams and hash chains, so a
//! player or an auditor can recompute any bet from the revealed seeds. The mapping is in
//! docs/rng.md; this module only parses, checks and prints.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use croupier_rng::fair::{self, FairStream, HashChain};
use croupier_rng::{sample, CertifiedRng, RngError};

/// Most floats or integers one command prints.
const COUNT_MAX: u64 = 10_000_000;

#[derive(clap::Args)]
pub struct BetArgs {
    /// The revealed server seed (hex text, used exactly as written).
    #[arg(long)]
    server_seed: String,
    /// The player's client seed.
    #[arg(long)]
    client_seed: String,
    /// The bet's nonce.
    #[arg(long)]
    nonce: u64,
}

#[derive(clap::Subcommand)]
pub enum FairCommand {
    /// Draw a new server seed from the certified generator; print it and its commitment.
    Seed,
    /// Print the commitment of a server seed: hex(SHA-256(seed text)).
    Commit {
        #[arg(long)]
        server_seed: String,
    },
    /// Print a bet's first COUNT floats in [0, 1), one per line.
    Floats {
        #[command(flatten)]
        bet: BetArgs,
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Print a bet's first COUNT integers in [0, RANGE) (rejection sampling on the same stream).
    Ints {
        #[command(flatten)]
        bet: BetArgs,
        /// Number of outcomes, 1 to 2^32 - 1.
        #[arg(long)]
        range: u32,
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Check a revealed server seed against its published commitment and print the bet's
    /// floats; or, with --game-hash, check a shared crash round against its hash chain and
    /// print its crash point. Exit 1 if the check fails.
    Verify {
        /// The revealed server seed (hex text, used exactly as written).
        #[arg(long)]
        server_seed: Option<String>,
        /// The player's client seed.
        #[arg(long)]
        client_seed: Option<String>,
        /// The bet's nonce.
        #[arg(long)]
        nonce: Option<u64>,
        /// The commitment published before the bet (64 hex characters).
        #[arg(long)]
        commitment: Option<String>,
        /// Floats to print after a successful check.
        #[arg(long, default_value_t = 8)]
        count: u64,
        /// Also recompute this game's outcome from the same byte stream (roulette, dice or
        /// crash), with the certified definition the live game uses.
        #[arg(long)]
        game: Option<String>,
        #[command(flatten)]
        round: ChainRoundArgs,
    },
    /// The crash point of a shared round from its game hash and the chain's public salt
    /// (bustabit's formula; docs/rng.md).
    Crash {
        /// The round's game hash (64 hex digits).
        #[arg(long)]
        game_hash: String,
        /// The chain's public salt, used as the text written (bustabit: a bitcoin block hash).
        #[arg(long)]
        salt: String,
    },
    /// Reverse hash chains for rounds shared by many players.
    #[command(subcommand)]
    Chain(ChainCommand),
}

/// `fair verify` for a round of a crash hash chain: one link to a neighbouring round's hash,
/// or the walk to the chain's published terminating hash.
#[derive(clap::Args)]
pub struct ChainRoundArgs {
    /// A crash round's game hash (64 hex digits): verify it against its chain.
    #[arg(long, requires = "salt")]
    game_hash: Option<String>,
    /// The chain's public salt, used as the text written.
    #[arg(long, requires = "game_hash")]
    salt: Option<String>,
    /// The hash of the round played just before: it must be SHA-256 of this game hash.
    #[arg(long, conflicts_with_all = ["next_hash", "chain_terminating_hash"])]
    previous_hash: Option<String>,
    /// The hash of the round played just after: this game hash must be its SHA-256.
    #[arg(long, conflicts_with = "chain_terminating_hash")]
    next_hash: Option<String>,
    /// The chain's terminating hash, published before its first round: hashing the game hash
    /// N times (N ≤ --max-steps) must give it; N is the round's number in the chain.
    #[arg(long)]
    chain_terminating_hash: Option<String>,
    /// How far to walk towards the terminating hash.
    #[arg(long, default_value_t = fair::CHAIN_LENGTH_MAX)]
    max_steps: u64,
    /// How a round's hash follows from the next: SHA-256 of its hex text (`fair chain new`,
    /// bustabit's 2018 chain) or of its raw bytes (bustabit's chains since 2024).
    #[arg(long, value_enum, default_value_t = Link::Hex)]
    link: Link,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Link {
    Hex,
    Binary,
}

#[derive(clap::Subcommand)]
pub enum ChainCommand {
    /// Build a chain from a fresh secret; write its seeds (round 0 first, one per line) to
    /// --out and print the terminal hash to publish.
    New {
        /// Number of rounds the chain serves.
        #[arg(long)]
        length: u64,
        /// File for the seeds (secret until each round reveals its seed); must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a revealed round seed against the published terminal hash; exit 1 if it does not
    /// belong to the chain at that round.
    Verify {
        /// The revealed seed of the round.
        #[arg(long)]
        seed: String,
        /// The terminal hash published before round 0.
        #[arg(long)]
        terminal: String,
        /// The round the seed claims to be; without it, the round is searched for.
        #[arg(long)]
        round: Option<u64>,
        /// The chain's length (bounds the search; default: the largest chain `chain new` builds).
        #[arg(long)]
        length: Option<u64>,
    },
}

pub fn run(cmd: FairCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FairCommand::Seed => new_seed(),
        FairCommand::Commit { server_seed } => {
            fair::check_server_seed(&server_seed)?;
            println!("{}", fair::commitment(&server_seed));
            Ok(ExitCode::SUCCESS)
        }
        FairCommand::Floats { bet, count } => {
            check_bet(&bet, count)?;
            let mut stream = FairStream::new(&bet.server_seed, &bet.client_seed, bet.nonce);
            print_lines(count, || stream.next_float().to_string())
        }
        FairCommand::Ints { bet, range, count } => {
            check_bet(&bet, count)?;
            anyhow::ensure!(range >= 1, "--range must be at least 1");
            let mut stream = FairStream::new(&bet.server_seed, &bet.client_seed, bet.nonce);
            print_lines(count, || sample::below_u32(&mut stream, range).to_string())
        }
        FairCommand::Verify {
            server_seed,
            client_seed,
            nonce,
            commitment,
            count,
            game,
            round,
        } => match (server_seed, client_seed, nonce, commitment, round) {
            (Some(server_seed), Some(client_seed), Some(nonce), Some(commitment), round)
                if round.game_hash.is_none() =>
            {
                let bet = BetArgs {
                    server_seed,
                    client_seed,
                    nonce,
                };
                verify(bet, &commitment, count, game.as_deref())
            }
            (None, None, None, None, round) if round.game_hash.is_some() => {
                verify_chain_round(&round)
            }
            (_, _, _, _, round) if round.game_hash.is_some() => anyhow::bail!(
                "a crash chain round (--game-hash) is verified without a bet's seeds or commitment"
            ),
            _ => anyhow::bail!(
                "fair verify needs --server-seed, --client-seed, --nonce and --commitment (a bet), \
                 or --game-hash and --salt with a chain hash (a crash round)"
            ),
        },
        FairCommand::Crash { game_hash, salt } => {
            let hash = parse_game_hash(&game_hash, "--game-hash")?;
            println!("{}", crash_point_text(salt.as_bytes(), &hash));
            Ok(ExitCode::SUCCESS)
        }
        FairCommand::Chain(ChainCommand::New { length, out }) => chain_new(length, out),
        FairCommand::Chain(ChainCommand::Verify {
            seed,
            terminal,
            round,
            length,
        }) => chain_verify(&seed, &terminal, round, length),
    }
}

fn check_bet(bet: &BetArgs, count: u64) -> anyhow::Result<()> {
    fair::check_server_seed(&bet.server_seed)?;
    fair::check_client_seed(&bet.client_seed)?;
    anyhow::ensure!(
        (1..=COUNT_MAX).contains(&count),
        "--count must be 1 to {COUNT_MAX}"
    );
    Ok(())
}

/// Prints `count` lines; a reader that goes away (`| head`) ends the command quietly.
fn print_lines(count: u64, mut line: impl FnMut() -> String) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(io::stdout().lock());
    for _ in 0..count {
        let written = writeln!(out, "{}", line());
        if let Err(error) = written {
            return stopped_or_failed(error);
        }
    }
    match out.flush() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => stopped_or_failed(error),
    }
}

fn stopped_or_failed(error: io::Error) -> anyhow::Result<ExitCode> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return Ok(ExitCode::SUCCESS);
    }
    Err(error).context("writing to stdout")
}

/// A generator failure is a failed check (exit 1), not bad usage.
fn generator_failed(error: RngError) -> anyhow::Result<ExitCode> {
    eprintln!("error: certified generator: {error}");
    Ok(ExitCode::from(1))
}

/// 32 bytes from a fresh certified generator.
fn fresh_secret() -> Result<[u8; 32], RngError> {
    let mut secret = [0u8; 32];
    CertifiedRng::new()?.fill(&mut secret)?;
    Ok(secret)
}

fn new_seed() -> anyhow::Result<ExitCode> {
    let seed = match CertifiedRng::new()
        .and_then(|mut rng| Ok(fair::new_server_seed(&mut rng.round()?)))
    {
        Ok(seed) => seed,
        Err(error) => return generator_failed(error),
    };
    println!("server_seed: {seed}");
    println!("commitment: {}", fair::commitment(&seed));
    Ok(ExitCode::SUCCESS)
}

fn verify(
    bet: BetArgs,
    commitment: &str,
    count: u64,
    game: Option<&str>,
) -> anyhow::Result<ExitCode> {
    check_bet(&bet, count)?;
    let game = game.map(croupier_games::load).transpose()?;
    let published = fair::parse_hash(commitment).context("--commitment")?;
    let actual = fair::commitment(&bet.server_seed);
    if actual != published {
        eprintln!(
            "commitment mismatch: SHA-256 of the server seed is {actual}, the published commitment is {published}"
        );
        return Ok(ExitCode::from(1));
    }
    println!("commitment: ok ({actual})");
    if let Some(game) = game {
        let mut stream = FairStream::new(&bet.server_seed, &bet.client_seed, bet.nonce);
        println!("outcome: {}", fair_outcome(&game, &mut stream)?);
    }
    let mut stream = FairStream::new(&bet.server_seed, &bet.client_seed, bet.nonce);
    print_lines(count, || stream.next_float().to_string())
}

fn parse_game_hash(text: &str, flag: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    bytes.with_context(|| format!("{flag} must be 64 hex digits (a SHA-256), got {text:?}"))
}

/// The crash point as the game shows it: `2.35`.
fn crash_point_text(salt: &[u8], game_hash: &[u8; 32]) -> String {
    let point = croupier_games::crash::crash_point_from_game_hash(salt, game_hash);
    format!("{}.{:02}", point / 100, point % 100)
}

fn verify_chain_round(round: &ChainRoundArgs) -> anyhow::Result<ExitCode> {
    use croupier_games::crash::{chain_distance, previous_game_hash, ChainLink};
    let link = match round.link {
        Link::Hex => ChainLink::HexText,
        Link::Binary => ChainLink::Binary,
    };
    let (Some(game_hash), Some(salt)) = (&round.game_hash, &round.salt) else {
        anyhow::bail!("a crash round needs --game-hash and --salt");
    };
    let game_hash = parse_game_hash(game_hash, "--game-hash")?;
    let verdict = if let Some(previous) = &round.previous_hash {
        let previous = parse_game_hash(previous, "--previous-hash")?;
        (previous_game_hash(&game_hash, link) == previous)
            .then(|| "the previous round's hash is SHA-256 of this game hash".to_string())
    } else if let Some(next) = &round.next_hash {
        let next = parse_game_hash(next, "--next-hash")?;
        (previous_game_hash(&next, link) == game_hash)
            .then(|| "this game hash is SHA-256 of the next round's hash".to_string())
    } else if let Some(terminating) = &round.chain_terminating_hash {
        let terminating = parse_game_hash(terminating, "--chain-terminating-hash")?;
        anyhow::ensure!(
            (1..=fair::CHAIN_LENGTH_MAX).contains(&round.max_steps),
            "--max-steps must be 1 to {}",
            fair::CHAIN_LENGTH_MAX
        );
        chain_distance(&game_hash, &terminating, link, round.max_steps).map(|n| {
            format!(
                "{n} hashes to the terminating hash (bustabit's game #{n}; round {} of a \
                     `fair chain new` chain)",
                n - 1
            )
        })
    } else {
        anyhow::bail!("--game-hash needs --previous-hash, --next-hash or --chain-terminating-hash");
    };
    match verdict {
        Some(how) => {
            println!("chain: ok, {how}");
            println!(
                "crash point: {}",
                crash_point_text(salt.as_bytes(), &game_hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let other = match round.link {
                Link::Hex => "binary",
                Link::Binary => "hex",
            };
            eprintln!(
                "mismatch: the game hash does not belong to the chain given (links checked as \
                 SHA-256 of the {}; is it a chain with --link {other}?)",
                match round.link {
                    Link::Hex => "hex text",
                    Link::Binary => "raw bytes",
                }
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// The outcome a provably-fair round of `game` draws from the start of the round's stream,
/// exactly as the game's own draw function consumes it.
fn fair_outcome(game: &croupier_games::Game, stream: &mut FairStream) -> anyhow::Result<String> {
    use croupier_games::Game;
    Ok(match game {
        Game::Roulette(roulette) => format!("pocket {}", roulette.spin(stream)),
        Game::Dice(dice) => {
            let roll = dice.roll(stream);
            format!("roll {}.{:02}", roll / 100, roll % 100)
        }
        Game::Crash(crash) => {
            let point = crash.draw(stream);
            format!("crash point {}.{:02}x", point / 100, point % 100)
        }
        _ => anyhow::bail!("--game supports roulette, dice and crash"),
    })
}

fn chain_new(length: u64, out: PathBuf) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=fair::CHAIN_LENGTH_MAX).contains(&length),
        "--length must be 1 to {}",
        fair::CHAIN_LENGTH_MAX
    );
    anyhow::ensure!(
        !out.exists(),
        "{} already exists: chain seeds are never overwritten",
        out.display()
    );
    let last_seed = match fresh_secret() {
        Ok(secret) => secret,
        Err(error) => return generator_failed(error),
    };
    let chain = HashChain::generate(last_seed, length)?;
    let file = secret_file(&out)
        .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
    let mut writer = BufWriter::new(file);
    for seed in chain.seeds() {
        writeln!(writer, "{seed}").with_context(|| format!("writing {}", out.display()))?;
    }
    writer
        .flush()
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", chain.terminal());
    Ok(ExitCode::SUCCESS)
}

/// A new file only its owner can read: it holds every future round's seed.
fn secret_file(path: &std::path::Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn chain_verify(
    seed: &str,
    terminal: &str,
    round: Option<u64>,
    length: Option<u64>,
) -> anyhow::Result<ExitCode> {
    match round {
        Some(round) => {
            let length = length.unwrap_or(round.saturating_add(1));
            if fair::chain_seed_matches(seed, round, terminal, length)? {
                println!(
                    "ok: the seed is round {round} of the chain ending in {}",
                    terminal.to_ascii_lowercase()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "mismatch: hashing the seed {} times does not give the terminal hash",
                    round + 1
                );
                Ok(ExitCode::from(1))
            }
        }
        None => {
            match fair::chain_round_of(seed, terminal, length.unwrap_or(fair::CHAIN_LENGTH_MAX))? {
                Some(round) => {
                    println!(
                        "ok: the seed is round {round} of the chain ending in {}",
                        terminal.to_ascii_lowercase()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("mismatch: the seed is not within the chain ending in the given terminal hash");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
