//! Responsible gambling and KYC in the ledger: every limit and exclusion at its boundary, on
//! wallet bets, table bets and deposits alike; cooling-off by ledger time; a bet racing a
//! limit decrease; reality checks; and the compliance state through checkpoints (version 10; 9, 8
//! and 7 still load).

mod common;

use common::{eur, SECOND_NS, T0};
use croupier_core::cases::{CaseAction, CaseCommand, CaseDecision, NewCase, NoteKind};
use croupier_core::codec::{decode_proposal, encode_proposal};
use croupier_core::command::Proposal;
use croupier_core::compliance::{
    limit_slot, ComplianceCommand, ComplianceOutcome, CompliancePolicy, Deposit, ExclusionSource,
    IdentityRecord, KycLevel, KycRequirements, LimitChange, LimitKind, LimitsRequest, Period,
    Refusal, SeenIdentifiers, COOLING_OFF_NS, LIMIT_SLOTS, NANOS_PER_DAY,
};
use croupier_core::ids::{player_id, player_wallet_account_id};
use croupier_core::players::{NewPlayer, NewSession, TokenHash};
use croupier_core::tables::{
    round_id, SpotStake, TableBet, TableCommand, TableConfig, TableLimits, TableOutcome,
};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, MemoryLedger, NewAccount, WalletBet,
    WalletOutcome, WalletWin,
};

const CASHIER: u128 = 900;
const MINUTE_NS: u64 = 60 * SECOND_NS;
const TABLE: u32 = 3;

/// A ledger with players 0 and 1 (EUR), a cashier account and a table, at T0.
fn casino() -> MemoryLedger {
    let mut ledger = MemoryLedger::new();
    let cashier = NewAccount {
        id: CASHIER,
        ledger: eur(),
        kind: AccountKind::System,
        flags: AccountFlags::empty(),
    };
    let mut commands = vec![Command::CreateAccounts(vec![cashier])];
    for name in ["alice", "bob"] {
        commands.push(Command::CreatePlayer(NewPlayer {
            username: name.into(),
            password_hash: "$argon2id$v=19$x".into(),
            currencies: vec![eur()],
        }));
    }
    commands.push(Command::Table(TableCommand::Configure(table_config())));
    ledger.apply(T0, &commands);
    ledger
}

fn table_config() -> TableConfig {
    TableConfig {
        table_id: TABLE,
        game: "money-wheel".into(),
        definition_sha256: [9; 32],
        ledger: eur(),
        spots: 4,
        betting_window_ms: 10_000,
        draw_delay_ms: 500,
        bets_total_interval_ms: 500,
        limits: TableLimits {
            bet_min: 1,
            bet_max: 100_000,
            round_stake_max: 10_000_000,
            payout_max: 1_000_000,
            bets_per_round_max: 10_000,
        },
        closed: false,
        studio: None,
    }
}

fn compliance(ledger: &mut MemoryLedger, at: u64, command: ComplianceCommand) -> ComplianceOutcome {
    match ledger.apply(at, &[Command::Compliance(command)]).pop() {
        Some(CommandResult::Compliance(outcome)) => outcome,
        other => panic!("expected a compliance result, got {other:?}"),
    }
}

fn deposit(id: u128, player: u64, amount: u64) -> ComplianceCommand {
    ComplianceCommand::Deposit(Deposit {
        deposit_id: id,
        player_id: player_id(player),
        ledger: eur(),
        amount,
        source_account_id: CASHIER,
    })
}

fn wallet_bet(tx: &str, player: u64, amount: u64) -> Command {
    Command::WalletBet(WalletBet {
        transaction_id: tx.into(),
        player_id: player_id(player),
        round_id: format!("r-{tx}"),
        amount,
        ledger: eur(),
    })
}

fn wallet(ledger: &mut MemoryLedger, at: u64, command: Command) -> WalletOutcome {
    match ledger.apply(at, &[command]).pop() {
        Some(CommandResult::Wallet(outcome)) => outcome,
        other => panic!("expected a wallet result, got {other:?}"),
    }
}

fn limits(player: u64, kind: LimitKind, period: Period, change: LimitChange) -> ComplianceCommand {
    let mut money = [None; LIMIT_SLOTS];
    money[limit_slot(kind, period)] = Some(change);
    ComplianceCommand::SetLimits(LimitsRequest {
        player_id: player_id(player),
        ledger: eur(),
        money,
        session_minutes: None,
    })
}

fn funded(amount: u64) -> MemoryLedger {
    let mut ledger = casino();
    for player in 0..2 {
        let outcome = compliance(
            &mut ledger,
            T0,
            deposit(1 + u128::from(player), player, amount),
        );
        assert!(
            matches!(outcome, ComplianceOutcome::Deposited { .. }),
            "{outcome:?}"
        );
    }
    ledger
}

fn balance(ledger: &MemoryLedger, player: u64) -> u128 {
    ledger
        .player_balance(player_wallet_account_id(player, 0))
        .unwrap()
        .1
}

