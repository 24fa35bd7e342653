//! Deposits and withdrawals through banks in the ledger: each step once and in order, money
//! moved exactly once whatever is repeated, limits checked when the money arrives, the
//! reservation only the payment commands can resolve, and all of it through checkpoints and
//! the log codec.

mod common;

use common::{eur, SECOND_NS, T0};
use croupier_core::codec::{decode_proposal, encode_proposal};
use croupier_core::command::{EntryStamp, Proposal};
use croupier_core::compliance::limit_slot;
use croupier_core::compliance::{
    ComplianceCommand, LimitChange, LimitKind, LimitsRequest, Period, Refusal, LIMIT_SLOTS,
};
use croupier_core::ids::{
    clearing_account_id, in_flight_account_id, player_id, player_wallet_account_id,
    returns_account_id,
};
use croupier_core::payments::{
    DepositState, Payee, PayeeAccount, PaymentCommand, PaymentOutcome, WithdrawalDecision,
    WithdrawalState,
};
use croupier_core::players::NewPlayer;
use croupier_core::{
    Command, CommandResult, CreateTransferResult, MemoryLedger, NewTransfer, TransferFlags,
};

fn casino() -> MemoryLedger {
    let mut ledger = MemoryLedger::new();
    let players = ["alice", "bob"].map(|name| {
        Command::CreatePlayer(NewPlayer {
            username: name.into(),
            password_hash: "$argon2id$v=19$x".into(),
            currencies: vec![eur()],
        })
    });
    ledger.apply(T0, &players);
    ledger
}

fn pay(ledger: &mut MemoryLedger, command: PaymentCommand) -> PaymentOutcome {
    let at = ledger.last_timestamp().max(T0) + SECOND_NS;
    match ledger.apply(at, &[Command::Payment(command)]).pop() {
        Some(CommandResult::Payment(outcome)) => outcome,
        other => panic!("expected a payment result, got {other:?}"),
    }
}

fn balance(ledger: &MemoryLedger) -> u128 {
    ledger
        .player_balance(player_wallet_account_id(0, 0))
        .unwrap()
        .1
}

/// Debits less credits of an account (what a clearing account says the bank received).
fn net_debits(ledger: &MemoryLedger, id: u128) -> i128 {
    ledger
        .account(id)
        .map_or(0, |a| a.debits_posted as i128 - a.credits_posted as i128)
}

fn open_deposit(id: u128, amount: u64, connector: &str) -> PaymentCommand {
    PaymentCommand::OpenDeposit {
        deposit_id: id,
        player_id: player_id(0),
        ledger: eur(),
        amount,
        connector: connector.into(),
    }
}

fn deposited(ledger: &mut MemoryLedger, id: u128, amount: u64) {
    assert_eq!(
        pay(ledger, open_deposit(id, amount, "bank-a")),
        PaymentOutcome::Ok
    );
    let started = PaymentCommand::DepositStarted {
        deposit_id: id,
        consent_id: format!("consent-{id}"),
        authorisation_url: "http://bank/authorize".into(),
    };
    assert_eq!(pay(ledger, started), PaymentOutcome::Ok);
    assert_eq!(
        pay(ledger, PaymentCommand::SettleDeposit { deposit_id: id }),
        PaymentOutcome::Ok
    );
}

fn payee() -> Payee {
    Payee {
        account: PayeeAccount::Iban("DE89370400440532013000".into()),
        name: "Alice Example".into(),
    }
}

fn request(id: u128, amount: u64) -> PaymentCommand {
    PaymentCommand::RequestWithdrawal {
        withdrawal_id: id,
        player_id: player_id(0),
        ledger: eur(),
        amount,
        payee: payee(),
    }
}

fn approve(id: u128, connector: &str) -> PaymentCommand {
    PaymentCommand::DecideWithdrawal {
        withdrawal_id: id,
        decision: WithdrawalDecision::Approve {
            connector: connector.into(),
        },
        reasons: vec!["score_low".into(), format!("route:{connector}")],
    }
}

/// Deposit 1 of 1,000 settled, withdrawal 50 of 700 approved for bank-a.
fn one_approved_withdrawal() -> MemoryLedger {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 1_000);
    assert_eq!(pay(&mut ledger, request(50, 700)), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, approve(50, "bank-a")), PaymentOutcome::Ok);
    ledger
}

