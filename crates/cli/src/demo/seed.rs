//! The demo's players and their money, proposed to the node as ordinary commands.
//!
//! Every step is idempotent on the same data directory: a player that exists is looked up,
//! not registered again, and each credit is a transfer with a fixed id, which the ledger
//! answers `exists` the second time. So a restart never credits twice.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use croupier_cluster::{Consensus, Node};
use croupier_core::ids::AccountId;
use croupier_core::players::NewPlayer;
use croupier_core::types::{AccountFlags, AccountKind, NewAccount, NewTransfer, TransferFlags};
use croupier_core::{Command, CommandResult, LedgerCode};
use croupier_server::auth::passwords::{hash_password, Password};

use super::{BOTS, CURRENCY, FUNDS, PASSWORD, PLAYERS};

/// The demo cashier: a clearing account the credits come from (its balance goes negative by
/// what was handed out, as a cash-in clearing account does).
const CASHIER_ACCOUNT_ID: AccountId = 9_100_000;
/// Credit of the demo's n-th player (alice, bob, then the bots): base + n.
const CREDIT_TRANSFER_ID_BASE: u128 = 9_100_000;
/// How long the node may take to accept writes after it starts.
const WRITABLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The demo's usernames: the people, then the bots.
pub fn usernames() -> Vec<String> {
    let bots = (1..=BOTS).map(|n| format!("bot-{n}"));
    PLAYERS.iter().map(|p| p.to_string()).chain(bots).collect()
}

/// Registers (if new) and credits (once) every demo player. Commands carry the demo key's id,
/// so the operator audit trail says who seeded.
pub async fn seed(node: &Node, key_id: &str) -> anyhow::Result<()> {
    let eur = LedgerCode::parse(CURRENCY).map_err(|e| anyhow::anyhow!("{CURRENCY}: {e}"))?;
    wait_until_writable(node).await?;
    let cashier = NewAccount {
        id: CASHIER_ACCOUNT_ID,
        ledger: eur,
        kind: AccountKind::Clearing,
        flags: AccountFlags::empty(),
    };
    match propose(node, key_id, Command::CreateAccounts(vec![cashier])).await? {
        CommandResult::Accounts(results) if results.iter().all(|r| r.is_ok_or_exists()) => {}
        other => bail!("the demo cashier account {CASHIER_ACCOUNT_ID}: {other:?}"),
    }
    for (n, username) in usernames().iter().enumerate() {
        let wallet = ensure_player(node, key_id, username, eur).await?;
        credit(node, key_id, n as u128, wallet, eur)
            .await
            .with_context(|| format!("crediting {username}"))?;
    }
    Ok(())
}

/// The player's wallet in `eur`, registering the player first if it does not exist.
async fn ensure_player(
    node: &Node,
    key_id: &str,
    username: &str,
    eur: LedgerCode,
) -> anyhow::Result<AccountId> {
    if let Some(wallet) = wallet_of(node, username, eur).await? {
        return Ok(wallet);
    }
    // Argon2 takes tens of milliseconds on purpose: off the async workers.
    let password_hash =
        tokio::task::spawn_blocking(|| hash_password(&Password(PASSWORD.to_string())))
            .await
            .context("password hashing")?
            .context("password hashing")?;
    let player = NewPlayer {
        username: username.to_string(),
        password_hash,
        currencies: vec![eur],
    };
    // `UsernameTaken` is fine too: the lookup below finds the player either way.
    propose(node, key_id, Command::CreatePlayer(player)).await?;
    wallet_of(node, username, eur)
        .await?
        .with_context(|| format!("the demo player {username} was not registered"))
}

async fn wallet_of(
    node: &Node,
    username: &str,
    eur: LedgerCode,
) -> anyhow::Result<Option<AccountId>> {
    let username = username.to_string();
    let found = node
        .read(move |view| {
            let player = view.ledger().player_by_username(&username)?;
            Some(player.wallet(eur))
        })
        .await?;
    match found {
        None => Ok(None),
        Some(Some(wallet)) => Ok(Some(wallet)),
        Some(None) => bail!("a player with a demo username has no {CURRENCY} wallet"),
    }
}

/// The n-th demo player's one credit: a transfer with a fixed id.
async fn credit(
    node: &Node,
    key_id: &str,
    n: u128,
    wallet: AccountId,
    eur: LedgerCode,
) -> anyhow::Result<()> {
    let transfer = NewTransfer {
        id: CREDIT_TRANSFER_ID_BASE + n,
        debit_account_id: CASHIER_ACCOUNT_ID,
        credit_account_id: wallet,
        amount: FUNDS,
        ledger: eur,
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    };
    match propose(node, key_id, Command::CreateTransfers(vec![transfer])).await? {
        CommandResult::Transfers(results) if results.iter().all(|r| r.is_ok_or_exists()) => Ok(()),
        CommandResult::Transfers(results) => {
            let codes: Vec<&str> = results.iter().map(|r| r.code()).collect();
            bail!(
                "transfer {} answered {codes:?}",
                CREDIT_TRANSFER_ID_BASE + n
            )
        }
        other => bail!("a transfer answered {other:?}"),
    }
}

async fn propose(node: &Node, key_id: &str, command: Command) -> anyhow::Result<CommandResult> {
    let command = Command::ByOperator {
        key_id: key_id.to_string(),
        command: Box::new(command),
        recorded: true,
    };
    let mut results = node.propose(vec![command]).await?;
    results.pop().context("the node answered no result")
}

async fn wait_until_writable(node: &Node) -> anyhow::Result<()> {
    let deadline = Instant::now() + WRITABLE_TIMEOUT;
    while !node.is_serving_writes() {
        if Instant::now() >= deadline {
            bail!("the node does not accept writes after {WRITABLE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
