//! Property tests over random logs: every invariant holds after every entry, replaying a log
//! from scratch gives identical results and byte-identical state, and a snapshot taken at any
//! point plus a replay of the rest equals the full replay.

mod common;

use std::collections::BTreeSet;

use common::{SECOND_NS, T0};
use croupier_core::codec::{decode_proposal, encode_proposal};
use croupier_core::command::Proposal;
use croupier_core::ids::{player_id, player_wallet_account_id};
use croupier_core::players::{NewPlayer, NewSession, TokenHash};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, LedgerCode, MemoryLedger, NewAccount,
    NewTransfer, TransferFlags, WalletBet, WalletOutcome, WalletRollback, WalletWin,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const ACCOUNT_IDS_MAX: u128 = 12;
const TRANSFER_IDS_MAX: u128 = 16;
/// Accounts 1..=PLAYERS are EUR players and PLAYERS+1..=2*PLAYERS EUR system accounts, created
/// and funded by the first entry of every log; the rest come and go at random.
const PLAYERS: u128 = 4;
/// Registered players made by the first entry (`user0` EUR, `user1` EUR and USD), their EUR
/// wallets funded like the accounts; a few more may register at random.
const REGISTERED: u64 = 2;

fn ledger_code() -> impl Strategy<Value = LedgerCode> {
    prop_oneof![9 => Just("EUR"), 1 => Just("USD")]
        .prop_map(|code| LedgerCode::parse(code).unwrap())
}

fn account_kind() -> impl Strategy<Value = AccountKind> {
    prop_oneof![4 => Just(AccountKind::Player), 4 => Just(AccountKind::System), 1 => Just(AccountKind::Bonus), 1 => Just(AccountKind::House)]
}

fn account_flags() -> impl Strategy<Value = AccountFlags> {
    prop_oneof![6 => Just(0u16), 4 => 0u16..16]
        .prop_map(|bits| AccountFlags::from_bits(bits).unwrap())
}

fn transfer_flags() -> impl Strategy<Value = TransferFlags> {
    let common = prop_oneof![
        Just(TransferFlags::empty()),
        Just(TransferFlags::PENDING),
        Just(TransferFlags::POST_PENDING_TRANSFER),
        Just(TransferFlags::VOID_PENDING_TRANSFER),
        Just(TransferFlags::PENDING.union(TransferFlags::CLOSING_DEBIT)),
        Just(TransferFlags::PENDING.union(TransferFlags::CLOSING_CREDIT)),
    ];
    let linked = prop_oneof![5 => Just(false), 1 => Just(true)];
    prop_oneof![20 => (common, linked).prop_map(|(flags, linked)| if linked { flags.union(TransferFlags::LINKED) } else { flags }), 1 => (0u16..64).prop_map(|bits| TransferFlags::from_bits(bits).unwrap())]
}

fn new_account() -> impl Strategy<Value = NewAccount> {
    (
        0..=ACCOUNT_IDS_MAX,
        ledger_code(),
        account_kind(),
        account_flags(),
    )
        .prop_map(|(id, ledger, kind, flags)| NewAccount {
            id,
            ledger,
            kind,
            flags,
        })
}

/// Mostly the accounts every log creates first, sometimes any id (maybe missing).
fn account_id() -> impl Strategy<Value = u128> {
    prop_oneof![4 => 1..=2 * PLAYERS, 1 => 0..=ACCOUNT_IDS_MAX]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 8 => 1u64..150, 1 => 150u64..1_000]
}

