//! The bank's calls to one server: setting the bank up, one transfer, a snapshot read of every
//! balance, and an account's full transfer history.
//!
//! The API has no multi-account lookup, so a read is N single-account lookups, which alone
//! would not be a snapshot: a transfer landing between two lookups would make a correct system
//! look like it lost money. A read therefore collects every account's posted debits and credits
//! (sent pipelined, so a collect takes about one round trip) until two collects in a row agree.
//! These counters only grow, so agreeing values were held throughout the interval between the
//! two lookups of each account, and all those intervals contain the moment between the two
//! collects: the balances are a true snapshot at that moment, given linearizable lookups.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use croupier_core::{
    AccountFlags, AccountKind, LedgerCode, NewAccount, NewTransfer, TransferFlags,
};
use serde_json::Value;

use super::checker::Listed;
use super::history::Transfer;
use crate::bench_cmd::client::{self, Answer, HttpConnection};
use crate::operator_key::{CredentialsRefused, OperatorKey};

/// Collects of every balance one read may take before it gives up (and fails).
const COLLECTS_MAX: usize = 10;
/// Transfers per page when reading an account's history (the server's maximum).
const HISTORY_PAGE: usize = croupier_core::BATCH_ITEMS_MAX;

/// The bank's accounts and ids. Ids carry the ledger code in their upper 64 bits, so banks on
/// different ledgers never share an id, and the same ledger always gets the same accounts.
#[derive(Debug, Clone)]
pub struct BankLayout {
    pub ledger: LedgerCode,
    pub clearing: u128,
    pub players: Vec<u128>,
    pub balance: u64,
}

impl BankLayout {
    pub fn new(ledger: LedgerCode, accounts: usize, balance: u64) -> Self {
        let high = Self::high(ledger);
        BankLayout {
            ledger,
            clearing: high | 1,
            players: (0..accounts as u128).map(|k| high | (2 + k)).collect(),
            balance,
        }
    }

    /// Ledger codes are ASCII, so the top bit is clear and no id falls in the reserved range.
    fn high(ledger: LedgerCode) -> u128 {
        u128::from(ledger.to_u64()) << 64
    }

    /// The transfer that funds player `k` (fixed, so a rerun funds nobody twice).
    pub fn funding_id(&self, k: usize) -> u128 {
        Self::high(self.ledger) | (1 + k as u128)
    }

    /// The transfer id of operation `sequence` of run `run` (non-zero): above every funding id.
    pub fn operation_id(&self, run: u32, sequence: u32) -> u128 {
        Self::high(self.ledger) | (u128::from(run) << 32) | u128::from(sequence)
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The ledger refused it (e.g. `exceeds_credits`): certainly not applied.
    Rejected(String),
    /// Certainly not applied: a 4xx, or the request never sent.
    Fail(String),
    /// Maybe applied: a timeout, a lost connection, a 5xx (503 included).
    Info(String),
}

/// One client's connection to one server, reopened after any failure (an answer may still be
/// on its way on the old one).
pub struct Session {
    pub addr: SocketAddr,
    connection: Option<HttpConnection>,
    timeout: Duration,
    /// Sent with every request (`Authorization: Bearer`).
    key: Option<OperatorKey>,
}

/// A player's posted debits and credits: they only grow.
type Posted = (u64, u64);

impl Session {
    pub fn new(addr: SocketAddr, timeout: Duration, key: Option<OperatorKey>) -> Self {
        Session {
            addr,
            connection: None,
            timeout,
            key,
        }
    }

    /// The open connection (opened if need be) and the key to send on it.
    async fn connection(&mut self) -> anyhow::Result<(&mut HttpConnection, Option<&str>)> {
        if self.connection.is_none() {
            let opened = client::within(self.timeout, HttpConnection::open(self.addr)).await?;
            self.connection = Some(opened);
        }
        let connection = self.connection.as_mut().expect("opened above");
        Ok((connection, self.key.as_ref().map(OperatorKey::expose)))
    }

    /// A refusal of our credentials, as the final error it is; Ok for any other answer.
    fn check_credentials(&self, answer: &Answer) -> anyhow::Result<()> {
        match CredentialsRefused::from_status(answer.status, self.key.is_some()) {
            Some(refused) => Err(refused.into()),
            None => Ok(()),
        }
    }

