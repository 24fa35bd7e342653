//! The seamless-wallet layer: bet, win, rollback, idempotency by transaction id, tombstones.

mod common;

use common::*;
use croupier_core::ids::{house_account_id, is_reserved_id, wallet_transfer_id};
use croupier_core::{
    AccountFlags, AccountKind, Command, CreateTransferResult, NewAccount, NewTransfer,
    TransferFlags, WalletOutcome as O,
};

const P: u128 = 20;
const Q: u128 = 21;

fn harness() -> Harness {
    Harness::with_players(&[P, Q], 100)
}

fn ok(balance: u128, transfer: Option<u64>) -> O {
    O::Ok {
        balance,
        transfer_id: transfer.map(wallet_transfer_id),
    }
}

#[test]
fn bet_moves_money_from_player_to_the_lazily_created_house() {
    let mut h = harness();
    assert!(h.ledger.account(house_account_id(eur())).is_none());
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    let house = h.ledger.account(house_account_id(eur())).unwrap();
    assert_eq!(house.kind, AccountKind::House);
    assert_eq!(house.flags, AccountFlags::empty());
    assert_eq!(house.credits_posted, 30);
    let t = h.ledger.transfer(wallet_transfer_id(0)).unwrap();
    assert_eq!(
        (t.debit_account_id, t.credit_account_id, t.amount),
        (P, house.id, 30)
    );
    assert_eq!(h.ledger.account_transfers(P, 1)[0].id, t.id);
    assert_eq!(h.balance(P), 70);
}

#[test]
fn insufficient_funds_answers_the_balance_moves_nothing_and_is_remembered() {
    let mut h = harness();
    assert_eq!(
        h.bet("b1", P, "r1", 101),
        O::InsufficientFunds { balance: 100 }
    );
    assert_eq!(h.balances(P), [0, 0, 0, 100]);
    // A deposit later does not change the decided answer to the same transaction.
    assert_eq!(
        h.transfer(transfer(77, BANK, P, 50)),
        CreateTransferResult::Ok
    );
    assert_eq!(
        h.bet("b1", P, "r1", 101),
        O::InsufficientFunds { balance: 100 }
    );
    assert_eq!(h.balance(P), 150);
    assert_eq!(h.bet("b2", P, "r1", 101), ok(49, Some(0)));
}

#[test]
fn balance_counts_pending_debits_but_not_pending_credits() {
    let mut h = harness();
    assert_eq!(
        h.transfer(pending(1, P, BANK, 60, 0)),
        CreateTransferResult::Ok
    );
    assert_eq!(
        h.transfer(pending(2, BANK, P, 500, 0)),
        CreateTransferResult::Ok
    );
    assert_eq!(h.balance(P), 40);
    assert_eq!(
        h.bet("b1", P, "r1", 41),
        O::InsufficientFunds { balance: 40 }
    );
}

#[test]
fn duplicate_transaction_gets_the_original_answer_and_changes_nothing() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.bet("b2", P, "r1", 10), ok(60, Some(1)));
    assert_eq!(
        h.bet("b1", P, "r1", 30),
        ok(70, Some(0)),
        "the original answer, balance included"
    );
    assert_eq!(h.balance(P), 60);
    assert_eq!(h.win("w1", P, "r1", 5), ok(65, Some(2)));
    assert_eq!(h.win("w1", P, "r1", 5), ok(65, Some(2)));
    assert_eq!(h.balance(P), 65);
}

#[test]
fn same_transaction_id_with_another_body_conflicts() {
    let mut h = harness();
    assert_eq!(h.bet("t1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.bet("t1", P, "r1", 31), O::TransactionConflict);
    assert_eq!(h.bet("t1", Q, "r1", 30), O::TransactionConflict);
    assert_eq!(h.bet("t1", P, "r2", 30), O::TransactionConflict);
    assert_eq!(h.win("t1", P, "r1", 30), O::TransactionConflict);
    assert_eq!(h.rollback("t1", P, "r1", "x"), O::TransactionConflict);
    assert_eq!(h.balance(P), 70);
}

#[test]
fn win_moves_money_from_house_to_player_even_when_closed() {
    let mut h = harness();
    let closing = NewTransfer {
        flags: TransferFlags::PENDING.union(TransferFlags::CLOSING_DEBIT),
        ..pending(1, P, BANK, 10, 0)
    };
    assert_eq!(h.transfer(closing), CreateTransferResult::Ok);
    assert_eq!(h.bet("b1", P, "r1", 5), O::PlayerAccountClosed);
    assert_eq!(h.win("w1", P, "r1", 25), ok(115, Some(0)));
    let house = h.ledger.account(house_account_id(eur())).unwrap();
    assert_eq!(house.debits_posted, 25, "the house may go below zero");
}

#[test]
fn win_of_zero_settles_the_round_without_moving_money() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.win("w1", P, "r1", 0), ok(70, None));
    assert_eq!(h.rollback("rb1", P, "r1", "b1"), O::BetAlreadySettled);
    assert_eq!(h.ledger.totals().transfers, 3, "two deposits and the bet");
}

