//! The on-disk state against `MemoryLedger` (the reference model) over random command
//! sequences with checkpoints, log compaction, clean restarts and crashes in between.
//!
//! `DiskNode` (tests/common) applies entries, checkpoints and recovers exactly as the node
//! does, on the simulated file system with tiny segments and index memtables (so segments roll
//! and index runs flush and merge within a case). After every entry its results and records
//! must equal the model's; after every restart the replayed entries must give the results they
//! first gave, and everything on disk (hot state bytes, every transfer by sequence number and
//! id, resolutions, wallet lookups, the event feed, `check_against_history`) must equal the
//! model's. At the end the offline audit must pass on the data directory.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{events_of, DiskNode, NodeOptions, PendingCheckpoint, Probes};
use croupier_core::command::Proposal;
use croupier_core::history::HistoryRecord;
use croupier_core::payments::PaymentKey;
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, LedgerCode, MemoryLedger, NewAccount, NewTransfer,
    TransferFlags, WalletBet, WalletRollback, WalletWin,
};
use croupier_store::audit;
use proptest::prelude::*;

const SECOND_NS: u64 = 1_000_000_000;
/// 2025-01-01, as the core's tests start.
const T0: u64 = 1_735_689_600 * SECOND_NS;
const ACCOUNT_IDS_MAX: u128 = 12;
const TRANSFER_IDS_MAX: u128 = 16;
/// Accounts 1..=PLAYERS are EUR players and PLAYERS+1..=2*PLAYERS EUR system accounts, created
/// and funded by the first entry of every log; the rest come and go at random.
const PLAYERS: u128 = 4;

fn ledger_code() -> impl Strategy<Value = LedgerCode> {
    prop_oneof![9 => Just("EUR"), 1 => Just("USD")].prop_map(|code| LedgerCode::parse(code).unwrap())
}

fn account_kind() -> impl Strategy<Value = AccountKind> {
    prop_oneof![4 => Just(AccountKind::Player), 4 => Just(AccountKind::System), 1 => Just(AccountKind::Bonus), 1 => Just(AccountKind::House)]
}

