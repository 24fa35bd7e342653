//! The bank checker, a pure function of the history and (optionally) the final state read from
//! the server afterwards. What it demands:
//!
//! - every `ok` read covers every bank account, sums to the total and has no negative balance
//!   (money is neither created nor destroyed, and players never overdraw);
//! - in the final state, every `ok` transfer is listed exactly once under each of its two
//!   accounts, an `info` transfer at most once, a `fail` transfer not at all, and no transfer
//!   between bank accounts is listed that was never invoked, each with the accounts and amount
//!   it was invoked with;
//! - final balances sum to the total, none is negative, and each equals what its account's
//!   listed transfers add up to.
//!
//! Transfers from or to other accounts (the funding ones from the clearing account) are only
//! part of the last check.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use super::history::{Op, OpType, OpValue, Transfer};

/// An invocation and how it ended (`Info` when the history stops before it ended).
#[derive(Debug, Clone)]
pub struct Completed {
    pub invoke: Op,
    pub outcome: OpType,
    /// The completion's value (a read's balances) and error, when it has a completion line.
    pub completion: Option<Op>,
}

/// A transfer as an account's history on the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The account whose history listed it.
    pub account: u128,
    pub id: u128,
    pub debit: u128,
    pub credit: u128,
    pub amount: u64,
}

/// What the server holds after the run, for the bank accounts.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    pub balances: BTreeMap<u128, i64>,
    pub listed: Vec<Listed>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// (f, outcome) → operations.
    pub counts: BTreeMap<(&'static str, &'static str), u64>,
    pub accounts: usize,
}

/// Pairs each invocation with the completion of the same process. A process has at most one
/// operation open; a completion must match its invocation's `f`.
pub fn pair(ops: &[Op]) -> anyhow::Result<Vec<Completed>> {
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut completed: Vec<Completed> = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let at = || format!("operation {} (process {})", index + 1, op.process);
        if op.kind == OpType::Invoke {
            if open.contains_key(&op.process) {
                bail!(
                    "{}: invoked while its previous operation is still open",
                    at()
                );
            }
            open.insert(op.process, completed.len());
            completed.push(Completed {
                invoke: op.clone(),
                outcome: OpType::Info,
                completion: None,
            });
            continue;
        }
        let Some(slot) = open.remove(&op.process) else {
            bail!("{}: a {} without an invocation", at(), op.kind.name());
        };
        let entry = &mut completed[slot];
        if entry.invoke.f() != op.f() {
            bail!("{}: {} completes a {}", at(), op.f(), entry.invoke.f());
        }
        entry.outcome = op.kind;
        entry.completion = Some(op.clone());
    }
    Ok(completed)
}

/// The bank's accounts: every account a transfer was invoked on or an `ok` read returned.
pub fn accounts(history: &[Completed]) -> BTreeSet<u128> {
    let mut accounts = BTreeSet::new();
    for entry in history {
        match (&entry.invoke.value, read_balances(entry)) {
            (OpValue::Transfer(t), _) => {
                accounts.insert(t.from);
                accounts.insert(t.to);
            }
            (_, Some(balances)) => accounts.extend(balances.keys()),
            _ => {}
        }
    }
    accounts
}

fn read_balances(entry: &Completed) -> Option<&BTreeMap<u128, i64>> {
    match (entry.outcome, &entry.completion) {
        (
            OpType::Ok,
            Some(Op {
                value: OpValue::Read(Some(balances)),
                ..
            }),
        ) => Some(balances),
        _ => None,
    }
}

pub fn check(history: &[Completed], total: i64, final_state: Option<&FinalState>) -> Report {
    let accounts = accounts(history);
    let mut report = Report {
        accounts: accounts.len(),
        ..Report::default()
    };
    for entry in history {
        *report
            .counts
            .entry((entry.invoke.f(), entry.outcome.name()))
            .or_default() += 1;
    }
    check_reads(history, &accounts, total, &mut report.violations);
    if let Some(state) = final_state {
        check_final_balances(state, &accounts, total, &mut report.violations);
        check_listed_transfers(history, state, &accounts, &mut report.violations);
        check_balances_match_transfers(state, &mut report.violations);
    }
    report
}