#[test]
fn rollback_reverses_an_unsettled_bet_exactly_once() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.rollback("rb1", P, "r1", "b1"), ok(100, Some(1)));
    let refund = h.ledger.transfer(wallet_transfer_id(1)).unwrap();
    assert_eq!(
        (
            refund.debit_account_id,
            refund.credit_account_id,
            refund.amount
        ),
        (house_account_id(eur()), P, 30)
    );
    // The same rollback again: the original answer. Another rollback of the same bet: ok,
    // but no money moves.
    assert_eq!(h.rollback("rb1", P, "r1", "b1"), ok(100, Some(1)));
    assert_eq!(h.rollback("rb2", P, "r1", "b1"), ok(100, None));
    assert_eq!(h.balance(P), 100);
    // The bet retried after its rollback still answers its original answer and moves nothing.
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.balance(P), 100);
}

#[test]
fn bet_settled_by_a_win_cannot_be_rolled_back() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.win("w1", P, "r1", 50), ok(120, Some(1)));
    assert_eq!(h.rollback("rb1", P, "r1", "b1"), O::BetAlreadySettled);
    assert_eq!(h.rollback("rb1", P, "r1", "b1"), O::BetAlreadySettled);
    assert_eq!(h.balance(P), 120);
    // A win for another round or another player does not settle this one.
    assert_eq!(h.bet("b2", P, "r2", 10), ok(110, Some(2)));
    assert_eq!(h.win("w2", Q, "r2", 1), ok(101, Some(3)));
    assert_eq!(h.rollback("rb2", P, "r2", "b2"), ok(120, Some(4)));
}

#[test]
fn rollback_of_unknown_bet_leaves_a_tombstone_that_refuses_the_late_bet() {
    let mut h = harness();
    assert_eq!(h.rollback("rb1", P, "r1", "late"), ok(100, None));
    assert_eq!(
        h.ledger.wallet_outcome("late"),
        Some(O::BetAlreadyRolledBack)
    );
    assert_eq!(h.bet("late", P, "r1", 30), O::BetAlreadyRolledBack);
    assert_eq!(h.bet("late", P, "r1", 30), O::BetAlreadyRolledBack);
    assert_eq!(h.balance(P), 100);
    // A second rollback of the same unknown bet is fine and moves nothing.
    assert_eq!(h.rollback("rb2", P, "r1", "late"), ok(100, None));
    // The tombstoned id cannot be reused for a win.
    assert_eq!(h.win("late", P, "r1", 5), O::TransactionConflict);
}

#[test]
fn rollback_of_a_win_another_players_bet_or_itself_is_invalid() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.win("w1", P, "r1", 5), ok(75, Some(1)));
    assert_eq!(h.rollback("rb1", P, "r1", "w1"), O::RollbackTargetInvalid);
    assert_eq!(h.rollback("rb2", Q, "r1", "b1"), O::RollbackTargetInvalid);
    assert_eq!(h.rollback("rb3", P, "r1", "rb3"), O::RollbackTargetInvalid);
    assert_eq!(h.rollback("rb4", P, "r1", "rb1"), O::RollbackTargetInvalid);
    assert_eq!(h.rollback("rb5", Q, "r1", "ghost"), ok(100, None));
    assert_eq!(
        h.rollback("rb6", P, "r1", "ghost"),
        O::RollbackTargetInvalid,
        "tombstone of another player"
    );
    assert_eq!(h.balance(P), 75);
}

/// Regression: a rollback naming another round than its bet's used to refund the bet (and
/// judged settlement by the rollback's round, so a settled bet could be refunded). Now it is
/// refused with its own code, the refusal is remembered, and nothing moves.
#[test]
fn rollback_naming_another_round_than_its_bet_is_refused_as_round_mismatch() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.rollback("rb1", P, "r2", "b1"), O::RoundMismatch);
    assert_eq!(h.rollback("rb1", P, "r2", "b1"), O::RoundMismatch, "retry");
    assert_eq!(h.balance(P), 70);
    assert_eq!(h.rollback("rb2", P, "r1", "b1"), ok(100, Some(1)));
}

