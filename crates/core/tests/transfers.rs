//! create_transfers: single transfers, validation codes, idempotency, limits, two-phase
//! transfers (post, partial post, void, expiry) and closing accounts.

mod common;

use common::*;
use croupier_core::ids::{is_expiry_transfer_id, RESERVED_ID_PREFIX};
use croupier_core::{
    AccountFlags, AccountKind, Command, CreateTransferResult as R, NewAccount, NewTransfer,
    TransferFlags,
};

const A: u128 = 10;
const B: u128 = 11;
const P: u128 = 20; // a player
const LIMITED_CREDIT: u128 = 30; // credits_must_not_exceed_debits
const DOLLARS: u128 = 40; // on the USD ledger

fn harness() -> Harness {
    let mut h = Harness::with_players(&[P], 100);
    h.accounts_ok(vec![
        account(A, AccountKind::System),
        account(B, AccountKind::Clearing),
        NewAccount {
            flags: AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            ..account(LIMITED_CREDIT, AccountKind::Bonus)
        },
        NewAccount {
            ledger: usd(),
            ..account(DOLLARS, AccountKind::System)
        },
    ]);
    h
}

fn with_flags(mut t: NewTransfer, flags: TransferFlags) -> NewTransfer {
    t.flags = flags;
    t
}

#[test]
fn single_transfer_moves_posted_balances_on_both_sides() {
    let mut h = harness();
    assert_eq!(h.transfer(transfer(1, A, B, 70)), R::Ok);
    assert_eq!(h.balances(A), [0, 70, 0, 0]);
    assert_eq!(h.balances(B), [0, 0, 0, 70]);
    let stored = h.ledger.transfer(1).unwrap();
    assert_eq!((stored.amount, stored.timestamp), (70, h.now));
    let eur_sums = &h.ledger.totals().per_ledger[0];
    assert_eq!(eur_sums.debits_posted, eur_sums.credits_posted);
}

#[test]
fn ids_must_be_non_zero_and_not_reserved() {
    let mut h = harness();
    let results = h.transfers(vec![
        transfer(0, A, B, 1),
        transfer(RESERVED_ID_PREFIX | 1, A, B, 1),
    ]);
    assert_eq!(results, vec![R::IdMustNotBeZero, R::IdMustNotBeReserved]);
}

#[test]
fn account_ids_must_be_given_and_different() {
    let mut h = harness();
    let results = h.transfers(vec![
        transfer(1, 0, B, 1),
        transfer(2, A, 0, 1),
        transfer(3, A, A, 1),
    ]);
    assert_eq!(
        results,
        vec![
            R::DebitAccountIdMustNotBeZero,
            R::CreditAccountIdMustNotBeZero,
            R::AccountsMustBeDifferent
        ]
    );
}

#[test]
fn pending_id_timeout_and_closing_flags_belong_to_two_phase_transfers() {
    let mut h = harness();
    let results = h.transfers(vec![
        NewTransfer {
            pending_id: 9,
            ..transfer(1, A, B, 1)
        },
        NewTransfer {
            timeout_s: 5,
            ..transfer(2, A, B, 1)
        },
        with_flags(transfer(3, A, B, 1), TransferFlags::CLOSING_DEBIT),
        with_flags(transfer(4, A, B, 1), TransferFlags::CLOSING_CREDIT),
    ]);
    assert_eq!(
        results,
        vec![
            R::PendingIdMustBeZero,
            R::TimeoutReservedForPendingTransfer,
            R::ClosingTransferMustBePending,
            R::ClosingTransferMustBePending,
        ]
    );
}

#[test]
fn zero_amount_is_refused() {
    let mut h = harness();
    assert_eq!(h.transfer(transfer(1, A, B, 0)), R::AmountMustNotBeZero);
    assert_eq!(h.transfer(pending(2, A, B, 0, 0)), R::AmountMustNotBeZero);
}

#[test]
fn accounts_must_exist_and_share_the_transfer_ledger() {
    let mut h = harness();
    let results = h.transfers(vec![
        transfer(1, 99, B, 1),
        transfer(2, A, 99, 1),
        transfer(3, A, DOLLARS, 1),
        NewTransfer {
            ledger: usd(),
            ..transfer(4, A, B, 1)
        },
    ]);
    assert_eq!(
        results,
        vec![
            R::DebitAccountNotFound,
            R::CreditAccountNotFound,
            R::AccountsMustHaveTheSameLedger,
            R::TransferMustHaveTheSameLedgerAsAccounts,
        ]
    );
    assert_eq!(h.ledger.totals().transfers, 1, "only the player's deposit");
}