    /// Sends `request` on the connection; any failure closes it.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        let timeout = self.timeout;
        let (connection, key) = self.connection().await?;
        let request = connection.request_json_as(method, path, body, key);
        let answer = client::within(timeout, request).await;
        if answer.is_err() {
            self.connection = None;
        }
        answer
    }

    pub async fn transfer(&mut self, transfer: &Transfer, ledger: LedgerCode) -> Outcome {
        if let Err(error) = self.connection().await {
            return Outcome::Fail(format!("not sent: {error:#}"));
        }
        let body = client::transfers_json(&[NewTransfer {
            id: transfer.id,
            debit_account_id: transfer.from,
            credit_account_id: transfer.to,
            amount: transfer.amount,
            ledger,
            flags: TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
        }]);
        let answer = match self.call("POST", "/v1/transfers", Some(&body)).await {
            Ok(answer) => answer,
            Err(error) => return Outcome::Info(format!("{error:#}")),
        };
        match (
            answer.status,
            client::json_result_codes(&answer.body).as_slice(),
        ) {
            // `exists`: an earlier attempt of this very transfer (a forwarded retry) applied it.
            (200, ["ok" | "exists"]) => Outcome::Ok,
            (200, [code]) => Outcome::Rejected((*code).to_owned()),
            (200, _) => Outcome::Info("unexpected answer to a transfer".into()),
            (status, _) if status >= 500 => Outcome::Info(http_error(&answer)),
            _ => Outcome::Fail(http_error(&answer)),
        }
    }

    /// A snapshot of every player's balance (see the module comment), or why there is none.
    pub async fn read_balances(&mut self, players: &[u128]) -> anyhow::Result<BTreeMap<u128, i64>> {
        let mut previous = self.collect(players).await?;
        for _ in 1..COLLECTS_MAX {
            let next = self.collect(players).await?;
            if next == previous {
                return players
                    .iter()
                    .zip(&next)
                    .map(|(&player, &(debits, credits))| {
                        let balance = i128::from(credits) - i128::from(debits);
                        let balance = i64::try_from(balance).with_context(|| {
                            format!("account {player}: balance {balance} out of range")
                        })?;
                        Ok((player, balance))
                    })
                    .collect();
            }
            previous = next;
        }
        bail!("no stable snapshot: balances changed between each of {COLLECTS_MAX} collects")
    }

    /// Every player's posted debits and credits, looked up with pipelined requests.
    async fn collect(&mut self, players: &[u128]) -> anyhow::Result<Vec<Posted>> {
        let paths: Vec<String> = players
            .iter()
            .map(|id| format!("/v1/accounts/{id}"))
            .collect();
        let timeout = self.timeout;
        let (connection, key) = self.connection().await?;
        let answers = client::within(timeout, connection.get_pipelined(&paths, key)).await;
        let answers = answers.inspect_err(|_| self.connection = None)?;
        players
            .iter()
            .zip(&answers)
            .map(|(player, answer)| {
                self.check_credentials(answer)?;
                if answer.status != 200 {
                    // No account id in the message: the run's summary groups reads by it.
                    bail!("an account lookup answered {}", http_error(answer));
                }
                let account: Value = serde_json::from_slice(&answer.body)
                    .with_context(|| format!("account {player}: the answer is not JSON"))?;
                let posted = |field: &str| {
                    account[field]
                        .as_u64()
                        .with_context(|| format!("account {player}: no integer {field}"))
                };
                Ok((posted("debits_posted")?, posted("credits_posted")?))
            })
            .collect()
    }

    /// Creates the clearing and player accounts and funds each player; safe to repeat. True
    /// when the player accounts existed already (an earlier run on this ledger).
    pub async fn set_up(&mut self, layout: &BankLayout) -> anyhow::Result<bool> {
        let account = |id, kind| NewAccount {
            id,
            ledger: layout.ledger,
            kind,
            flags: AccountFlags::empty(),
        };
        let mut accounts = vec![account(layout.clearing, AccountKind::Clearing)];
        accounts.extend(
            layout
                .players
                .iter()
                .map(|&id| account(id, AccountKind::Player)),
        );
        let codes = self
            .create(
                "/v1/accounts",
                &client::accounts_json(&accounts),
                accounts.len(),
            )
            .await
            .context("creating the bank's accounts")?;
        let existed = codes[1..].iter().all(|code| code == "exists");
        let funding: Vec<NewTransfer> = (0..layout.players.len())
            .map(|k| NewTransfer {
                id: layout.funding_id(k),
                debit_account_id: layout.clearing,
                credit_account_id: layout.players[k],
                amount: layout.balance,
                ledger: layout.ledger,
                flags: TransferFlags::empty(),
                pending_id: 0,
                timeout_s: 0,
            })
            .collect();
        self.create(
            "/v1/transfers",
            &client::transfers_json(&funding),
            funding.len(),
        )
        .await
        .context(
            "funding the players (a different --balance than an earlier run on this \
                 ledger? use another --ledger)",
        )?;
        Ok(existed)
    }

