//! `croupier studio`: a live studio's console. A studio table's rounds take their outcome from
//! the studio's wheel, reported with the studio's Ed25519 signature (`POST
//! /v1/tables/{table_id}/results`); this command holds the key and plays the console for demos,
//! drills and tests: `keygen`, `sign` (the signature alone, for scripts), `result` (one round)
//! and `run` (follows the table's live feed and reports every round it sees close).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use croupier_core::tables::{round_parts, studio_result_message};
use croupier_games::certification::SecretKey;
use croupier_games::live::LiveTable;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, stream::MaybeTlsStream, Message, WebSocket};

/// How long `result` and `run` retry a result the node finds too early (betting still open or
/// before the draw time), and how often.
const TOO_EARLY_RETRY_S: u64 = 120;
const TOO_EARLY_RETRY_MS: u64 = 100;

#[derive(Subcommand, Debug)]
pub enum StudioCommand {
    /// Create a studio key: the secret to --out (owner-only; it must not exist yet), the
    /// public key on stdout (a table's `studio_public_key`).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the signature (hex) of a round's result: what `result` sends, for scripts.
    Sign {
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        round: u64,
        /// The game's encoding of the outcome, hex.
        #[arg(long)]
        outcome: String,
    },
    /// Report one round's result: signed, posted, the node's answer printed. A result before
    /// the draw time is retried until the node takes it.
    Result(ResultArgs),
    /// Play the console: follow the table's live feed, and when a round closes spin the wheel
    /// (a uniform draw from the OS, or the next of --results) and report it.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct KeyArg {
    /// The studio's secret key file (from `croupier studio keygen`).
    #[arg(long)]
    key: PathBuf,
}

#[derive(Args, Debug)]
pub struct TableArgs {
    /// The node's API, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    #[arg(long)]
    table: u32,
    /// The table's game (roulette or money-wheel): how a result such as `17` or `10 x2` is
    /// encoded.
    #[arg(long)]
    game: String,
    #[command(flatten)]
    key: KeyArg,
}

#[derive(Args, Debug)]
pub struct ResultArgs {
    #[command(flatten)]
    table: TableArgs,
    #[arg(long)]
    round: u64,
    /// What the wheel shows: roulette `17`; money wheel `10` or `10 x2`.
    #[arg(long)]
    result: String,
    /// Send the result once, even if it is early (a drill of the node's refusals).
    #[arg(long)]
    no_retry: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    table: TableArgs,
    /// Stop after reporting this many rounds, not counting rounds the node calls late
    /// (default: run until interrupted).
    #[arg(long)]
    rounds: Option<u64>,
    /// Results to report in turn instead of spinning, comma-separated (`17,0,32`).
    #[arg(long, value_delimiter = ',')]
    results: Vec<String>,
}

pub fn run(cmd: StudioCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StudioCommand::Keygen { out } => {
            let key = crate::games_cmd::create_key_file(&out, "Croupier studio key")?;
            println!("{}", key.public());
            Ok(ExitCode::SUCCESS)
        }
        StudioCommand::Sign {
            key,
            round,
            outcome,
        } => {
            let key = read_key(&key.key)?;
            let outcome = hex::decode(&outcome).context("--outcome: not hex")?;
            println!("{}", hex::encode(sign(&key, round, &outcome)));
            Ok(ExitCode::SUCCESS)
        }
        StudioCommand::Result(args) => report_one(&args),
        StudioCommand::Run(args) => console(&args),
    }
}

fn read_key(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the studio key {}", path.display()))?;
    SecretKey::from_file_text(&text).with_context(|| format!("{}", path.display()))
}

fn sign(key: &SecretKey, round_id: u64, outcome: &[u8]) -> [u8; 64] {
    key.sign(studio_result_message(round_id, outcome).as_bytes())
}

/// The studio's end of a table: the key, the game's encoding, and the node's API.
struct Console {
    key: SecretKey,
    live: LiveTable,
    table_id: u32,
    server: String,
    agent: ureq::Agent,
}

impl Console {
    fn new(args: &TableArgs) -> anyhow::Result<Console> {
        let game =
            croupier_games::load(&args.game).with_context(|| format!("--game {}", args.game))?;
        let live = LiveTable::new(game)?;
        if !live.runs_in_studio() {
            bail!("{} cannot take its results from a studio", args.game);
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Console {
            key: read_key(&args.key.key)?,
            live,
            table_id: args.table,
            server: args.server.trim_end_matches('/').to_string(),
            agent,
        })
    }

