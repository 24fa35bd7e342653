//! Responsible-gambling limits, exclusions and KYC applied to the ledger (`crate::compliance`
//! has the rules and the why).
//!
//! Bets (wallet and table) and deposits call `check_play` / `check_deposit` after their own
//! checks and before any money moves, then record what they moved; settlement, wins and
//! refunds record what went back. All of it within the apply that moves the money, on the
//! entry's time, so every replica refuses the same bets.

use super::{available_balance, Ledger};
use crate::cases::{
    ArchivedCase, Case, CaseAction, CaseCommand, CaseDecision, CaseId, CaseNote, NewCase, NoteKind,
    NOTES_PER_CASE_MAX,
};
use crate::compliance::{
    limit_slot, ComplianceCommand, ComplianceOutcome, CompliancePolicy, Deposit, KycLevel,
    LimitKind, LimitsRequest, Period, PlayerCompliance, Refusal, WalletCompliance, NANOS_PER_DAY,
    NANOS_PER_MINUTE,
};
use crate::history::HistoryRecord;
use crate::ids::{player_sequence, LedgerCode};
use crate::paged::PagedVec;
use crate::players::PlayerId;
use crate::types::{CreateTransferResult, NewTransfer, TransferFlags};

use ComplianceOutcome as O;

/// Money one operation moved for a player, as the spend windows and the session count it.
#[derive(Clone, Copy, Debug, Default)]
struct Spend {
    deposited: u64,
    wagered: u64,
    returned: u64,
}

/// Compliance state of every player (slot = registration sequence) and the policy.
#[derive(Clone, Debug, Default)]
pub(crate) struct ComplianceBook {
    pub(crate) players: PagedVec<PlayerCompliance>,
    pub(crate) policy: CompliancePolicy,
    /// Every AML case, by id (shared with checkpoints; a change copies that one case).
    pub(crate) cases: std::collections::BTreeMap<CaseId, std::sync::Arc<Case>>,
    /// The open cases of each player (derived from `cases`; rebuilt when a checkpoint loads),
    /// so opening a case looks at that player's open cases, not at every case.
    pub(crate) open_by_player: std::collections::BTreeMap<PlayerId, Vec<CaseId>>,
    /// The case decided last (0: none), where the chain of decided cases in history starts.
    pub(crate) last_closed: CaseId,
}

impl ComplianceBook {
    /// Sets `cases` and derives the open-case index from them.
    pub(crate) fn restore_cases(
        &mut self,
        cases: std::collections::BTreeMap<CaseId, std::sync::Arc<Case>>,
    ) {
        self.open_by_player.clear();
        for case in cases.values().filter(|case| case.is_open()) {
            self.open_by_player
                .entry(case.player_id)
                .or_default()
                .push(case.id);
        }
        self.cases = cases;
    }

    fn case_closed(&mut self, player_id: PlayerId, case_id: CaseId) {
        if let Some(open) = self.open_by_player.get_mut(&player_id) {
            open.retain(|id| *id != case_id);
            if open.is_empty() {
                self.open_by_player.remove(&player_id);
            }
        }
    }
}