fn check_reads(
    history: &[Completed],
    accounts: &BTreeSet<u128>,
    total: i64,
    out: &mut Vec<String>,
) {
    for entry in history {
        let Some(balances) = read_balances(entry) else {
            continue;
        };
        let at = format!(
            "read by process {} at {:.3} s",
            entry.invoke.process,
            entry.invoke.time as f64 / 1e9
        );
        let read: BTreeSet<u128> = balances.keys().copied().collect();
        if &read != accounts {
            let missing: Vec<_> = accounts.difference(&read).collect();
            out.push(format!("{at}: accounts {missing:?} missing from the read"));
        }
        let sum: i128 = balances.values().map(|&b| i128::from(b)).sum();
        if sum != i128::from(total) {
            out.push(format!("{at}: balances sum to {sum}, expected {total}"));
        }
        for (account, balance) in balances.iter().filter(|(_, &b)| b < 0) {
            out.push(format!(
                "{at}: account {account} has a negative balance ({balance})"
            ));
        }
    }
}

fn check_final_balances(
    state: &FinalState,
    accounts: &BTreeSet<u128>,
    total: i64,
    out: &mut Vec<String>,
) {
    for account in accounts.iter().filter(|a| !state.balances.contains_key(a)) {
        out.push(format!("final state: account {account} is missing"));
    }
    let sum: i128 = state.balances.values().map(|&b| i128::from(b)).sum();
    if sum != i128::from(total) {
        out.push(format!("final balances sum to {sum}, expected {total}"));
    }
    for (account, balance) in state.balances.iter().filter(|(_, &b)| b < 0) {
        out.push(format!(
            "final balance of account {account} is negative ({balance})"
        ));
    }
}

/// Each transfer's listings, and whether each matches the history's outcome for it.
fn check_listed_transfers(
    history: &[Completed],
    state: &FinalState,
    accounts: &BTreeSet<u128>,
    out: &mut Vec<String>,
) {
    let mut invoked: BTreeMap<u128, (&Transfer, &Completed)> = BTreeMap::new();
    for entry in history {
        if let OpValue::Transfer(transfer) = &entry.invoke.value {
            invoked.insert(transfer.id, (transfer, entry));
        }
    }
    let mut listings: BTreeMap<u128, Vec<&Listed>> = BTreeMap::new();
    for listed in &state.listed {
        listings.entry(listed.id).or_default().push(listed);
    }
    for (id, listed) in &listings {
        let first = listed[0];
        let between_bank_accounts =
            accounts.contains(&first.debit) && accounts.contains(&first.credit);
        match invoked.get(id) {
            Some((transfer, entry)) => check_invoked(transfer, entry, listed, out),
            None if between_bank_accounts => out.push(format!(
                "transfer {id} ({} -> {}, {}) is in the final state but was never invoked \
                 (an earlier run on the same ledger and server?)",
                first.debit, first.credit, first.amount
            )),
            None => {}
        }
        check_listing_places(*id, listed, accounts, out);
    }
    for (id, (_, entry)) in &invoked {
        if entry.outcome == OpType::Ok && !listings.contains_key(id) {
            out.push(format!(
                "transfer {id} answered ok but is not in the final state (lost)"
            ));
        }
    }
}

fn check_invoked(
    transfer: &Transfer,
    entry: &Completed,
    listed: &[&Listed],
    out: &mut Vec<String>,
) {
    let id = transfer.id;
    if entry.outcome == OpType::Fail {
        let error = entry
            .completion
            .as_ref()
            .and_then(|op| op.error.as_deref())
            .unwrap_or("no reason given");
        out.push(format!(
            "transfer {id} failed ({error}) but is in the final state"
        ));
    }
    let first = listed[0];
    if (first.debit, first.credit, first.amount) != (transfer.from, transfer.to, transfer.amount) {
        out.push(format!(
            "transfer {id} is {} -> {}, {} in the final state but was invoked as {} -> {}, {}",
            first.debit, first.credit, first.amount, transfer.from, transfer.to, transfer.amount
        ));
    }
}

/// A transfer must be listed once under its debit account and once under its credit account
/// (those of them that are bank accounts, whose histories were read), and nowhere else.
fn check_listing_places(
    id: u128,
    listed: &[&Listed],
    accounts: &BTreeSet<u128>,
    out: &mut Vec<String>,
) {
    let (debit, credit) = (listed[0].debit, listed[0].credit);
    let mut per_account: BTreeMap<u128, usize> = BTreeMap::new();
    for listing in listed {
        *per_account.entry(listing.account).or_default() += 1;
    }
    for (account, count) in &per_account {
        if *account != debit && *account != credit {
            out.push(format!(
                "transfer {id} is listed under account {account}, which it does not touch"
            ));
        } else if *count > 1 {
            out.push(format!(
                "transfer {id} is listed {count} times under account {account} (duplicated)"
            ));
        }
    }
    for (side, account) in [("debit", debit), ("credit", credit)] {
        if accounts.contains(&account) && !per_account.contains_key(&account) {
            out.push(format!(
                "transfer {id} is missing from the history of its {side} account {account}"
            ));
        }
    }
}