#[test]
fn a_wager_limit_admits_a_bet_exactly_at_the_limit_and_refuses_one_unit_more() {
    let mut ledger = funded(10_000);
    let set = limits(0, LimitKind::Wager, Period::Day, LimitChange::Set(500));
    assert_eq!(compliance(&mut ledger, T0, set), ComplianceOutcome::Ok);
    assert!(wallet(&mut ledger, T0 + 1, wallet_bet("a", 0, 300)).is_ok());
    let over = wallet(&mut ledger, T0 + 2, wallet_bet("b", 0, 201));
    assert_eq!(over, WalletOutcome::Refused(Refusal::WagerLimitReached));
    assert!(wallet(&mut ledger, T0 + 3, wallet_bet("c", 0, 200)).is_ok());
    // The other player has no limit.
    assert!(wallet(&mut ledger, T0 + 4, wallet_bet("d", 1, 5_000)).is_ok());
    // A refused bet keeps its answer: retrying it later is refused again, nothing moves.
    let retry = wallet(&mut ledger, T0 + 5, wallet_bet("b", 0, 201));
    assert_eq!(retry, WalletOutcome::Refused(Refusal::WagerLimitReached));
    assert_eq!(balance(&ledger, 0), 10_000 - 500);
}

#[test]
fn a_daily_limit_starts_again_at_midnight_utc_on_the_ledger_clock() {
    let mut ledger = funded(10_000);
    let set = limits(0, LimitKind::Wager, Period::Day, LimitChange::Set(100));
    compliance(&mut ledger, T0, set);
    assert!(wallet(&mut ledger, T0 + 1, wallet_bet("a", 0, 100)).is_ok());
    let midnight = (T0 / NANOS_PER_DAY + 1) * NANOS_PER_DAY;
    let late = wallet(&mut ledger, midnight - 1, wallet_bet("b", 0, 1));
    assert_eq!(late, WalletOutcome::Refused(Refusal::WagerLimitReached));
    assert!(wallet(&mut ledger, midnight, wallet_bet("c", 0, 100)).is_ok());
}

#[test]
fn a_loss_limit_counts_stakes_minus_wins_and_refunds() {
    let mut ledger = funded(10_000);
    let set = limits(0, LimitKind::Loss, Period::Week, LimitChange::Set(1_000));
    compliance(&mut ledger, T0, set);
    assert!(wallet(&mut ledger, T0 + 1, wallet_bet("a", 0, 1_000)).is_ok());
    let over = wallet(&mut ledger, T0 + 2, wallet_bet("b", 0, 1));
    assert_eq!(over, WalletOutcome::Refused(Refusal::LossLimitReached));
    let win = Command::WalletWin(WalletWin {
        transaction_id: "w".into(),
        player_id: player_id(0),
        round_id: "r-a".into(),
        amount: 400,
        ledger: eur(),
    });
    assert!(wallet(&mut ledger, T0 + 3, win).is_ok());
    assert!(wallet(&mut ledger, T0 + 4, wallet_bet("c", 0, 400)).is_ok());
    let over = wallet(&mut ledger, T0 + 5, wallet_bet("d", 0, 1));
    assert_eq!(over, WalletOutcome::Refused(Refusal::LossLimitReached));
}

#[test]
fn a_deposit_limit_refuses_the_deposit_that_would_pass_it_and_moves_nothing() {
    let mut ledger = casino();
    let set = limits(
        0,
        LimitKind::Deposit,
        Period::Month,
        LimitChange::Set(1_000),
    );
    compliance(&mut ledger, T0, set);
    let first = compliance(&mut ledger, T0 + 1, deposit(1, 0, 600));
    assert_eq!(first, ComplianceOutcome::Deposited { balance: 600 });
    let over = compliance(&mut ledger, T0 + 2, deposit(2, 0, 401));
    assert_eq!(
        over,
        ComplianceOutcome::Refused(Refusal::DepositLimitReached)
    );
    assert_eq!(balance(&ledger, 0), 600);
    assert!(
        ledger.transfer(2).is_none(),
        "a refused deposit leaves no transfer"
    );
    // A retry of the deposit made answers it, even though the limit is now nearly used.
    let retry = compliance(&mut ledger, T0 + 3, deposit(1, 0, 600));
    assert_eq!(retry, ComplianceOutcome::Deposited { balance: 600 });
    let at_limit = compliance(&mut ledger, T0 + 4, deposit(3, 0, 400));
    assert_eq!(at_limit, ComplianceOutcome::Deposited { balance: 1_000 });
    ledger.check_invariants().unwrap();
}

#[test]
fn raising_a_limit_waits_24_hours_and_lowering_it_applies_at_once() {
    let mut ledger = funded(10_000);
    let t1 = T0 + SECOND_NS;
    compliance(
        &mut ledger,
        T0,
        limits(0, LimitKind::Wager, Period::Month, LimitChange::Set(100)),
    );
    let raise = limits(0, LimitKind::Wager, Period::Month, LimitChange::Set(1_000));
    compliance(&mut ledger, t1, raise);
    let state = ledger.ledger.player_compliance(player_id(0)).unwrap();
    let limit = state.wallet(eur()).unwrap().limits[limit_slot(LimitKind::Wager, Period::Month)];
    assert_eq!(limit.current, Some(100));
    assert_eq!(limit.pending.unwrap().effective_at_ns, t1 + COOLING_OFF_NS);
    let early = wallet(
        &mut ledger,
        t1 + COOLING_OFF_NS - 1,
        wallet_bet("a", 0, 101),
    );
    assert_eq!(early, WalletOutcome::Refused(Refusal::WagerLimitReached));
    assert!(wallet(&mut ledger, t1 + COOLING_OFF_NS, wallet_bet("b", 0, 101)).is_ok());
    // Removing the limit waits as well; lowering it does not.
    let t2 = t1 + 2 * COOLING_OFF_NS;
    let remove = limits(0, LimitKind::Wager, Period::Month, LimitChange::Remove);
    compliance(&mut ledger, t2, remove);
    let lower = limits(0, LimitKind::Wager, Period::Month, LimitChange::Set(150));
    compliance(&mut ledger, t2 + SECOND_NS, lower);
    let refused = wallet(&mut ledger, t2 + 2 * SECOND_NS, wallet_bet("c", 0, 50));
    assert_eq!(refused, WalletOutcome::Refused(Refusal::WagerLimitReached));
}