fn new_transfer() -> impl Strategy<Value = NewTransfer> {
    (
        0..=TRANSFER_IDS_MAX,
        account_id(),
        account_id(),
        amount(),
        ledger_code(),
        transfer_flags(),
        prop_oneof![3 => Just(0u128), 2 => 1..=TRANSFER_IDS_MAX],
        prop_oneof![3 => Just(0u32), 2 => 1u32..30],
        prop_oneof![3 => Just(true), 1 => Just(false)],
    )
        .prop_map(
            |(
                id,
                debit_account_id,
                credit_account_id,
                amount,
                ledger,
                flags,
                pending_id,
                timeout_s,
                inherit,
            )| {
                let resolves = flags.contains(TransferFlags::POST_PENDING_TRANSFER)
                    || flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
                let mut t = NewTransfer {
                    id,
                    debit_account_id,
                    credit_account_id,
                    amount,
                    ledger,
                    flags,
                    pending_id,
                    timeout_s,
                };
                // Posts and voids mostly take their accounts, amount and ledger from the pending
                // transfer, as clients do; pending transfers mostly name no pending id.
                if resolves && inherit {
                    t = NewTransfer {
                        debit_account_id: 0,
                        credit_account_id: 0,
                        amount: amount % 3,
                        timeout_s: 0,
                        ledger: eur(),
                        ..t
                    };
                    if t.pending_id == 0 {
                        t.pending_id = id % TRANSFER_IDS_MAX + 1;
                    }
                } else if inherit {
                    t.pending_id = 0;
                }
                t
            },
        )
}

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn key(prefix: &'static str, count: u32) -> impl Strategy<Value = String> {
    (0..count).prop_map(move |n| format!("{prefix}{n}"))
}

fn wallet_command() -> impl Strategy<Value = Command> {
    let player = prop_oneof![
        9 => 1..=PLAYERS,
        1 => 1..=ACCOUNT_IDS_MAX,
        4 => (0..REGISTERED + 1).prop_map(player_id),
    ];
    prop_oneof![
        (
            key("t", 10),
            player.clone(),
            key("r", 2),
            amount(),
            ledger_code()
        )
            .prop_map(|(transaction_id, player_id, round_id, amount, ledger)| {
                Command::WalletBet(WalletBet {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                })
            }),
        (
            key("t", 10),
            player.clone(),
            key("r", 2),
            amount(),
            ledger_code()
        )
            .prop_map(|(transaction_id, player_id, round_id, amount, ledger)| {
                Command::WalletWin(WalletWin {
                    transaction_id,
                    player_id,
                    round_id,
                    amount,
                    ledger,
                })
            }),
        (key("t", 10), player, key("r", 2), key("t", 10)).prop_map(
            |(transaction_id, player_id, round_id, rolled_back_transaction_id)| {
                Command::WalletRollback(WalletRollback {
                    transaction_id,
                    player_id,
                    round_id,
                    rolled_back_transaction_id,
                })
            }
        ),
    ]
}

fn new_player() -> impl Strategy<Value = NewPlayer> {
    let currencies = prop_oneof![
        Just(vec![eur()]),
        Just(vec![LedgerCode::parse("USD").unwrap(), eur()]),
    ];
    (0..4u8, currencies).prop_map(|(n, currencies)| NewPlayer {
        username: format!("user{n}"),
        password_hash: format!("$argon2id$v=19$hash{n}"),
        currencies,
    })
}

fn player_command() -> impl Strategy<Value = Command> {
    let token = (0..6u8).prop_map(|n| TokenHash([n; 32]));
    let player = (0..REGISTERED + 2).prop_map(player_id);
    prop_oneof![
        1 => new_player().prop_map(Command::CreatePlayer),
        3 => (token.clone(), player.clone(), 1u32..40).prop_map(|(token_hash, player_id, ttl_s)| {
            Command::OpenSession(NewSession { token_hash, player_id, ttl_s })
        }),
        1 => token.prop_map(Command::CloseSession),
        1 => player.prop_map(Command::RevokeSessions),
    ]
}

fn plain_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => prop::collection::vec(new_account(), 1..5).prop_map(Command::CreateAccounts),
        5 => prop::collection::vec(new_transfer(), 1..9).prop_map(Command::CreateTransfers),
        3 => wallet_command(),
        1 => Just(Command::Tick),
        2 => player_command(),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        8 => plain_command(),
        1 => (plain_command(), any::<bool>()).prop_map(|(command, recorded)| Command::ByOperator {
            key_id: "ops-1".into(),
            command: Box::new(command),
            recorded,
        }),
    ]
}