impl Ledger {
    pub(super) fn apply_compliance(&mut self, command: &ComplianceCommand) -> ComplianceOutcome {
        assert!(
            command.check(),
            "unchecked compliance command reached the ledger"
        );
        assert!(!self.undo.active, "compliance commands are never linked");
        match command {
            ComplianceCommand::SetLimits(request) => self.set_limits(request),
            ComplianceCommand::SelfExclude {
                player_id, days, ..
            } => self.with_player(*player_id, |player, now| {
                let until = now.saturating_add(u64::from(*days) * NANOS_PER_DAY);
                player.self_excluded_until_ns = player.self_excluded_until_ns.max(until);
                O::Ok
            }),
            ComplianceCommand::LiftSelfExclusion { player_id } => {
                self.with_player(*player_id, |player, now| {
                    match player.self_excluded_until_ns > now {
                        true => O::SelfExclusionActive,
                        false => O::Ok,
                    }
                })
            }
            ComplianceCommand::TimeOut { player_id, days } => {
                self.with_player(*player_id, |player, now| {
                    let until = now.saturating_add(u64::from(*days) * NANOS_PER_DAY);
                    player.timed_out_until_ns = player.timed_out_until_ns.max(until);
                    O::Ok
                })
            }
            ComplianceCommand::RecordIdentity {
                player_id,
                identity,
            } => self.with_player(*player_id, |player, _| {
                player.identity = Some(identity.clone());
                player.kyc_level = player.kyc_level.max(KycLevel::Basic);
                O::Ok
            }),
            ComplianceCommand::SetKycLevel { player_id, level } => {
                self.with_player(*player_id, |player, _| {
                    player.kyc_level = *level;
                    O::Ok
                })
            }
            ComplianceCommand::SetPolicy(policy) => {
                self.compliance.policy = policy.clone();
                O::Ok
            }
            ComplianceCommand::Deposit(deposit) => self.deposit(deposit),
            ComplianceCommand::Case(command) => self.apply_case(command),
            ComplianceCommand::SetRealityCheck { player_id, minutes } => {
                self.with_player(*player_id, |player, now| {
                    player.reality_check = player.reality_check.request(minutes.value(), now);
                    O::Ok
                })
            }
            ComplianceCommand::AcknowledgeRealityCheck { player_id } => {
                self.with_player(*player_id, |player, now| {
                    player.reality_check_acknowledged_at_ns = now;
                    O::Ok
                })
            }
            ComplianceCommand::ObserveIdentifiers { player_id, seen } => {
                self.with_player(*player_id, |player, _| {
                    player.seen = player.seen.updated_with(*seen);
                    O::Ok
                })
            }
        }
    }

    fn apply_case(&mut self, command: &CaseCommand) -> ComplianceOutcome {
        let now = self.entry_ns;
        if let CaseCommand::Open(new) = command {
            return self.open_case(new, now);
        }
        let Some(case) = self.compliance.cases.get_mut(&command.case_id()) else {
            // Not hot: decided and archived, or never opened.
            return match self.archived_case(command.case_id()) {
                Some(_) => O::CaseClosed,
                None => O::CaseNotFound,
            };
        };
        if !case.is_open() {
            return O::CaseClosed;
        }
        let case = std::sync::Arc::make_mut(case);
        match command {
            CaseCommand::Open(_) => unreachable!("opened above"),
            CaseCommand::Assign { assignee, .. } => case.assignee = Some(assignee.clone()),
            CaseCommand::Note { kind, text, by, .. } => {
                if case.notes.len() >= NOTES_PER_CASE_MAX {
                    // The oldest note goes: the log keeps every one of them.
                    case.notes.remove(0);
                }
                case.notes.push(CaseNote {
                    at_ns: now,
                    by: by.clone(),
                    kind: *kind,
                    text: text.clone(),
                });
            }
            CaseCommand::Decide {
                decision, by, text, ..
            } => {
                case.decision = Some((*decision, now, by.clone()));
                if !text.is_empty() {
                    case.notes.push(CaseNote {
                        at_ns: now,
                        by: by.clone(),
                        kind: NoteKind::Comment,
                        text: text.clone(),
                    });
                }
                let (player_id, decision) = (case.player_id, *decision);
                self.compliance.case_closed(player_id, command.case_id());
                self.apply_decision(player_id, decision);
                self.archive_case(command.case_id());
            }
        }
        O::Ok
    }

    /// Moves a decided case to history: it leaves the hot state in this apply.
    fn archive_case(&mut self, case_id: CaseId) {
        let case = self
            .compliance
            .cases
            .remove(&case_id)
            .expect("the case just decided is hot");
        assert!(!case.is_open(), "only a decided case is archived");
        let archived = ArchivedCase {
            case,
            previous_closed: self.compliance.last_closed,
        };
        self.compliance.last_closed = case_id;
        self.entry
            .records
            .push(HistoryRecord::CaseArchived(archived.clone()));
        let previous = self.entry.cases.insert(case_id, archived);
        assert!(previous.is_none(), "a case was archived twice in one entry");
    }

    /// A decided case archived by this entry or before it (prefetched: `history_keys` asked
    /// for every case a command names that was not hot).
    fn archived_case(&self, case_id: CaseId) -> Option<&ArchivedCase> {
        self.entry
            .cases
            .get(&case_id)
            .or_else(|| self.entry.prefetched.cases.get(&case_id))
    }

