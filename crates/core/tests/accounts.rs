//! create_accounts: every result code, idempotency and linked account chains.

mod common;

use common::*;
use croupier_core::ids::{house_account_id, RESERVED_ID_PREFIX};
use croupier_core::{AccountFlags, AccountKind, CreateAccountResult as R, NewAccount};

fn with_flags(mut a: NewAccount, flags: AccountFlags) -> NewAccount {
    a.flags = flags;
    a
}

#[test]
fn account_is_created_with_zero_balances_and_a_ledger_timestamp() {
    let mut h = Harness::new();
    assert_eq!(
        h.accounts(vec![account(10, AccountKind::Clearing)]),
        vec![R::Ok]
    );
    let a = h.ledger.account(10).unwrap();
    assert_eq!((a.ledger, a.kind), (eur(), AccountKind::Clearing));
    assert_eq!(h.balances(10), [0; 4]);
    assert_eq!(a.timestamp, h.now);
    assert_eq!(h.ledger.totals().accounts, 1);
}

#[test]
fn zero_id_is_refused() {
    let mut h = Harness::new();
    assert_eq!(
        h.accounts(vec![account(0, AccountKind::Player)]),
        vec![R::IdMustNotBeZero]
    );
    assert_eq!(h.ledger.totals().accounts, 0);
}

#[test]
fn reserved_ids_are_refused() {
    let mut h = Harness::new();
    let results = h.accounts(vec![
        account(RESERVED_ID_PREFIX | 5, AccountKind::Player),
        account(house_account_id(eur()), AccountKind::System),
        account(u128::MAX, AccountKind::Bonus),
    ]);
    assert_eq!(results, vec![R::IdMustNotBeReserved; 3]);
}

#[test]
fn both_balance_limits_are_mutually_exclusive() {
    let mut h = Harness::new();
    let both = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
        .union(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    let player_with_credit_limit = with_flags(
        account(11, AccountKind::Player),
        AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
    );
    let results = h.accounts(vec![
        with_flags(account(10, AccountKind::System), both),
        player_with_credit_limit,
    ]);
    assert_eq!(results, vec![R::FlagsAreMutuallyExclusive; 2]);
}

#[test]
fn clients_cannot_create_house_accounts() {
    let mut h = Harness::new();
    assert_eq!(
        h.accounts(vec![account(10, AccountKind::House)]),
        vec![R::KindMustNotBeHouse]
    );
}

#[test]
fn player_accounts_always_get_the_no_overdraft_flag() {
    let mut h = Harness::new();
    h.accounts_ok(vec![account(10, AccountKind::Player)]);
    let flags = h.ledger.account(10).unwrap().flags;
    assert!(flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS));
    // Retrying with or without the flag spelled out is the same request.
    let explicit = with_flags(
        account(10, AccountKind::Player),
        AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    );
    assert_eq!(
        h.accounts(vec![account(10, AccountKind::Player), explicit]),
        vec![R::Exists, R::Exists]
    );
}

#[test]
fn same_id_with_same_fields_exists_and_with_different_fields_names_the_field() {
    let mut h = Harness::new();
    h.accounts_ok(vec![account(10, AccountKind::Bonus)]);
    let other_ledger = NewAccount {
        ledger: usd(),
        ..account(10, AccountKind::Bonus)
    };
    let results = h.accounts(vec![
        account(10, AccountKind::Bonus),
        with_flags(account(10, AccountKind::Bonus), AccountFlags::CLOSED),
        other_ledger,
        account(10, AccountKind::Jackpot),
    ]);
    assert_eq!(
        results,
        vec![
            R::Exists,
            R::ExistsWithDifferentFlags,
            R::ExistsWithDifferentLedger,
            R::ExistsWithDifferentKind
        ]
    );
    assert_eq!(h.ledger.account(10).unwrap().kind, AccountKind::Bonus);
    assert_eq!(h.ledger.totals().accounts, 1);
}

#[test]
fn retry_of_an_account_closed_later_still_answers_exists() {
    let mut h = Harness::with_players(&[10], 100);
    let closing = croupier_core::NewTransfer {
        flags: croupier_core::TransferFlags::PENDING
            .union(croupier_core::TransferFlags::CLOSING_DEBIT),
        ..transfer(50, 10, BANK, 1)
    };
    assert_eq!(h.transfer(closing), croupier_core::CreateTransferResult::Ok);
    assert!(h
        .ledger
        .account(10)
        .unwrap()
        .flags
        .contains(AccountFlags::CLOSED));
    assert_eq!(
        h.accounts(vec![account(10, AccountKind::Player)]),
        vec![R::Exists]
    );
}

#[test]
fn linked_accounts_are_created_all_or_nothing() {
    let mut h = Harness::new();
    let first = with_flags(account(10, AccountKind::System), AccountFlags::LINKED);
    let results = h.accounts(vec![
        first.clone(),
        account(11, AccountKind::House),
        account(12, AccountKind::System),
    ]);
    assert_eq!(
        results,
        vec![R::LinkedEventFailed, R::KindMustNotBeHouse, R::Ok]
    );
    assert!(h.ledger.account(10).is_none());
    assert!(h.ledger.account(12).is_some());

    let results = h.accounts(vec![first, account(11, AccountKind::System)]);
    assert_eq!(results, vec![R::Ok, R::Ok]);
    assert!(h
        .ledger
        .account(10)
        .unwrap()
        .flags
        .contains(AccountFlags::LINKED));
}

#[test]
fn account_chain_left_open_fails_whole_chain() {
    let mut h = Harness::new();
    let results = h.accounts(vec![
        with_flags(account(10, AccountKind::System), AccountFlags::LINKED),
        with_flags(
            NewAccount {
                ledger: usd(),
                ..account(11, AccountKind::System)
            },
            AccountFlags::LINKED,
        ),
    ]);
    assert_eq!(results, vec![R::LinkedEventFailed, R::LinkedEventChainOpen]);
    assert_eq!(h.ledger.totals().accounts, 0);
    // The USD ledger the failed chain introduced leaves no trace either.
    assert!(h.ledger.totals().per_ledger.is_empty());
}

#[test]
fn accounts_can_be_created_closed() {
    let mut h = Harness::new();
    h.accounts_ok(vec![
        with_flags(account(10, AccountKind::System), AccountFlags::CLOSED),
        account(11, AccountKind::System),
    ]);
    assert_eq!(
        h.transfer(transfer(1, 10, 11, 5)),
        croupier_core::CreateTransferResult::DebitAccountAlreadyClosed
    );
}

#[test]
fn every_account_result_code_is_distinct_and_named() {
    let codes: std::collections::BTreeSet<_> = R::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), R::ALL.len());
    for (raw, result) in R::ALL.iter().enumerate() {
        assert_eq!(R::from_u8(raw as u8), Some(*result));
    }
}