    /// Signs and posts `shown` for `round_id`; the node's status and JSON answer.
    fn post(&self, round_id: u64, shown: &str) -> anyhow::Result<(u16, Value)> {
        let outcome = self.live.studio_outcome(shown)?;
        let body = serde_json::json!({
            "round_id": round_id,
            "outcome": hex::encode(&outcome),
            "signature": hex::encode(sign(&self.key, round_id, &outcome)),
        });
        let url = format!("{}/v1/tables/{}/results", self.server, self.table_id);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("POST {url}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Posts until the node takes the result or refuses it for good (anything but too_early).
    fn report(&self, round_id: u64, shown: &str, retry: bool) -> anyhow::Result<(u16, Value)> {
        let deadline = Instant::now() + Duration::from_secs(TOO_EARLY_RETRY_S);
        loop {
            let (status, answer) = self.post(round_id, shown)?;
            let early = status == 409 && answer["error"] == "too_early";
            if !retry || !early || Instant::now() >= deadline {
                return Ok((status, answer));
            }
            std::thread::sleep(Duration::from_millis(TOO_EARLY_RETRY_MS));
        }
    }
}

fn report_one(args: &ResultArgs) -> anyhow::Result<ExitCode> {
    let console = Console::new(&args.table)?;
    if round_parts(args.round).0 != args.table.table {
        bail!(
            "round {} is not a round of table {}",
            args.round,
            args.table.table
        );
    }
    let (status, answer) = console.report(args.round, &args.result, !args.no_retry)?;
    println!("{answer}");
    if status != 200 {
        eprintln!("the node refused the result ({status})");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn console(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let console = Console::new(&args.table)?;
    let mut scripted = args.results.iter().cloned();
    console.follow(
        args.rounds,
        &mut scripted,
        &|round_id, shown, status, answer| {
            println!("round {round_id}: {shown} -> {status} {answer}");
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What the console does with the node's answer to each result it reports.
type OnReport = dyn Fn(u64, &str, u16, &Value);

impl Console {
    /// Follows the table's live feed and reports each round that closes (`rounds` of them, or
    /// until the feed ends): the next of `scripted`, else a draw standing in for the wheel.
    /// A round the node calls late (its result timeout passed, so it voids the round) is not
    /// counted, and its result is shown again at the next round: a console that joins or
    /// lags behind the table catches up instead of spending its script on voided rounds.
    fn follow(
        &self,
        rounds: Option<u64>,
        scripted: &mut dyn Iterator<Item = String>,
        on_report: &OnReport,
    ) -> anyhow::Result<()> {
        let mut feed = connect_feed(self)?;
        let mut reported = 0u64;
        let mut unused: Option<String> = None;
        let mut rng = croupier_rng::CertifiedRng::new().context("the certified generator")?;
        while rounds.is_none_or(|rounds| reported < rounds) {
            let message = match feed.read().context("the live feed")? {
                Message::Text(text) => serde_json::from_str::<Value>(&text)?,
                Message::Close(_) => bail!("the node closed the live feed"),
                _ => continue,
            };
            let closed = message["type"] == "round_closed";
            let Some(round_id) = message["round_id"].as_u64().filter(|_| closed) else {
                continue;
            };
            let shown = match unused.take().or_else(|| scripted.next()) {
                Some(shown) => shown,
                None => {
                    let mut round = rng.round().context("the certified generator")?;
                    self.live.draw(&mut round).label
                }
            };
            let (status, answer) = self.report(round_id, &shown, true)?;
            on_report(round_id, &shown, status, &answer);
            if is_late(status, &answer) {
                unused = Some(shown);
            } else {
                reported += 1;
            }
        }
        Ok(())
    }
}

/// The node's answer to a result past the round's result timeout (it voids the round).
fn is_late(status: u16, answer: &Value) -> bool {
    status == 409 && answer["error"] == "result_late"
}

/// `serve --demo`'s studio: a thread that reports every round of a studio table, a draw
/// standing in for the wheel, over the node's own listener (as a studio's console would);
/// it follows the feed again a second after any failure, for as long as the process runs.
pub fn spawn_demo_console(
    addr: std::net::SocketAddr,
    table: u32,
    game: &str,
    key: &Path,
) -> anyhow::Result<()> {
    let args = TableArgs {
        server: format!("http://{addr}"),
        table,
        game: game.to_string(),
        key: KeyArg {
            key: key.to_path_buf(),
        },
    };
    let console = Console::new(&args)?;
    std::thread::Builder::new()
        .name("demo-studio".into())
        .spawn(move || loop {
            let quiet = |round_id, shown: &str, status, _: &Value| {
                tracing::debug!(round_id, shown, status, "demo studio result");
            };
            if let Err(error) = console.follow(None, &mut std::iter::empty(), &quiet) {
                tracing::debug!(error = %format!("{error:#}"), "demo studio");
            }
            std::thread::sleep(Duration::from_secs(1));
        })
        .context("cannot start the demo studio")?;
    Ok(())
}

/// The table's live push (anonymous: a studio sees what every screen sees).
fn connect_feed(console: &Console) -> anyhow::Result<WebSocket<MaybeTlsStream<TcpStream>>> {
    let base = console
        .server
        .strip_prefix("http://")
        .context("--server must be http://host:port")?;
    let url = format!("ws://{base}/v1/live?table={}", console.table_id);
    let (socket, _) = tungstenite::connect(&url).with_context(|| format!("connecting {url}"))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_result_late_answer_leaves_the_round_uncounted() {
        let late = serde_json::json!({"error": "result_late"});
        assert!(is_late(409, &late));
        let duplicate = serde_json::json!({"error": "result_duplicate"});
        assert!(!is_late(409, &duplicate));
        assert!(!is_late(200, &serde_json::json!({"outcome": "05"})));
        assert!(!is_late(
            401,
            &serde_json::json!({"error": "studio_signature_invalid"})
        ));
    }
}