#[test]
fn a_bet_racing_a_limit_decrease_is_judged_by_log_order() {
    let mut ledger = funded(10_000);
    compliance(
        &mut ledger,
        T0,
        limits(0, LimitKind::Wager, Period::Day, LimitChange::Set(1_000)),
    );
    // Both in one entry: the decrease first, then the bet that fits only the old limit.
    let decrease = Command::Compliance(limits(
        0,
        LimitKind::Wager,
        Period::Day,
        LimitChange::Set(10),
    ));
    let results = ledger.apply(T0 + 1, &[decrease.clone(), wallet_bet("a", 0, 500)]);
    assert_eq!(
        results[1],
        CommandResult::Wallet(WalletOutcome::Refused(Refusal::WagerLimitReached))
    );
    // The other order: the bet was placed before the decrease, so it stands.
    let mut ledger = funded(10_000);
    compliance(
        &mut ledger,
        T0,
        limits(0, LimitKind::Wager, Period::Day, LimitChange::Set(1_000)),
    );
    let results = ledger.apply(T0 + 1, &[wallet_bet("a", 0, 500), decrease]);
    assert!(matches!(
        results[0],
        CommandResult::Wallet(WalletOutcome::Ok { .. })
    ));
    let after = wallet(&mut ledger, T0 + 2, wallet_bet("b", 0, 1));
    assert_eq!(after, WalletOutcome::Refused(Refusal::WagerLimitReached));
}

#[test]
fn a_self_excluded_player_can_neither_bet_nor_deposit_anywhere_nor_lift_it_early() {
    let mut ledger = funded(10_000);
    let exclude = ComplianceCommand::SelfExclude {
        player_id: player_id(0),
        days: 182,
        source: ExclusionSource::Player,
    };
    let t1 = T0 + SECOND_NS;
    assert_eq!(compliance(&mut ledger, t1, exclude), ComplianceOutcome::Ok);
    let refused = WalletOutcome::Refused(Refusal::SelfExcluded);
    assert_eq!(wallet(&mut ledger, t1 + 2, wallet_bet("a", 0, 1)), refused);
    // Naming the wallet account instead of the player changes nothing.
    let by_account = Command::WalletBet(WalletBet {
        player_id: player_wallet_account_id(0, 0),
        ..match wallet_bet("b", 0, 1) {
            Command::WalletBet(bet) => bet,
            _ => unreachable!(),
        }
    });
    assert_eq!(wallet(&mut ledger, t1 + 3, by_account), refused);
    let round = open_round(&mut ledger, t1 + 4);
    assert_eq!(
        table_bet(&mut ledger, t1 + 5, 1, 0, round),
        TableOutcome::Refused(Refusal::SelfExcluded)
    );
    assert_eq!(
        compliance(&mut ledger, t1 + 6, deposit(50, 0, 100)),
        ComplianceOutcome::Refused(Refusal::SelfExcluded)
    );
    // Bob plays on.
    assert!(matches!(
        table_bet(&mut ledger, t1 + 7, 2, 1, round),
        TableOutcome::BetAccepted { .. }
    ));
    let lift = ComplianceCommand::LiftSelfExclusion {
        player_id: player_id(0),
    };
    let end = t1 + 182 * NANOS_PER_DAY;
    assert_eq!(
        compliance(&mut ledger, end - 2, lift.clone()),
        ComplianceOutcome::SelfExclusionActive
    );
    assert_eq!(wallet(&mut ledger, end - 1, wallet_bet("c", 0, 1)), refused);
    assert!(wallet(&mut ledger, end, wallet_bet("d", 0, 1)).is_ok());
    assert_eq!(compliance(&mut ledger, end, lift), ComplianceOutcome::Ok);
}

#[test]
fn a_shorter_exclusion_or_time_out_never_shortens_the_one_in_force() {
    let mut ledger = funded(1_000);
    let exclude = |days| ComplianceCommand::SelfExclude {
        player_id: player_id(0),
        days,
        source: ExclusionSource::Operator,
    };
    let t1 = T0 + SECOND_NS;
    compliance(&mut ledger, t1, exclude(365));
    compliance(&mut ledger, t1 + SECOND_NS, exclude(182));
    let state = ledger.ledger.player_compliance(player_id(0)).unwrap();
    assert_eq!(state.self_excluded_until_ns, t1 + 365 * NANOS_PER_DAY);
    let time_out = ComplianceCommand::TimeOut {
        player_id: player_id(1),
        days: 1,
    };
    let t2 = t1 + 2 * SECOND_NS;
    compliance(&mut ledger, t2, time_out);
    let refused = wallet(&mut ledger, t2 + NANOS_PER_DAY - 1, wallet_bet("a", 1, 1));
    assert_eq!(refused, WalletOutcome::Refused(Refusal::TimedOut));
    assert!(wallet(&mut ledger, t2 + NANOS_PER_DAY, wallet_bet("b", 1, 1)).is_ok());
}

