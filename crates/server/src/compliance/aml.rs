//! The AML and fraud scoring pipeline: a durable consumer (`aml`) of the committed event feed
//! that turns money events into `croupier_risk::aml` facts, evaluates the rule set, and
//! proposes a case (`CaseCommand::Open`) for every evaluation whose action calls for one. The
//! case id is derived from the triggering event's feed position, so a crash, a restart or a
//! leader change that replays events proposes the same ids and the ledger opens each case
//! once; the cursor is acknowledged only after the batch's cases are committed, so nothing is
//! lost either.
//!
//! Only the node serving writes proposes. The rule set is data (TOML with CEL expressions),
//! reloaded when its file changes; a rule set that does not compile is refused and the one in
//! force stays. The player windows live in memory, bounded by `ActivityLimits`; after a
//! restart the pipeline first replays the retained feed up to its cursor (recording only) so
//! windows that span the restart are whole again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use croupier_cluster::{CommittedEvent, Consensus, EventSubscription, Node};

use crate::cursor::CursorSaver;
use croupier_core::cases::{CaseAction, CaseCommand, NewCase};
use croupier_core::compliance::{ComplianceCommand, SeenIdentifiers};
use croupier_core::history::HistoryRecord;
use croupier_core::ids::{is_reserved_id, player_of_wallet};
use croupier_core::tables::TableEventKind;
use croupier_core::wallet::WalletEntry;
use croupier_core::Command;
use croupier_risk::aml::{
    decision_id, Action, Activity, ActivityLimits, EventKind, LedgerCode, MoneyEvent, RuleSet,
};

/// The consumer name of the pipeline's durable cursor.
pub const CONSUMER_NAME: &str = "aml";
/// Events read per step.
const BATCH_EVENTS_MAX: usize = 4_096;
/// How often the rules file is looked at for a change.
const RULES_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// The pipeline's name in a case's `opened_by`.
const ACTOR: &str = "aml";
/// A batch smaller than this means the pipeline is caught up: it waits a moment so the next
/// read finds more than one entry's events (fewer wake-ups under load, at most this much lag).
const SMALL_BATCH_EVENTS: usize = 256;
const CAUGHT_UP_PAUSE: Duration = Duration::from_millis(20);

/// The pipeline's shared state: the rule set in force and the players' windows (the
/// synchronous withdrawal scoring reads both).
pub struct AmlShared {
    pub rules: RwLock<Arc<RuleSet>>,
    pub activity: Mutex<Activity>,
    /// The rules file, reloaded when it changes; None: the embedded default rule set.
    pub rules_file: Option<PathBuf>,
}

impl std::fmt::Debug for AmlShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmlShared")
            .field("rules_file", &self.rules_file)
            .finish_non_exhaustive()
    }
}

