//! `croupier bench payments`: withdrawals through the whole pipeline of one node, every part
//! its own process: two sandbox banks (`croupier sandbox bank`, one UK Open Banking, one
//! Berlin Group, each answering every request after `--latency-ms` and settling a payment
//! `--settle-ms` after accepting it) and a `croupier serve` child that knows them from its
//! config file. This process is only the client.
//!
//! - Players are seeded through the ledger's commands before the node starts (funded, an open
//!   session, a verified identity whose name is the payee's), as `bench live` seeds them.
//!   Even players withdraw to a UK sort code (routed to the OBIE bank), odd ones to an IBAN
//!   (the Berlin Group bank), so both protocols carry half the load.
//! - Load: `POST /v1/withdrawals` at `--rate` per second (open loop) on at most
//!   `--concurrency` keep-alive connections. A withdrawal's latency runs from when it was due,
//!   so a slow answer's wait is counted.
//! - Paid: `--paid-from feed` follows the committed event feed (`GET /v1/events` pages) for
//!   `withdrawal_updated` events and takes the ledger timestamp of the `paid` one (the node's
//!   clock, same machine); `--paid-from poll` asks `GET /v1/withdrawals/{id}` of every
//!   outstanding one every `POLL_INTERVAL_MS` (its figures are that coarse, and its reads load
//!   the node). Only `paid_at` below knows which.
//!
//! Every withdrawal must be answered 202 and end `paid`; anything else is counted, printed and
//! makes the command exit 1.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use croupier_cluster::{Node, NodeConfig};
use croupier_core::compliance::{ComplianceCommand, IdentityRecord};
use croupier_core::Command as LedgerCommand;
use serde::Deserialize;
use tokio::task::JoinSet;

use super::client::{self, HttpConnection};
use super::live_setup;
use super::LatencyHistogram;