    /// Whether a case with this id exists, open (hot) or decided (history).
    pub(super) fn case_exists(&self, case_id: CaseId) -> bool {
        self.compliance.cases.contains_key(&case_id) || self.archived_case(case_id).is_some()
    }

    pub(super) fn open_case(&mut self, new: &NewCase, now: u64) -> ComplianceOutcome {
        let existing = match self.compliance.cases.get(&new.case_id) {
            Some(case) => Some(case.player_id),
            None => self.archived_case(new.case_id).map(|a| a.case.player_id),
        };
        if let Some(existing_player) = existing {
            // The same decision proposed again (a pipeline replaying its feed): one case.
            return match existing_player == new.player_id {
                true => O::Ok,
                false => O::CaseConflict,
            };
        }
        // A rule that fires on every later event of a window (linked transactions) would open
        // a case per event: an open case of the player with the same reasons and at least
        // this action already stands for it.
        let open = self.compliance.open_by_player.get(&new.player_id);
        let covered = open.into_iter().flatten().any(|id| {
            let case = &self.compliance.cases[id];
            debug_assert!(case.is_open() && case.player_id == new.player_id);
            case.action >= new.action
                && new
                    .reasons
                    .iter()
                    .all(|reason| case.reasons.contains(reason))
        });
        if covered {
            return O::Ok;
        }
        let outcome = self.with_player(new.player_id, |player, _| {
            match new.action {
                CaseAction::OpenCase => {}
                CaseAction::HoldWithdrawals => player.withdrawals_held = true,
                CaseAction::RequireEnhancedKyc => player.enhanced_kyc_required = true,
                CaseAction::Freeze => {
                    player.frozen = true;
                    player.withdrawals_held = true;
                }
            }
            O::Ok
        });
        if outcome != O::Ok {
            return outcome;
        }
        let case = Case {
            id: new.case_id,
            player_id: new.player_id,
            opened_at_ns: now,
            opened_by: new.by.clone(),
            score: new.score,
            reasons: new.reasons.clone(),
            ruleset_version: new.ruleset_version.clone(),
            action: new.action,
            assignee: None,
            notes: Vec::new(),
            decision: None,
        };
        self.compliance
            .cases
            .insert(new.case_id, std::sync::Arc::new(case));
        self.compliance
            .open_by_player
            .entry(new.player_id)
            .or_default()
            .push(new.case_id);
        O::Ok
    }

    fn apply_decision(&mut self, player_id: PlayerId, decision: CaseDecision) {
        self.with_player(player_id, |player, _| {
            match decision {
                CaseDecision::Clear => {
                    player.frozen = false;
                    player.withdrawals_held = false;
                    player.enhanced_kyc_required = false;
                }
                CaseDecision::Restrict | CaseDecision::CloseAccount => player.frozen = true,
                CaseDecision::Report => {}
            }
            O::Ok
        });
    }