impl AmlShared {
    /// The default rule set, or the one in `rules_file` (refused if it does not compile).
    pub fn new(rules_file: Option<PathBuf>, limits: ActivityLimits) -> Result<AmlShared, String> {
        let rules = match &rules_file {
            None => RuleSet::default_rules(),
            Some(path) => load_rules(path)?,
        };
        Ok(AmlShared {
            rules: RwLock::new(Arc::new(rules)),
            activity: Mutex::new(Activity::new(limits)),
            rules_file,
        })
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The windows. A panic while they were held leaves them as they were (each update is
    /// one `record`), so a poisoned lock is taken as it is rather than failing every caller.
    pub fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for AmlShared {
    fn default() -> Self {
        AmlShared::new(None, ActivityLimits::default()).expect("the default rules compile")
    }
}

fn load_rules(path: &std::path::Path) -> Result<RuleSet, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading {}: {error}", path.display()))?;
    RuleSet::parse(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// What table events need that they do not carry: the round's currency and spot count.
type Rounds = BTreeMap<u64, (LedgerCode, u16)>;

/// The money event a committed record is for the scoring, if any.
pub fn money_event(event: &CommittedEvent, rounds: &Rounds) -> Option<MoneyEvent> {
    let at = event.timestamp_ns;
    match &event.record {
        HistoryRecord::Wallet(record) => wallet_event(&record.entry, at),
        HistoryRecord::Table(table) => match &table.kind {
            TableEventKind::BetPlaced {
                player_id,
                spots,
                stake,
                ..
            } => {
                let (ledger, spot_count) = *rounds.get(&table.round_id)?;
                let mut money = MoneyEvent::new(at, *player_id, ledger, EventKind::Bet, *stake);
                money.round_id = Some(table.round_id);
                money.spots = spots.iter().map(|spot| spot.spot).collect();
                money.spot_count = spot_count;
                Some(money)
            }
            TableEventKind::BetSettled {
                player_id, paid, ..
            } if *paid > 0 => {
                let (ledger, _) = *rounds.get(&table.round_id)?;
                let mut money = MoneyEvent::new(at, *player_id, ledger, EventKind::Win, *paid);
                money.round_id = Some(table.round_id);
                Some(money)
            }
            _ => None,
        },
        HistoryRecord::Transfer(stored) => transfer_event(&stored.transfer, at),
        _ => None,
    }
}

fn wallet_event(entry: &WalletEntry, at: u64) -> Option<MoneyEvent> {
    let (request_player, ledger, kind, amount) = match entry {
        WalletEntry::Bet { request, outcome } if outcome.moved_money() => (
            request.player_id,
            request.ledger,
            EventKind::Bet,
            request.amount,
        ),
        WalletEntry::Win { request, outcome } if outcome.moved_money() => (
            request.player_id,
            request.ledger,
            EventKind::Win,
            request.amount,
        ),
        _ => return None,
    };
    let player = player_of_wallet(request_player).unwrap_or(request_player);
    let ledger = LedgerCode::from_u64(ledger.to_u64())?;
    Some(MoneyEvent::new(at, player, ledger, kind, amount))
}

/// A client's posted transfer into a player's wallet is a deposit, out of one a withdrawal
/// (wallet and table transfers have reserved ids and are seen as bets and wins instead).
fn transfer_event(transfer: &croupier_core::Transfer, at: u64) -> Option<MoneyEvent> {
    use croupier_core::TransferFlags;
    let two_phase = [
        TransferFlags::PENDING,
        TransferFlags::POST_PENDING_TRANSFER,
        TransferFlags::VOID_PENDING_TRANSFER,
    ];
    if is_reserved_id(transfer.id) || two_phase.iter().any(|f| transfer.flags.contains(*f)) {
        return None;
    }
    let ledger = LedgerCode::from_u64(transfer.ledger.to_u64())?;
    let into = player_of_wallet(transfer.credit_account_id);
    let out_of = player_of_wallet(transfer.debit_account_id);
    let (player, kind) = match (into, out_of) {
        (Some(player), None) => (player, EventKind::Deposit),
        (None, Some(player)) => (player, EventKind::Withdrawal),
        _ => return None,
    };
    Some(MoneyEvent::new(at, player, ledger, kind, transfer.amount))
}

fn case_action(action: Action) -> Option<CaseAction> {
    match action {
        Action::Allow => None,
        Action::HoldWithdrawals => Some(CaseAction::HoldWithdrawals),
        Action::RequireEnhancedKyc => Some(CaseAction::RequireEnhancedKyc),
        Action::OpenCase => Some(CaseAction::OpenCase),
        Action::Freeze => Some(CaseAction::Freeze),
    }
}

/// How much lower than the ledger's threads the pipeline's thread runs (a nice value): under
/// a load that fills every core, the ledger goes first and the pipeline catches up after (it
/// decides 300,000 events a second when it has a core), rather than the two sharing the cores
/// evenly and the ledger losing a sixth of its throughput to scoring.
const THREAD_NICE: i32 = 5;

/// Starts the pipeline on a thread of its own (a single-threaded runtime, at a lower priority:
/// `THREAD_NICE`); the receiver resolves once it has stopped.
pub fn spawn(
    node: Node,
    shared: Arc<AmlShared>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    crate::cursor::spawn_on_own_thread("aml-pipeline", lower_priority, move || {
        run(node, shared, stop)
    })
}

/// Lowers this thread's scheduling priority (Linux applies `setpriority` on a thread id to
/// that thread alone). Failing to is no reason not to score: it is logged and ignored.
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), THREAD_NICE) {
        tracing::warn!(%error, "the AML pipeline runs at normal priority");
    }
}

/// Runs the pipeline until `stop` turns true.
pub async fn run(node: Node, shared: Arc<AmlShared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut subscription = match node.subscribe(CONSUMER_NAME) {
        Ok(subscription) => subscription,
        Err(error) => {
            tracing::error!(%error, "the AML pipeline cannot open its cursor; no scoring");
            return;
        }
    };
    let acked = subscription.acked().unwrap_or(0);
    rebuild_windows(&node, &shared, 0, acked).await;
    // A restart replays what came after the saved cursor, and the replayed decisions have the
    // same case ids, so the ledger opens nothing twice.
    let mut cursor = CursorSaver::new(CONSUMER_NAME, acked);
    let mut rules_seen = rules_mtime(&shared);
    let mut rules_check = tokio::time::interval(RULES_CHECK_INTERVAL);
    let mut caught_up = false;
    while !*stop.borrow() {
        let serving = node.is_serving_writes();
        if serving && !caught_up {
            catch_up(&node, &shared, &mut subscription).await;
        }
        caught_up = serving;
        let save_due = cursor.save_due_in();
        tokio::select! {
            biased;
            changed = stop.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return, // the server is gone
            },
            _ = rules_check.tick() => {
                rules_seen = reload_rules(&shared, rules_seen);
                continue;
            }
            batch = subscription.next_batch(BATCH_EVENTS_MAX), if node.is_serving_writes() => {
                let Ok(batch) = batch else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let Some(last) = batch.last().map(|event| event.position) else { continue };
                if let Err(error) = decide(&node, &shared, &batch).await {
                    // Not acknowledged: the batch comes again after a restart, with the same
                    // case ids. Until then, wait and go on (the cursor stays put).
                    tracing::warn!(%error, "AML decisions not committed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                cursor.decided(&mut subscription, last, batch.len());
                record_lag(&batch);
                if batch.len() < SMALL_BATCH_EVENTS {
                    tokio::time::sleep(CAUGHT_UP_PAUSE).await;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if !node.is_serving_writes() => {}
            _ = tokio::time::sleep(save_due.unwrap_or_default()), if save_due.is_some() => {
                cursor.save(&mut subscription);
            }
        }
    }
    cursor.save(&mut subscription);
}

/// How far behind the feed the pipeline runs: for every event of a decided batch, the time
/// from its commit (its ledger timestamp) to its decisions being committed.
fn record_lag(batch: &[CommittedEvent]) {
    let now_ns = crate::auth::wall_clock_ns();
    let lag = metrics::histogram!("croupier_aml_lag_seconds");
    for event in batch {
        lag.record(now_ns.saturating_sub(event.timestamp_ns) as f64 / 1e9);
    }
    metrics::counter!("croupier_aml_events_total").increment(batch.len() as u64);
}

/// This node just began serving writes: the pipeline starts after what the last node that
/// ran it acknowledged (the replicated cursor), and builds its windows over the events it
/// skips without deciding on them again (that node did).
async fn catch_up(node: &Node, shared: &AmlShared, subscription: &mut EventSubscription) {
    match subscription.catch_up_to_replicated().await {
        Ok(Some((after, through))) => rebuild_windows(node, shared, after, through).await,
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "AML: the replicated cursor is unread"),
    }
}

/// Replays the retained feed after `after` up to `acked` into the windows, proposing nothing.
async fn rebuild_windows(node: &Node, shared: &AmlShared, mut after: u64, acked: u64) {
    while after < acked {
        let Ok(page) = node.events_after(after, BATCH_EVENTS_MAX).await else {
            return;
        };
        if page.events.is_empty() {
            return;
        }
        let events: Vec<_> = page
            .events
            .into_iter()
            .filter(|e| e.position <= acked)
            .collect();
        let Some(last) = events.last().map(|event| event.position) else {
            return;
        };
        for (_, money) in money_events(node, &events).await {
            // Locked per event: a withdrawal scoring never waits for a whole page.
            shared.activity().record(&money);
        }
        after = last;
    }
}

/// The money events among `events`, by feed position, each with the identifiers its player
/// was last seen with (from the ledger's state: the log carries them, see
/// `ComplianceCommand::ObserveIdentifiers`).
async fn money_events(node: &Node, events: &[CommittedEvent]) -> Vec<(u64, MoneyEvent)> {
    let rounds = round_facts(node, events).await;
    let mut money: Vec<(u64, MoneyEvent)> = events
        .iter()
        .filter_map(|event| Some((event.position, money_event(event, &rounds)?)))
        .collect();
    if money.is_empty() {
        return money;
    }
    let players: std::collections::BTreeSet<u128> =
        money.iter().map(|(_, event)| event.player_id).collect();
    let seen = node
        .read_stale(move |view| {
            let ledger = view.ledger();
            players
                .into_iter()
                .filter_map(|player| {
                    let seen = ledger.player_compliance(player)?.seen;
                    (!seen.is_empty()).then_some((player, seen))
                })
                .collect::<BTreeMap<u128, SeenIdentifiers>>()
        })
        .await
        .unwrap_or_default();
    for (_, event) in &mut money {
        if let Some(seen) = seen.get(&event.player_id) {
            with_identifiers(event, seen);
        }
    }
    money
}

/// The AML rules' verdict on a withdrawal of `amount` by `player_id` now, with the player's
/// identifier digests (the withdrawal score route and the payments' decision).
pub(crate) fn score_withdrawal(
    aml: &AmlShared,
    seen: &SeenIdentifiers,
    player_id: u128,
    ledger: croupier_risk::aml::LedgerCode,
    amount: u64,
) -> croupier_risk::aml::Evaluation {
    let now_ns = crate::auth::wall_clock_ns();
    let kind = croupier_risk::aml::EventKind::Withdrawal;
    let mut trigger = MoneyEvent::new(now_ns, player_id, ledger, kind, amount);
    with_identifiers(&mut trigger, seen);
    croupier_risk::aml::score_withdrawal_event(&aml.rules(), &aml.activity(), &trigger)
}

/// Puts a player's identifier digests on one of their money events.
pub fn with_identifiers(event: &mut MoneyEvent, seen: &SeenIdentifiers) {
    event.device_id = seen.device;
    event.instrument_id = seen.instrument;
    event.address_id = seen.address;
}

/// The currency and spot count of every round the events name (from the ledger's tables).
async fn round_facts(node: &Node, events: &[CommittedEvent]) -> Rounds {
    let rounds: Vec<u64> = events
        .iter()
        .filter_map(|event| match &event.record {
            HistoryRecord::Table(table) => Some(table.round_id),
            _ => None,
        })
        .collect();
    if rounds.is_empty() {
        return Rounds::new();
    }
    node.read_stale(move |view| {
        let ledger = view.ledger();
        rounds
            .into_iter()
            .filter_map(|round| {
                let table = ledger.table(croupier_core::tables::round_parts(round).0)?;
                let code = LedgerCode::from_u64(table.config.ledger.to_u64())?;
                Some((round, (code, table.config.spots)))
            })
            .collect::<Rounds>()
    })
    .await
    .unwrap_or_default()
}

/// Evaluates a batch and commits the cases it calls for.
async fn decide(node: &Node, shared: &AmlShared, batch: &[CommittedEvent]) -> Result<(), String> {
    let rules = shared.rules();
    let mut commands = Vec::new();
    {
        for (position, money) in money_events(node, batch).await {
            // Locked per event: a withdrawal scoring never waits for a whole batch.
            let evaluation = rules.observe(&mut shared.activity(), &money);
            for failure in &evaluation.errors {
                tracing::warn!(rule = %failure.rule, message = %failure.message, "AML rule failed");
            }
            let Some(action) = case_action(evaluation.action) else {
                continue;
            };
            let case = NewCase {
                case_id: decision_id((position, 0)),
                player_id: money.player_id,
                score: evaluation.score,
                reasons: evaluation.reasons.iter().take(16).cloned().collect(),
                ruleset_version: evaluation.version.chars().take(64).collect(),
                action,
                by: ACTOR.into(),
            };
            commands.push(Command::Compliance(ComplianceCommand::Case(
                CaseCommand::Open(case),
            )));
        }
    }
    if commands.is_empty() {
        return Ok(());
    }
    let count = commands.len();
    node.propose(commands)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(cases = count, "AML cases opened");
    Ok(())
}

fn rules_mtime(shared: &AmlShared) -> Option<SystemTime> {
    let path = shared.rules_file.as_ref()?;
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads the rules file again when it changed; a rule set that does not compile is refused.
fn reload_rules(shared: &AmlShared, seen: Option<SystemTime>) -> Option<SystemTime> {
    let now = rules_mtime(shared);
    if now == seen {
        return seen;
    }
    let Some(path) = &shared.rules_file else {
        return now;
    };
    match load_rules(path) {
        Ok(rules) => {
            tracing::info!(version = rules.version(), "AML rule set loaded");
            *shared.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
        }
        Err(error) => tracing::error!(%error, "AML rule set refused; the one in force stays"),
    }
    now
}