/// Offsets between entries in ns: mostly forward, sometimes far (expiring pendings), sometimes
/// backwards (a leader whose wall clock stepped back).
fn time_step() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(0i64),
        4 => 1i64..(2 * SECOND_NS as i64),
        2 => (5 * SECOND_NS as i64)..(40 * SECOND_NS as i64),
        1 => -(10 * SECOND_NS as i64)..0,
    ]
}

/// A command, or a repeat of one generated earlier (a client retry).
#[derive(Clone, Debug)]
enum Choice {
    Fresh(Command),
    Repeat(prop::sample::Index),
    /// A coherent wallet round: a bet, maybe a win for its round, a rollback of the bet.
    Round(Vec<Command>),
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        8 => command().prop_map(Choice::Fresh),
        2 => any::<prop::sample::Index>().prop_map(Choice::Repeat),
        1 => wallet_round().prop_map(Choice::Round),
    ]
}

fn wallet_round() -> impl Strategy<Value = Vec<Command>> {
    (
        1..=PLAYERS,
        key("r", 2),
        key("t", 10),
        key("t", 10),
        key("t", 10),
        amount(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                player_id,
                round_id,
                bet_id,
                win_id,
                rollback_id,
                amount,
                with_win,
                rollback_first,
            )| {
                let bet = Command::WalletBet(WalletBet {
                    transaction_id: bet_id.clone(),
                    player_id,
                    round_id: round_id.clone(),
                    amount,
                    ledger: eur(),
                });
                let rollback = Command::WalletRollback(WalletRollback {
                    transaction_id: rollback_id,
                    player_id,
                    round_id: round_id.clone(),
                    rolled_back_transaction_id: bet_id,
                });
                let mut commands = if rollback_first {
                    vec![rollback.clone(), bet]
                } else {
                    vec![bet]
                };
                if with_win {
                    let win = WalletWin {
                        transaction_id: win_id,
                        player_id,
                        round_id,
                        amount: amount / 2,
                        ledger: eur(),
                    };
                    commands.push(Command::WalletWin(win));
                }
                commands.push(rollback);
                commands
            },
        )
}

fn genesis() -> Proposal {
    let system = |id| NewAccount {
        id,
        ledger: eur(),
        kind: AccountKind::System,
        flags: AccountFlags::empty(),
    };
    let player = |id| NewAccount {
        kind: AccountKind::Player,
        ..system(id)
    };
    let accounts = (1..=PLAYERS)
        .map(player)
        .chain((PLAYERS + 1..=2 * PLAYERS).map(system))
        .collect();
    let deposits: Vec<NewTransfer> = (1..=PLAYERS)
        .map(|id| NewTransfer {
            id: 1_000 + id,
            debit_account_id: PLAYERS + 1,
            credit_account_id: id,
            amount: 300,
            ledger: eur(),
            flags: TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
        })
        .collect();
    let registered = [vec![eur()], vec![eur(), LedgerCode::parse("USD").unwrap()]];
    let mut commands = vec![Command::CreateAccounts(accounts)];
    for (n, currencies) in registered.into_iter().enumerate() {
        commands.push(Command::CreatePlayer(NewPlayer {
            username: format!("user{n}"),
            password_hash: format!("$argon2id$v=19$hash{n}"),
            currencies,
        }));
    }
    let wallet_deposits = (0..REGISTERED).map(|n| NewTransfer {
        id: 2_000 + u128::from(n),
        debit_account_id: PLAYERS + 1,
        credit_account_id: player_wallet_account_id(n, 0),
        amount: 300,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    });
    commands.push(Command::CreateTransfers(
        deposits.into_iter().chain(wallet_deposits).collect(),
    ));
    Proposal {
        timestamp_ns: T0,
        commands,
    }
}