#[test]
fn a_settled_deposit_credits_the_wallet_once_from_the_banks_clearing_account() {
    let mut ledger = casino();
    deposited(&mut ledger, 7, 2_500);
    // The bank's notification and the status poll both say settled: one credit.
    assert_eq!(
        pay(&mut ledger, PaymentCommand::SettleDeposit { deposit_id: 7 }),
        PaymentOutcome::Ok
    );
    assert_eq!(balance(&ledger), 2_500);
    assert_eq!(net_debits(&ledger, clearing_account_id(0, eur())), 2_500);
    let record = ledger.deposit(7).unwrap();
    assert_eq!(record.state, DepositState::Settled);
    assert_eq!(record.consent_id, "consent-7");
    // Settled is final: a late rejection changes nothing.
    let late = PaymentCommand::FailDeposit {
        deposit_id: 7,
        expired: false,
        reason: "RJCT".into(),
    };
    assert_eq!(pay(&mut ledger, late), PaymentOutcome::WrongState);
    assert!(ledger.ledger.open_deposits(0, 10).is_empty());
    ledger.check_invariants().unwrap();
}

#[test]
fn a_rejected_or_expired_deposit_moves_no_money_and_cannot_settle_later() {
    let mut ledger = casino();
    assert_eq!(
        pay(&mut ledger, open_deposit(1, 100, "bank-a")),
        PaymentOutcome::Ok
    );
    assert_eq!(
        pay(&mut ledger, open_deposit(2, 100, "bank-b")),
        PaymentOutcome::Ok
    );
    assert_eq!(ledger.ledger.open_deposits(0, 10).len(), 2);
    let rejected = PaymentCommand::FailDeposit {
        deposit_id: 1,
        expired: false,
        reason: "AM04".into(),
    };
    let expired = PaymentCommand::FailDeposit {
        deposit_id: 2,
        expired: true,
        reason: String::new(),
    };
    assert_eq!(pay(&mut ledger, rejected.clone()), PaymentOutcome::Ok);
    assert_eq!(
        pay(&mut ledger, rejected),
        PaymentOutcome::Ok,
        "a repeat is a no-op"
    );
    assert_eq!(pay(&mut ledger, expired), PaymentOutcome::Ok);
    for id in [1, 2] {
        assert_eq!(
            pay(
                &mut ledger,
                PaymentCommand::SettleDeposit { deposit_id: id }
            ),
            PaymentOutcome::WrongState
        );
    }
    assert_eq!(ledger.deposit(2).unwrap().state, DepositState::Expired);
    assert_eq!(balance(&ledger), 0);
    assert!(ledger.account(clearing_account_id(0, eur())).is_none());
}

#[test]
fn a_deposit_id_reused_for_another_payment_is_a_conflict() {
    let mut ledger = casino();
    assert_eq!(
        pay(&mut ledger, open_deposit(1, 100, "bank-a")),
        PaymentOutcome::Ok
    );
    assert_eq!(
        pay(&mut ledger, open_deposit(1, 100, "bank-a")),
        PaymentOutcome::Ok
    );
    assert_eq!(
        pay(&mut ledger, open_deposit(1, 101, "bank-a")),
        PaymentOutcome::Conflict
    );
    assert_eq!(
        pay(&mut ledger, PaymentCommand::SettleDeposit { deposit_id: 9 }),
        PaymentOutcome::NotFound
    );
}

fn deposit_limit(amount: u64) -> Command {
    let mut money = [None; LIMIT_SLOTS];
    money[limit_slot(LimitKind::Deposit, Period::Day)] = Some(LimitChange::Set(amount));
    Command::Compliance(ComplianceCommand::SetLimits(LimitsRequest {
        player_id: player_id(0),
        ledger: eur(),
        money,
        session_minutes: None,
    }))
}

#[test]
fn deposit_limits_are_checked_when_the_deposit_opens_and_again_when_the_money_arrives() {
    let mut ledger = casino();
    ledger.apply(T0 + 1, &[deposit_limit(1_000)]);
    assert_eq!(
        pay(&mut ledger, open_deposit(1, 1_001, "bank-a")),
        PaymentOutcome::Refused(Refusal::DepositLimitReached)
    );
    // Two deposits that each fit open; the second to settle no longer does.
    assert_eq!(
        pay(&mut ledger, open_deposit(2, 600, "bank-a")),
        PaymentOutcome::Ok
    );
    assert_eq!(
        pay(&mut ledger, open_deposit(3, 600, "bank-a")),
        PaymentOutcome::Ok
    );
    assert_eq!(
        pay(&mut ledger, PaymentCommand::SettleDeposit { deposit_id: 2 }),
        PaymentOutcome::Ok
    );
    assert_eq!(
        pay(&mut ledger, PaymentCommand::SettleDeposit { deposit_id: 3 }),
        PaymentOutcome::Ok
    );
    assert_eq!(balance(&ledger), 600);
    assert_eq!(
        ledger.deposit(3).unwrap().state,
        DepositState::Refused(Refusal::DepositLimitReached)
    );
    // The bank has both: the clearing account says so, the refused one waits to go back.
    assert_eq!(net_debits(&ledger, clearing_account_id(0, eur())), 1_200);
    ledger.check_invariants().unwrap();
}