#[test]
fn out_of_range_durations_and_limits_are_malformed_commands() {
    for days in [0, 181, 1827] {
        let command = ComplianceCommand::SelfExclude {
            player_id: player_id(0),
            days,
            source: ExclusionSource::Player,
        };
        assert!(!command.check(), "{days} days");
    }
    for days in [0, 43] {
        let command = ComplianceCommand::TimeOut {
            player_id: player_id(0),
            days,
        };
        assert!(!command.check(), "{days} days");
    }
    assert!(!limits(0, LimitKind::Loss, Period::Day, LimitChange::Set(0)).check());
}

#[test]
fn the_session_limit_counts_from_the_last_login() {
    let mut ledger = funded(1_000);
    let mut request = match limits(0, LimitKind::Wager, Period::Day, LimitChange::Remove) {
        ComplianceCommand::SetLimits(request) => request,
        _ => unreachable!(),
    };
    request.money = [None; LIMIT_SLOTS];
    request.session_minutes = Some(LimitChange::Set(30));
    compliance(&mut ledger, T0, ComplianceCommand::SetLimits(request));
    let login = Command::OpenSession(NewSession {
        token_hash: TokenHash([7; 32]),
        player_id: player_id(0),
        ttl_s: 3_600,
    });
    ledger.apply(T0 + MINUTE_NS, &[login]);
    assert!(wallet(&mut ledger, T0 + 30 * MINUTE_NS, wallet_bet("a", 0, 1)).is_ok());
    let over = wallet(&mut ledger, T0 + 31 * MINUTE_NS, wallet_bet("b", 0, 1));
    assert_eq!(over, WalletOutcome::Refused(Refusal::SessionLimitReached));
}

fn login(ledger: &mut MemoryLedger, at: u64, token: u8) {
    let login = Command::OpenSession(NewSession {
        token_hash: TokenHash([token; 32]),
        player_id: player_id(0),
        ttl_s: 3_600,
    });
    ledger.apply(at, &[login]);
}

fn reality_check(minutes: LimitChange) -> ComplianceCommand {
    ComplianceCommand::SetRealityCheck {
        player_id: player_id(0),
        minutes,
    }
}

#[test]
fn a_due_reality_check_holds_bets_until_the_player_acknowledges_it() {
    let mut ledger = funded(1_000);
    compliance(&mut ledger, T0, reality_check(LimitChange::Set(20)));
    // No session yet: nothing is due.
    assert!(wallet(&mut ledger, T0 + 60 * MINUTE_NS, wallet_bet("a", 0, 1)).is_ok());
    let start = T0 + 61 * MINUTE_NS;
    login(&mut ledger, start, 7);
    let due = start + 20 * MINUTE_NS;
    assert!(wallet(&mut ledger, due - 1, wallet_bet("b", 0, 1)).is_ok());
    let held = wallet(&mut ledger, due, wallet_bet("c", 0, 1));
    assert_eq!(held, WalletOutcome::Refused(Refusal::RealityCheckDue));
    let ack = ComplianceCommand::AcknowledgeRealityCheck {
        player_id: player_id(0),
    };
    assert_eq!(compliance(&mut ledger, due + 5, ack), ComplianceOutcome::Ok);
    assert!(wallet(&mut ledger, due + 6, wallet_bet("d", 0, 1)).is_ok());
    // The next one falls due an interval after the acknowledgement.
    let next = due + 5 + 20 * MINUTE_NS;
    let held = wallet(&mut ledger, next, wallet_bet("e", 0, 1));
    assert_eq!(held, WalletOutcome::Refused(Refusal::RealityCheckDue));
}

#[test]
fn a_longer_reality_check_interval_waits_out_the_cooling_off_and_a_shorter_one_does_not() {
    let mut ledger = funded(1_000);
    // After the set-up's entries (the ledger's clock only moves forward).
    let t = T0 + SECOND_NS;
    compliance(&mut ledger, t, reality_check(LimitChange::Set(30)));
    compliance(&mut ledger, t + 1, reality_check(LimitChange::Set(60)));
    let player = ledger
        .ledger
        .player_compliance(player_id(0))
        .unwrap()
        .clone();
    assert_eq!(player.reality_check.at(t + 2).current, Some(30));
    let later = t + 1 + COOLING_OFF_NS;
    assert_eq!(player.reality_check.at(later - 1).current, Some(30));
    assert_eq!(player.reality_check.at(later).current, Some(60));
    compliance(&mut ledger, t + 3, reality_check(LimitChange::Set(10)));
    let player = ledger.ledger.player_compliance(player_id(0)).unwrap();
    assert_eq!(player.reality_check.at(t + 3).current, Some(10));
    assert!(!ComplianceCommand::SetRealityCheck {
        player_id: player_id(0),
        minutes: LimitChange::Set(0),
    }
    .check());
}

