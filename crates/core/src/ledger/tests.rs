//! Tests that need the ledger's insides: codes only reachable with huge balances, the catalogue
//! of every result code, and invariant checks that must catch corruption.

use std::collections::BTreeSet;

use super::*;
use crate::memory::MemoryLedger;
use crate::types::{
    CreateAccountResult, CreateTransferResult, NewAccount, NewTransfer, TransferFlags,
};

const T0: u64 = 1_735_689_600_000_000_000;
const SECOND_NS: u64 = 1_000_000_000;

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn new_account(id: u128, kind: AccountKind, flags: AccountFlags) -> NewAccount {
    NewAccount {
        id,
        ledger: eur(),
        kind,
        flags,
    }
}

fn new_transfer(
    id: u128,
    debit: u128,
    credit: u128,
    amount: u64,
    flags: TransferFlags,
) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: eur(),
        flags,
        pending_id: 0,
        timeout_s: 0,
    }
}

/// A ledger with system accounts 1..=4, at time T0.
fn ledger() -> MemoryLedger {
    let mut ledger = MemoryLedger::new();
    let accounts = (1..=4)
        .map(|id| new_account(id, AccountKind::System, AccountFlags::empty()))
        .collect();
    let results = ledger.apply(T0, &[Command::CreateAccounts(accounts)]);
    assert_eq!(
        results,
        vec![CommandResult::Accounts(vec![CreateAccountResult::Ok; 4])]
    );
    ledger
}

fn transfer_results(
    ledger: &mut MemoryLedger,
    timestamp: u64,
    items: Vec<NewTransfer>,
) -> Vec<CreateTransferResult> {
    match ledger
        .apply(timestamp, &[Command::CreateTransfers(items)])
        .pop()
    {
        Some(CommandResult::Transfers(results)) => results,
        other => panic!("unexpected {other:?}"),
    }
}

/// Gives account `debited` huge posted debits and `credited` huge posted credits, balanced.
fn inflate(ledger: &mut MemoryLedger, debited: u128, credited: u128, amount: u128) {
    let ledger = &mut ledger.ledger;
    let debit_slot = ledger.account_index[&debited] as usize;
    let credit_slot = ledger.account_index[&credited] as usize;
    ledger.accounts.get_mut(debit_slot).account.debits_posted = amount;
    ledger.accounts.get_mut(credit_slot).account.credits_posted = amount;
    let sums = &mut ledger.ledger_sums[0];
    sums.debits_posted = amount;
    sums.credits_posted = amount;
}

#[test]
fn transfer_that_would_overflow_a_balance_is_refused() {
    let mut ledger = ledger();
    inflate(&mut ledger, 1, 2, u128::MAX - 5);
    let results = transfer_results(
        &mut ledger,
        T0 + SECOND_NS,
        vec![
            new_transfer(10, 1, 3, 10, TransferFlags::empty()),
            new_transfer(11, 4, 2, 10, TransferFlags::PENDING),
            new_transfer(12, 1, 3, 5, TransferFlags::PENDING),
        ],
    );
    assert_eq!(
        results,
        vec![
            CreateTransferResult::OverflowsDebits,
            CreateTransferResult::OverflowsCredits,
            CreateTransferResult::Ok
        ]
    );
    assert_eq!(ledger.account(1).unwrap().debits_pending, 5);
}

#[test]
fn pending_whose_deadline_overflows_the_clock_is_refused() {
    let mut ledger = ledger();
    let late = u64::MAX - 1_000 * SECOND_NS;
    let timeout = |id, timeout_s| NewTransfer {
        timeout_s,
        ..new_transfer(id, 1, 2, 1, TransferFlags::PENDING)
    };
    let results = transfer_results(
        &mut ledger,
        late,
        vec![timeout(10, u32::MAX), timeout(11, 999)],
    );
    assert_eq!(
        results,
        vec![
            CreateTransferResult::OverflowsTimeout,
            CreateTransferResult::Ok
        ]
    );
}