/// Deposits 2 and 3 of 600 each open under a limit of 1,000: 3 is refused when it settles.
fn one_deposit_refused_at_settlement() -> MemoryLedger {
    let mut ledger = casino();
    ledger.apply(T0 + 1, &[deposit_limit(1_000)]);
    for id in [2, 3] {
        assert_eq!(
            pay(&mut ledger, open_deposit(id, 600, "bank-a")),
            PaymentOutcome::Ok
        );
    }
    for deposit_id in [2, 3] {
        let settle = PaymentCommand::SettleDeposit { deposit_id };
        assert_eq!(pay(&mut ledger, settle), PaymentOutcome::Ok);
    }
    ledger
}

fn deposit_state(ledger: &MemoryLedger, id: u128) -> DepositState {
    ledger.deposit(id).unwrap().state
}

#[test]
fn a_refused_deposit_goes_back_to_the_payer_once_and_empties_the_returns_account() {
    let mut ledger = one_deposit_refused_at_settlement();
    let returns = returns_account_id(eur());
    let clearing = clearing_account_id(0, eur());
    assert_eq!(net_debits(&ledger, returns), -600);
    let start = |deposit_id, payee| PaymentCommand::ReturnDeposit { deposit_id, payee };
    let accepted = |payment_id: &str| PaymentCommand::ReturnAccepted {
        deposit_id: 3,
        payment_id: payment_id.into(),
    };
    let settle = PaymentCommand::SettleReturn { deposit_id: 3 };
    // Out of order: nothing to accept or settle yet; a credited deposit is never returned.
    assert_eq!(pay(&mut ledger, settle.clone()), PaymentOutcome::WrongState);
    assert_eq!(
        pay(&mut ledger, accepted("pay-9")),
        PaymentOutcome::WrongState
    );
    assert_eq!(
        pay(&mut ledger, start(2, payee())),
        PaymentOutcome::WrongState
    );
    assert_eq!(pay(&mut ledger, start(3, payee())), PaymentOutcome::Ok);
    assert_eq!(
        pay(&mut ledger, start(3, payee())),
        PaymentOutcome::Ok,
        "a repeat"
    );
    let mut other = payee();
    other.name = "Someone Else".into();
    assert_eq!(
        pay(&mut ledger, start(3, other)),
        PaymentOutcome::WrongState
    );
    let record = ledger.deposit(3).unwrap();
    assert_eq!(record.state, DepositState::Returning);
    assert_eq!(record.reason, "deposit_limit_reached");
    assert_eq!(pay(&mut ledger, accepted("pay-9")), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, accepted("pay-9")), PaymentOutcome::Ok);
    assert_eq!(
        pay(&mut ledger, accepted("pay-10")),
        PaymentOutcome::WrongState
    );
    // Not settled yet: the money is still parked.
    assert_eq!(net_debits(&ledger, returns), -600);
    assert_eq!(pay(&mut ledger, settle.clone()), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, settle), PaymentOutcome::Ok, "moved once");
    assert_eq!(deposit_state(&ledger, 3), DepositState::Returned);
    assert_eq!(net_debits(&ledger, returns), 0);
    assert_eq!(net_debits(&ledger, clearing), 600, "1,200 in, 600 back out");
    assert_eq!(balance(&ledger), 600, "the player's wallet never saw it");
    let fail = PaymentCommand::FailReturn {
        deposit_id: 3,
        reason: "late".into(),
    };
    assert_eq!(pay(&mut ledger, fail), PaymentOutcome::WrongState);
    ledger.check_invariants().unwrap();
    let restored = MemoryLedger::restore(&ledger.checkpoint(), ledger.history.clone()).unwrap();
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
    assert_eq!(restored.deposit(3), ledger.deposit(3));
}

#[test]
fn a_return_that_cannot_be_made_leaves_the_money_in_the_returns_account() {
    let mut ledger = one_deposit_refused_at_settlement();
    assert_eq!(
        ledger.ledger.open_deposits(0, 10).len(),
        1,
        "the refused one is open"
    );
    let fail = PaymentCommand::FailReturn {
        deposit_id: 3,
        reason: "payer_account_unknown".into(),
    };
    assert_eq!(pay(&mut ledger, fail.clone()), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, fail), PaymentOutcome::Ok);
    let record = ledger.deposit(3).unwrap();
    assert_eq!(record.state, DepositState::ReturnFailed);
    assert_eq!(record.reason, "payer_account_unknown");
    assert!(ledger.ledger.open_deposits(0, 10).is_empty());
    assert_eq!(net_debits(&ledger, returns_account_id(eur())), -600);
    let start = PaymentCommand::ReturnDeposit {
        deposit_id: 3,
        payee: payee(),
    };
    assert_eq!(pay(&mut ledger, start), PaymentOutcome::WrongState);
    ledger.check_invariants().unwrap();
}

