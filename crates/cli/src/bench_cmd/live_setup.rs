//! `bench live`'s stage: a data directory seeded with funded players and open sessions, and a
//! `croupier serve` child process running one table on it.
//!
//! Players and sessions are written through the ledger's own commands on an embedded node
//! before the server starts, with one password hash shared by every player: registering and
//! logging in 5,000 players over HTTP costs 10,000 argon2 hashes (minutes on 2 cores), which is
//! not what the benchmark measures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use croupier_cluster::{Consensus, Node, NodeConfig};
use croupier_core::ids::{player_sequence, player_wallet_account_id};
use croupier_core::players::{NewPlayer, NewSession, PlayerOutcome};
use croupier_core::{
    AccountFlags, AccountKind, Command as LedgerCommand, CommandResult, LedgerCode, NewAccount,
    NewTransfer, TransferFlags, BATCH_ITEMS_MAX,
};
use croupier_server::auth::passwords;

/// The system account the players' money comes from.
const FUNDING_ACCOUNT_ID: u128 = 0xbe_0000_0001;
/// Players or sessions per proposal while seeding.
const SEED_BATCH: usize = 1_000;
/// Each player's starting balance (minor units): far more than a run can stake.
pub const PLAYER_FUNDS: u64 = 1_000_000_000;
pub const TABLE_ID: u32 = 1;
const SESSION_TTL_S: u32 = 24 * 3600;

/// A seeded player: its wallet is funded and `token` is an open session.
pub struct BenchPlayer {
    pub player_id: u128,
    pub token: String,
}

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").expect("a valid code")
}

pub async fn propose(
    node: &Node,
    commands: Vec<LedgerCommand>,
) -> anyhow::Result<Vec<CommandResult>> {
    Ok(node.propose(commands).await?)
}

/// Registers `count` players, funds them and opens a session for each.
pub async fn seed(data_dir: &Path, count: usize) -> anyhow::Result<Vec<BenchPlayer>> {
    let node = Node::start(NodeConfig::new(data_dir)).await?;
    let seeded = seed_on(&node, count).await;
    node.shutdown().await?;
    seeded
}

async fn seed_on(node: &Node, count: usize) -> anyhow::Result<Vec<BenchPlayer>> {
    let funding = NewAccount {
        id: FUNDING_ACCOUNT_ID,
        ledger: eur(),
        kind: AccountKind::System,
        flags: AccountFlags::empty(),
    };
    propose(node, vec![LedgerCommand::CreateAccounts(vec![funding])]).await?;
    let secret = passwords::Password(format!("bench-{}", std::process::id()));
    let password_hash = passwords::hash_password(&secret)?;
    let mut player_ids = Vec::with_capacity(count);
    for first in (0..count).step_by(SEED_BATCH) {
        let batch = (first..count.min(first + SEED_BATCH))
            .map(|n| {
                LedgerCommand::CreatePlayer(NewPlayer {
                    username: format!("bench-{n}"),
                    password_hash: password_hash.clone(),
                    currencies: vec![eur()],
                })
            })
            .collect();
        for result in propose(node, batch).await? {
            match result {
                CommandResult::Player(PlayerOutcome::PlayerCreated { player_id }) => {
                    player_ids.push(player_id)
                }
                other => bail!("registering a benchmark player answered {other:?}"),
            }
        }
    }
    fund(node, &player_ids).await?;
    open_sessions(node, &player_ids).await
}

async fn fund(node: &Node, player_ids: &[u128]) -> anyhow::Result<()> {
    let transfers: Vec<NewTransfer> = player_ids
        .iter()
        .enumerate()
        .map(|(n, &player_id)| {
            let sequence = player_sequence(player_id).expect("a player id");
            NewTransfer {
                id: 0xbe_0000_0000_0000 + n as u128,
                debit_account_id: FUNDING_ACCOUNT_ID,
                credit_account_id: player_wallet_account_id(sequence, 0),
                amount: PLAYER_FUNDS,
                ledger: eur(),
                flags: TransferFlags::empty(),
                pending_id: 0,
                timeout_s: 0,
            }
        })
        .collect();
    for chunk in transfers.chunks(BATCH_ITEMS_MAX) {
        let results = propose(node, vec![LedgerCommand::CreateTransfers(chunk.to_vec())]).await?;
        let all_ok = matches!(&results[..], [CommandResult::Transfers(items)] if items.iter().all(|r| r.code() == "ok"));
        if !all_ok {
            bail!("funding the benchmark players failed: {results:?}");
        }
    }
    Ok(())
}

async fn open_sessions(node: &Node, player_ids: &[u128]) -> anyhow::Result<Vec<BenchPlayer>> {
    let mut players = Vec::with_capacity(player_ids.len());
    for chunk in player_ids.chunks(SEED_BATCH) {
        let mut commands = Vec::with_capacity(chunk.len());
        for &player_id in chunk {
            let (token, token_hash) = passwords::new_session_token()?;
            commands.push(LedgerCommand::OpenSession(NewSession {
                token_hash,
                player_id,
                ttl_s: SESSION_TTL_S,
            }));
            players.push(BenchPlayer { player_id, token });
        }
        for result in propose(node, commands).await? {
            if !matches!(
                result,
                CommandResult::Player(PlayerOutcome::SessionOpened { .. })
            ) {
                bail!("opening a benchmark session answered {result:?}");
            }
        }
    }
    Ok(players)
}

/// The server's settings: one roulette table whose rounds take every bet the run makes, and
/// room for every connection the run opens.
pub struct StageConfig {
    pub window_ms: u32,
    /// The table's `bets_total_interval_ms`, when not the server's default.
    pub bets_total_interval_ms: Option<u32>,
    /// The table's `draw_delay_ms`, when not the server's default.
    pub draw_delay_ms: Option<u32>,
    pub connections: usize,
}

fn write_config(dir: &Path, listen: SocketAddr, stage: &StageConfig) -> anyhow::Result<PathBuf> {
    let text = format!(
        r#"listen = "{listen}"

[edge]
connections_max = {connections}
requests_in_flight_max = 16384

[rate_limit]
per_player_per_s = 1000

[live]
subscribers_max = {connections}

[[tables]]
id = {TABLE_ID}
game = "roulette"
currency = "EUR"
betting_window_ms = {window}
bet_min = 1
bet_max = 1000000
round_stake_max = 1000000000000
payout_max = 1000000000000
bets_per_round_max = 200000
{interval}{draw_delay}"#,
        connections = stage.connections,
        window = stage.window_ms,
        interval = stage
            .bets_total_interval_ms
            .map(|ms| format!("bets_total_interval_ms = {ms}\n"))
            .unwrap_or_default(),
        draw_delay = stage
            .draw_delay_ms
            .map(|ms| format!("draw_delay_ms = {ms}\n"))
            .unwrap_or_default(),
    );
    let path = dir.join("bench-live.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A `croupier serve` child on `data_dir`; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    pub async fn start(
        work_dir: &Path,
        data_dir: &Path,
        stage: &StageConfig,
    ) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        let addr = listener.local_addr()?;
        drop(listener);
        let config = write_config(work_dir, addr, stage)?;
        let log = std::fs::File::create(work_dir.join("serve.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting croupier serve")?;
        let server = ServerProcess { child, addr };
        super::client::wait_until_ready(addr, Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// User plus system CPU seconds the server has used so far.
    pub fn cpu_s(&self) -> f64 {
        super::client::cpu_seconds(self.child.id())
    }

    /// Stops the server with SIGINT (a clean shutdown) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let status = self.child.wait()?;
        if !status.success() {
            bail!("croupier serve exited with {status}");
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