/// Runs one scenario per code and checks that together they reach every code there is, so a
/// new code cannot be added without a way to reach it.
#[test]
fn every_transfer_result_code_is_reachable() {
    use CreateTransferResult as R;
    use TransferFlags as F;
    let mut seen = BTreeSet::new();
    let mut ledger = ledger();
    let player = new_account(5, AccountKind::Player, AccountFlags::empty());
    let credit_limited = new_account(
        6,
        AccountKind::System,
        AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
    );
    let dollars = NewAccount {
        ledger: LedgerCode::parse("USD").unwrap(),
        ..new_account(7, AccountKind::System, AccountFlags::empty())
    };
    ledger.apply(
        T0 + 1,
        &[Command::CreateAccounts(vec![
            player,
            credit_limited,
            dollars,
        ])],
    );
    let now = std::cell::Cell::new(T0 + SECOND_NS);
    let mut run = |ledger: &mut MemoryLedger, items: Vec<NewTransfer>| {
        now.set(now.get() + SECOND_NS);
        let results = transfer_results(ledger, now.get(), items);
        seen.extend(results.iter().map(|r| r.code()));
        results
    };
    let t = |id, debit, credit, amount| new_transfer(id, debit, credit, amount, F::empty());
    let p = |id, debit, credit, amount, timeout_s| NewTransfer {
        timeout_s,
        ..new_transfer(id, debit, credit, amount, F::PENDING)
    };
    let resolve = |id, pending_id, amount, flags| NewTransfer {
        pending_id,
        ..new_transfer(id, 0, 0, amount, flags)
    };
    let closing =
        |id, debit, credit, flag: F| new_transfer(id, debit, credit, 1, F::PENDING.union(flag));
    let linked = |mut item: NewTransfer| {
        item.flags.insert(F::LINKED);
        item
    };

    run(
        &mut ledger,
        vec![
            t(1, 1, 2, 10),
            t(0, 1, 2, 1),
            t(crate::ids::RESERVED_ID_PREFIX, 1, 2, 1),
            t(2, 0, 2, 1),
            t(3, 1, 0, 1),
            t(4, 1, 1, 1),
            NewTransfer {
                pending_id: 1,
                ..t(5, 1, 2, 1)
            },
            NewTransfer {
                timeout_s: 1,
                ..t(6, 1, 2, 1)
            },
            new_transfer(7, 1, 2, 1, F::CLOSING_DEBIT),
            t(8, 1, 2, 0),
            t(9, 99, 2, 1),
            t(10, 1, 99, 1),
            t(11, 1, 7, 1),
            NewTransfer {
                ledger: LedgerCode::parse("USD").unwrap(),
                ..t(12, 1, 2, 1)
            },
            t(13, 5, 1, 1),
            t(14, 1, 6, 1),
            p(20, 1, 2, 10, 5),
            p(21, 1, 2, 10, 0),
            p(22, 1, 2, 10, 0),
        ],
    );
    run(
        &mut ledger,
        vec![
            t(1, 1, 2, 10),
            new_transfer(1, 1, 2, 10, F::PENDING),
            t(1, 3, 2, 10),
            t(1, 1, 3, 10),
            t(1, 1, 2, 11),
            NewTransfer {
                ledger: LedgerCode::parse("USD").unwrap(),
                ..t(1, 1, 2, 10)
            },
            NewTransfer {
                timeout_s: 9,
                ..p(20, 1, 2, 10, 5)
            },
            resolve(
                30,
                20,
                1,
                F::POST_PENDING_TRANSFER.union(F::VOID_PENDING_TRANSFER),
            ),
            resolve(31, 0, 1, F::POST_PENDING_TRANSFER),
            resolve(32, 32, 1, F::POST_PENDING_TRANSFER),
            resolve(33, 99, 1, F::POST_PENDING_TRANSFER),
            resolve(34, 1, 1, F::POST_PENDING_TRANSFER),
            NewTransfer {
                debit_account_id: 3,
                ..resolve(35, 21, 1, F::POST_PENDING_TRANSFER)
            },
            NewTransfer {
                credit_account_id: 3,
                ..resolve(36, 21, 1, F::POST_PENDING_TRANSFER)
            },
            NewTransfer {
                ledger: LedgerCode::parse("USD").unwrap(),
                ..resolve(37, 21, 1, F::POST_PENDING_TRANSFER)
            },
            resolve(38, 21, 11, F::POST_PENDING_TRANSFER),
            resolve(39, 21, 9, F::VOID_PENDING_TRANSFER),
            resolve(40, 21, 4, F::POST_PENDING_TRANSFER),
            resolve(41, 22, 0, F::VOID_PENDING_TRANSFER),
        ],
    );
    run(
        &mut ledger,
        vec![
            resolve(40, 21, 0, F::POST_PENDING_TRANSFER),
            resolve(42, 21, 0, F::VOID_PENDING_TRANSFER),
            resolve(43, 22, 0, F::POST_PENDING_TRANSFER),
            resolve(40, 22, 4, F::POST_PENDING_TRANSFER),
            NewTransfer {
                timeout_s: 1,
                ..resolve(44, 21, 0, F::POST_PENDING_TRANSFER)
            },
            closing(50, 3, 4, F::CLOSING_DEBIT),
            t(51, 3, 4, 1),
            t(52, 4, 3, 1),
            linked(t(53, 1, 2, 1)),
            t(54, 1, 99, 1),
            linked(t(55, 1, 2, 1)),
        ],
    );
    now.set(now.get() + 10 * SECOND_NS);
    run(
        &mut ledger,
        vec![resolve(60, 20, 0, F::POST_PENDING_TRANSFER)],
    );
    inflate(&mut ledger, 1, 2, u128::MAX - 5);
    run(&mut ledger, vec![t(70, 1, 4, 10), t(71, 4, 2, 10)]);
    now.set(u64::MAX - 1_000 * SECOND_NS);
    run(&mut ledger, vec![p(80, 2, 4, 1, u32::MAX)]);

    let all: BTreeSet<_> = R::ALL.iter().map(|r| r.code()).collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "codes never produced: {missing:?}");
}