#[test]
fn player_cannot_overdraw_counting_pending_debits() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, P, A, 60, 0)), R::Ok);
    assert_eq!(h.transfer(transfer(2, P, A, 41)), R::ExceedsCredits);
    assert_eq!(h.transfer(transfer(3, P, A, 40)), R::Ok);
    assert_eq!(h.balance(P), 0);
    assert_eq!(h.transfer(transfer(4, P, A, 1)), R::ExceedsCredits);
}

#[test]
fn credit_limited_account_cannot_take_more_than_its_debits() {
    let mut h = harness();
    assert_eq!(
        h.transfer(transfer(1, A, LIMITED_CREDIT, 1)),
        R::ExceedsDebits
    );
    assert_eq!(h.transfer(transfer(2, LIMITED_CREDIT, A, 10)), R::Ok);
    assert_eq!(h.transfer(pending(3, A, LIMITED_CREDIT, 6, 0)), R::Ok);
    assert_eq!(
        h.transfer(transfer(4, A, LIMITED_CREDIT, 5)),
        R::ExceedsDebits
    );
    assert_eq!(h.transfer(transfer(5, A, LIMITED_CREDIT, 4)), R::Ok);
}

#[test]
fn retried_transfer_exists_and_changes_nothing() {
    let mut h = harness();
    assert_eq!(h.transfer(transfer(1, A, B, 5)), R::Ok);
    let before = h.balances(A);
    assert_eq!(h.transfer(transfer(1, A, B, 5)), R::Exists);
    assert_eq!(h.balances(A), before);
    assert_eq!(h.ledger.account_transfers(A, 10).len(), 1);
}

#[test]
fn retried_transfer_with_a_different_field_names_that_field() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 5, 60)), R::Ok);
    let p = pending(1, A, B, 5, 60);
    let results = h.transfers(vec![
        transfer(1, A, B, 5),
        NewTransfer {
            debit_account_id: P,
            ..p.clone()
        },
        NewTransfer {
            credit_account_id: P,
            ..p.clone()
        },
        NewTransfer {
            amount: 6,
            ..p.clone()
        },
        NewTransfer {
            timeout_s: 61,
            ..p.clone()
        },
        NewTransfer {
            ledger: usd(),
            ..p.clone()
        },
        NewTransfer {
            pending_id: 7,
            ..p.clone()
        },
    ]);
    assert_eq!(
        results,
        vec![
            R::ExistsWithDifferentFlags,
            R::ExistsWithDifferentDebitAccountId,
            R::ExistsWithDifferentCreditAccountId,
            R::ExistsWithDifferentAmount,
            R::ExistsWithDifferentTimeout,
            R::ExistsWithDifferentLedger,
            R::ExistsWithDifferentPendingId,
        ]
    );
}

#[test]
fn retry_answers_exists_even_after_the_accounts_closed() {
    let mut h = harness();
    assert_eq!(h.transfer(transfer(1, A, B, 5)), R::Ok);
    let closing = with_flags(
        pending(2, A, B, 1, 0),
        TransferFlags::PENDING.union(TransferFlags::CLOSING_DEBIT),
    );
    assert_eq!(h.transfer(closing.clone()), R::Ok);
    assert_eq!(
        h.transfers(vec![transfer(1, A, B, 5), closing]),
        vec![R::Exists, R::Exists]
    );
}

#[test]
fn pending_reserves_and_post_moves_it_to_posted() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 50, 0)), R::Ok);
    assert_eq!(h.balances(A), [50, 0, 0, 0]);
    assert_eq!(h.balances(B), [0, 0, 50, 0]);
    assert_eq!(h.transfer(post(2, 1, 50)), R::Ok);
    assert_eq!(h.balances(A), [0, 50, 0, 0]);
    assert_eq!(h.balances(B), [0, 0, 0, 50]);
    let stored = h.ledger.transfer(2).unwrap();
    assert_eq!(
        (
            stored.debit_account_id,
            stored.credit_account_id,
            stored.amount
        ),
        (A, B, 50)
    );
}