fn account_flags() -> impl Strategy<Value = AccountFlags> {
    prop_oneof![6 => Just(0u16), 4 => 0u16..16].prop_map(|bits| AccountFlags::from_bits(bits).unwrap())
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
    (0..=ACCOUNT_IDS_MAX, ledger_code(), account_kind(), account_flags())
        .prop_map(|(id, ledger, kind, flags)| NewAccount { id, ledger, kind, flags })
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
            |(id, debit_account_id, credit_account_id, amount, ledger, flags, pending_id, timeout_s, inherit)| {
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
    let player = prop_oneof![9 => 1..=PLAYERS, 1 => 1..=ACCOUNT_IDS_MAX];
    prop_oneof![
        (key("t", 10), player.clone(), key("r", 2), amount(), ledger_code()).prop_map(
            |(transaction_id, player_id, round_id, amount, ledger)| {
                Command::WalletBet(WalletBet { transaction_id, player_id, round_id, amount, ledger })
            }
        ),
        (key("t", 10), player.clone(), key("r", 2), amount(), ledger_code()).prop_map(
            |(transaction_id, player_id, round_id, amount, ledger)| {
                Command::WalletWin(WalletWin { transaction_id, player_id, round_id, amount, ledger })
            }
        ),
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

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => prop::collection::vec(new_account(), 1..5).prop_map(Command::CreateAccounts),
        5 => prop::collection::vec(new_transfer(), 1..9).prop_map(Command::CreateTransfers),
        3 => wallet_command(),
        1 => Just(Command::Tick),
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
    /// A payment's (or an AML case's) steps, in order, cut short at random (so some stay
    /// open, some are archived and later repeated).
    Payment(Vec<Command>),
    /// Transfers with ids never used before (so history grows past segment and memtable
    /// sizes), some pending with timeouts, some linked: (debit, credit, amount, pending, linked).
    Bulk(Vec<(u128, u128, u64, bool, bool)>),
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        8 => command().prop_map(Choice::Fresh),
        2 => any::<prop::sample::Index>().prop_map(Choice::Repeat),
        1 => wallet_round().prop_map(Choice::Round),
        2 => payment_life().prop_map(Choice::Payment),
        1 => case_life().prop_map(Choice::Payment),
        1 => prop::collection::vec((1..=2 * PLAYERS, 1..=2 * PLAYERS, 1u64..40, any::<bool>(), prop::bool::weighted(0.2)), 1..12)
            .prop_map(Choice::Bulk),
    ]
}

fn wallet_round() -> impl Strategy<Value = Vec<Command>> {
    (1..=PLAYERS, key("r", 2), key("t", 10), key("t", 10), key("t", 10), amount(), any::<bool>(), any::<bool>())
        .prop_map(|(player_id, round_id, bet_id, win_id, rollback_id, amount, with_win, rollback_first)| {
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
            let mut commands = if rollback_first { vec![rollback.clone(), bet] } else { vec![bet] };
            if with_win {
                let win = WalletWin { transaction_id: win_id, player_id, round_id, amount: amount / 2, ledger: eur() };
                commands.push(Command::WalletWin(win));
            }
            commands.push(rollback);
            commands
        })
}

/// Registered players (with EUR wallets) that deposit and withdraw.
const PAYING_PLAYERS: u64 = 2;
const PAYMENT_IDS_MAX: u128 = 6;

/// A deposit (opened, started, settled or failed) or a withdrawal (requested, approved,
/// accepted by the bank, paid or declined), as its first `steps` commands.
fn payment_life() -> impl Strategy<Value = Vec<Command>> {
    use croupier_core::ids::player_id;
    use croupier_core::payments::{Payee, PayeeAccount, PaymentCommand as P, WithdrawalDecision};
    let shape = (any::<bool>(), 1..=PAYMENT_IDS_MAX, 0..PAYING_PLAYERS, 1u64..200, any::<bool>(), 1usize..=4);
    shape.prop_map(|(deposit, id, player, amount, succeeds, steps)| {
        let player_id = player_id(player);
        let connector = if id % 2 == 0 { "bank-a" } else { "bank-b" }.to_string();
        let commands = if deposit {
            let opened = P::OpenDeposit { deposit_id: id, player_id, ledger: eur(), amount, connector };
            let started =
                P::DepositStarted { deposit_id: id, consent_id: format!("c{id}"), authorisation_url: String::new() };
            let ended = match succeeds {
                true => P::SettleDeposit { deposit_id: id },
                false => P::FailDeposit { deposit_id: id, expired: false, reason: "U028".into() },
            };
            vec![opened, started, ended]
        } else {
            let payee = Payee { account: PayeeAccount::Iban("DE89370400440532013000".into()), name: "A".into() };
            let requested = P::RequestWithdrawal { withdrawal_id: id, player_id, ledger: eur(), amount, payee };
            let approve = WithdrawalDecision::Approve { connector };
            let decided = P::DecideWithdrawal { withdrawal_id: id, decision: approve, reasons: vec![] };
            let accepted = P::PayoutAccepted { withdrawal_id: id, attempt: 0, payment_id: format!("p{id}") };
            let ended = match succeeds {
                true => P::SettlePayout { withdrawal_id: id, attempt: 0 },
                false => P::FailPayout {
                    withdrawal_id: id,
                    attempt: 0,
                    reason: "AC01".into(),
                    next_connector: None,
                    leader_term: None,
                },
            };
            vec![requested, decided, accepted, ended]
        };
        commands.into_iter().take(steps).map(Command::Payment).collect()
    })
}

const CASE_IDS_MAX: u128 = 4;

/// An AML case opened, noted and decided, as its first `steps` commands.
fn case_life() -> impl Strategy<Value = Vec<Command>> {
    use croupier_core::cases::{CaseAction, CaseCommand as C, CaseDecision, NewCase, NoteKind};
    use croupier_core::compliance::ComplianceCommand;
    (1..=CASE_IDS_MAX, 0..PAYING_PLAYERS, 1usize..=3).prop_map(|(case_id, player, steps)| {
        let opened = C::Open(NewCase {
            case_id,
            player_id: croupier_core::ids::player_id(player),
            score: 70,
            reasons: vec![format!("rule-{case_id}")],
            ruleset_version: "v1".into(),
            action: CaseAction::HoldWithdrawals,
            by: "aml".into(),
        });
        let noted = C::Note { case_id, kind: NoteKind::Comment, text: "seen".into(), by: "analyst".into() };
        let decided = C::Decide { case_id, decision: CaseDecision::Clear, text: "ok".into(), by: "analyst".into() };
        let commands = [opened, noted, decided].into_iter().take(steps);
        commands.map(|case| Command::Compliance(ComplianceCommand::Case(case))).collect()
    })
}

fn genesis() -> Proposal {
    let system = |id| NewAccount { id, ledger: eur(), kind: AccountKind::System, flags: AccountFlags::empty() };
    let player = |id| NewAccount { kind: AccountKind::Player, ..system(id) };
    let accounts = (1..=PLAYERS).map(player).chain((PLAYERS + 1..=2 * PLAYERS).map(system)).collect();
    let deposits = (1..=PLAYERS)
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
    let players = (0..PAYING_PLAYERS).map(|n| {
        Command::CreatePlayer(croupier_core::players::NewPlayer {
            username: format!("payer{n}"),
            password_hash: "$argon2id$v=19$x".into(),
            currencies: vec![eur()],
        })
    });
    let mut commands = vec![Command::CreateAccounts(accounts), Command::CreateTransfers(deposits)];
    commands.extend(players);
    Proposal { timestamp_ns: T0, commands }
}

/// What happens to the node between and around entries.
#[derive(Clone, Debug)]
enum Step {
    Entry {
        time_step: i64,
        choices: Vec<Choice>,
    },
    /// A new leader's blank entry.
    Elect,
    Checkpoint,
    /// A checkpoint frozen now and committed after `entries` more entries (the node writes it
    /// on another task while entries keep applying); a restart before then abandons it.
    DeferredCheckpoint {
        entries: u8,
    },
    /// Compacts the log through the checkpoint in force.
    Compact,
    Restart,
    Crash {
        seed: u64,
    },
}

/// A step with its commands decided (repeats resolved, time advanced).
#[derive(Clone, Debug)]
enum Action {
    Propose(Proposal),
    Elect,
    Checkpoint,
    DeferredCheckpoint { entries: u8 },
    Compact,
    Restart,
    Crash { seed: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        14 => (time_step(), prop::collection::vec(choice(), 1..5))
            .prop_map(|(time_step, choices)| Step::Entry { time_step, choices }),
        1 => Just(Step::Elect),
        2 => Just(Step::Checkpoint),
        1 => (0u8..4).prop_map(|entries| Step::DeferredCheckpoint { entries }),
        1 => Just(Step::Compact),
        1 => Just(Step::Restart),
        2 => any::<u64>().prop_map(|seed| Step::Crash { seed }),
    ]
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(step(), 1..60).prop_map(|steps| {
        let genesis = genesis();
        let mut now = genesis.timestamp_ns;
        let mut issued: Vec<Command> = genesis.commands.clone();
        let mut actions = vec![Action::Propose(genesis)];
        let mut next_bulk_id = BULK_IDS_FROM;
        for step in steps {
            actions.push(match step {
                Step::Entry { time_step, choices } => {
                    now = now.saturating_add_signed(time_step);
                    let commands: Vec<Command> = choices
                        .into_iter()
                        .flat_map(|choice| match choice {
                            Choice::Fresh(command) => vec![command],
                            Choice::Repeat(index) => vec![issued[index.index(issued.len())].clone()],
                            Choice::Round(commands) | Choice::Payment(commands) => commands,
                            Choice::Bulk(items) => vec![bulk(items, &mut next_bulk_id)],
                        })
                        .collect();
                    issued.extend(commands.iter().cloned());
                    Action::Propose(Proposal { timestamp_ns: now, commands })
                }
                Step::Elect => Action::Elect,
                Step::Checkpoint => Action::Checkpoint,
                Step::DeferredCheckpoint { entries } => Action::DeferredCheckpoint { entries },
                Step::Compact => Action::Compact,
                Step::Restart => Action::Restart,
                Step::Crash { seed } => Action::Crash { seed },
            });
        }
        actions
    })
}

/// Ids of `Choice::Bulk` transfers: never generated by `new_transfer`.
const BULK_IDS_FROM: u128 = 1 << 20;

fn bulk(items: Vec<(u128, u128, u64, bool, bool)>, next_id: &mut u128) -> Command {
    let transfers = items
        .into_iter()
        .map(|(debit_account_id, credit_account_id, amount, pending, linked)| {
            let id = *next_id;
            *next_id += 1;
            let mut flags = if pending { TransferFlags::PENDING } else { TransferFlags::empty() };
            if linked {
                flags = flags.union(TransferFlags::LINKED);
            }
            NewTransfer {
                id,
                debit_account_id,
                credit_account_id,
                amount,
                ledger: eur(),
                flags,
                pending_id: 0,
                timeout_s: if pending { (amount % 20) as u32 } else { 0 },
            }
        })
        .collect();
    Command::CreateTransfers(transfers)
}

fn probes() -> Probes {
    let keys = |prefix: &'static str, count: u32| (0..count).map(move |n| format!("{prefix}{n}"));
    Probes {
        transfer_ids: (0..=TRANSFER_IDS_MAX + 2)
            .chain(1_000..=1_000 + PLAYERS + 1)
            .chain(BULK_IDS_FROM - 1..BULK_IDS_FROM + 2)
            .collect(),
        wallet_keys: keys("t", 11).collect(),
        settled: (0..=ACCOUNT_IDS_MAX).flat_map(|player| keys("r", 3).map(move |round| (player, round))).collect(),
        payments: (0..=PAYMENT_IDS_MAX + 1)
            .flat_map(|id| [PaymentKey::Deposit(id), PaymentKey::Withdrawal(id)])
            .collect(),
    }
}

/// The test's side of the run: the model and what the node must show.
struct Run {
    node: DiskNode,
    model: MemoryLedger,
    events: Vec<(u64, HistoryRecord)>,
    /// The results each proposal's entry gave when first applied.
    results: BTreeMap<u64, Vec<CommandResult>>,
    deferred: Option<(PendingCheckpoint, u8)>,
    probes: Probes,
}

fn fail(reason: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(reason.to_string())
}

impl Run {
    fn new(root: &Path, options: NodeOptions) -> Run {
        Run::with(DiskNode::sim(root, options))
    }

    fn with(node: DiskNode) -> Run {
        Run {
            node,
            model: MemoryLedger::new(),
            events: Vec::new(),
            results: BTreeMap::new(),
            deferred: None,
            probes: probes(),
        }
    }

    fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Propose(proposal) => {
                let (index, results) = self.node.propose(proposal).map_err(fail)?;
                let expected = self.model.apply(proposal.timestamp_ns, &proposal.commands);
                prop_assert_eq!(&results, &expected, "entry {}", index);
                prop_assert_eq!(self.node.last_records(), self.model.last_records(), "entry {}", index);
                self.events.extend(events_of(index, self.model.last_records()));
                self.results.insert(index, expected);
                self.count_down_deferred()?;
            }
            Action::Elect => {
                self.node.elect().map_err(fail)?;
            }
            Action::Checkpoint => {
                self.finish_deferred()?;
                self.node.checkpoint().map_err(fail)?;
            }
            Action::DeferredCheckpoint { entries } => {
                self.finish_deferred()?;
                let pending = self.node.begin_checkpoint().map_err(fail)?;
                self.deferred = Some((pending, *entries));
                if *entries == 0 {
                    self.finish_deferred()?;
                }
            }
            Action::Compact => {
                self.node.compact().map_err(fail)?;
            }
            Action::Restart => {
                self.deferred = None;
                self.node.stop();
                self.recover()?;
            }
            Action::Crash { seed } => {
                self.deferred = None;
                if self.node.is_simulated() {
                    self.node.crash(*seed);
                } else {
                    self.node.stop();
                }
                self.recover()?;
            }
        }
        Ok(())
    }

    fn count_down_deferred(&mut self) -> Result<(), TestCaseError> {
        if let Some((_, left)) = &mut self.deferred {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.finish_deferred()?;
            }
        }
        Ok(())
    }

    fn finish_deferred(&mut self) -> Result<(), TestCaseError> {
        if let Some((pending, _)) = self.deferred.take() {
            self.node.finish_checkpoint(pending).map_err(fail)?;
        }
        Ok(())
    }

    /// Recovers and checks that the replay gave the original results and that everything on
    /// disk equals the model.
    fn recover(&mut self) -> Result<(), TestCaseError> {
        let replayed = self.node.restart().map_err(fail)?;
        let covered = self.node.current_checkpoint().map_or(0, |m| m.last_index);
        let expected: Vec<_> =
            self.results.range(covered + 1..).map(|(&index, results)| (index, results.clone())).collect();
        if self.node.current_checkpoint().is_some_and(|m| m.last_index > 0 || m.last_term > 0) {
            prop_assert_eq!(&replayed, &expected, "replay after the checkpoint at {}", covered);
        } else {
            let all: Vec<_> = self.results.iter().map(|(&index, results)| (index, results.clone())).collect();
            prop_assert_eq!(&replayed, &all, "replay from genesis");
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.node.check_against_model(&self.model, &self.events, &self.probes).map_err(fail)
    }

    /// Stops the node and audits its data directory.
    fn audit(&mut self) -> Result<(), TestCaseError> {
        self.node.stop();
        let summary = audit::verify_with(self.node.fs(), self.node.root()).map_err(|e| fail(format!("audit: {e}")))?;
        let totals = self.model.totals();
        prop_assert_eq!(summary.per_ledger, totals.per_ledger);
        prop_assert_eq!((summary.accounts, summary.transfers), (totals.accounts, totals.transfers));
        let last = self.node.last_index();
        prop_assert_eq!(summary.chain_head, self.node.chain_hash(last));
        // None when every entry was compacted behind the checkpoint.
        prop_assert!(summary.last_index.is_none_or(|index| index == last), "{:?}", summary.last_index);
        Ok(())
    }
}