#[derive(clap::Args)]
pub struct PaymentsArgs {
    /// Withdrawals to make in the timed part.
    #[arg(long, default_value_t = 10_000)]
    withdrawals: usize,
    /// Withdrawals offered per second (open loop).
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Keep-alive connections making withdrawals, each with one request in flight.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Players the withdrawals are spread over (round robin).
    #[arg(long, default_value_t = 1_000)]
    players: usize,
    /// Each withdrawal's amount, in cents.
    #[arg(long, default_value_t = 100)]
    amount: u64,
    /// Every answer of the sandbox banks waits this long.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// The sandbox banks settle a payment this long after accepting it.
    #[arg(long, default_value_t = 50)]
    settle_ms: u64,
    /// How the run learns that a withdrawal was paid.
    #[arg(long, value_enum, default_value_t = PaidSource::Feed)]
    paid_from: PaidSource,
    /// The node's `[payments] poll_interval_ms` [default: the node's own].
    #[arg(long)]
    poll_interval_ms: Option<u64>,
    /// Keep the node's data directory and every log here [default: a temporary directory].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where the banks keep their journals [default: a temporary directory in /dev/shm when
    /// there is one]. Each bank syncs every write under its one lock; on this project's disk
    /// that, not the node, would be what is measured.
    #[arg(long)]
    bank_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PaidSource {
    /// The committed event feed's `withdrawal_updated` events.
    Feed,
    /// `GET /v1/withdrawals/{id}` of every outstanding withdrawal.
    Poll,
}

const WITHDRAWALS_MAX: usize = 10_000_000;
const PLAYERS_MAX: usize = 100_000;
const CONCURRENCY_MAX: usize = 4_096;
const RATE_MAX: u64 = 1_000_000;
const CLIENT_ID: &str = "croupier";
const CLIENT_SECRET: &str = "bench-secret";
/// How long the run waits, after the last withdrawal was due, for every one to finish.
const FINISH_WAIT_S: u64 = 60;
/// How long a bank or the node may take to start.
const START_WAIT_S: u64 = 60;
/// `--paid-from poll`: how often every outstanding withdrawal is asked for.
const POLL_INTERVAL_MS: u64 = 50;
/// `--paid-from feed`: the wait before asking again when a page came back empty.
const FEED_IDLE_MS: u64 = 5;
const FEED_PAGE_EVENTS: usize = 10_000;
/// `--paid-from poll`: GETs written at once on the one polling connection.
const POLL_PIPELINE_MAX: usize = 256;

pub fn run(args: PaymentsArgs) -> anyhow::Result<ExitCode> {
    let ranges = [
        (
            "withdrawals",
            args.withdrawals as u64,
            WITHDRAWALS_MAX as u64,
        ),
        ("players", args.players as u64, PLAYERS_MAX as u64),
        (
            "concurrency",
            args.concurrency as u64,
            CONCURRENCY_MAX as u64,
        ),
        ("rate", args.rate, RATE_MAX),
        ("amount", args.amount, 1_000_000),
    ];
    for (flag, value, max) in ranges {
        if value == 0 || value > max {
            bail!("--{flag}: must be between 1 and {max}, got {value}");
        }
    }
    if args.players < 2 {
        bail!("--players: need at least 2 (one per bank for the warm-up)");
    }
    // Below the AML threshold in and out (see `PLAYER_FUNDS`), the warm-up's included.
    let per_player = (args.withdrawals.div_ceil(args.players) + 1) as u64;
    if per_player.saturating_mul(args.amount) > PLAYER_FUNDS / 2 {
        bail!(
            "--amount: {per_player} withdrawals of {} cents per player is more than {} cents: \
             raise --players or lower --amount",
            args.amount,
            PLAYER_FUNDS / 2
        );
    }
    if args.poll_interval_ms == Some(0) {
        bail!("--poll-interval-ms: must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: PaymentsArgs) -> anyhow::Result<ExitCode> {
    let temporary = tempfile::tempdir().context("creating a work directory")?;
    let work = args.work_dir.clone().unwrap_or(temporary.path().into());
    std::fs::create_dir_all(&work)?;
    let bank_temporary = bank_tempdir(&args)?;
    let bank_root = match (&args.bank_dir, &bank_temporary) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.path().to_path_buf(),
        (None, None) => work.join("banks"),
    };
    let data = work.join("data");
    eprintln!(
        "seeding {} funded players with verified identities",
        args.players
    );
    let players = seed(&data, args.players).await?;
    let banks = [
        Process::bank(&bank_root, &work, "obie", &args).await?,
        Process::bank(&bank_root, &work, "berlin-group", &args).await?,
    ];
    let node = Process::node(&work, &data, &banks, &args).await?;
    warm_up(node.addr, &players, args.amount).await?;
    let started = Clock::now();
    let finished = Arc::new(Mutex::new(HashMap::new()));
    let outstanding = Arc::new(Mutex::new(BTreeSet::new()));
    let watcher = tokio::spawn(paid_at(
        args.paid_from,
        node.addr,
        started,
        Arc::clone(&finished),
        Arc::clone(&outstanding),
    ));
    let cpu_before = [node.cpu_s(), banks[0].cpu_s(), banks[1].cpu_s()];
    eprintln!(
        "withdrawing: {} at {}/s on {} connections (banks: latency {} ms, settle {} ms)",
        args.withdrawals, args.rate, args.concurrency, args.latency_ms, args.settle_ms
    );
    let sent = drive(node.addr, &players, &args, started, &outstanding).await?;
    let last_due = started.at + due_after(args.withdrawals - 1, args.rate);
    wait_finished(&sent, &finished, last_due).await;
    let cpu_after = [node.cpu_s(), banks[0].cpu_s(), banks[1].cpu_s()];
    watcher.abort();
    let cpu: Vec<f64> = cpu_after
        .iter()
        .zip(cpu_before)
        .map(|(a, b)| a - b)
        .collect();
    let finished = finished.lock().expect("not poisoned").clone();
    let report = Report::new(&args, sent, &finished, &cpu);
    let ok = report.print(&args);
    node.stop()?;
    drop(banks);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The banks' journals on tmpfs unless told otherwise (see `--bank-dir`).
fn bank_tempdir(args: &PaymentsArgs) -> anyhow::Result<Option<tempfile::TempDir>> {
    let shm = Path::new("/dev/shm");
    if args.bank_dir.is_some() || !shm.is_dir() {
        return Ok(None);
    }
    Ok(Some(
        tempfile::tempdir_in(shm).context("creating the banks' directory in /dev/shm")?,
    ))
}

/// The same instant on the monotonic clock and as wall-clock nanoseconds (the ledger's
/// timestamps are the node's wall clock, on this machine).
#[derive(Clone, Copy)]
struct Clock {
    at: Instant,
    wall_ns: u64,
}

impl Clock {
    fn now() -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            at: Instant::now(),
            wall_ns: wall.as_nanos() as u64,
        }
    }

    /// Nanoseconds since this clock's instant.
    fn since_ns(&self, instant: Instant) -> i64 {
        instant.saturating_duration_since(self.at).as_nanos() as i64
    }
}

fn due_after(index: usize, rate: u64) -> Duration {
    Duration::from_nanos((index as u128 * 1_000_000_000 / u128::from(rate)) as u64)
}

/// The payee's name: the verified identity's, so the name check passes.
fn player_name(n: usize) -> String {
    format!("Bench Player{n}")
}

/// A seeded player: funded, a verified identity in `player_name(n)`, an open session.
struct Player {
    token: String,
}

/// The system account the players' money comes from.
const FUNDING_ACCOUNT_ID: u128 = 0xbe_0000_0002;
/// Each player's funds: far below the AML threshold (EUR 2,000 in and out within 24 h is
/// `amld_linked` and holds the withdrawal), so the rules run and pass.
const PLAYER_FUNDS: u64 = 100_000;
/// Players per proposal while seeding.
const SEED_BATCH: usize = 1_000;
const SESSION_TTL_S: u32 = 24 * 3600;

/// Registers, funds and verifies `count` players and opens a session for each, through the
/// ledger's commands on an embedded node (one shared password hash, as `bench live` does).
async fn seed(data: &Path, count: usize) -> anyhow::Result<Vec<Player>> {
    use croupier_core::{AccountFlags, AccountKind, NewAccount};
    let node = Node::start(NodeConfig::new(data)).await?;
    let funding = NewAccount {
        id: FUNDING_ACCOUNT_ID,
        ledger: eur(),
        kind: AccountKind::System,
        flags: AccountFlags::empty(),
    };
    expect_ok(&node, vec![LedgerCommand::CreateAccounts(vec![funding])]).await?;
    let password =
        croupier_server::auth::passwords::Password(format!("bench-{}", std::process::id()));
    let password_hash = croupier_server::auth::passwords::hash_password(&password)?;
    let mut players = Vec::with_capacity(count);
    for first in (0..count).step_by(SEED_BATCH) {
        let batch: Vec<usize> = (first..count.min(first + SEED_BATCH)).collect();
        players.extend(seed_batch(&node, &batch, &password_hash).await?);
    }
    node.shutdown().await?;
    Ok(players)
}

fn eur() -> croupier_core::LedgerCode {
    croupier_core::LedgerCode::parse("EUR").expect("a valid code")
}

async fn seed_batch(
    node: &Node,
    batch: &[usize],
    password_hash: &str,
) -> anyhow::Result<Vec<Player>> {
    use croupier_core::players::{NewPlayer, NewSession, PlayerOutcome};
    use croupier_core::CommandResult;
    let create = batch
        .iter()
        .map(|n| {
            LedgerCommand::CreatePlayer(NewPlayer {
                username: format!("bench-pay-{n}"),
                password_hash: password_hash.to_string(),
                currencies: vec![eur()],
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(batch.len());
    for result in live_setup::propose(node, create).await? {
        match result {
            CommandResult::Player(PlayerOutcome::PlayerCreated { player_id }) => {
                ids.push(player_id)
            }
            other => bail!("registering a benchmark player answered {other:?}"),
        }
    }
    let mut commands = vec![LedgerCommand::CreateTransfers(funding(batch, &ids))];
    let mut players = Vec::with_capacity(batch.len());
    for (&n, &player_id) in batch.iter().zip(&ids) {
        commands.push(identity(n, player_id));
        let (token, token_hash) = croupier_server::auth::passwords::new_session_token()?;
        commands.push(LedgerCommand::OpenSession(NewSession {
            token_hash,
            player_id,
            ttl_s: SESSION_TTL_S,
        }));
        players.push(Player { token });
    }
    expect_ok(node, commands).await?;
    Ok(players)
}

fn funding(batch: &[usize], ids: &[u128]) -> Vec<croupier_core::NewTransfer> {
    use croupier_core::ids::{player_sequence, player_wallet_account_id};
    batch
        .iter()
        .zip(ids)
        .map(|(&n, &player_id)| croupier_core::NewTransfer {
            id: 0xbf_0000_0000_0000 + n as u128,
            debit_account_id: FUNDING_ACCOUNT_ID,
            credit_account_id: player_wallet_account_id(
                player_sequence(player_id).expect("a player id"),
                0,
            ),
            amount: PLAYER_FUNDS,
            ledger: eur(),
            flags: croupier_core::TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
        })
        .collect()
}

/// A verified identity (GB) in player `n`'s name.
fn identity(n: usize, player_id: u128) -> LedgerCommand {
    let mut subject = [0u8; 32];
    subject[..8].copy_from_slice(&(n as u64).to_be_bytes());
    LedgerCommand::Compliance(ComplianceCommand::RecordIdentity {
        player_id,
        identity: Box::new(IdentityRecord {
            issuer: "bench".into(),
            subject_sha256: subject,
            name: player_name(n),
            birth_date_days: None,
            country: *b"GB",
            expires_at_s: u64::from(u32::MAX),
            attestation_sha256: subject,
        }),
    })
}

/// Proposes `commands`; every result must be a success.
async fn expect_ok(node: &Node, commands: Vec<LedgerCommand>) -> anyhow::Result<()> {
    use croupier_core::players::PlayerOutcome;
    use croupier_core::CommandResult;
    for result in live_setup::propose(node, commands).await? {
        let ok = match &result {
            CommandResult::Transfers(items) => items.iter().all(|r| r.code() == "ok"),
            CommandResult::Accounts(items) => items.iter().all(|r| r.code() == "ok"),
            CommandResult::Compliance(outcome) => outcome.code() == "ok",
            CommandResult::Player(PlayerOutcome::SessionOpened { .. }) => true,
            _ => false,
        };
        if !ok {
            bail!("seeding the benchmark players answered {result:?}");
        }
    }
    Ok(())
}

/// A child process (a bank or the node), killed when dropped.
struct Process {
    child: Child,
    addr: SocketAddr,
    id: &'static str,
}

impl Process {
    async fn bank(
        root: &Path,
        work: &Path,
        protocol: &str,
        args: &PaymentsArgs,
    ) -> anyhow::Result<Process> {
        let id = match protocol {
            "obie" => "bank-a",
            _ => "bank-b",
        };
        let log = std::fs::File::create(work.join(format!("{id}.log")))?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["sandbox", "bank", "--protocol", protocol])
            .args(["--listen", "127.0.0.1:0", "--client-id", CLIENT_ID])
            .arg("--data-dir")
            .arg(root.join(id))
            .args(["--settle-ms", &args.settle_ms.to_string()])
            .args(["--latency-ms", &args.latency_ms.to_string()])
            // A log line per payment is not what the run measures.
            .env("RUST_LOG", "warn")
            .env("CROUPIER_SANDBOX_BANK_CLIENT_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting croupier sandbox bank")?;
        let stdout = child.stdout.take().context("the bank's stdout")?;
        let ready = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout).read_line(&mut line)?;
            anyhow::Ok(line)
        });
        let mut process = Process {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            id,
        };
        let line = tokio::time::timeout(Duration::from_secs(START_WAIT_S), ready)
            .await
            .with_context(|| format!("{id} did not start within {START_WAIT_S} s"))???;
        process.addr = line
            .trim()
            .strip_prefix("sandbox bank listening on ")
            .and_then(|addr| addr.parse().ok())
            .with_context(|| format!("{id} did not say where it listens: {line:?}"))?;
        Ok(process)
    }

    async fn node(
        work: &Path,
        data: &Path,
        banks: &[Process; 2],
        args: &PaymentsArgs,
    ) -> anyhow::Result<Process> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        let addr = listener.local_addr()?;
        drop(listener);
        let config = work.join("bench-payments.toml");
        std::fs::write(&config, node_config(addr, banks, args))?;
        let log = std::fs::File::create(work.join("serve.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting croupier serve")?;
        let node = Process {
            child,
            addr,
            id: "node",
        };
        client::wait_until_ready(addr, Duration::from_secs(START_WAIT_S)).await?;
        Ok(node)
    }

    /// User plus system CPU seconds the process has used so far.
    fn cpu_s(&self) -> f64 {
        client::cpu_seconds(self.child.id())
    }

    /// Stops the process with SIGINT (a clean shutdown) and waits for it.
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} exited with {status}", self.id);
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The node's settings: the two banks, sort codes to the OBIE one and IBANs to the Berlin
/// Group one (so each carries half), no exploration, notifications to this node.
fn node_config(addr: SocketAddr, banks: &[Process; 2], args: &PaymentsArgs) -> String {
    let poll = args
        .poll_interval_ms
        .map_or(String::new(), |ms| format!("poll_interval_ms = {ms}\n"));
    let mut text = format!(
        "listen = \"{addr}\"\n\n[rate_limit]\nper_player_per_s = 1000\n\n\
         [payments]\npublic_url = \"http://{addr}\"\nexplore_ppm = 0\n{poll}"
    );
    for (bank, (protocol, account)) in banks
        .iter()
        .zip([("obie", "sort_code"), ("berlin-group", "iban")])
    {
        text += &format!(
            "\n[[payments.connectors]]\nid = \"{}\"\nprotocol = \"{protocol}\"\n\
             base_url = \"http://{}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"{CLIENT_SECRET}\"\naccounts = [\"{account}\"]\n",
            bank.id, bank.addr
        );
    }
    text
}

/// Player `n`'s bank account: a sort code for even players, an IBAN for odd ones.
fn payee_json(n: usize) -> String {
    let name = player_name(n);
    if n.is_multiple_of(2) {
        format!(
            r#"{{"sort_code":"20-20-15","account_number":"{:08}","name":"{name}"}}"#,
            n % 100_000_000
        )
    } else {
        let iban = gb_iban(&format!("BUKB202015{:08}", n % 100_000_000));
        format!(r#"{{"iban":"{iban}","name":"{name}"}}"#)
    }
}

/// A GB IBAN for `bban` (bank code and account) with its mod-97 check digits.
fn gb_iban(bban: &str) -> String {
    // The check digits make BBAN + "GB00" (letters as 10..35) leave 1 modulo 97.
    let rearranged = format!("{bban}GB00");
    let remainder = rearranged.bytes().fold(0u32, |acc, byte| {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            _ => u32::from(byte - b'A') + 10,
        };
        let shift = if value >= 10 { 100 } else { 10 };
        (acc * shift + value) % 97
    });
    format!("GB{:02}{bban}", 98 - remainder)
}

fn withdrawal_request(id: u128, n: usize, amount: u64, token: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"withdrawal_id":"{id}","amount":{amount},"ledger":"EUR","account":{}}}"#,
        payee_json(n)
    );
    HttpConnection::post_request_as(
        Some(token),
        "/v1/withdrawals",
        "application/json",
        body.as_bytes(),
    )
}