/// Each account's balance must be what its listed transfers add up to.
fn check_balances_match_transfers(state: &FinalState, out: &mut Vec<String>) {
    let mut sums: BTreeMap<u128, i128> = BTreeMap::new();
    for listed in &state.listed {
        let amount = i128::from(listed.amount);
        let sum = sums.entry(listed.account).or_default();
        if listed.account == listed.credit {
            *sum += amount;
        }
        if listed.account == listed.debit {
            *sum -= amount;
        }
    }
    for (account, &balance) in &state.balances {
        let sum = sums.get(account).copied().unwrap_or(0);
        if sum != i128::from(balance) {
            out.push(format!(
                "account {account} has balance {balance} but its listed transfers add up to {sum}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTAL: i64 = 200;
    const CLEARING: u128 = 9;

    fn op(process: u64, kind: OpType, value: OpValue, error: Option<&str>) -> Op {
        Op {
            process,
            kind,
            value,
            time: 0,
            error: error.map(str::to_owned),
        }
    }

    fn transfer(id: u128, from: u128, to: u128, amount: u64) -> OpValue {
        OpValue::Transfer(Transfer {
            id,
            from,
            to,
            amount,
        })
    }

    fn read(balances: &[(u128, i64)]) -> OpValue {
        OpValue::Read(Some(balances.iter().copied().collect()))
    }

    /// An invocation and its completion by `process`.
    fn done(process: u64, kind: OpType, invoked: OpValue, value: OpValue) -> [Op; 2] {
        let error = (kind != OpType::Ok).then_some("exceeds_credits");
        [
            op(process, OpType::Invoke, invoked, None),
            op(process, kind, value, error),
        ]
    }

    /// Reads 100/100, moves 30 from 1 to 2 (ok), fails to move 500 from 2 to 1, reads 70/130.
    fn valid_history() -> Vec<Op> {
        let t10 = || transfer(10, 1, 2, 30);
        let t11 = || transfer(11, 2, 1, 500);
        [
            done(
                0,
                OpType::Ok,
                OpValue::Read(None),
                read(&[(1, 100), (2, 100)]),
            ),
            done(1, OpType::Ok, t10(), t10()),
            done(2, OpType::Fail, t11(), t11()),
            done(
                0,
                OpType::Ok,
                OpValue::Read(None),
                read(&[(1, 70), (2, 130)]),
            ),
        ]
        .concat()
    }

    fn listed(account: u128, id: u128, debit: u128, credit: u128, amount: u64) -> Listed {
        Listed {
            account,
            id,
            debit,
            credit,
            amount,
        }
    }

    /// Funding of 100 each from the clearing account, then transfer 10 under both accounts.
    fn valid_final_state() -> FinalState {
        FinalState {
            balances: BTreeMap::from([(1, 70), (2, 130)]),
            listed: vec![
                listed(1, 1, CLEARING, 1, 100),
                listed(2, 2, CLEARING, 2, 100),
                listed(1, 10, 1, 2, 30),
                listed(2, 10, 1, 2, 30),
            ],
        }
    }

    fn violations(ops: &[Op], state: Option<&FinalState>) -> Vec<String> {
        check(&pair(ops).unwrap(), TOTAL, state).violations
    }

    fn assert_one_violation(found: Vec<String>, expected: &str) {
        assert!(
            found.len() == 1 && found[0].contains(expected),
            "expected one violation containing {expected:?}, found {found:#?}"
        );
    }

    #[test]
    fn valid_history_and_final_state_pass() {
        let history = pair(&valid_history()).unwrap();
        let report = check(&history, TOTAL, Some(&valid_final_state()));
        assert_eq!(report.violations, Vec::<String>::new());
        assert_eq!(report.accounts, 2);
        assert_eq!(report.counts[&("read", "ok")], 2);
        assert_eq!(report.counts[&("transfer", "fail")], 1);
    }

    #[test]
    fn read_with_the_wrong_total_is_a_violation() {
        let mut ops = valid_history();
        ops[7].value = read(&[(1, 70), (2, 100)]);
        assert_one_violation(violations(&ops, None), "balances sum to 170, expected 200");
    }

    #[test]
    fn read_with_a_negative_balance_is_a_violation() {
        let mut ops = valid_history();
        ops[7].value = read(&[(1, -10), (2, 210)]);
        assert_one_violation(
            violations(&ops, None),
            "account 1 has a negative balance (-10)",
        );
    }

    #[test]
    fn read_missing_an_account_is_a_violation() {
        let mut ops = valid_history();
        ops[7].value = read(&[(2, 200)]);
        assert_one_violation(violations(&ops, None), "accounts [1] missing from the read");
    }

    #[test]
    fn ok_transfer_missing_from_the_final_state_is_lost() {
        let mut state = valid_final_state();
        state.listed.retain(|l| l.id != 10);
        state.balances = BTreeMap::from([(1, 100), (2, 100)]);
        assert_one_violation(violations(&valid_history(), Some(&state)), "(lost)");
    }

    #[test]
    fn transfer_listed_twice_under_an_account_is_duplicated() {
        let mut state = valid_final_state();
        state.listed.push(listed(1, 10, 1, 2, 30));
        let found = violations(&valid_history(), Some(&state));
        assert!(
            found
                .iter()
                .any(|v| v.contains("listed 2 times under account 1 (duplicated)")),
            "{found:#?}"
        );
    }

    #[test]
    fn info_transfer_present_once_or_absent_is_valid() {
        let t12 = || transfer(12, 1, 2, 5);
        let mut ops = valid_history();
        ops.extend(done(5, OpType::Info, t12(), t12()));
        assert_eq!(
            violations(&ops, Some(&valid_final_state())),
            Vec::<String>::new()
        );
        let mut state = valid_final_state();
        state.listed.push(listed(1, 12, 1, 2, 5));
        state.listed.push(listed(2, 12, 1, 2, 5));
        state.balances = BTreeMap::from([(1, 65), (2, 135)]);
        assert_eq!(violations(&ops, Some(&state)), Vec::<String>::new());
    }

    #[test]
    fn fail_transfer_present_in_the_final_state_is_a_violation() {
        let mut state = valid_final_state();
        state.listed.push(listed(1, 11, 2, 1, 500));
        state.listed.push(listed(2, 11, 2, 1, 500));
        state.balances = BTreeMap::from([(1, 570), (2, -370)]);
        let found = violations(&valid_history(), Some(&state));
        assert!(
            found
                .iter()
                .any(|v| v
                    .contains("transfer 11 failed (exceeds_credits) but is in the final state")),
            "{found:#?}"
        );
    }

    #[test]
    fn transfer_that_was_never_invoked_is_a_violation() {
        let mut state = valid_final_state();
        state.listed.push(listed(1, 99, 2, 1, 30));
        state.listed.push(listed(2, 99, 2, 1, 30));
        state.balances = BTreeMap::from([(1, 100), (2, 100)]);
        assert_one_violation(violations(&valid_history(), Some(&state)), "never invoked");
    }

    #[test]
    fn final_balances_must_sum_to_the_total_and_match_the_listed_transfers() {
        let mut state = valid_final_state();
        state.balances.insert(2, 131);
        let found = violations(&valid_history(), Some(&state));
        assert!(
            found
                .iter()
                .any(|v| v.contains("final balances sum to 201")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v
                    .contains("account 2 has balance 131 but its listed transfers add up to 130")),
            "{found:#?}"
        );
    }

    #[test]
    fn transfer_listed_with_other_accounts_or_amount_than_invoked_is_a_violation() {
        let mut state = valid_final_state();
        for listing in state.listed.iter_mut().filter(|l| l.id == 10) {
            listing.amount = 31;
        }
        state.balances = BTreeMap::from([(1, 69), (2, 131)]);
        assert_one_violation(
            violations(&valid_history(), Some(&state)),
            "is 1 -> 2, 31 in the final state but was invoked as 1 -> 2, 30",
        );
    }

    #[test]
    fn an_invocation_without_completion_counts_as_info() {
        let mut ops = valid_history();
        ops.push(op(4, OpType::Invoke, transfer(13, 1, 2, 1), None));
        let history = pair(&ops).unwrap();
        assert_eq!(history.last().unwrap().outcome, OpType::Info);
        assert_eq!(
            violations(&ops, Some(&valid_final_state())),
            Vec::<String>::new()
        );
    }

    #[test]
    fn malformed_histories_are_refused_when_paired() {
        let t = || transfer(10, 1, 2, 30);
        let completion_first = [op(1, OpType::Ok, t(), None)];
        assert!(pair(&completion_first).is_err());
        let two_invokes = [
            op(1, OpType::Invoke, t(), None),
            op(1, OpType::Invoke, t(), None),
        ];
        assert!(pair(&two_invokes).is_err());
        let wrong_f = [
            op(1, OpType::Invoke, t(), None),
            op(1, OpType::Ok, read(&[]), None),
        ];
        assert!(pair(&wrong_f).is_err());
    }
}