#[test]
fn a_withdrawal_reserves_then_pays_through_the_clearing_account_once() {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 10_000);
    assert_eq!(pay(&mut ledger, request(50, 4_000)), PaymentOutcome::Ok);
    assert_eq!(balance(&ledger), 6_000, "reserved at once");
    assert_eq!(
        pay(&mut ledger, request(50, 4_000)),
        PaymentOutcome::Ok,
        "a retry"
    );
    assert_eq!(balance(&ledger), 6_000);
    assert_eq!(pay(&mut ledger, approve(50, "bank-b")), PaymentOutcome::Ok);
    assert_eq!(
        pay(&mut ledger, approve(50, "bank-b")),
        PaymentOutcome::Ok,
        "a repeat"
    );
    let accepted = PaymentCommand::PayoutAccepted {
        withdrawal_id: 50,
        attempt: 0,
        payment_id: "p-1".into(),
    };
    assert_eq!(pay(&mut ledger, accepted), PaymentOutcome::Ok);
    let other_id = PaymentCommand::PayoutAccepted {
        withdrawal_id: 50,
        attempt: 0,
        payment_id: "p-2".into(),
    };
    assert_eq!(pay(&mut ledger, other_id), PaymentOutcome::WrongState);
    let settle = PaymentCommand::SettlePayout {
        withdrawal_id: 50,
        attempt: 0,
    };
    assert_eq!(pay(&mut ledger, settle.clone()), PaymentOutcome::Ok);
    assert_eq!(
        pay(&mut ledger, settle),
        PaymentOutcome::Ok,
        "the notification after the poll"
    );
    let record = ledger.withdrawal(50).unwrap();
    assert_eq!(record.state, WithdrawalState::Paid);
    assert_eq!(record.reasons, ["score_low", "route:bank-b"]);
    assert_eq!(balance(&ledger), 6_000);
    // bank-a took the deposit (connector 0), bank-b paid the withdrawal (connector 1).
    assert_eq!(net_debits(&ledger, clearing_account_id(1, eur())), -4_000);
    assert_eq!(net_debits(&ledger, in_flight_account_id(eur())), 0);
    ledger.check_invariants().unwrap();
}

#[test]
fn a_withdrawal_past_the_balance_is_refused_with_nothing_reserved() {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 100);
    assert_eq!(
        pay(&mut ledger, request(50, 101)),
        PaymentOutcome::TransferRefused(CreateTransferResult::ExceedsCredits)
    );
    assert_eq!(balance(&ledger), 100);
    assert_eq!(
        pay(&mut ledger, approve(50, "bank-a")),
        PaymentOutcome::NotFound
    );
}

#[test]
fn a_failed_payout_fails_over_then_refunds_exactly_once() {
    let mut ledger = one_approved_withdrawal();
    let fail_over = PaymentCommand::FailPayout {
        withdrawal_id: 50,
        attempt: 0,
        reason: "retryable".into(),
        next_connector: Some("bank-b".into()),
        leader_term: None,
    };
    assert_eq!(pay(&mut ledger, fail_over.clone()), PaymentOutcome::Ok);
    assert_eq!(
        pay(&mut ledger, fail_over),
        PaymentOutcome::Ok,
        "a repeat adds no attempt"
    );
    let record = ledger.withdrawal(50).unwrap();
    assert_eq!(record.attempts.len(), 2);
    assert_eq!(record.current_attempt().unwrap().1.connector, "bank-b");
    // The first attempt's late settlement is refused: only the current attempt can pay.
    let stale = PaymentCommand::SettlePayout {
        withdrawal_id: 50,
        attempt: 0,
    };
    assert_eq!(pay(&mut ledger, stale), PaymentOutcome::WrongState);
    let declined = PaymentCommand::FailPayout {
        withdrawal_id: 50,
        attempt: 1,
        reason: "AC01".into(),
        next_connector: None,
        leader_term: None,
    };
    assert_eq!(pay(&mut ledger, declined.clone()), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, declined), PaymentOutcome::Ok);
    assert_eq!(balance(&ledger), 1_000, "refunded once");
    assert_eq!(
        ledger.withdrawal(50).unwrap().state,
        WithdrawalState::Refunded
    );
    assert!(ledger.ledger.open_withdrawals(0, 10).is_empty());
    ledger.check_invariants().unwrap();
}

