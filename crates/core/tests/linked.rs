//! Linked chains: all-or-nothing, which member failed, open chains, `exists` inside a chain,
//! and the ledger clock.

mod common;

use common::*;
use croupier_core::{
    AccountKind, Command, CommandResult, CreateTransferResult as R, TransferFlags,
};

const A: u128 = 10;
const B: u128 = 11;
const P: u128 = 20;

fn harness() -> Harness {
    let mut h = Harness::with_players(&[P], 100);
    h.accounts_ok(vec![
        account(A, AccountKind::System),
        account(B, AccountKind::System),
    ]);
    h
}

#[test]
fn chain_applies_when_every_member_succeeds() {
    let mut h = harness();
    let results = h.transfers(vec![
        linked(transfer(1, A, B, 1)),
        linked(transfer(2, B, A, 2)),
        transfer(3, A, B, 3),
    ]);
    assert_eq!(results, vec![R::Ok; 3]);
    assert_eq!(h.balances(A), [0, 4, 0, 2]);
}

#[test]
fn failing_member_undoes_the_chain_and_is_named() {
    let mut h = harness();
    let before = (h.balances(A), h.balances(P), h.ledger.totals());
    let results = h.transfers(vec![
        linked(transfer(1, A, B, 1)),
        linked(pending(2, P, A, 60, 10)),
        linked(transfer(3, P, A, 50)), // exceeds: 60 already reserved
        transfer(4, A, B, 3),
        transfer(5, A, B, 4), // after the chain: unaffected
    ]);
    assert_eq!(
        results,
        vec![
            R::LinkedEventFailed,
            R::LinkedEventFailed,
            R::ExceedsCredits,
            R::LinkedEventFailed,
            R::Ok
        ]
    );
    assert!(
        h.ledger.transfer(1).is_none()
            && h.ledger.transfer(2).is_none()
            && h.ledger.transfer(4).is_none()
    );
    assert_eq!(h.balances(P), before.1);
    assert_eq!(h.balances(A), [0, 4, 0, 0]);
    assert_eq!(h.ledger.totals().transfers, before.2.transfers + 1);
    // The undone pending transfer left no expiry behind.
    h.advance_s(60);
    h.apply(vec![Command::Tick]);
    assert_eq!(
        h.ledger.account_transfers(P, 10).len(),
        1,
        "only the deposit"
    );
}

#[test]
fn chain_undo_restores_post_void_and_closing_effects() {
    let mut h = harness();
    let closing = croupier_core::NewTransfer {
        flags: TransferFlags::PENDING.union(TransferFlags::CLOSING_DEBIT),
        ..pending(2, P, A, 5, 0)
    };
    assert_eq!(
        h.transfers(vec![pending(1, A, B, 7, 30), closing]),
        vec![R::Ok, R::Ok]
    );
    let snapshot = |h: &Harness| {
        (
            h.balances(A),
            h.balances(B),
            h.balances(P),
            h.ledger.account(P).unwrap().flags,
        )
    };
    let before = snapshot(&h);
    let results = h.transfers(vec![
        linked(post(3, 1, 4)),
        linked(void(4, 2)),
        transfer(5, A, A, 1),
    ]);
    assert_eq!(
        results,
        vec![
            R::LinkedEventFailed,
            R::LinkedEventFailed,
            R::AccountsMustBeDifferent
        ]
    );
    assert_eq!(snapshot(&h), before);
    // Both pendings are still resolvable, and the timeout of the first still runs.
    assert_eq!(h.transfer(void(6, 2)), R::Ok);
    h.advance_s(31);
    h.apply(vec![Command::Tick]);
    assert_eq!(h.transfer(post(7, 1, 0)), R::PendingTransferExpired);
}

#[test]
fn chain_left_open_at_the_end_of_the_command_fails() {
    let mut h = harness();
    let results = h.transfers(vec![
        transfer(1, A, B, 1),
        linked(transfer(2, A, B, 1)),
        linked(transfer(3, A, B, 1)),
    ]);
    assert_eq!(
        results,
        vec![R::Ok, R::LinkedEventFailed, R::LinkedEventChainOpen]
    );
    assert_eq!(h.balances(A), [0, 1, 0, 0]);
    assert_eq!(
        h.transfer(linked(transfer(4, A, B, 1))),
        R::LinkedEventChainOpen
    );
}