    /// Every case in the hot state, by id: the open ones (and decided ones a checkpoint from
    /// before format 12 kept); decided cases are in history (`crate::reads::closed_cases`).
    pub fn cases(&self) -> impl Iterator<Item = &Case> + '_ {
        self.compliance.cases.values().map(|case| case.as_ref())
    }

    /// A case in the hot state (`crate::reads::case_record` looks in history too).
    pub fn case(&self, case_id: CaseId) -> Option<&Case> {
        self.compliance
            .cases
            .get(&case_id)
            .map(|case| case.as_ref())
    }

    /// Runs `change` on a registered player's compliance state at the entry's time.
    fn with_player(
        &mut self,
        player_id: PlayerId,
        change: impl FnOnce(&mut PlayerCompliance, u64) -> ComplianceOutcome,
    ) -> ComplianceOutcome {
        let Some(slot) = self.compliance_slot(player_id) else {
            return O::PlayerNotFound;
        };
        let now = self.entry_ns;
        change(self.compliance.players.get_mut(slot), now)
    }

    fn compliance_slot(&self, player_id: PlayerId) -> Option<usize> {
        self.directory.player(player_id)?;
        let slot = usize::try_from(player_sequence(player_id)?).ok()?;
        assert!(
            slot < self.compliance.players.len(),
            "every player has a compliance slot"
        );
        Some(slot)
    }

    fn set_limits(&mut self, request: &LimitsRequest) -> ComplianceOutcome {
        let Some(player) = self.directory.player(request.player_id) else {
            return O::PlayerNotFound;
        };
        if player.wallet(request.ledger).is_none() {
            return O::NoWalletInCurrency;
        }
        self.with_player(request.player_id, |player, now| {
            if let Some(change) = request.session_minutes {
                player.session_limit = player.session_limit.request(change.value(), now);
            }
            let wallet = wallet_mut(player, request.ledger);
            for (limit, change) in wallet.limits.iter_mut().zip(&request.money) {
                if let Some(change) = change {
                    *limit = limit.request(change.value(), now);
                }
            }
            O::Ok
        })
    }

    fn deposit(&mut self, deposit: &Deposit) -> ComplianceOutcome {
        let Some(player) = self.directory.player(deposit.player_id) else {
            return O::PlayerNotFound;
        };
        let Some(wallet) = player.wallet(deposit.ledger) else {
            return O::NoWalletInCurrency;
        };
        let transfer = NewTransfer {
            id: deposit.deposit_id,
            debit_account_id: deposit.source_account_id,
            credit_account_id: wallet,
            amount: deposit.amount,
            ledger: deposit.ledger,
            flags: TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
        };
        // A retry of a deposit made answers it, whatever the limits say now.
        let exists = self.find_transfer(deposit.deposit_id).is_some();
        if !exists {
            if let Err(refusal) = self.check_deposit(deposit) {
                return O::Refused(refusal);
            }
        }
        let result = self.create_transfers(std::slice::from_ref(&transfer))[0];
        match result {
            CreateTransferResult::Ok => {
                let deposited = Spend {
                    deposited: deposit.amount,
                    ..Spend::default()
                };
                self.record_spend(deposit.player_id, deposit.ledger, deposited);
            }
            CreateTransferResult::Exists => {}
            refused => return O::DepositRefused(refused),
        }
        let account = self.account(wallet).expect("the wallet exists");
        O::Deposited {
            balance: available_balance(account),
        }
    }

    pub(super) fn check_deposit(&self, deposit: &Deposit) -> Result<(), Refusal> {
        let Some(slot) = self.compliance_slot(deposit.player_id) else {
            return Ok(());
        };
        let player = self.compliance.players.get(slot);
        let now = self.entry_ns;
        check_exclusions(player, now)?;
        let required = self.compliance.policy.requirements(player.country());
        let large = required.large_deposit_min > 0 && deposit.amount >= required.large_deposit_min;
        let mut level = match large {
            true => required.deposit.max(required.large_deposit),
            false => required.deposit,
        };
        if player.enhanced_kyc_required {
            level = KycLevel::Enhanced;
        }
        if player.kyc_level < level {
            return Err(Refusal::KycRequired);
        }
        let wallet = player.wallet(deposit.ledger);
        check_limit(wallet, LimitKind::Deposit, deposit.amount, now)
            .map_err(|_| Refusal::DepositLimitReached)
    }

    /// Whether a registered player may stake `stake` in `ledger` now (wallet and table bets).
    /// Account ids that are not registered players (a provider's own accounts) have no
    /// responsible-gambling state.
    pub(super) fn check_play(
        &self,
        player_id: PlayerId,
        ledger: LedgerCode,
        stake: u64,
    ) -> Result<(), Refusal> {
        let Some(slot) = self.compliance_slot(player_id) else {
            return Ok(());
        };
        let player = self.compliance.players.get(slot);
        let now = self.entry_ns;
        check_exclusions(player, now)?;
        let required = self.compliance.policy.requirements(player.country());
        if player.kyc_level < required.play {
            return Err(Refusal::KycRequired);
        }
        if let Some(minutes) = player.session_limit.at(now).current {
            let started = player.session_started_at_ns;
            let ends = started.saturating_add(minutes * NANOS_PER_MINUTE);
            if started != 0 && now >= ends {
                return Err(Refusal::SessionLimitReached);
            }
        }
        if player
            .reality_check_due_at(now)
            .is_some_and(|due| now >= due)
        {
            return Err(Refusal::RealityCheckDue);
        }
        let wallet = player.wallet(ledger);
        check_limit(wallet, LimitKind::Wager, stake, now)
            .map_err(|_| Refusal::WagerLimitReached)?;
        check_limit(wallet, LimitKind::Loss, stake, now).map_err(|_| Refusal::LossLimitReached)
    }

    pub(super) fn record_wager(&mut self, player_id: PlayerId, ledger: LedgerCode, stake: u64) {
        let wagered = Spend {
            wagered: stake,
            ..Spend::default()
        };
        self.record_spend(player_id, ledger, wagered);
    }

    /// A win, a refund or a rollback paid back to the player.
    pub(super) fn record_return(&mut self, player_id: PlayerId, ledger: LedgerCode, paid: u64) {
        if paid > 0 {
            let returned = Spend {
                returned: paid,
                ..Spend::default()
            };
            self.record_spend(player_id, ledger, returned);
        }
    }

    /// A login starts the player's session (what the session-time limit counts from).
    pub(super) fn start_play_session(&mut self, player_id: PlayerId) {
        let now = self.entry_ns;
        self.with_player(player_id, |player, _| {
            player.session_started_at_ns = now;
            O::Ok
        });
    }

    pub(super) fn record_deposited(
        &mut self,
        player_id: PlayerId,
        ledger: LedgerCode,
        amount: u64,
    ) {
        let deposited = Spend {
            deposited: amount,
            ..Spend::default()
        };
        self.record_spend(player_id, ledger, deposited);
    }

    fn record_spend(&mut self, player_id: PlayerId, ledger: LedgerCode, spend: Spend) {
        let (deposited, wagered, returned) = (
            u128::from(spend.deposited),
            u128::from(spend.wagered),
            u128::from(spend.returned),
        );
        self.with_player(player_id, |player, now| {
            let session_started_at_ns = player.session_started_at_ns;
            let wallet = wallet_mut(player, ledger);
            for period in Period::ALL {
                let mut window = wallet.window_at(period, now);
                window.deposited += deposited;
                window.wagered += wagered;
                window.returned += returned;
                wallet.windows[period as usize] = window;
            }
            let mut session = wallet.session_at(session_started_at_ns);
            session.wagered += wagered;
            session.returned += returned;
            wallet.session = session;
            O::Ok
        });
    }

    /// A registered player's compliance state (None for an unknown player).
    pub fn player_compliance(&self, player_id: PlayerId) -> Option<&PlayerCompliance> {
        self.compliance_slot(player_id)
            .map(|slot| self.compliance.players.get(slot))
    }

    pub fn compliance_policy(&self) -> &CompliancePolicy {
        &self.compliance.policy
    }

    /// The time compliance decisions are judged at by the next entry's commands (reads show
    /// limits as of the ledger clock).
    pub fn compliance_now_ns(&self) -> u64 {
        self.clock
    }
}