/// Regression: a fail-over was not bound to the leadership that decided it, so a deposed
/// leader's (forwarded to the new leader, or committed by it) could move an attempt the new
/// leader was sending to another bank, and both banks paid.
#[test]
fn a_fail_over_bound_to_a_term_applies_only_in_an_entry_of_that_term() {
    let mut ledger = one_approved_withdrawal();
    let fail_over = |term| {
        Command::Payment(PaymentCommand::FailPayout {
            withdrawal_id: 50,
            attempt: 0,
            reason: "retryable:bank-a".into(),
            next_connector: Some("bank-b".into()),
            leader_term: Some(term),
        })
    };
    let in_term = |ledger: &mut MemoryLedger, term, command| {
        let at = ledger.last_timestamp() + SECOND_NS;
        let stamp = EntryStamp {
            timestamp_ns: at,
            term,
        };
        ledger.apply_in_term(stamp, &[command]).pop()
    };
    let stale = in_term(&mut ledger, 8, fail_over(7));
    assert_eq!(
        stale,
        Some(CommandResult::Payment(PaymentOutcome::LeaderChanged))
    );
    let record = ledger.withdrawal(50).unwrap();
    assert_eq!(record.attempts.len(), 1, "nothing changed");
    assert!(record.attempts[0].failure.is_empty());
    let current = in_term(&mut ledger, 8, fail_over(8));
    assert_eq!(current, Some(CommandResult::Payment(PaymentOutcome::Ok)));
    let record = ledger.withdrawal(50).unwrap();
    assert_eq!(record.current_attempt().unwrap().1.connector, "bank-b");
    ledger.check_invariants().unwrap();
}

#[test]
fn a_rejected_withdrawal_voids_its_reservation() {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 1_000);
    pay(&mut ledger, request(50, 700));
    let reject = PaymentCommand::DecideWithdrawal {
        withdrawal_id: 50,
        decision: WithdrawalDecision::Reject,
        reasons: vec!["name_mismatch".into()],
    };
    assert_eq!(pay(&mut ledger, reject), PaymentOutcome::Ok);
    assert_eq!(balance(&ledger), 1_000);
    assert_eq!(
        pay(&mut ledger, approve(50, "bank-a")),
        PaymentOutcome::WrongState
    );
}

#[test]
fn a_held_withdrawal_opens_a_case_and_cannot_be_paid_until_it_is_cleared() {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 1_000);
    pay(&mut ledger, request(50, 700));
    let hold = PaymentCommand::DecideWithdrawal {
        withdrawal_id: 50,
        decision: WithdrawalDecision::Hold {
            case_id: 77,
            score: 80,
        },
        reasons: vec!["payee_name_mismatch".into()],
    };
    assert_eq!(pay(&mut ledger, hold), PaymentOutcome::Ok);
    let record = ledger.withdrawal(50).unwrap();
    assert_eq!((record.state, record.case_id), (WithdrawalState::Held, 77));
    let case = ledger.ledger.case(77).unwrap();
    assert_eq!(case.reasons, ["payee_name_mismatch"]);
    assert_eq!(
        pay(&mut ledger, approve(50, "bank-a")),
        PaymentOutcome::Refused(Refusal::AccountFrozen)
    );
    assert_eq!(balance(&ledger), 300, "still reserved");
    let clear = croupier_core::cases::CaseCommand::Decide {
        case_id: 77,
        decision: croupier_core::cases::CaseDecision::Clear,
        text: String::new(),
        by: "ops".into(),
    };
    ledger.apply(
        T0 + 100 * SECOND_NS,
        &[Command::Compliance(ComplianceCommand::Case(clear))],
    );
    assert_eq!(pay(&mut ledger, approve(50, "bank-a")), PaymentOutcome::Ok);
    assert_eq!(
        ledger.withdrawal(50).unwrap().state,
        WithdrawalState::Sending
    );
}

#[test]
fn a_client_cannot_resolve_a_withdrawal_reservation() {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 1_000);
    pay(&mut ledger, request(50, 700));
    let reservation = ledger.withdrawal(50).unwrap().reservation_id;
    let void = NewTransfer {
        id: 123,
        debit_account_id: 0,
        credit_account_id: 0,
        amount: 0,
        ledger: eur(),
        flags: TransferFlags::VOID_PENDING_TRANSFER,
        pending_id: reservation,
        timeout_s: 0,
    };
    let results = ledger.apply(
        T0 + 100 * SECOND_NS,
        &[Command::CreateTransfers(vec![void])],
    );
    assert_eq!(
        results,
        [CommandResult::Transfers(vec![
            CreateTransferResult::PendingTransferNotFound
        ])]
    );
    assert_eq!(balance(&ledger), 300);
}