    /// POSTs a batch whose every item must answer `ok` or `exists`; returns the codes.
    async fn create(
        &mut self,
        path: &str,
        body: &[u8],
        items: usize,
    ) -> anyhow::Result<Vec<String>> {
        let answer = self.call("POST", path, Some(body)).await?;
        self.check_credentials(&answer)?;
        if answer.status != 200 {
            bail!("{}", http_error(&answer));
        }
        let codes: Vec<String> = client::json_result_codes(&answer.body)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if codes.len() != items {
            bail!("{} results for {items} items", codes.len());
        }
        if let Some(bad) = codes.iter().find(|code| *code != "ok" && *code != "exists") {
            bail!("an item was refused: {bad}");
        }
        Ok(codes)
    }

    /// Every transfer the account's history lists, all pages.
    pub async fn account_transfers(&mut self, account: u128) -> anyhow::Result<Vec<Listed>> {
        let mut listed = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/accounts/{account}/transfers?limit={HISTORY_PAGE}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let answer = self.call("GET", &path, None).await?;
            self.check_credentials(&answer)?;
            if answer.status != 200 {
                bail!(
                    "listing the transfers of account {account}: {}",
                    http_error(&answer)
                );
            }
            let page: Vec<Value> = serde_json::from_slice(&answer.body).with_context(|| {
                format!("account {account}: the transfer list is not a JSON array")
            })?;
            for item in &page {
                listed.push(listed_transfer(account, item)?);
            }
            match answer.next_cursor {
                Some(next) if page.is_empty() || cursor.as_ref() == Some(&next) => {
                    bail!("account {account}: the transfer list does not advance at cursor {next}")
                }
                Some(next) => cursor = Some(next),
                None => return Ok(listed),
            }
        }
    }
}

fn listed_transfer(account: u128, item: &Value) -> anyhow::Result<Listed> {
    let id = |field: &str| {
        item[field]
            .as_str()
            .and_then(|text| text.parse::<u128>().ok())
            .with_context(|| format!("account {account}: a listed transfer has no {field}: {item}"))
    };
    Ok(Listed {
        account,
        id: id("id")?,
        debit: id("debit_account_id")?,
        credit: id("credit_account_id")?,
        amount: item["amount"].as_u64().with_context(|| {
            format!("account {account}: a listed transfer has no amount: {item}")
        })?,
    })
}

/// `http 503 overloaded` from an answer's status and `{"error"}` code.
fn http_error(answer: &Answer) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let code = parsed
        .as_ref()
        .and_then(|body| body.get("error"))
        .and_then(Value::as_str);
    match code {
        Some(code) => format!("http {} {code}", answer.status),
        None => format!("http {}", answer.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_ids_carry_the_ledger_and_never_collide() {
        let layout = BankLayout::new(LedgerCode::parse("BANK").unwrap(), 3, 100);
        let high = u128::from(u64::from_be_bytes(*b"BANK\0\0\0\0")) << 64;
        assert_eq!(layout.clearing, high | 1);
        assert_eq!(layout.players, vec![high | 2, high | 3, high | 4]);
        assert_eq!(layout.funding_id(2), high | 3);
        assert!(layout.operation_id(1, 0) > layout.funding_id(super::super::ACCOUNTS_MAX));
        assert!(!croupier_core::ids::is_reserved_id(
            layout.operation_id(u32::MAX, u32::MAX)
        ));
        let other = BankLayout::new(LedgerCode::parse("BANK2").unwrap(), 3, 100);
        assert_ne!(other.players[0], layout.players[0]);
    }
}