#[test]
fn the_session_net_position_counts_stakes_and_returns_since_the_last_login() {
    let mut ledger = funded(1_000);
    let t = T0 + SECOND_NS;
    login(&mut ledger, t, 7);
    assert!(wallet(&mut ledger, t + 1, wallet_bet("a", 0, 300)).is_ok());
    let win = Command::WalletWin(WalletWin {
        transaction_id: "w".into(),
        player_id: player_id(0),
        round_id: "r-a".into(),
        amount: 100,
        ledger: eur(),
    });
    assert!(wallet(&mut ledger, t + 2, win).is_ok());
    let player = ledger.ledger.player_compliance(player_id(0)).unwrap();
    assert_eq!(player.session_started_at_ns, t);
    let session = player.wallet(eur()).unwrap().session_at(t);
    assert_eq!(
        (session.wagered, session.returned, session.net()),
        (300, 100, -200)
    );
    login(&mut ledger, t + 3, 8);
    let player = ledger.ledger.player_compliance(player_id(0)).unwrap();
    let fresh = player.wallet(eur()).unwrap().session_at(t + 3);
    assert_eq!((fresh.wagered, fresh.returned), (0, 0));
}

#[test]
fn the_jurisdiction_policy_requires_kyc_and_a_verified_identity_meets_it() {
    let mut ledger = funded(1_000);
    let basic = KycRequirements {
        play: KycLevel::Basic,
        deposit: KycLevel::None,
        withdraw: KycLevel::Basic,
        large_deposit_min: 2_000,
        large_deposit: KycLevel::Enhanced,
    };
    let policy = CompliancePolicy {
        default: basic,
        jurisdictions: vec![(*b"MT", KycRequirements::default())],
    };
    compliance(&mut ledger, T0, ComplianceCommand::SetPolicy(policy));
    let refused = WalletOutcome::Refused(Refusal::KycRequired);
    assert_eq!(wallet(&mut ledger, T0 + 1, wallet_bet("a", 0, 1)), refused);
    assert_eq!(
        compliance(&mut ledger, T0 + 2, deposit(10, 0, 2_000)),
        ComplianceOutcome::Refused(Refusal::KycRequired)
    );
    assert!(matches!(
        compliance(&mut ledger, T0 + 2, deposit(11, 0, 1_999)),
        ComplianceOutcome::Deposited { .. }
    ));
    let record = |country: [u8; 2]| ComplianceCommand::RecordIdentity {
        player_id: player_id(0),
        identity: Box::new(IdentityRecord {
            issuer: "https://idp.example".into(),
            subject_sha256: [3; 32],
            name: "Alice Example".into(),
            birth_date_days: Some(7_000),
            country,
            expires_at_s: 2_000_000_000,
            attestation_sha256: [4; 32],
        }),
    };
    compliance(&mut ledger, T0 + 3, record(*b"GB"));
    assert!(wallet(&mut ledger, T0 + 4, wallet_bet("b", 0, 1)).is_ok());
    let enhanced = ComplianceCommand::SetKycLevel {
        player_id: player_id(0),
        level: KycLevel::Enhanced,
    };
    compliance(&mut ledger, T0 + 5, enhanced);
    assert!(matches!(
        compliance(&mut ledger, T0 + 6, deposit(12, 0, 2_000)),
        ComplianceOutcome::Deposited { .. }
    ));
    // Bob is in no jurisdiction yet: the default applies to him.
    assert_eq!(wallet(&mut ledger, T0 + 7, wallet_bet("c", 1, 1)), refused);
}

fn open_round(ledger: &mut MemoryLedger, at: u64) -> u64 {
    let round = round_id(TABLE, 1);
    let open = TableCommand::Open {
        round_id: round,
        commitment: [0; 32],
        closes_at_ns: at + 10 * SECOND_NS,
    };
    match ledger.apply(at, &[Command::Table(open)]).pop() {
        Some(CommandResult::Table(TableOutcome::Ok)) => round,
        other => panic!("round not opened: {other:?}"),
    }
}

fn table_bet(
    ledger: &mut MemoryLedger,
    at: u64,
    bet_id: u128,
    player: u64,
    round: u64,
) -> TableOutcome {
    let bet = TableBet {
        bet_id,
        player_id: player_id(player),
        round_id: round,
        spots: vec![SpotStake {
            spot: 0,
            amount: 10,
        }],
    };
    match ledger
        .apply(at, &[Command::Table(TableCommand::Bet(bet))])
        .pop()
    {
        Some(CommandResult::Table(outcome)) => outcome,
        other => panic!("expected a table result, got {other:?}"),
    }
}

#[test]
fn table_bets_count_against_the_wager_limit() {
    let mut ledger = funded(1_000);
    compliance(
        &mut ledger,
        T0,
        limits(0, LimitKind::Wager, Period::Day, LimitChange::Set(15)),
    );
    let round = open_round(&mut ledger, T0 + 1);
    assert!(matches!(
        table_bet(&mut ledger, T0 + 2, 1, 0, round),
        TableOutcome::BetAccepted { .. }
    ));
    assert_eq!(
        table_bet(&mut ledger, T0 + 3, 2, 0, round),
        TableOutcome::Refused(Refusal::WagerLimitReached)
    );
}

fn busy_compliance_ledger() -> MemoryLedger {
    let mut ledger = funded(10_000);
    compliance(
        &mut ledger,
        T0,
        limits(0, LimitKind::Loss, Period::Month, LimitChange::Set(900)),
    );
    compliance(
        &mut ledger,
        T0 + 1,
        limits(0, LimitKind::Loss, Period::Month, LimitChange::Remove),
    );
    wallet(&mut ledger, T0 + 2, wallet_bet("a", 0, 40));
    let exclude = ComplianceCommand::SelfExclude {
        player_id: player_id(1),
        days: 400,
        source: ExclusionSource::Register,
    };
    compliance(&mut ledger, T0 + 3, exclude);
    ledger
}