fn log() -> impl Strategy<Value = Vec<Proposal>> {
    prop::collection::vec((time_step(), prop::collection::vec(choice(), 1..5)), 1..30).prop_map(
        |entries| {
            let genesis = genesis();
            let mut now = genesis.timestamp_ns;
            let mut issued: Vec<Command> = genesis.commands.clone();
            let mut log = vec![genesis];
            for (step, choices) in entries {
                now = now.saturating_add_signed(step);
                let commands: Vec<Command> = choices
                    .into_iter()
                    .flat_map(|choice| match choice {
                        Choice::Fresh(command) => vec![command],
                        Choice::Repeat(index) => vec![issued[index.index(issued.len())].clone()],
                        Choice::Round(commands) => commands,
                    })
                    .collect();
                issued.extend(commands.iter().cloned());
                log.push(Proposal {
                    timestamp_ns: now,
                    commands,
                });
            }
            log
        },
    )
}

fn apply_all(ledger: &mut MemoryLedger, log: &[Proposal]) -> Vec<Vec<CommandResult>> {
    log.iter()
        .map(|entry| ledger.apply(entry.timestamp_ns, &entry.commands))
        .collect()
}

fn snapshot(ledger: &MemoryLedger) -> Vec<u8> {
    ledger.state_bytes()
}