fn check_exclusions(player: &PlayerCompliance, now: u64) -> Result<(), Refusal> {
    if player.frozen {
        return Err(Refusal::AccountFrozen);
    }
    if player.self_excluded_until_ns > now {
        return Err(Refusal::SelfExcluded);
    }
    if player.timed_out_until_ns > now {
        return Err(Refusal::TimedOut);
    }
    Ok(())
}

/// Err when adding `amount` would pass one of `kind`'s limits in any period.
fn check_limit(
    wallet: Option<&WalletCompliance>,
    kind: LimitKind,
    amount: u64,
    now: u64,
) -> Result<(), ()> {
    let Some(wallet) = wallet else {
        return Ok(());
    };
    for period in Period::ALL {
        let Some(limit) = wallet.limits[limit_slot(kind, period)].at(now).current else {
            continue;
        };
        let window = wallet.window_at(period, now);
        let used = match kind {
            LimitKind::Deposit => window.deposited,
            LimitKind::Wager => window.wagered,
            LimitKind::Loss => window.loss(),
        };
        if used.saturating_add(u128::from(amount)) > u128::from(limit) {
            return Err(());
        }
    }
    Ok(())
}

fn wallet_mut(player: &mut PlayerCompliance, ledger: LedgerCode) -> &mut WalletCompliance {
    let at = match player.wallets.iter().position(|w| w.ledger == ledger) {
        Some(at) => at,
        None => {
            player.wallets.push(WalletCompliance::new(ledger));
            player.wallets.len() - 1
        }
    };
    &mut player.wallets[at]
}