#[test]
fn every_account_result_code_is_reachable() {
    use CreateAccountResult as R;
    let mut ledger = ledger();
    let both = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
        .union(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    let linked = |id| new_account(id, AccountKind::System, AccountFlags::LINKED);
    let items = vec![
        new_account(10, AccountKind::System, AccountFlags::empty()),
        new_account(1, AccountKind::System, AccountFlags::empty()),
        new_account(0, AccountKind::System, AccountFlags::empty()),
        new_account(u128::MAX, AccountKind::System, AccountFlags::empty()),
        new_account(11, AccountKind::System, both),
        new_account(12, AccountKind::House, AccountFlags::empty()),
        NewAccount {
            ledger: LedgerCode::parse("USD").unwrap(),
            ..new_account(1, AccountKind::System, AccountFlags::empty())
        },
        new_account(1, AccountKind::Bonus, AccountFlags::empty()),
        new_account(1, AccountKind::System, AccountFlags::CLOSED),
        linked(13),
        new_account(0, AccountKind::System, AccountFlags::empty()),
        linked(14),
    ];
    let Some(CommandResult::Accounts(results)) = ledger
        .apply(T0 + SECOND_NS, &[Command::CreateAccounts(items)])
        .pop()
    else {
        panic!("wrong result shape")
    };
    let seen: BTreeSet<_> = results.iter().map(|r| r.code()).collect();
    let all: BTreeSet<_> = R::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(seen, all);
}

/// A ledger with some of everything, for the corruption tests.
fn busy_ledger() -> MemoryLedger {
    let mut ledger = ledger();
    let player = new_account(5, AccountKind::Player, AccountFlags::empty());
    ledger.apply(T0 + 1, &[Command::CreateAccounts(vec![player])]);
    transfer_results(
        &mut ledger,
        T0 + 2,
        vec![
            new_transfer(1, 1, 5, 100, TransferFlags::empty()),
            NewTransfer {
                timeout_s: 60,
                ..new_transfer(2, 5, 2, 30, TransferFlags::PENDING)
            },
            new_transfer(
                3,
                3,
                4,
                7,
                TransferFlags::PENDING.union(TransferFlags::CLOSING_CREDIT),
            ),
        ],
    );
    let bet = crate::wallet::WalletBet {
        transaction_id: "b1".into(),
        player_id: 5,
        round_id: "r1".into(),
        amount: 20,
        ledger: eur(),
    };
    ledger.apply(T0 + 3, &[Command::WalletBet(bet)]);
    ledger.check_invariants().unwrap();
    ledger
}

#[test]
fn invariant_check_catches_a_balance_that_disagrees_with_the_transfers() {
    let mut ledger = busy_ledger();
    let slot = ledger.ledger.account_index[&4] as usize;
    ledger.ledger.accounts.get_mut(slot).account.credits_posted += 1;
    ledger.ledger.accounts.get_mut(slot).account.debits_posted += 1;
    assert!(ledger.check_invariants().unwrap_err().contains("balances"));
}

#[test]
fn totals_check_catches_unbalanced_running_sums() {
    let mut ledger = busy_ledger();
    ledger.ledger.ledger_sums[0].debits_pending += 1;
    assert!(ledger.check_totals().is_err());
    assert!(ledger.check_invariants().is_err());
}

#[test]
#[should_panic(expected = "invariant broken")]
fn apply_refuses_to_continue_on_unbalanced_sums() {
    let mut ledger = busy_ledger();
    ledger.ledger.ledger_sums[0].credits_posted += 1;
    ledger.apply(T0 + 10, &[Command::Tick]);
}

#[test]
fn invariant_check_catches_an_overdrawn_player() {
    let mut ledger = busy_ledger();
    let slot = ledger.ledger.account_index[&5] as usize;
    ledger.ledger.accounts.get_mut(slot).account.debits_posted += 1_000;
    assert!(ledger.check_invariants().is_err());
}

#[test]
fn invariant_check_catches_broken_history_status_expiry_and_flags() {
    let corruptions: Vec<fn(&mut MemoryLedger)> = vec![
        |l| {
            l.ledger.accounts.get_mut(0).newest_transfer = NO_TRANSFER;
        },
        |l| {
            l.history.transfers_mut()[1].prev_debit = NO_TRANSFER;
        },
        |l| {
            l.ledger.pending.remove(2);
        },
        |l| {
            let slot = l.ledger.account_index[&4] as usize;
            let flags = &mut l.ledger.accounts.get_mut(slot).account.flags;
            flags.remove(AccountFlags::CLOSED);
        },
        |l| {
            let last = l.history.transfers().len() - 2;
            l.history.transfers_mut()[last].transfer.timestamp = 1;
        },
        |l| {
            l.ledger.wallet_sequence = 0;
        },
        |l| {
            l.history
                .push_wallet_record_unchecked(crate::history::WalletRecord {
                    key: "x".into(),
                    entry: WalletEntry::Tombstone {
                        player_id: 5,
                        round_id: "r".into(),
                        rollback_transaction_id: "nope".into(),
                    },
                    timestamp: 1,
                });
        },
    ];
    for (index, corrupt) in corruptions.into_iter().enumerate() {
        let mut ledger = busy_ledger();
        corrupt(&mut ledger);
        assert!(
            ledger.check_invariants().is_err(),
            "corruption {index} went unnoticed"
        );
    }
}