#[test]
fn exists_inside_a_chain_fails_the_chain_as_in_tigerbeetle() {
    let mut h = harness();
    assert_eq!(h.transfer(transfer(1, A, B, 1)), R::Ok);
    // A retried chain whose first member already exists does not half-apply.
    let results = h.transfers(vec![linked(transfer(2, A, B, 1)), transfer(1, A, B, 1)]);
    assert_eq!(results, vec![R::LinkedEventFailed, R::Exists]);
    assert!(h.ledger.transfer(2).is_none());
    // The `linked` flag is part of the transfer, as in TigerBeetle.
    assert_eq!(
        h.transfers(vec![linked(transfer(1, A, B, 1)), transfer(3, A, B, 1)]),
        vec![R::ExistsWithDifferentFlags, R::LinkedEventFailed]
    );
    // A fully applied chain retried answers `exists` for its first member only.
    let chain = vec![linked(transfer(4, A, B, 1)), transfer(5, A, B, 1)];
    assert_eq!(h.transfers(chain.clone()), vec![R::Ok, R::Ok]);
    assert_eq!(h.transfers(chain), vec![R::Exists, R::LinkedEventFailed]);
}

#[test]
fn separate_chains_in_one_command_are_independent() {
    let mut h = harness();
    let results = h.transfers(vec![
        linked(transfer(1, A, B, 1)),
        transfer(2, A, 99, 1),
        linked(transfer(3, A, B, 1)),
        transfer(4, A, B, 1),
    ]);
    assert_eq!(
        results,
        vec![R::LinkedEventFailed, R::CreditAccountNotFound, R::Ok, R::Ok]
    );
}

#[test]
fn commands_of_one_entry_see_each_others_effects() {
    let mut h = harness();
    let results = h.apply(vec![
        Command::CreateAccounts(vec![account(30, AccountKind::Player)]),
        Command::CreateTransfers(vec![
            transfer(1, A, 30, 5),
            transfer(2, 30, A, 5),
            transfer(3, 30, A, 1),
        ]),
    ]);
    assert_eq!(
        results[1],
        CommandResult::Transfers(vec![R::Ok, R::Ok, R::ExceedsCredits])
    );
}

#[test]
fn timestamps_strictly_increase_even_when_the_leader_clock_goes_back() {
    let mut h = harness();
    let start = h.ledger.last_timestamp();
    let results = h.ledger.apply(
        start - 5 * SECOND_NS,
        &[Command::CreateTransfers(vec![
            transfer(1, A, B, 1),
            transfer(2, A, B, 1),
        ])],
    );
    assert_eq!(results, vec![CommandResult::Transfers(vec![R::Ok, R::Ok])]);
    let (t1, t2) = (
        h.ledger.transfer(1).unwrap().timestamp,
        h.ledger.transfer(2).unwrap().timestamp,
    );
    assert_eq!((t1, t2), (start + 1, start + 2));
    h.ledger
        .apply(0, &[Command::CreateTransfers(vec![transfer(3, A, B, 1)])]);
    assert_eq!(h.ledger.transfer(3).unwrap().timestamp, start + 3);
    h.ledger.check_invariants().unwrap();
}

#[test]
fn every_item_takes_the_next_nanosecond_of_the_entry() {
    let mut h = harness();
    let entry = h.ledger.last_timestamp() + 1_000;
    h.ledger.apply(
        entry,
        &[Command::CreateTransfers(vec![
            transfer(1, A, B, 1),
            transfer(2, A, 99, 1), // refused, still takes a timestamp
            transfer(3, A, B, 1),
        ])],
    );
    assert_eq!(h.ledger.transfer(1).unwrap().timestamp, entry);
    assert_eq!(h.ledger.transfer(3).unwrap().timestamp, entry + 2);
    assert_eq!(h.ledger.last_timestamp(), entry + 2);
}