fn busy() -> MemoryLedger {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 10_000);
    pay(&mut ledger, open_deposit(2, 100, "bank-b"));
    pay(&mut ledger, request(50, 700));
    pay(&mut ledger, approve(50, "bank-a"));
    pay(
        &mut ledger,
        PaymentCommand::PayoutAccepted {
            withdrawal_id: 50,
            attempt: 0,
            payment_id: "p".into(),
        },
    );
    let sort_code = Payee {
        account: PayeeAccount::SortCode {
            sort_code: "040004".into(),
            account_number: "12345678".into(),
        },
        name: "A".into(),
    };
    pay(
        &mut ledger,
        PaymentCommand::RequestWithdrawal {
            withdrawal_id: 51,
            player_id: player_id(0),
            ledger: eur(),
            amount: 5,
            payee: sort_code,
        },
    );
    ledger
}

#[test]
fn payments_survive_a_checkpoint_byte_for_byte() {
    let mut ledger = busy();
    let checkpoint = ledger.checkpoint();
    assert_eq!(checkpoint[0], 13);
    let mut restored = MemoryLedger::restore(&checkpoint, ledger.history.clone()).unwrap();
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
    assert_eq!(restored.ledger.open_withdrawals(0, 10).len(), 2);
    assert_eq!(restored.ledger.open_deposits(0, 10).len(), 1);
    // And both go on the same way.
    let settle = PaymentCommand::SettlePayout {
        withdrawal_id: 50,
        attempt: 0,
    };
    assert_eq!(pay(&mut restored, settle.clone()), pay(&mut ledger, settle));
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
}

#[test]
fn every_payment_command_and_outcome_round_trips_through_the_log_codec() {
    let commands = vec![
        open_deposit(1, 5, "bank-a"),
        PaymentCommand::DepositStarted {
            deposit_id: 1,
            consent_id: "c".into(),
            authorisation_url: String::new(),
        },
        PaymentCommand::SettleDeposit { deposit_id: 1 },
        PaymentCommand::FailDeposit {
            deposit_id: 1,
            expired: true,
            reason: "U028".into(),
        },
        request(2, 9),
        approve(2, "bank-b"),
        PaymentCommand::DecideWithdrawal {
            withdrawal_id: 2,
            decision: WithdrawalDecision::Hold {
                case_id: 3,
                score: 100,
            },
            reasons: vec![],
        },
        PaymentCommand::DecideWithdrawal {
            withdrawal_id: 2,
            decision: WithdrawalDecision::Reject,
            reasons: vec![],
        },
        PaymentCommand::PayoutAccepted {
            withdrawal_id: 2,
            attempt: 1,
            payment_id: "x".into(),
        },
        PaymentCommand::SettlePayout {
            withdrawal_id: 2,
            attempt: 7,
        },
        PaymentCommand::FailPayout {
            withdrawal_id: 2,
            attempt: 0,
            reason: "r".into(),
            next_connector: None,
            leader_term: None,
        },
        PaymentCommand::FailPayout {
            withdrawal_id: 2,
            attempt: 0,
            reason: "r".into(),
            next_connector: Some("b".into()),
            leader_term: None,
        },
        PaymentCommand::FailPayout {
            withdrawal_id: 2,
            attempt: 1,
            reason: "retryable:bank-a".into(),
            next_connector: Some("bank-b".into()),
            leader_term: Some(u64::MAX - 3),
        },
        PaymentCommand::ReturnDeposit {
            deposit_id: 1,
            payee: payee(),
        },
        PaymentCommand::ReturnAccepted {
            deposit_id: 1,
            payment_id: "pay-1".into(),
        },
        PaymentCommand::SettleReturn { deposit_id: 1 },
        PaymentCommand::FailReturn {
            deposit_id: 1,
            reason: "payer_account_unknown".into(),
        },
    ];
    let proposal = Proposal {
        timestamp_ns: T0,
        commands: commands.into_iter().map(Command::Payment).collect(),
    };
    let mut bytes = Vec::new();
    encode_proposal(&proposal, &mut bytes);
    assert_eq!(decode_proposal(&bytes).unwrap(), proposal);
}

#[test]
fn payment_outcomes_round_trip_as_results() {
    use croupier_core::codec::{decode_results, encode_results};
    let results: Vec<CommandResult> = [
        PaymentOutcome::Ok,
        PaymentOutcome::WrongState,
        PaymentOutcome::TooManyAttempts,
        PaymentOutcome::LeaderChanged,
    ]
    .into_iter()
    .map(CommandResult::Payment)
    .collect();
    let mut bytes = Vec::new();
    encode_results(&results, &mut bytes);
    assert_eq!(decode_results(&bytes).unwrap(), results);
}