fn config() -> Config {
    Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_logs_keep_every_invariant_after_every_entry(log in log()) {
        let mut ledger = MemoryLedger::new();
        let mut last_timestamp = 0;
        for entry in &log {
            let results = ledger.apply(entry.timestamp_ns, &entry.commands);
            prop_assert_eq!(results.len(), entry.commands.len());
            if let Err(broken) = ledger.check_invariants() {
                return Err(TestCaseError::fail(broken));
            }
            prop_assert!(ledger.last_timestamp() >= last_timestamp);
            last_timestamp = ledger.last_timestamp();
            for (command, result) in entry.commands.iter().zip(&results) {
                check_result_shape(command, result)?;
            }
        }
        // Every operator command left one record, and the records chain up to the ledger's head.
        let operator_commands = log.iter().flat_map(|e| &e.commands)
            .filter(|c| matches!(c, Command::ByOperator { recorded: true, .. })).count() as u64;
        let chain = ledger.ledger.operator_chain();
        prop_assert_eq!(chain.count, operator_commands);
        let trail = ledger.history.operator_actions();
        prop_assert_eq!(croupier_core::operators::verify_chain([0; 32], 0, trail), Ok(chain.head));
        // Balances computed from the wallet's answers never go below zero.
        for id in 1..=ACCOUNT_IDS_MAX {
            if let Some(account) = ledger.account(id) {
                if account.kind == AccountKind::Player {
                    prop_assert!(account.debits_posted + account.debits_pending <= account.credits_posted);
                }
            }
        }
    }

    #[test]
    fn replaying_a_log_gives_identical_results_and_state(log in log()) {
        let mut first = MemoryLedger::new();
        let mut second = MemoryLedger::new();
        let results_first = apply_all(&mut first, &log);
        let results_second = apply_all(&mut second, &log);
        prop_assert_eq!(results_first, results_second);
        prop_assert_eq!(snapshot(&first), snapshot(&second));
        prop_assert_eq!(first.totals(), second.totals());
    }

    #[test]
    fn checkpoint_at_any_point_plus_replay_of_the_rest_equals_full_replay(log in log(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(log.len() + 1);
        let mut full = MemoryLedger::new();
        let full_results = apply_all(&mut full, &log);

        let mut head = MemoryLedger::new();
        apply_all(&mut head, &log[..cut]);
        let checkpoint = head.checkpoint();
        let mut restored = MemoryLedger::restore(&checkpoint, head.history.clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(restored.checkpoint(), checkpoint, "decode then encode is the identity");
        let tail_results = apply_all(&mut restored, &log[cut..]);
        prop_assert_eq!(&tail_results[..], &full_results[cut..]);
        prop_assert_eq!(snapshot(&restored), snapshot(&full));
        restored.check_invariants().map_err(TestCaseError::fail)?;
    }

    #[test]
    fn proposals_round_trip_through_the_codec(log in log()) {
        for entry in &log {
            let mut bytes = Vec::new();
            encode_proposal(entry, &mut bytes);
            prop_assert_eq!(&decode_proposal(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?, entry);
        }
    }
}

fn check_result_shape(command: &Command, result: &CommandResult) -> Result<(), TestCaseError> {
    let ok = match (command, result) {
        (Command::CreateAccounts(items), CommandResult::Accounts(results)) => {
            items.len() == results.len()
        }
        (Command::CreateTransfers(items), CommandResult::Transfers(results)) => {
            items.len() == results.len()
        }
        (
            Command::WalletBet(_) | Command::WalletWin(_) | Command::WalletRollback(_),
            CommandResult::Wallet(_),
        ) => true,
        (Command::Tick, CommandResult::Tick) => true,
        (Command::Table(_), CommandResult::Table(_)) => true,
        (
            Command::CreatePlayer(_)
            | Command::OpenSession(_)
            | Command::CloseSession(_)
            | Command::RevokeSessions(_),
            CommandResult::Player(_),
        ) => true,
        (Command::ByOperator { command, .. }, result) => {
            return check_result_shape(command, result);
        }
        _ => false,
    };
    prop_assert!(ok, "result {result:?} does not match command {command:?}");
    Ok(())
}

/// Guards the generator: random logs must actually reach the interesting paths, or the
/// properties above would pass vacuously.
#[test]
fn random_logs_exercise_the_interesting_paths() {
    let mut runner =
        TestRunner::new_with_rng(config(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let strategy = log();
    let mut codes: BTreeSet<String> = BTreeSet::new();
    let mut expiries = 0;
    for _ in 0..200 {
        let log = strategy.new_tree(&mut runner).unwrap().current();
        let mut ledger = MemoryLedger::new();
        for results in apply_all(&mut ledger, &log) {
            for result in results {
                match result {
                    CommandResult::Transfers(items) => {
                        codes.extend(items.iter().map(|r| r.code().to_string()))
                    }
                    CommandResult::Accounts(items) => {
                        codes.extend(items.iter().map(|r| format!("account:{}", r.code())))
                    }
                    CommandResult::Wallet(outcome) => {
                        codes.insert(match outcome {
                            WalletOutcome::Ok {
                                transfer_id: Some(_),
                                ..
                            } => "wallet:ok_moved".to_string(),
                            other => other.code().to_string(),
                        });
                    }
                    CommandResult::Tick => {}
                    CommandResult::Table(outcome) => {
                        codes.insert(format!("table:{}", outcome.code()));
                    }
                    CommandResult::Compliance(outcome) => {
                        codes.insert(format!("compliance:{}", outcome.code()));
                    }
                    CommandResult::Payment(outcome) => {
                        codes.insert(format!("payment:{}", outcome.code()));
                    }
                    CommandResult::Consumer(outcome) => {
                        codes.insert(format!("consumer:{}", outcome.code()));
                    }
                    CommandResult::Player(outcome) => {
                        codes.insert(
                            format!("player:{outcome:?}")
                                .split([' ', '{'])
                                .next()
                                .unwrap()
                                .to_string(),
                        );
                    }
                }
            }
        }
        expiries += (1..=ACCOUNT_IDS_MAX)
            .flat_map(|id| ledger.account_transfers(id, usize::MAX))
            .filter(|t| croupier_core::ids::is_expiry_transfer_id(t.id))
            .count();
    }
    for expected in [
        "ok",
        "exists",
        "linked_event_failed",
        "linked_event_chain_open",
        "exceeds_credits",
        "pending_transfer_already_posted",
        "pending_transfer_expired",
        "debit_account_already_closed",
        "account:ok",
        "account:exists",
        "wallet:ok_moved",
        "insufficient_funds",
        "bet_already_rolled_back",
        "bet_already_settled",
        "transaction_conflict",
        "player:PlayerCreated",
        "player:UsernameTaken",
        "player:SessionOpened",
        "player:SessionsClosed",
        "player:SessionNotFound",
        "player:PlayerNotFound",
    ] {
        assert!(
            codes.contains(expected),
            "random logs never produced {expected}; got {codes:?}"
        );
    }
    assert!(
        expiries > 0,
        "no pending transfer expired in 200 random logs"
    );
}