#[test]
fn partial_post_posts_less_and_releases_the_whole_reservation() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, P, A, 80, 0)), R::Ok);
    assert_eq!(h.balance(P), 20);
    assert_eq!(h.transfer(post(2, 1, 30)), R::Ok);
    assert_eq!(h.balances(P), [0, 30, 0, 100]);
    assert_eq!(h.balance(P), 70);
    assert_eq!(h.ledger.transfer(2).unwrap().amount, 30);
}

#[test]
fn post_of_zero_posts_the_full_pending_amount() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 25, 0)), R::Ok);
    assert_eq!(h.transfer(post(2, 1, 0)), R::Ok);
    assert_eq!(h.ledger.transfer(2).unwrap().amount, 25);
    // Retrying with 0 or with the resolved amount is the same post.
    assert_eq!(
        h.transfers(vec![post(2, 1, 0), post(2, 1, 25), post(2, 1, 24)]),
        vec![R::Exists, R::Exists, R::ExistsWithDifferentAmount]
    );
}

#[test]
fn void_releases_the_reservation() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, P, A, 80, 0)), R::Ok);
    assert_eq!(h.transfer(void(2, 1)), R::Ok);
    assert_eq!(h.balances(P), [0, 0, 0, 100]);
    assert_eq!(h.balances(A), [0, 0, 0, 0]);
    assert_eq!(h.ledger.transfer(2).unwrap().amount, 80);
}

#[test]
fn post_and_void_check_the_pending_transfer() {
    let mut h = harness();
    assert_eq!(
        h.transfers(vec![pending(1, A, B, 50, 0), transfer(2, A, B, 5)]),
        vec![R::Ok, R::Ok]
    );
    let results = h.transfers(vec![
        post(10, 99, 1),
        post(11, 2, 1),
        NewTransfer {
            debit_account_id: P,
            ..post(12, 1, 1)
        },
        NewTransfer {
            credit_account_id: P,
            ..post(13, 1, 1)
        },
        NewTransfer {
            ledger: usd(),
            ..post(14, 1, 1)
        },
        post(15, 1, 51),
        NewTransfer {
            amount: 49,
            ..void(16, 1)
        },
        NewTransfer {
            amount: 51,
            ..void(17, 1)
        },
    ]);
    assert_eq!(
        results,
        vec![
            R::PendingTransferNotFound,
            R::PendingTransferNotPending,
            R::PendingTransferHasDifferentDebitAccountId,
            R::PendingTransferHasDifferentCreditAccountId,
            R::PendingTransferHasDifferentLedger,
            R::ExceedsPendingTransferAmount,
            R::PendingTransferHasDifferentAmount,
            R::ExceedsPendingTransferAmount,
        ]
    );
    // Naming the accounts explicitly is allowed when they match.
    assert_eq!(
        h.transfer(NewTransfer {
            debit_account_id: A,
            credit_account_id: B,
            ..post(18, 1, 1)
        }),
        R::Ok
    );
}

#[test]
fn post_and_void_field_rules() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 50, 0)), R::Ok);
    let post_and_void =
        TransferFlags::POST_PENDING_TRANSFER.union(TransferFlags::VOID_PENDING_TRANSFER);
    let results = h.transfers(vec![
        with_flags(post(10, 1, 1), post_and_void),
        with_flags(
            post(11, 1, 1),
            TransferFlags::POST_PENDING_TRANSFER.union(TransferFlags::PENDING),
        ),
        with_flags(
            void(12, 1),
            TransferFlags::VOID_PENDING_TRANSFER.union(TransferFlags::CLOSING_CREDIT),
        ),
        post(13, 0, 1),
        post(14, 14, 1),
        NewTransfer {
            timeout_s: 3,
            ..post(15, 1, 1)
        },
    ]);
    assert_eq!(
        results,
        vec![
            R::FlagsAreMutuallyExclusive,
            R::FlagsAreMutuallyExclusive,
            R::FlagsAreMutuallyExclusive,
            R::PendingIdMustNotBeZero,
            R::PendingIdMustBeDifferent,
            R::TimeoutReservedForPendingTransfer,
        ]
    );
}