#[test]
fn a_malformed_payee_never_reaches_the_ledger() {
    let bad = [
        PayeeAccount::Iban("de89 3704".into()),
        PayeeAccount::SortCode {
            sort_code: "04000".into(),
            account_number: "12345678".into(),
        },
    ];
    for account in bad {
        let payee = Payee {
            account,
            name: "A".into(),
        };
        assert!(!payee.check());
    }
    assert!(!Payee {
        account: payee().account,
        name: " ".into()
    }
    .check());
    assert!(!request(0, 5).check(), "id 0");
    assert!(!request(1, 0).check(), "amount 0");
    assert!(
        !open_deposit(1, 5, "Bank A").check(),
        "connector names are lower-case tokens"
    );
}

#[test]
fn a_withdrawal_below_the_required_kyc_level_is_never_approved() {
    use croupier_core::compliance::{CompliancePolicy, KycLevel};
    let mut ledger = casino();
    deposited(&mut ledger, 1, 1_000);
    let mut policy = CompliancePolicy::default();
    policy.default.withdraw = KycLevel::Basic;
    ledger.apply(
        T0 + 50 * SECOND_NS,
        &[Command::Compliance(ComplianceCommand::SetPolicy(policy))],
    );
    pay(&mut ledger, request(50, 700));
    assert_eq!(
        pay(&mut ledger, approve(50, "bank-a")),
        PaymentOutcome::Refused(Refusal::KycRequired)
    );
    assert_eq!(
        balance(&ledger),
        300,
        "still reserved: the node rejects it with a reason"
    );
}

/// The feed's payment events in order: (type, id, state, connector, reason).
fn payment_events(ledger: &MemoryLedger) -> Vec<(String, u128, String, String, String)> {
    use croupier_core::codec::{decode_record, encode_record};
    use croupier_core::payments::PaymentChange;
    use croupier_core::HistoryRecord;
    let mut events = Vec::new();
    for record in ledger.history.records() {
        let HistoryRecord::Payment(event) = record else {
            continue;
        };
        let mut bytes = Vec::new();
        encode_record(record, &mut bytes);
        assert_eq!(&decode_record(&bytes).unwrap(), record, "codec round trip");
        let id = match event.change {
            PaymentChange::Deposit { deposit_id, .. } => deposit_id,
            PaymentChange::Withdrawal { withdrawal_id, .. } => withdrawal_id,
        };
        events.push((
            event.event_type().to_string(),
            id,
            event.state_name().to_string(),
            event.connector.clone(),
            event.reason.clone(),
        ));
    }
    events
}

#[test]
fn every_payment_change_is_published_once_on_the_event_feed_and_repeats_publish_nothing() {
    let mut ledger = casino();
    deposited(&mut ledger, 1, 10_000);
    assert_eq!(pay(&mut ledger, request(50, 4_000)), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, request(50, 4_000)), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, approve(50, "bank-b")), PaymentOutcome::Ok);
    let failed = PaymentCommand::FailPayout {
        withdrawal_id: 50,
        attempt: 0,
        reason: "AC04".into(),
        next_connector: None,
        leader_term: None,
    };
    assert_eq!(pay(&mut ledger, failed.clone()), PaymentOutcome::Ok);
    assert_eq!(pay(&mut ledger, failed), PaymentOutcome::Ok, "a repeat");
    let d = |state: &str, connector: &str| {
        let reason = String::new();
        (
            "deposit_updated".to_string(),
            1,
            state.to_string(),
            connector.to_string(),
            reason,
        )
    };
    let w = |state: &str, connector: &str, reason: &str| {
        let (state, connector) = (state.to_string(), connector.to_string());
        (
            "withdrawal_updated".to_string(),
            50,
            state,
            connector,
            reason.to_string(),
        )
    };
    assert_eq!(
        payment_events(&ledger),
        vec![
            d("opening", "bank-a"),
            d("awaiting_authorisation", "bank-a"),
            d("settled", "bank-a"),
            w("requested", "", ""),
            w("sending", "bank-b", "route:bank-b"),
            w("refunded", "bank-b", "AC04"),
        ]
    );
}