/// The ledger's checkpoint as version 12 wrote it: version 13 adds each table's bets_total
/// interval after its studio flag (these ledgers hold at most one table, a money wheel
/// without a studio, configured with the interval version 12 implied).
fn version_12_checkpoint(ledger: &MemoryLedger) -> Vec<u8> {
    let mut checkpoint = ledger.checkpoint();
    assert_eq!(checkpoint[0], 13);
    if let Some(name_at) = checkpoint
        .windows(11)
        .position(|window| window == b"money-wheel")
    {
        let config_at = name_at - 2 - 4;
        let config_bytes = 4 + 2 + 11 + 32 + 8 + 2 + 4 + 4 + 36 + 1;
        let interval_at = config_at + config_bytes + 1;
        assert_eq!(checkpoint[interval_at - 1], 0, "no studio");
        let interval = &checkpoint[interval_at..interval_at + 4];
        assert_eq!(
            interval,
            500u32.to_le_bytes(),
            "the interval before version 13"
        );
        checkpoint.drain(interval_at..interval_at + 4);
    }
    checkpoint[0] = 12;
    checkpoint
}

/// The ledger's checkpoint as version 9 wrote it: version 10 appends the payments section
/// (a u16 connector count and two u64 record counts, all 0 here), version 11 the consumer
/// cursors (a u64 count, 0 here), version 12 the case decided last (u128, none here).
fn version_9_checkpoint(ledger: &MemoryLedger) -> Vec<u8> {
    let mut checkpoint = version_12_checkpoint(ledger);
    let payments = checkpoint.split_off(checkpoint.len() - (2 + 8 + 8 + 8 + 16));
    assert!(
        payments.iter().all(|byte| *byte == 0),
        "no payments in these tests"
    );
    checkpoint[0] = 9;
    checkpoint
}

#[test]
fn a_version_12_checkpoint_loads_with_the_bets_total_interval_it_ran_with() {
    assert_restores_the_same(&casino(), version_12_checkpoint);
}

#[test]
fn a_version_9_checkpoint_loads_with_no_payments() {
    assert_restores_the_same(&busy_compliance_ledger(), version_9_checkpoint);
}

/// `ledger`'s checkpoint, rewritten by `older` as an earlier version wrote it, restores to
/// the same state.
fn assert_restores_the_same(ledger: &MemoryLedger, older: fn(&MemoryLedger) -> Vec<u8>) {
    let restored = MemoryLedger::restore(&older(ledger), ledger.history.clone())
        .expect("the older checkpoint loads");
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
}

#[test]
fn compliance_state_survives_a_checkpoint_byte_for_byte() {
    let ledger = busy_compliance_ledger();
    let checkpoint = ledger.checkpoint();
    assert_eq!(checkpoint[0], 13);
    let restored = MemoryLedger::restore(&checkpoint, ledger.history.clone()).unwrap();
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
    assert_eq!(
        restored.ledger.player_compliance(player_id(0)),
        ledger.ledger.player_compliance(player_id(0))
    );
}

#[test]
fn a_version_7_checkpoint_loads_with_no_compliance_state() {
    let ledger = casino();
    let checkpoint = version_9_checkpoint(&ledger);
    // Version 8 appends the compliance section: the default policy (3 + 8 + 1 bytes and a
    // u16 count), the player count, per player 41 bytes of empty state (30 before version 9),
    // and the case count.
    let section = 12 + 2 + 8 + 2 * 41 + 8;
    let mut v7 = checkpoint[..checkpoint.len() - section].to_vec();
    v7[0] = 7;
    let restored = MemoryLedger::restore(&v7, ledger.history.clone()).expect("version 7 loads");
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
}

#[test]
fn a_version_8_checkpoint_loads_without_reality_checks() {
    let ledger = casino();
    let checkpoint = version_9_checkpoint(&ledger);
    // Each player's 41 bytes of empty state: 29 up to the case flags, then version 9's
    // interval (2), acknowledgement (8) and identifiers (1), then the wallet count (1).
    let players_at = checkpoint.len() - 8 - 2 * 41;
    let mut v8 = checkpoint[..players_at].to_vec();
    for player in 0..2 {
        let state = &checkpoint[players_at + player * 41..players_at + (player + 1) * 41];
        v8.extend_from_slice(&state[..29]);
        v8.extend_from_slice(&state[40..]);
    }
    v8.extend_from_slice(&checkpoint[checkpoint.len() - 8..]);
    v8[0] = 8;
    let restored = MemoryLedger::restore(&v8, ledger.history.clone()).expect("version 8 loads");
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
}

