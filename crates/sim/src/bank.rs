//! The bank workload and its checker, Jepsen style: clients move money between a fixed set of
//! accounts and read every balance while faults are injected. The history is kept in Jepsen's
//! form (process, type invoke/ok/fail/info, f, value, time). The checks: every read sums to the
//! total and shows no negative balance; at the end every replica holds the same balances, every
//! acknowledged transfer is there once, no refused one is, and the balances are exactly the
//! transfers present (an operation of unknown outcome counts at most once).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use croupier_cluster::{Consensus, Node, ProposeError};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateAccountResult, CreateTransferResult,
    LedgerCode, NewAccount, NewTransfer, TransferFlags,
};
use rand_09::rngs::SmallRng;
use rand_09::{Rng, SeedableRng};
use serde_json::json;

use crate::cluster::Nodes;

/// The accounts money moves between; each starts with `INITIAL_BALANCE`.
pub const ACCOUNTS: u128 = 5;
pub const INITIAL_BALANCE: u128 = 1_000;
/// Funds the accounts at the start (allowed to go negative).
const SOURCE_ACCOUNT: u128 = 1_000;
const FUNDING_FIRST_ID: u128 = 1;
const CLIENT_TRANSFER_ID_BASE: u128 = 1_000_000;
/// A client waits between operations (simulated ms).
const THINK_MS_MIN: u64 = 10;
const THINK_MS_MAX: u64 = 150;
/// How long a client waits for one operation before its outcome counts as unknown.
const OPERATION_TIMEOUT_MS: u64 = 3_000;

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").expect("a valid code")
}

/// One history line: an operation's invocation or completion.
#[derive(Debug, Clone)]
pub struct Event {
    pub process: u64,
    pub kind: &'static str,
    pub f: &'static str,
    pub value: serde_json::Value,
    pub time_ns: u64,
}

impl Event {
    pub fn to_json(&self) -> serde_json::Value {
        json!({"process": self.process, "type": self.kind, "f": self.f,
               "value": self.value, "time": self.time_ns})
    }
}

/// What a transfer's outcome was, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Unknown,
}

/// What the clients did: the history and each transfer sent with its outcome.
#[derive(Default)]
pub struct Record {
    pub history: Vec<Event>,
    pub transfers: BTreeMap<u128, (NewTransfer, Outcome)>,
    pub violations: Vec<String>,
}

pub type SharedRecord = Arc<Mutex<Record>>;

fn lock(record: &SharedRecord) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ns() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_nanos() as u64)
}