/// Memory must not grow with history: a payment that turned final leaves the hot state in the
/// same entry, and history answers for it, by its id and by the clearing transfer it made.
#[test]
fn a_final_payment_leaves_the_hot_state_and_history_answers_for_it() {
    use croupier_core::payments::{ArchivedPayment, PaymentKey};
    use croupier_core::HistorySource;
    let mut ledger = one_approved_withdrawal();
    let settle = PaymentCommand::SettlePayout {
        withdrawal_id: 50,
        attempt: 0,
    };
    assert_eq!(pay(&mut ledger, settle), PaymentOutcome::Ok);
    assert!(
        ledger.ledger.deposit_record(1).is_none(),
        "settled: not hot"
    );
    assert!(
        ledger.ledger.withdrawal_record(50).is_none(),
        "paid: not hot"
    );
    assert_eq!(
        ledger.ledger.deposits().count() + ledger.ledger.withdrawals().count(),
        0
    );
    let deposit = ledger.deposit(1).expect("history has it");
    assert_eq!(deposit.state, DepositState::Settled);
    let paid = ledger.withdrawal(50).expect("history has it");
    assert_eq!(paid.state, WithdrawalState::Paid);
    // Each clearing transfer names its payment; the paid one moved in-flight → clearing.
    let transfer = ledger
        .transfer(paid.paid_transfer_id)
        .expect("the payout's transfer");
    assert_eq!(transfer.credit_account_id, clearing_account_id(0, eur()));
    assert_eq!(transfer.amount, 700);
    let Ok(Some(ArchivedPayment::Withdrawal(found))) = ledger
        .history
        .archived_payment_of_transfer(paid.paid_transfer_id)
    else {
        panic!("the payout's transfer names no payment");
    };
    assert_eq!(found, paid);
    let Ok(Some(ArchivedPayment::Deposit(found))) = ledger
        .history
        .archived_payment_of_transfer(deposit.settle_transfer_id)
    else {
        panic!("the deposit's transfer names no payment");
    };
    assert_eq!(found, deposit);
    let Ok(Some(_)) = ledger.history.archived_payment(PaymentKey::Withdrawal(50)) else {
        panic!("not found by key");
    };
    ledger.check_invariants().unwrap();
}

/// Idempotency outlives the hot state: every step of an archived payment, repeated (even by a
/// ledger restored from a checkpoint that no longer holds it), answers as it did and moves no
/// money; a different request under the same id is still a conflict.
#[test]
fn repeating_a_step_of_an_archived_payment_answers_as_before_and_moves_nothing() {
    let mut ledger = one_approved_withdrawal();
    let settle = PaymentCommand::SettlePayout {
        withdrawal_id: 50,
        attempt: 0,
    };
    pay(&mut ledger, settle.clone());
    let mut restored = MemoryLedger::restore(&ledger.checkpoint(), ledger.history.clone()).unwrap();
    for ledger in [&mut ledger, &mut restored] {
        let before = ledger.state_bytes().len();
        assert_eq!(
            pay(ledger, open_deposit(1, 1_000, "bank-a")),
            PaymentOutcome::Ok
        );
        assert_eq!(
            pay(ledger, open_deposit(1, 999, "bank-a")),
            PaymentOutcome::Conflict
        );
        let settle_deposit = PaymentCommand::SettleDeposit { deposit_id: 1 };
        assert_eq!(pay(ledger, settle_deposit), PaymentOutcome::Ok);
        assert_eq!(pay(ledger, request(50, 700)), PaymentOutcome::Ok);
        assert_eq!(pay(ledger, request(50, 701)), PaymentOutcome::Conflict);
        assert_eq!(pay(ledger, approve(50, "bank-a")), PaymentOutcome::Ok);
        assert_eq!(pay(ledger, settle.clone()), PaymentOutcome::Ok);
        let late_failure = PaymentCommand::FailPayout {
            withdrawal_id: 50,
            attempt: 0,
            reason: "AC01".into(),
            next_connector: None,
            leader_term: None,
        };
        assert_eq!(pay(ledger, late_failure), PaymentOutcome::WrongState);
        assert_eq!(balance(ledger), 300, "paid once, refunded never");
        assert_eq!(
            ledger.state_bytes().len(),
            before,
            "no record, no state change"
        );
        ledger.check_invariants().unwrap();
    }
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
}

/// The memory rule: the hot state (what a checkpoint holds) is the same size after 10 or
/// after 1,000 finished deposits and withdrawals; only history grows.
#[test]
fn the_hot_state_does_not_grow_with_finished_payments() {
    let mut ledger = casino();
    let cycle = |ledger: &mut MemoryLedger, n: u128| {
        deposited(ledger, 1_000 + n, 300);
        let id = 100_000 + n;
        assert_eq!(pay(ledger, request(id, 200)), PaymentOutcome::Ok);
        assert_eq!(pay(ledger, approve(id, "bank-a")), PaymentOutcome::Ok);
        let settle = PaymentCommand::SettlePayout {
            withdrawal_id: id,
            attempt: 0,
        };
        assert_eq!(pay(ledger, settle), PaymentOutcome::Ok);
    };
    (0..10).for_each(|n| cycle(&mut ledger, n));
    let after_ten = ledger.checkpoint().len();
    let history_after_ten = ledger.history.archived_payments().len();
    (10..1_000).for_each(|n| cycle(&mut ledger, n));
    assert_eq!(ledger.checkpoint().len(), after_ten, "hot state bytes");
    assert_eq!(
        ledger.history.archived_payments().len(),
        history_after_ten + 1_980
    );
    assert_eq!(balance(&ledger), 1_000 * 100);
    ledger.check_invariants().unwrap();
}