#[test]
fn pending_transfer_resolves_only_once() {
    let mut h = harness();
    assert_eq!(
        h.transfers(vec![pending(1, A, B, 50, 0), pending(2, A, B, 50, 0)]),
        vec![R::Ok, R::Ok]
    );
    assert_eq!(
        h.transfers(vec![post(10, 1, 10), void(11, 2)]),
        vec![R::Ok, R::Ok]
    );
    let results = h.transfers(vec![
        post(12, 1, 10),
        void(13, 1),
        post(14, 2, 10),
        void(15, 2),
    ]);
    assert_eq!(
        results,
        vec![
            R::PendingTransferAlreadyPosted,
            R::PendingTransferAlreadyPosted,
            R::PendingTransferAlreadyVoided,
            R::PendingTransferAlreadyVoided,
        ]
    );
    assert_eq!(h.balances(A), [0, 10, 0, 0]);
}

#[test]
fn pending_transfer_expires_at_its_deadline_on_the_next_entry() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, P, A, 60, 10)), R::Ok);
    let deadline = h.ledger.transfer(1).unwrap().timestamp + 10 * SECOND_NS;
    // An entry just before the deadline leaves it pending.
    h.now = deadline - 2 * SECOND_NS;
    h.apply(vec![Command::Tick]);
    assert_eq!(h.balance(P), 40);
    // The first entry at or after the deadline voids it before its own commands.
    h.now = deadline - SECOND_NS;
    let results = h.apply(vec![Command::CreateTransfers(vec![post(2, 1, 0)])]);
    assert_eq!(
        results,
        vec![croupier_core::CommandResult::Transfers(vec![
            R::PendingTransferExpired
        ])]
    );
    assert_eq!(h.balance(P), 100);
    assert_eq!(h.balances(A), [0; 4]);
    assert_eq!(
        h.transfers(vec![void(3, 1), post(4, 1, 1)]),
        vec![R::PendingTransferExpired; 2]
    );
}

#[test]
fn expiry_is_recorded_in_both_histories_as_a_void() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 60, 1)), R::Ok);
    h.advance_s(5);
    h.apply(vec![Command::Tick]);
    for account in [A, B] {
        let history = h.ledger.account_transfers(account, 10);
        let newest = &history[0];
        assert!(is_expiry_transfer_id(newest.id));
        assert_eq!((newest.pending_id, newest.amount), (1, 60));
        assert!(newest.flags.contains(TransferFlags::VOID_PENDING_TRANSFER));
        assert_eq!(history[1].id, 1);
    }
}

#[test]
fn expiries_run_in_deadline_order_with_increasing_timestamps() {
    let mut h = harness();
    let results = h.transfers(vec![
        pending(1, A, B, 1, 30),
        pending(2, A, B, 2, 10),
        pending(3, A, B, 3, 20),
    ]);
    assert_eq!(results, vec![R::Ok; 3]);
    h.advance_s(60);
    h.apply(vec![Command::Tick]);
    let voids: Vec<_> = h.ledger.account_transfers(A, 3).into_iter().rev().collect();
    let voided: Vec<_> = voids.iter().map(|t| t.pending_id).collect();
    assert_eq!(voided, vec![2, 3, 1]);
    assert!(voids.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    assert_eq!(h.balances(A), [0; 4]);
}

#[test]
fn pending_without_timeout_never_expires() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 5, 0)), R::Ok);
    h.advance_s(10 * 365 * 24 * 3600);
    h.apply(vec![Command::Tick]);
    assert_eq!(h.transfer(post(2, 1, 0)), R::Ok);
}

#[test]
fn posting_before_the_deadline_cancels_the_expiry() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 5, 3)), R::Ok);
    assert_eq!(h.transfer(post(2, 1, 2)), R::Ok);
    h.advance_s(60);
    h.apply(vec![Command::Tick]);
    assert_eq!(h.balances(A), [0, 2, 0, 0]);
    assert_eq!(h.ledger.account_transfers(A, 10).len(), 2);
}