#[test]
fn rollback_in_an_unsettled_round_cannot_refund_a_bet_of_a_settled_round() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 30), ok(70, Some(0)));
    assert_eq!(h.win("w1", P, "r1", 0), ok(70, None));
    assert_eq!(h.rollback("rb1", P, "r2", "b1"), O::RoundMismatch);
    assert_eq!(h.balance(P), 70);
}

#[test]
fn a_refused_bet_named_with_another_round_is_still_a_round_mismatch() {
    let mut h = harness();
    assert_eq!(
        h.bet("b1", P, "r1", 500),
        O::InsufficientFunds { balance: 100 }
    );
    assert_eq!(h.rollback("rb1", P, "r2", "b1"), O::RoundMismatch);
    assert_eq!(h.balance(P), 100);
}

#[test]
fn rollback_of_a_refused_bet_moves_nothing() {
    let mut h = harness();
    assert_eq!(
        h.bet("b1", P, "r1", 500),
        O::InsufficientFunds { balance: 100 }
    );
    assert_eq!(h.rollback("rb1", P, "r1", "b1"), ok(100, None));
    assert_eq!(h.balance(P), 100);
}

#[test]
fn answers_that_cannot_be_judged_yet_are_not_remembered() {
    let mut h = harness();
    h.accounts_ok(vec![account(30, AccountKind::Bonus)]);
    assert_eq!(h.bet("b1", 99, "r1", 10), O::PlayerNotFound);
    assert_eq!(h.bet("b2", 30, "r1", 10), O::NotAPlayerAccount);
    let dollars = croupier_core::WalletBet {
        ledger: usd(),
        ..bet("b3", P, "r1", 10)
    };
    assert_eq!(h.wallet(Command::WalletBet(dollars)), O::LedgerMismatch);
    assert_eq!(h.bet("b4", P, "r1", 0), O::AmountMustNotBeZero);
    assert_eq!(h.win("w1", 99, "r1", 10), O::PlayerNotFound);
    assert_eq!(h.rollback("rb1", 99, "r1", "b1"), O::PlayerNotFound);
    for tx in ["b1", "b2", "b3", "b4", "w1", "rb1"] {
        assert_eq!(h.ledger.wallet_outcome(tx), None, "{tx} must not be stored");
    }
    // Once the player exists, the same requests succeed.
    h.accounts_ok(vec![account(99, AccountKind::Player)]);
    assert_eq!(
        h.transfer(transfer(5, BANK, 99, 10)),
        CreateTransferResult::Ok
    );
    assert_eq!(h.bet("b1", 99, "r1", 10), ok(0, Some(0)));
    assert_eq!(h.win("w1", 99, "r1", 10), ok(10, Some(1)));
}

#[test]
fn wallet_transfers_have_reserved_ids_that_clients_cannot_take() {
    let mut h = harness();
    assert_eq!(h.bet("b1", P, "r1", 1), ok(99, Some(0)));
    let id = wallet_transfer_id(0);
    assert!(is_reserved_id(id));
    assert_eq!(
        h.transfer(transfer(id, BANK, P, 1)),
        CreateTransferResult::IdMustNotBeReserved
    );
    // The house account can still be a counterparty of client transfers.
    let funding = NewTransfer {
        ..transfer(6, BANK, house_account_id(eur()), 1000)
    };
    assert_eq!(h.transfer(funding), CreateTransferResult::Ok);
}

#[test]
fn each_ledger_gets_its_own_house() {
    let mut h = harness();
    h.accounts_ok(vec![NewAccount {
        ledger: usd(),
        ..account(40, AccountKind::Player)
    }]);
    let usd_win = croupier_core::WalletWin {
        ledger: usd(),
        ..win("w1", 40, "r1", 3)
    };
    assert_eq!(h.wallet(Command::WalletWin(usd_win)), ok(3, Some(0)));
    assert_eq!(
        h.ledger
            .account(house_account_id(usd()))
            .unwrap()
            .debits_posted,
        3
    );
    assert!(h.ledger.account(house_account_id(eur())).is_none());
}

#[test]
#[should_panic(expected = "invalid key")]
fn wallet_command_with_an_oversized_key_is_a_caller_bug() {
    let mut ledger = croupier_core::MemoryLedger::new();
    let long = "x".repeat(croupier_core::wallet::WALLET_KEY_LEN_MAX + 1);
    ledger.apply(T0, &[Command::WalletBet(bet(&long, P, "r1", 1))]);
}