#[test]
fn every_compliance_command_round_trips_through_the_log_codec() {
    let commands = vec![
        limits(0, LimitKind::Deposit, Period::Week, LimitChange::Set(5)),
        limits(1, LimitKind::Loss, Period::Day, LimitChange::Remove),
        ComplianceCommand::SelfExclude {
            player_id: player_id(0),
            days: 1826,
            source: ExclusionSource::Register,
        },
        ComplianceCommand::LiftSelfExclusion {
            player_id: player_id(0),
        },
        ComplianceCommand::TimeOut {
            player_id: player_id(0),
            days: 42,
        },
        ComplianceCommand::RecordIdentity {
            player_id: player_id(1),
            identity: Box::new(IdentityRecord {
                issuer: "i".into(),
                subject_sha256: [1; 32],
                name: String::new(),
                birth_date_days: None,
                country: *b"SE",
                expires_at_s: 9,
                attestation_sha256: [2; 32],
            }),
        },
        ComplianceCommand::SetKycLevel {
            player_id: player_id(1),
            level: KycLevel::Enhanced,
        },
        reality_check(LimitChange::Set(45)),
        reality_check(LimitChange::Remove),
        ComplianceCommand::AcknowledgeRealityCheck {
            player_id: player_id(0),
        },
        ComplianceCommand::ObserveIdentifiers {
            player_id: player_id(1),
            seen: SeenIdentifiers {
                device: Some([5; 32]),
                instrument: Some([6; 32]),
                address: None,
            },
        },
        ComplianceCommand::SetPolicy(CompliancePolicy {
            default: KycRequirements::default(),
            jurisdictions: vec![(*b"DE", KycRequirements::default())],
        }),
        deposit(77, 1, 1_000),
        ComplianceCommand::Case(open_case(5, 0, CaseAction::Freeze)),
        ComplianceCommand::Case(CaseCommand::Assign {
            case_id: 5,
            assignee: "analyst-1".into(),
            by: "admin".into(),
        }),
        ComplianceCommand::Case(CaseCommand::Note {
            case_id: 5,
            kind: NoteKind::DocumentsRequested,
            text: "proof of address".into(),
            by: "analyst-1".into(),
        }),
        ComplianceCommand::Case(CaseCommand::Decide {
            case_id: 5,
            decision: CaseDecision::Report,
            text: String::new(),
            by: "analyst-1".into(),
        }),
    ];
    let proposal = Proposal {
        timestamp_ns: T0,
        commands: commands.into_iter().map(Command::Compliance).collect(),
    };
    let mut bytes = Vec::new();
    encode_proposal(&proposal, &mut bytes);
    assert_eq!(decode_proposal(&bytes).unwrap(), proposal);
}

fn open_case(case_id: u128, player: u64, action: CaseAction) -> CaseCommand {
    CaseCommand::Open(NewCase {
        case_id,
        player_id: player_id(player),
        score: 80,
        reasons: vec!["linked_transactions_2000_eur".into()],
        ruleset_version: "2026-12-03.1".into(),
        action,
        by: "aml".into(),
    })
}

#[test]
fn a_case_that_freezes_refuses_bets_and_deposits_until_a_decision_clears_it() {
    let mut ledger = funded(10_000);
    let opened = compliance(
        &mut ledger,
        T0,
        ComplianceCommand::Case(open_case(9, 0, CaseAction::Freeze)),
    );
    assert_eq!(opened, ComplianceOutcome::Ok);
    let frozen = WalletOutcome::Refused(Refusal::AccountFrozen);
    assert_eq!(wallet(&mut ledger, T0 + 1, wallet_bet("a", 0, 1)), frozen);
    assert_eq!(
        compliance(&mut ledger, T0 + 2, deposit(60, 0, 10)),
        ComplianceOutcome::Refused(Refusal::AccountFrozen)
    );
    // The pipeline proposing the same decision again opens nothing more.
    let again = compliance(
        &mut ledger,
        T0 + 3,
        ComplianceCommand::Case(open_case(9, 0, CaseAction::Freeze)),
    );
    assert_eq!(again, ComplianceOutcome::Ok);
    assert_eq!(ledger.ledger.cases().count(), 1);
    let conflict = compliance(
        &mut ledger,
        T0 + 3,
        ComplianceCommand::Case(open_case(9, 1, CaseAction::OpenCase)),
    );
    assert_eq!(conflict, ComplianceOutcome::CaseConflict);
    let clear = CaseCommand::Decide {
        case_id: 9,
        decision: CaseDecision::Clear,
        text: "source of funds checked".into(),
        by: "analyst-1".into(),
    };
    assert_eq!(
        compliance(&mut ledger, T0 + 4, ComplianceCommand::Case(clear.clone())),
        ComplianceOutcome::Ok
    );
    assert!(wallet(&mut ledger, T0 + 5, wallet_bet("b", 0, 1)).is_ok());
    assert!(ledger.ledger.case(9).is_none(), "decided: in history");
    let case = ledger.case(9).unwrap();
    assert_eq!(
        case.decision.as_ref().map(|d| (d.0, d.2.as_str())),
        Some((CaseDecision::Clear, "analyst-1"))
    );
    assert_eq!(
        compliance(&mut ledger, T0 + 6, ComplianceCommand::Case(clear)),
        ComplianceOutcome::CaseClosed
    );
    let unknown = CaseCommand::Assign {
        case_id: 10,
        assignee: "x".into(),
        by: "admin".into(),
    };
    assert_eq!(
        compliance(&mut ledger, T0 + 7, ComplianceCommand::Case(unknown)),
        ComplianceOutcome::CaseNotFound
    );
}