#[test]
fn closing_debit_closes_the_account_until_voided() {
    let mut h = harness();
    let closing = with_flags(
        pending(1, A, B, 5, 0),
        TransferFlags::PENDING.union(TransferFlags::CLOSING_DEBIT),
    );
    assert_eq!(h.transfer(closing), R::Ok);
    assert!(h
        .ledger
        .account(A)
        .unwrap()
        .flags
        .contains(AccountFlags::CLOSED));
    assert!(!h
        .ledger
        .account(B)
        .unwrap()
        .flags
        .contains(AccountFlags::CLOSED));
    let results = h.transfers(vec![
        transfer(2, A, B, 1),
        transfer(3, B, A, 1),
        post(4, 1, 0),
    ]);
    assert_eq!(
        results,
        vec![
            R::DebitAccountAlreadyClosed,
            R::CreditAccountAlreadyClosed,
            R::DebitAccountAlreadyClosed
        ]
    );
    assert_eq!(h.transfer(void(5, 1)), R::Ok);
    assert!(!h
        .ledger
        .account(A)
        .unwrap()
        .flags
        .contains(AccountFlags::CLOSED));
    assert_eq!(h.transfer(transfer(6, A, B, 1)), R::Ok);
}

#[test]
fn closing_credit_reopens_when_the_pending_expires() {
    let mut h = harness();
    let closing = with_flags(
        pending(1, A, B, 5, 2),
        TransferFlags::PENDING.union(TransferFlags::CLOSING_CREDIT),
    );
    assert_eq!(h.transfer(closing), R::Ok);
    assert!(h
        .ledger
        .account(B)
        .unwrap()
        .flags
        .contains(AccountFlags::CLOSED));
    assert_eq!(
        h.transfer(pending(2, A, B, 1, 0)),
        R::CreditAccountAlreadyClosed
    );
    h.advance_s(5);
    h.apply(vec![Command::Tick]);
    assert!(!h
        .ledger
        .account(B)
        .unwrap()
        .flags
        .contains(AccountFlags::CLOSED));
}

#[test]
fn pending_on_an_account_closed_later_can_be_voided_but_not_posted() {
    let mut h = harness();
    assert_eq!(h.transfer(pending(1, A, B, 5, 0)), R::Ok);
    let closing = with_flags(
        pending(2, A, B, 1, 0),
        TransferFlags::PENDING.union(TransferFlags::CLOSING_CREDIT),
    );
    assert_eq!(h.transfer(closing), R::Ok);
    assert_eq!(h.transfer(post(3, 1, 0)), R::CreditAccountAlreadyClosed);
    assert_eq!(h.transfer(void(4, 1)), R::Ok);
}

#[test]
fn account_history_is_newest_first_and_limited() {
    let mut h = harness();
    let items = (1..=5).map(|id| transfer(id, A, B, id as u64)).collect();
    assert_eq!(h.transfers(items), vec![R::Ok; 5]);
    let ids: Vec<_> = h
        .ledger
        .account_transfers(B, 3)
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, vec![5, 4, 3]);
    assert_eq!(h.ledger.account_transfers(B, 0).len(), 0);
    assert_eq!(h.ledger.account_transfers(B, 100).len(), 5);
    assert!(h.ledger.account_transfers(12345, 10).is_empty());
}

#[test]
fn totals_are_sorted_by_ledger_and_balance() {
    let mut h = harness();
    h.accounts_ok(vec![NewAccount {
        ledger: usd(),
        ..account(41, AccountKind::System)
    }]);
    let usd_transfer = NewTransfer {
        ledger: usd(),
        ..transfer(1, DOLLARS, 41, 7)
    };
    assert_eq!(
        h.transfers(vec![usd_transfer, pending(2, A, B, 3, 0)]),
        vec![R::Ok, R::Ok]
    );
    let totals = h.ledger.totals();
    let ledgers: Vec<_> = totals
        .per_ledger
        .iter()
        .map(|s| s.ledger.to_string())
        .collect();
    assert_eq!(ledgers, vec!["EUR", "USD"]);
    assert_eq!(totals.per_ledger[0].debits_pending, 3);
    assert_eq!(totals.per_ledger[0].credits_pending, 3);
    assert_eq!(totals.per_ledger[1].debits_posted, 7);
    assert_eq!(totals.transfers, 3);
}

#[test]
fn every_transfer_result_code_is_distinct_and_round_trips_through_u8() {
    let codes: std::collections::BTreeSet<_> = R::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), R::ALL.len());
    assert!(R::ALL.len() >= 20);
    for (raw, result) in R::ALL.iter().enumerate() {
        assert_eq!(R::from_u8(raw as u8), Some(*result));
    }
}