/// Where a run keeps its data: the simulated file system (crashes lose unsynced data) or the
/// OS's (a crash is a stop), with or without the real `LogStore` (the audit needs it).
#[derive(Clone, Copy, Debug)]
enum Disk {
    Simulated,
    SimulatedWithoutLogStore,
    Os,
}

fn run(disk: Disk, actions: &[Action]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let options = NodeOptions::default();
    let mut run = Run::with(match disk {
        Disk::Simulated => DiskNode::sim(dir.path(), options),
        Disk::SimulatedWithoutLogStore => DiskNode::sim(dir.path(), NodeOptions { log: None, ..options }),
        Disk::Os => DiskNode::os(dir.path(), options),
    });
    for action in actions {
        run.act(action)?;
    }
    run.check()?;
    if run.node.has_log_store() {
        run.audit()?;
    }
    // Whatever the run left unsynced, a crash now and a recovery reach the same state.
    run.act(&Action::Crash { seed: 0x5eed })
}

/// `PROPTEST_CASES` scales every test's case count (from its default here) for soaking.
fn config(cases: u32) -> ProptestConfig {
    let scale = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse::<u32>().ok());
    let cases = scale.map_or(cases, |scale| cases.saturating_mul(scale) / 256);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn disk_state_equals_the_model_across_restarts_and_crashes(actions in actions()) {
        run(Disk::Simulated, &actions)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn disk_state_equals_the_model_with_the_log_kept_in_memory(actions in actions()) {
        run(Disk::SimulatedWithoutLogStore, &actions)?;
    }
}