/// Withdrawal ids of the warm-up: far above the timed part's (1..=N).
const WARM_UP_ID_BASE: u128 = 1 << 100;

/// One withdrawal through each bank, waited for: the node has registered with both banks,
/// fetched their tokens and its operator accounts before the clock starts.
async fn warm_up(addr: SocketAddr, players: &[Player], amount: u64) -> anyhow::Result<()> {
    let mut connection = HttpConnection::open(addr).await?;
    let deadline = Instant::now() + Duration::from_secs(START_WAIT_S);
    for (n, player) in players.iter().enumerate().take(2) {
        let id = WARM_UP_ID_BASE + n as u128;
        let request = withdrawal_request(id, n, amount, &player.token);
        let (status, body) = connection.send(&request).await?;
        if status != 202 {
            bail!(
                "the warm-up withdrawal answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        loop {
            let (_, body) = connection.get(&format!("/v1/withdrawals/{id}")).await?;
            let state = withdrawal_state(&body);
            match state.as_deref() {
                Some("paid") => break,
                Some("requested" | "sending") if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => bail!(
                    "the warm-up withdrawal through bank {n} is {}",
                    String::from_utf8_lossy(&body)
                ),
            }
        }
    }
    Ok(())
}

fn withdrawal_state(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Withdrawal {
        state: String,
    }
    serde_json::from_slice::<Withdrawal>(body)
        .ok()
        .map(|w| w.state)
}

/// How a withdrawal ended, and when (nanoseconds since the run's clock started).
#[derive(Clone, Debug)]
struct Finished {
    state: String,
    at_ns: i64,
}

type FinishedMap = Arc<Mutex<HashMap<u128, Finished>>>;

/// States a withdrawal does not leave without someone else (a case) deciding.
fn is_final(state: &str) -> bool {
    matches!(state, "paid" | "refunded" | "rejected" | "held")
}

/// Records when each withdrawal became final; the one place that knows how.
async fn paid_at(
    source: PaidSource,
    addr: SocketAddr,
    clock: Clock,
    finished: FinishedMap,
    outstanding: Arc<Mutex<BTreeSet<u128>>>,
) -> anyhow::Result<()> {
    match source {
        PaidSource::Feed => follow_feed(addr, clock, finished).await,
        PaidSource::Poll => poll_withdrawals(addr, clock, finished, outstanding).await,
    }
}

#[derive(Deserialize)]
struct EventsPage {
    events: Vec<FeedEvent>,
    next: String,
}

#[derive(Deserialize)]
struct FeedEvent {
    #[serde(rename = "type")]
    kind: String,
    timestamp: u64,
    #[serde(default)]
    withdrawal_id: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// The event feed's `withdrawal_updated` events: the ledger time of each final state.
async fn follow_feed(addr: SocketAddr, clock: Clock, finished: FinishedMap) -> anyhow::Result<()> {
    let mut connection = HttpConnection::open(addr).await?;
    let mut after = String::from("0");
    loop {
        let path = format!("/v1/events?after={after}&limit={FEED_PAGE_EVENTS}");
        let (status, body) = connection.get(&path).await?;
        if status != 200 {
            bail!("GET /v1/events answered {status}");
        }
        let page: EventsPage = serde_json::from_slice(&body).context("an events page")?;
        let empty = page.events.is_empty();
        {
            let mut seen = finished.lock().expect("not poisoned");
            for event in &page.events {
                if let Some((id, done)) = final_withdrawal(event, clock) {
                    seen.entry(id).or_insert(done);
                }
            }
        }
        after = page.next;
        if empty {
            tokio::time::sleep(Duration::from_millis(FEED_IDLE_MS)).await;
        }
    }
}

/// A `withdrawal_updated` event to a final state: which withdrawal, and when.
fn final_withdrawal(event: &FeedEvent, clock: Clock) -> Option<(u128, Finished)> {
    if event.kind != "withdrawal_updated" {
        return None;
    }
    let state = event.state.as_deref().filter(|s| is_final(s))?;
    let id = event.withdrawal_id.as_deref()?.parse().ok()?;
    let at_ns = event.timestamp as i64 - clock.wall_ns as i64;
    let state = state.to_string();
    Some((id, Finished { state, at_ns }))
}

/// Every `POLL_INTERVAL_MS`, `GET /v1/withdrawals/{id}` of every outstanding withdrawal.
async fn poll_withdrawals(
    addr: SocketAddr,
    clock: Clock,
    finished: FinishedMap,
    outstanding: Arc<Mutex<BTreeSet<u128>>>,
) -> anyhow::Result<()> {
    let mut connection = HttpConnection::open(addr).await?;
    loop {
        let ids: Vec<u128> = outstanding
            .lock()
            .expect("not poisoned")
            .iter()
            .copied()
            .collect();
        for chunk in ids.chunks(POLL_PIPELINE_MAX) {
            let paths: Vec<String> = chunk
                .iter()
                .map(|id| format!("/v1/withdrawals/{id}"))
                .collect();
            let answers = connection.get_pipelined(&paths, None).await?;
            let at_ns = clock.since_ns(Instant::now());
            for (&id, answer) in chunk.iter().zip(answers) {
                let Some(state) = withdrawal_state(&answer.body).filter(|s| is_final(s)) else {
                    continue;
                };
                outstanding.lock().expect("not poisoned").remove(&id);
                let mut seen = finished.lock().expect("not poisoned");
                seen.entry(id).or_insert(Finished { state, at_ns });
            }
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

/// A withdrawal as the client made it.
struct Sent {
    id: u128,
    /// When it was due, nanoseconds since the run's clock started.
    due_ns: i64,
    /// The answer's status, and how long it took from when it was due.
    status: u16,
    answered_ns: i64,
}

/// Open loop: withdrawal `i` is due `i / rate` seconds after the start; each connection takes
/// the next one, waits for its time, sends it and waits for the answer.
async fn drive(
    addr: SocketAddr,
    players: &[Player],
    args: &PaymentsArgs,
    clock: Clock,
    outstanding: &Arc<Mutex<BTreeSet<u128>>>,
) -> anyhow::Result<Vec<Sent>> {
    let tokens: Arc<Vec<String>> = Arc::new(players.iter().map(|p| p.token.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    for _ in 0..args.concurrency.min(args.withdrawals) {
        let mut connection = HttpConnection::open(addr).await?;
        let (tokens, next) = (Arc::clone(&tokens), Arc::clone(&next));
        let outstanding = Arc::clone(outstanding);
        let (count, rate, amount) = (args.withdrawals, args.rate, args.amount);
        clients.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return anyhow::Ok(sent);
                }
                let due = clock.at + due_after(index, rate);
                tokio::time::sleep_until(due.into()).await;
                let n = index % tokens.len();
                let id = index as u128 + 1;
                let request = withdrawal_request(id, n, amount, &tokens[n]);
                // An idle connection the node closed (a slow --rate): open another and send
                // again; a withdrawal sent twice with its id is answered as the first.
                let (status, _) = match connection.send(&request).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        connection = HttpConnection::open(addr).await?;
                        connection.send(&request).await?
                    }
                };
                if status == 202 {
                    outstanding.lock().expect("not poisoned").insert(id);
                }
                sent.push(Sent {
                    id,
                    due_ns: clock.since_ns(due),
                    status,
                    answered_ns: clock.since_ns(Instant::now()),
                });
            }
        });
    }
    let mut all = Vec::with_capacity(args.withdrawals);
    while let Some(done) = clients.join_next().await {
        all.extend(done.context("a withdrawal connection task")??);
    }
    all.sort_by_key(|sent| sent.id);
    Ok(all)
}

/// Waits until every accepted withdrawal is final, or `FINISH_WAIT_S` after the last was due.
async fn wait_finished(sent: &[Sent], finished: &FinishedMap, last_due: Instant) {
    let deadline = last_due + Duration::from_secs(FINISH_WAIT_S);
    loop {
        let done = {
            let finished = finished.lock().expect("not poisoned");
            sent.iter()
                .filter(|s| s.status == 202)
                .all(|s| finished.contains_key(&s.id))
        };
        if done || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a run measured.
struct Report {
    answered: LatencyHistogram,
    to_paid: LatencyHistogram,
    paid: usize,
    /// From the first withdrawal's due time to the last one's paid time.
    span_s: f64,
    /// Answers other than 202, by status; withdrawals that ended other than paid, by state.
    refused: BTreeMap<u16, u64>,
    not_paid: BTreeMap<String, u64>,
    /// CPU seconds of the node and the two banks during the timed part.
    cpu: Vec<f64>,
    offered_s: f64,
}

impl Report {
    fn new(
        args: &PaymentsArgs,
        sent: Vec<Sent>,
        finished: &HashMap<u128, Finished>,
        cpu: &[f64],
    ) -> Report {
        let mut report = Report {
            answered: LatencyHistogram::new(),
            to_paid: LatencyHistogram::new(),
            paid: 0,
            span_s: 0.0,
            refused: BTreeMap::new(),
            not_paid: BTreeMap::new(),
            cpu: cpu.to_vec(),
            offered_s: due_after(args.withdrawals, args.rate).as_secs_f64(),
        };
        let mut last_paid_ns = 0i64;
        for s in &sent {
            let ns = |n: i64| Duration::from_nanos(n.max(0) as u64);
            report.answered.record(ns(s.answered_ns - s.due_ns));
            if s.status != 202 {
                *report.refused.entry(s.status).or_default() += 1;
                continue;
            }
            match finished.get(&s.id) {
                Some(done) if done.state == "paid" => {
                    report.paid += 1;
                    report.to_paid.record(ns(done.at_ns - s.due_ns));
                    last_paid_ns = last_paid_ns.max(done.at_ns);
                }
                Some(done) => *report.not_paid.entry(done.state.clone()).or_default() += 1,
                None => *report.not_paid.entry("unfinished".into()).or_default() += 1,
            }
        }
        report.span_s = Duration::from_nanos(last_paid_ns.max(0) as u64).as_secs_f64();
        report
    }

    /// Prints the figures; true when every withdrawal was accepted and paid.
    fn print(&self, args: &PaymentsArgs) -> bool {
        let source = match args.paid_from {
            PaidSource::Feed => "the ledger time of its paid event (event feed)",
            PaidSource::Poll => "when a GET saw it paid (polled every 50 ms)",
        };
        println!(
            "mode = payments: croupier serve child, two sandbox bank children (obie, berlin-group) \
             answering after {} ms and settling {} ms after accepting; client in this process",
            args.latency_ms, args.settle_ms
        );
        println!(
            "offered: {} withdrawals at {}/s over {:.2} s on {} connections, {} players",
            args.withdrawals, args.rate, self.offered_s, args.concurrency, args.players
        );
        let paid_per_s = self.paid as f64 / self.span_s.max(1e-9);
        println!(
            "paid: {} in {:.2} s = {paid_per_s:.0} withdrawals/s (first due to last paid)",
            self.paid, self.span_s
        );
        println!(
            "POST /v1/withdrawals (due to 202): p50 {} ms, p99 {} ms, p100 {} ms",
            self.answered.percentile_ms(50),
            self.answered.percentile_ms(99),
            self.answered.percentile_ms(100)
        );
        println!(
            "request to paid (due to {source}): p50 {} ms, p99 {} ms, p100 {} ms",
            self.to_paid.percentile_ms(50),
            self.to_paid.percentile_ms(99),
            self.to_paid.percentile_ms(100)
        );
        let cores = |cpu: f64| cpu / self.span_s.max(1e-9);
        println!(
            "CPU over the run: node {:.1} s ({:.2} cores), bank-a {:.1} s, bank-b {:.1} s",
            self.cpu[0],
            cores(self.cpu[0]),
            self.cpu[1],
            self.cpu[2]
        );
        if self.refused.is_empty() && self.not_paid.is_empty() {
            println!("all {} withdrawals accepted and paid", args.withdrawals);
            return true;
        }
        println!(
            "FAILED: answers other than 202 by status {:?}; not paid, by final state {:?}",
            self.refused, self.not_paid
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ibans_pass_the_mod_97_check() {
        // The example IBAN of the payments docs.
        assert_eq!(gb_iban("BUKB20201555555555"), "GB33BUKB20201555555555");
        assert_eq!(gb_iban("BUKB20201500000007").len(), 22);
    }

    #[test]
    fn feed_events_give_the_final_state_and_its_ledger_time() {
        let clock = Clock {
            at: Instant::now(),
            wall_ns: 1_000,
        };
        let page = r#"{"events":[
            {"position":"5","timestamp":1500,"type":"withdrawal_updated","withdrawal_id":"7",
             "state":"sending","connector":"bank-a","amount":100,"ledger":"EUR","attempt":0,"reason":""},
            {"position":"6","timestamp":2500,"type":"withdrawal_updated","withdrawal_id":"7",
             "state":"paid","connector":"bank-a","amount":100,"ledger":"EUR","attempt":0,"reason":""},
            {"position":"7","timestamp":2600,"type":"transfer_posted","id":"9"}],"next":"7"}"#;
        let page: EventsPage = serde_json::from_str(page).unwrap();
        let found: Vec<_> = page
            .events
            .iter()
            .filter_map(|e| final_withdrawal(e, clock))
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 7);
        assert_eq!(
            (found[0].1.state.as_str(), found[0].1.at_ns),
            ("paid", 1_500)
        );
        assert_eq!(page.next, "7");
    }
}