#[test]
fn cases_and_their_flags_survive_a_checkpoint() {
    let mut ledger = busy_compliance_ledger();
    compliance(
        &mut ledger,
        T0 + 10,
        ComplianceCommand::Case(open_case(3, 0, CaseAction::HoldWithdrawals)),
    );
    let note = CaseCommand::Note {
        case_id: 3,
        kind: NoteKind::Comment,
        text: "looked at it".into(),
        by: "analyst-1".into(),
    };
    compliance(&mut ledger, T0 + 11, ComplianceCommand::Case(note));
    let checkpoint = ledger.checkpoint();
    let restored = MemoryLedger::restore(&checkpoint, ledger.history.clone()).unwrap();
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
    assert_eq!(restored.ledger.case(3), ledger.ledger.case(3));
    assert!(
        restored
            .ledger
            .player_compliance(player_id(0))
            .unwrap()
            .withdrawals_held
    );
}

#[test]
fn an_open_case_covers_a_repeat_a_decided_one_does_not_and_a_checkpoint_keeps_which_is_which() {
    let mut ledger = funded(1_000);
    let t = T0 + SECOND_NS;
    let open = |id| ComplianceCommand::Case(open_case(id, 0, CaseAction::OpenCase));
    let opened =
        |ledger: &MemoryLedger| ledger.ledger.cases().count() + ledger.closed_cases(10).len();
    compliance(&mut ledger, t, open(1));
    compliance(&mut ledger, t + 1, open(2));
    assert_eq!(
        opened(&ledger),
        1,
        "an open case with the same reasons stands for it"
    );
    let decide = CaseCommand::Decide {
        case_id: 1,
        decision: CaseDecision::Clear,
        text: String::new(),
        by: "analyst-1".into(),
    };
    compliance(&mut ledger, t + 2, ComplianceCommand::Case(decide));
    compliance(&mut ledger, t + 3, open(3));
    assert_eq!(opened(&ledger), 2, "a decided case covers nothing");
    let checkpoint = ledger.checkpoint();
    let mut restored = MemoryLedger::restore(&checkpoint, ledger.history.clone()).unwrap();
    compliance(&mut restored, t + 4, open(4));
    assert_eq!(
        opened(&restored),
        2,
        "the restored open case 3 still covers a repeat"
    );
    assert!(restored.ledger.case(4).is_none());
}

/// Memory and idempotency: a decided case leaves the hot state (the checkpoint does not grow
/// with decided cases), history lists the decided ones newest decision first, and every later
/// step on one, even by a ledger restored from a checkpoint that no longer holds it, answers as
/// before: `case_closed`, or `ok` / `case_conflict` for the same id opened again.
#[test]
fn a_decided_case_leaves_the_hot_state_and_history_answers_for_it() {
    let mut ledger = funded(1_000);
    let t = T0 + SECOND_NS;
    let decide = |case_id| {
        ComplianceCommand::Case(CaseCommand::Decide {
            case_id,
            decision: CaseDecision::Clear,
            text: format!("checked {case_id}"),
            by: "analyst-1".into(),
        })
    };
    let open = |case_id: u128| {
        let CaseCommand::Open(mut new) = open_case(case_id, 0, CaseAction::OpenCase) else {
            unreachable!("open_case opens")
        };
        new.reasons = vec![format!("reason-{case_id}")];
        ComplianceCommand::Case(CaseCommand::Open(new))
    };
    compliance(&mut ledger, t, open(1));
    compliance(&mut ledger, t + 1, decide(1));
    let after_one = ledger.checkpoint().len();
    for id in 2..=50 {
        assert_eq!(
            compliance(&mut ledger, t + 2 * id as u64, open(id)),
            ComplianceOutcome::Ok
        );
        assert_eq!(
            compliance(&mut ledger, t + 2 * id as u64 + 1, decide(id)),
            ComplianceOutcome::Ok
        );
    }
    compliance(&mut ledger, t + 200, open(51));
    assert_eq!(
        ledger.ledger.cases().count(),
        1,
        "only the open case is hot"
    );
    let closed: Vec<u128> = ledger.closed_cases(3).iter().map(|case| case.id).collect();
    assert_eq!(closed, [50, 49, 48], "the last decided first");
    assert_eq!(ledger.closed_cases(100).len(), 50);
    compliance(&mut ledger, t + 201, decide(51));
    assert_eq!(ledger.checkpoint().len(), after_one, "hot state bytes");
    let mut restored = MemoryLedger::restore(&ledger.checkpoint(), ledger.history.clone()).unwrap();
    for ledger in [&mut ledger, &mut restored] {
        assert_eq!(
            compliance(ledger, t + 300, decide(7)),
            ComplianceOutcome::CaseClosed
        );
        let note = CaseCommand::Note {
            case_id: 7,
            kind: NoteKind::Comment,
            text: "late".into(),
            by: "analyst-2".into(),
        };
        let noted = compliance(ledger, t + 301, ComplianceCommand::Case(note));
        assert_eq!(noted, ComplianceOutcome::CaseClosed);
        assert_eq!(
            compliance(ledger, t + 302, open(7)),
            ComplianceOutcome::Ok,
            "a replay"
        );
        let other_player = ComplianceCommand::Case(open_case(7, 1, CaseAction::OpenCase));
        assert_eq!(
            compliance(ledger, t + 303, other_player),
            ComplianceOutcome::CaseConflict
        );
        assert_eq!(ledger.ledger.cases().count(), 0, "nothing reopened");
        assert_eq!(
            ledger.case(7).unwrap().notes.len(),
            1,
            "the decision's note only"
        );
        ledger.check_invariants().unwrap();
    }
    assert_eq!(restored.state_bytes(), ledger.state_bytes());
}