proptest! {
    // Few cases: every log append is fsynced for real.
    #![proptest_config(config(6))]

    #[test]
    fn disk_state_equals_the_model_on_the_os_file_system(actions in actions()) {
        run(Disk::Os, &actions)?;
    }
}

fn transfers_entry(at: u64, first_id: u128, count: u128) -> Proposal {
    let transfers =
        (first_id..first_id + count).map(|id| NewTransfer { id, amount: 1, ..deposit(PLAYERS + 1, 1) }).collect();
    Proposal { timestamp_ns: at, commands: vec![Command::CreateTransfers(transfers)] }
}

fn deposit(from: u128, to: u128) -> NewTransfer {
    NewTransfer {
        id: 0,
        debit_account_id: from,
        credit_account_id: to,
        amount: 0,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

/// Regression: the id indexes' durable coverage can run ahead of the checkpoint (a memtable
/// flushed after it); recovery cuts history back to the checkpoint and the replay re-inserts
/// keys below that coverage, which used to trip `IdIndex::insert_batch`'s "covered_through went
/// back" assertion on every restart.
#[test]
fn restart_after_the_indexes_flushed_past_the_checkpoint() {
    for crash in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::new(dir.path(), NodeOptions::default());
        run.act(&Action::Propose(genesis())).unwrap();
        run.act(&Action::Checkpoint).unwrap();
        for n in 0..12u64 {
            let entry = transfers_entry(T0 + (n + 1) * SECOND_NS, 100 + 10 * n as u128, 10);
            run.act(&Action::Propose(entry)).unwrap();
        }
        // Everything reaches the disk (so the crash below loses nothing but the memtables).
        run.node.begin_checkpoint().unwrap();
        let action = if crash { Action::Crash { seed: 3 } } else { Action::Restart };
        run.act(&action).unwrap();
        run.check().unwrap();
    }
}

fn wallet_bet(transaction_id: &str, player_id: u128, round_id: &str, amount: u64) -> Command {
    let (transaction_id, round_id) = (transaction_id.into(), round_id.into());
    Command::WalletBet(WalletBet { transaction_id, player_id, round_id, amount, ledger: eur() })
}

fn wallet_win(transaction_id: &str, player_id: u128, round_id: &str, amount: u64) -> Command {
    let (transaction_id, round_id) = (transaction_id.into(), round_id.into());
    Command::WalletWin(WalletWin { transaction_id, player_id, round_id, amount, ledger: eur() })
}

fn wallet_rollback(transaction_id: &str, player_id: u128, round_id: &str, bet: &str) -> Command {
    let (transaction_id, round_id, rolled_back_transaction_id) = (transaction_id.into(), round_id.into(), bet.into());
    Command::WalletRollback(WalletRollback { transaction_id, player_id, round_id, rolled_back_transaction_id })
}

/// Regression: a second win for a round moved the round's "settled" index key to the later
/// win (the id index keeps the newest value). An entry between the two wins that asks whether
/// the round is settled then saw "no" whenever the later win lay beyond what was visible: in a
/// replay after recovery cut history back to a checkpoint, and in the audit's verified view.
#[test]
fn a_round_stays_settled_by_its_first_win_for_replays_and_the_audit() {
    for end in [None, Some(Action::Restart), Some(Action::Crash { seed: 8 })] {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::new(dir.path(), NodeOptions::default());
        let mut at = T0;
        let mut propose = |run: &mut Run, commands| {
            at += SECOND_NS;
            run.act(&Action::Propose(Proposal { timestamp_ns: at, commands })).unwrap();
        };
        propose(&mut run, genesis().commands);
        propose(&mut run, vec![wallet_bet("bet-1", 2, "r1", 10), wallet_win("win-1", 2, "r1", 5)]);
        run.act(&Action::Checkpoint).unwrap();
        // Refused: the round is settled.
        propose(&mut run, vec![wallet_bet("bet-2", 2, "r1", 10), wallet_rollback("rollback-2", 2, "r1", "bet-2")]);
        let refused = run.model.last_records().iter().any(
            |record| matches!(record, HistoryRecord::Wallet(w) if w.key == "rollback-2" && !w.entry.outcome().is_ok()),
        );
        assert!(refused, "the rollback must be refused: {:?}", run.model.last_records());
        propose(&mut run, vec![wallet_win("win-2", 2, "r1", 1)]);
        // Enough keys that the key index's memtables freeze and flush (its backpressure makes
        // the flush of the settled key's memtable happen before these inserts return).
        propose(&mut run, (0..40).map(|n| wallet_bet(&format!("filler-{n}"), 1, "f", 1)).collect());
        if let Some(end) = end {
            run.act(&end).unwrap();
        }
        run.check().unwrap();
        run.audit().unwrap();
    }
}