pub fn setup_commands() -> Vec<Command> {
    let mut accounts: Vec<NewAccount> = (1..=ACCOUNTS)
        .map(|id| NewAccount {
            id,
            ledger: eur(),
            kind: AccountKind::System,
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        })
        .collect();
    accounts.push(NewAccount {
        id: SOURCE_ACCOUNT,
        ledger: eur(),
        kind: AccountKind::System,
        flags: AccountFlags::empty(),
    });
    let funding = (1..=ACCOUNTS)
        .map(|id| {
            transfer(
                FUNDING_FIRST_ID + id,
                SOURCE_ACCOUNT,
                id,
                INITIAL_BALANCE as u64,
            )
        })
        .collect();
    vec![
        Command::CreateAccounts(accounts),
        Command::CreateTransfers(funding),
    ]
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

/// Creates and funds the accounts, retrying on any node until it is done.
pub async fn set_up(nodes: &Nodes) {
    loop {
        for node in nodes.live().values() {
            let answer = within(propose(node, setup_commands())).await;
            if let Some(Ok(results)) = answer {
                let accounts_done = matches!(&results[0], CommandResult::Accounts(r)
                    if r.iter().all(|r| matches!(r, CreateAccountResult::Ok | CreateAccountResult::Exists)));
                let funded = matches!(&results[1], CommandResult::Transfers(r)
                    if r.iter().all(|r| matches!(r, CreateTransferResult::Ok | CreateTransferResult::Exists)));
                assert!(
                    accounts_done && funded,
                    "the setup was refused: {results:?}"
                );
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Proposes on the node's own simulated host (where its clock is), as a request handler would.
async fn propose(node: &Node, commands: Vec<Command>) -> Result<Vec<CommandResult>, ProposeError> {
    let on_host = node.clone();
    node.spawn_on_host(async move { on_host.propose(commands).await })
        .await
        .unwrap_or(Err(ProposeError::ShuttingDown))
}

async fn within<T>(call: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_millis(OPERATION_TIMEOUT_MS), call)
        .await
        .ok()
}

/// One client process: `operations` transfers and reads against random live nodes.
pub async fn client(nodes: Nodes, record: SharedRecord, process: u64, operations: u64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for op in 0..operations {
        // Think time: spreads the operations over the fault schedule.
        tokio::time::sleep(Duration::from_millis(
            rng.random_range(THINK_MS_MIN..=THINK_MS_MAX),
        ))
        .await;
        let live = nodes.live();
        if live.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let node = live
            .values()
            .nth(rng.random_range(0..live.len()))
            .expect("in range");
        if rng.random_bool(0.8) {
            let from = rng.random_range(1..=ACCOUNTS);
            let to = (from + rng.random_range(1..ACCOUNTS) - 1) % ACCOUNTS + 1;
            let amount = rng.random_range(1..=200u64);
            let id = CLIENT_TRANSFER_ID_BASE + u128::from(process) * 1_000_000 + u128::from(op);
            send_transfer(node, &record, process, transfer(id, from, to, amount)).await;
        } else {
            read_balances(node, &record, process).await;
        }
    }
}

async fn send_transfer(node: &Node, record: &SharedRecord, process: u64, sent: NewTransfer) {
    let value = json!({"id": sent.id.to_string(), "from": sent.debit_account_id as u64,
                       "to": sent.credit_account_id as u64, "amount": sent.amount});
    log(record, process, "invoke", "transfer", value.clone());
    let answer = within(propose(
        node,
        vec![Command::CreateTransfers(vec![sent.clone()])],
    ))
    .await;
    let outcome = match answer {
        Some(Ok(results)) => match results.as_slice() {
            // `exists`: this id is already applied (a retried or duplicated request).
            [CommandResult::Transfers(r)]
                if matches!(
                    r[0],
                    CreateTransferResult::Ok | CreateTransferResult::Exists
                ) =>
            {
                Outcome::Ok
            }
            // Refused by the ledger (not enough funds): a definite outcome, nothing applied.
            [CommandResult::Transfers(_)] => Outcome::Fail,
            other => panic!("a transfer answered {other:?}"),
        },
        // Refused before it reached the log.
        Some(Err(ProposeError::NotLeader { .. } | ProposeError::NoLeader))
        | Some(Err(ProposeError::ClockUnsynchronized(_)))
        | Some(Err(ProposeError::StorageUnavailable(_))) => Outcome::Fail,
        Some(Err(_)) | None => Outcome::Unknown,
    };
    let kind = match outcome {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Unknown => "info",
    };
    log(record, process, kind, "transfer", value);
    lock(record).transfers.insert(sent.id, (sent, outcome));
}

/// Every account's balance (credits minus debits, posted).
pub async fn balances(node: &Node, stale: bool) -> Result<BTreeMap<u128, i128>, ProposeError> {
    let read = |view: &croupier_cluster::LedgerView<'_>| {
        (1..=ACCOUNTS)
            .chain([SOURCE_ACCOUNT])
            .filter_map(|id| {
                let a = view.account(id)?;
                Some((id, a.credits_posted as i128 - a.debits_posted as i128))
            })
            .collect::<BTreeMap<u128, i128>>()
    };
    let on_host = node.clone();
    node.spawn_on_host(async move {
        match stale {
            true => on_host.read_stale(read).await,
            false => on_host.read(read).await,
        }
    })
    .await
    .unwrap_or(Err(ProposeError::ShuttingDown))
}

async fn read_balances(node: &Node, record: &SharedRecord, process: u64) {
    log(record, process, "invoke", "read", serde_json::Value::Null);
    match within(balances(node, false)).await {
        Some(Ok(balances)) => {
            check_read(record, &balances);
            let value = json!(balances
                .iter()
                .map(|(id, b)| (id.to_string(), *b as i64))
                .collect::<BTreeMap<_, _>>());
            log(record, process, "ok", "read", value);
        }
        Some(Err(_)) | None => log(record, process, "fail", "read", serde_json::Value::Null),
    }
}

fn check_read(record: &SharedRecord, balances: &BTreeMap<u128, i128>) {
    let clients: Vec<i128> = (1..=ACCOUNTS)
        .filter_map(|id| balances.get(&id).copied())
        .collect();
    if clients.is_empty() {
        return; // before the setup applied
    }
    let total: i128 = clients.iter().sum();
    let expected = (ACCOUNTS * INITIAL_BALANCE) as i128;
    let mut record = lock(record);
    if clients.len() as u128 == ACCOUNTS && total != expected {
        record.violations.push(format!(
            "a read summed to {total}, not {expected}: {balances:?}"
        ));
    }
    if clients.iter().any(|b| *b < 0) {
        record
            .violations
            .push(format!("a read showed a negative balance: {balances:?}"));
    }
}

fn log(
    record: &SharedRecord,
    process: u64,
    kind: &'static str,
    f: &'static str,
    value: serde_json::Value,
) {
    lock(record).history.push(Event {
        process,
        kind,
        f,
        value,
        time_ns: now_ns(),
    });
}

/// The final checks on every replica (after the faults stopped and every node caught up).
pub async fn check_final(nodes: &Nodes, record: &SharedRecord) -> Vec<String> {
    let mut violations = lock(record).violations.clone();
    let mut states = Vec::new();
    for (id, node) in nodes.live() {
        match balances(&node, true).await {
            Ok(balances) => states.push((id, balances)),
            Err(error) => violations.push(format!("node {id} cannot be read: {error}")),
        }
    }
    if let Some((first_id, first)) = states.first() {
        for (id, state) in &states[1..] {
            if state != first {
                violations.push(format!(
                    "node {id} holds {state:?}, node {first_id} {first:?}"
                ));
            }
        }
        if let Some(node) = nodes.get(*first_id) {
            violations.extend(check_transfers(&node, record, first).await);
        }
    }
    violations
}

/// Every acknowledged transfer present once with its fields, no refused one present, and the
/// balances exactly the funding plus the transfers present.
async fn check_transfers(
    node: &Node,
    record: &SharedRecord,
    balances: &BTreeMap<u128, i128>,
) -> Vec<String> {
    let sent: Vec<(NewTransfer, Outcome)> = lock(record).transfers.values().cloned().collect();
    let ids: Vec<u128> = sent.iter().map(|(t, _)| t.id).collect();
    let on_host = node.clone();
    let present = node
        .spawn_on_host(async move {
            on_host
                .read_stale(move |view| {
                    ids.iter()
                        .map(|id| {
                            view.transfer(*id).map(|t| {
                                t.map(|t| (t.debit_account_id, t.credit_account_id, t.amount))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .await
        })
        .await
        .unwrap_or(Err(ProposeError::ShuttingDown));
    match present {
        Ok(Ok(present)) => violations_in(&sent, &present, balances),
        other => vec![format!("history cannot be read: {other:?}")],
    }
}

/// What a stored transfer holds: debit account, credit account, amount.
pub type Stored = Option<(u128, u128, u64)>;

/// The final state against what the clients saw: `present[i]` is what history holds for
/// `sent[i]`, `balances` the accounts' balances.
pub fn violations_in(
    sent: &[(NewTransfer, Outcome)],
    present: &[Stored],
    balances: &BTreeMap<u128, i128>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut expected: BTreeMap<u128, i128> = (1..=ACCOUNTS)
        .map(|id| (id, INITIAL_BALANCE as i128))
        .collect();
    for ((sent, outcome), stored) in sent.iter().zip(present) {
        match (outcome, stored) {
            (Outcome::Ok, None) => {
                violations.push(format!("acknowledged transfer {} is missing", sent.id))
            }
            (Outcome::Fail, Some(_)) => {
                violations.push(format!("refused transfer {} is present", sent.id))
            }
            _ => {}
        }
        if let Some((debit, credit, amount)) = *stored {
            if (debit, credit, amount)
                != (sent.debit_account_id, sent.credit_account_id, sent.amount)
            {
                violations.push(format!("transfer {} is stored with other fields", sent.id));
            }
            *expected.entry(debit).or_default() -= i128::from(amount);
            *expected.entry(credit).or_default() += i128::from(amount);
        }
    }
    for (id, want) in expected {
        if balances.get(&id).copied() != Some(want) {
            violations.push(format!(
                "account {id} holds {:?}, its transfers make {want}",
                balances.get(&id)
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(
        id: u128,
        from: u128,
        to: u128,
        amount: u64,
        outcome: Outcome,
    ) -> (NewTransfer, Outcome) {
        (transfer(id, from, to, amount), outcome)
    }

    fn funded() -> BTreeMap<u128, i128> {
        (1..=ACCOUNTS)
            .map(|id| (id, INITIAL_BALANCE as i128))
            .collect()
    }

    #[test]
    fn the_checker_accepts_balances_made_of_the_transfers_present() {
        let sent = [
            sent(10, 1, 2, 30, Outcome::Ok),
            sent(11, 2, 3, 5, Outcome::Unknown),
            sent(12, 3, 4, 7, Outcome::Fail),
        ];
        let present = [Some((1, 2, 30)), None, None];
        let mut balances = funded();
        *balances.get_mut(&1).unwrap() -= 30;
        *balances.get_mut(&2).unwrap() += 30;
        assert_eq!(
            violations_in(&sent, &present, &balances),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_checker_finds_lost_refused_altered_and_unaccounted_transfers() {
        let sent = [
            sent(10, 1, 2, 30, Outcome::Ok),
            sent(11, 2, 3, 5, Outcome::Fail),
            sent(12, 3, 4, 7, Outcome::Unknown),
        ];
        // 10 lost, 11 present although refused, 12 stored with another amount.
        let present = [None, Some((2, 3, 5)), Some((3, 4, 8))];
        let violations = violations_in(&sent, &present, &funded());
        let text = violations.join("\n");
        assert!(
            text.contains("acknowledged transfer 10 is missing"),
            "{text}"
        );
        assert!(text.contains("refused transfer 11 is present"), "{text}");
        assert!(
            text.contains("transfer 12 is stored with other fields"),
            "{text}"
        );
        // The balances were not moved by 11 and 12: they do not add up either.
        assert!(text.contains("account 2 holds"), "{text}");
    }
}
