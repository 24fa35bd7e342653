//! Deposits and withdrawals through banks applied to the ledger (`crate::payments` has the
//! life cycles and the why). Each step checks where the payment stands, so a repeated step is
//! a no-op and a step out of order is refused: money moves once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Ledger;
use crate::cases::{CaseAction, NewCase};
use crate::compliance::{Deposit, Refusal};
use crate::history::HistoryRecord;
use crate::ids::{
    clearing_account_id, in_flight_account_id, returns_account_id, wallet_transfer_id, AccountId,
    LedgerCode,
};
use crate::payments::{
    ArchivedPayment, DepositRecord, DepositState, Payee, PaymentCommand, PaymentEvent, PaymentId,
    PaymentKey, PaymentOutcome, PayoutAttempt, WithdrawalDecision, WithdrawalRecord,
    WithdrawalState, ATTEMPTS_MAX, CONNECTORS_MAX, REASONS_MAX,
};
use crate::players::PlayerId;
use crate::types::{AccountKind, CreateTransferResult, NewTransfer, TransferFlags};

use PaymentOutcome as O;

/// Who opens the case a held withdrawal needs.
const HOLD_CASE_OPENER: &str = "payments";

/// Every deposit and withdrawal, by id, and the connectors that have clearing accounts.
#[derive(Clone, Debug, Default)]
pub(crate) struct PaymentBook {
    /// Connector names in order of first use: a connector's number is its index.
    pub(crate) connectors: Vec<String>,
    pub(crate) deposits: BTreeMap<PaymentId, Arc<DepositRecord>>,
    pub(crate) withdrawals: BTreeMap<PaymentId, Arc<WithdrawalRecord>>,
    /// Derived (rebuilt when a checkpoint loads): the ones not final, for the node's worker.
    pub(crate) open_deposits: BTreeSet<PaymentId>,
    pub(crate) open_withdrawals: BTreeSet<PaymentId>,
}

impl PaymentBook {
    /// Sets the records and derives the open sets from them.
    pub(crate) fn restore(
        connectors: Vec<String>,
        deposits: BTreeMap<PaymentId, Arc<DepositRecord>>,
        withdrawals: BTreeMap<PaymentId, Arc<WithdrawalRecord>>,
    ) -> PaymentBook {
        let open_deposits = deposits
            .values()
            .filter(|d| !d.state.is_final())
            .map(|d| d.deposit_id)
            .collect();
        let open_withdrawals = withdrawals
            .values()
            .filter(|w| !w.state.is_final())
            .map(|w| w.withdrawal_id)
            .collect();
        PaymentBook {
            connectors,
            deposits,
            withdrawals,
            open_deposits,
            open_withdrawals,
        }
    }

    fn connector_number(&mut self, name: &str) -> Option<u8> {
        if let Some(index) = self.connectors.iter().position(|known| known == name) {
            return Some(index as u8);
        }
        if self.connectors.len() >= CONNECTORS_MAX {
            return None;
        }
        self.connectors.push(name.to_string());
        Some((self.connectors.len() - 1) as u8)
    }

    /// Whether the payment is in the hot state (an archived one is not).
    pub(crate) fn holds(&self, key: PaymentKey) -> bool {
        match key {
            PaymentKey::Deposit(id) => self.deposits.contains_key(&id),
            PaymentKey::Withdrawal(id) => self.withdrawals.contains_key(&id),
        }
    }

    /// Keeps an open record; a final one leaves the hot state and is handed back to archive.
    fn put_deposit(&mut self, record: DepositRecord) -> Option<ArchivedPayment> {
        let record = Arc::new(record);
        if record.state.is_final() {
            self.open_deposits.remove(&record.deposit_id);
            self.deposits.remove(&record.deposit_id);
            return Some(ArchivedPayment::Deposit(record));
        }
        self.open_deposits.insert(record.deposit_id);
        self.deposits.insert(record.deposit_id, record);
        None
    }

    fn put_withdrawal(&mut self, record: WithdrawalRecord) -> Option<ArchivedPayment> {
        let record = Arc::new(record);
        if record.state.is_final() {
            self.open_withdrawals.remove(&record.withdrawal_id);
            self.withdrawals.remove(&record.withdrawal_id);
            return Some(ArchivedPayment::Withdrawal(record));
        }
        self.open_withdrawals.insert(record.withdrawal_id);
        self.withdrawals.insert(record.withdrawal_id, record);
        None
    }
}

impl Ledger {
    /// Stores a deposit's new record (a final one in history) and publishes the change on the
    /// event feed.
    fn put_deposit(&mut self, record: DepositRecord) {
        let event = PaymentEvent::of_deposit(&record, self.entry_ns);
        self.entry.records.push(HistoryRecord::Payment(event));
        if let Some(archived) = self.payments.put_deposit(record) {
            self.archive(archived);
        }
    }

    /// Stores a withdrawal's new record (a final one in history) and publishes the change on
    /// the event feed.
    fn put_withdrawal(&mut self, record: WithdrawalRecord) {
        let event = PaymentEvent::of_withdrawal(&record, self.entry_ns);
        self.entry.records.push(HistoryRecord::Payment(event));
        if let Some(archived) = self.payments.put_withdrawal(record) {
            self.archive(archived);
        }
    }

    fn archive(&mut self, payment: ArchivedPayment) {
        let key = payment.key();
        assert!(
            !self.payments.holds(key),
            "an archived payment is still hot"
        );
        let record = HistoryRecord::PaymentArchived(payment.clone());
        self.entry.records.push(record);
        let previous = self.entry.payments.insert(key, payment);
        assert!(
            previous.is_none(),
            "a payment was archived twice in one entry"
        );
    }

    /// A deposit: hot, archived by this entry, or archived before (prefetched, since
    /// `history_keys` asked for every payment a command names that was not hot).
    fn deposit_now(&self, id: PaymentId) -> Option<Arc<DepositRecord>> {
        if let Some(record) = self.payments.deposits.get(&id) {
            return Some(record.clone());
        }
        self.archived(PaymentKey::Deposit(id))?.deposit().cloned()
    }

    fn withdrawal_now(&self, id: PaymentId) -> Option<Arc<WithdrawalRecord>> {
        if let Some(record) = self.payments.withdrawals.get(&id) {
            return Some(record.clone());
        }
        self.archived(PaymentKey::Withdrawal(id))?
            .withdrawal()
            .cloned()
    }

    fn archived(&self, key: PaymentKey) -> Option<&ArchivedPayment> {
        self.entry
            .payments
            .get(&key)
            .or_else(|| self.entry.prefetched.payments.get(&key))
    }

    pub(super) fn apply_payment(&mut self, command: &PaymentCommand) -> PaymentOutcome {
        assert!(
            command.check(),
            "unchecked payment command reached the ledger"
        );
        assert!(!self.undo.active, "payment commands are never linked");
        match command {
            PaymentCommand::OpenDeposit {
                deposit_id,
                player_id,
                ledger,
                amount,
                connector,
            } => self.open_deposit(*deposit_id, *player_id, *ledger, *amount, connector),
            PaymentCommand::DepositStarted {
                deposit_id,
                consent_id,
                authorisation_url,
            } => self.deposit_started(*deposit_id, consent_id, authorisation_url),
            PaymentCommand::SettleDeposit { deposit_id } => self.settle_deposit(*deposit_id),
            PaymentCommand::FailDeposit {
                deposit_id,
                expired,
                reason,
            } => self.fail_deposit(*deposit_id, *expired, reason),
            PaymentCommand::RequestWithdrawal { .. } => self.request_withdrawal(command),
            PaymentCommand::DecideWithdrawal {
                withdrawal_id,
                decision,
                reasons,
            } => self.decide_withdrawal(*withdrawal_id, decision, reasons),
            PaymentCommand::PayoutAccepted {
                withdrawal_id,
                attempt,
                payment_id,
            } => self.payout_accepted(*withdrawal_id, *attempt, payment_id),
            PaymentCommand::SettlePayout {
                withdrawal_id,
                attempt,
            } => self.settle_payout(*withdrawal_id, *attempt),
            PaymentCommand::FailPayout {
                withdrawal_id,
                attempt,
                reason,
                next_connector,
                leader_term,
            } => match leader_term {
                Some(term) if *term != self.entry_term => O::LeaderChanged,
                _ => self.fail_payout(*withdrawal_id, *attempt, reason, next_connector.as_deref()),
            },
            PaymentCommand::ReturnDeposit { deposit_id, payee } => {
                self.return_deposit(*deposit_id, payee)
            }
            PaymentCommand::ReturnAccepted {
                deposit_id,
                payment_id,
            } => self.return_accepted(*deposit_id, payment_id),
            PaymentCommand::SettleReturn { deposit_id } => self.settle_return(*deposit_id),
            PaymentCommand::FailReturn { deposit_id, reason } => {
                self.fail_return(*deposit_id, reason)
            }
        }
    }

    fn open_deposit(
        &mut self,
        deposit_id: PaymentId,
        player_id: PlayerId,
        ledger: LedgerCode,
        amount: u64,
        connector: &str,
    ) -> PaymentOutcome {
        if let Some(existing) = self.deposit_now(deposit_id) {
            let same = existing.player_id == player_id
                && existing.ledger == ledger
                && existing.amount == amount
                && existing.connector == connector;
            return if same { O::Ok } else { O::Conflict };
        }
        if let Err(outcome) = self.wallet_of(player_id, ledger) {
            return outcome;
        }
        if let Err(refusal) = self.check_deposit(&deposit_of(deposit_id, player_id, ledger, amount))
        {
            return O::Refused(refusal);
        }
        if self.payments.connector_number(connector).is_none() {
            return O::TooManyConnectors;
        }
        let now = self.entry_ns;
        self.put_deposit(DepositRecord {
            deposit_id,
            player_id,
            ledger,
            amount,
            connector: connector.to_string(),
            state: DepositState::Opening,
            consent_id: String::new(),
            authorisation_url: String::new(),
            reason: String::new(),
            opened_at_ns: now,
            updated_at_ns: now,
            settled_at_ns: 0,
            return_to: None,
            return_payment_id: String::new(),
            settle_transfer_id: 0,
            return_transfer_id: 0,
        });
        O::Ok
    }

    fn deposit_started(
        &mut self,
        deposit_id: PaymentId,
        consent_id: &str,
        authorisation_url: &str,
    ) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        match existing.state {
            DepositState::Opening => {}
            _ if existing.consent_id == consent_id => return O::Ok,
            _ => return O::WrongState,
        }
        let mut record = DepositRecord::clone(&existing);
        record.consent_id = consent_id.to_string();
        record.authorisation_url = authorisation_url.to_string();
        record.state = DepositState::AwaitingAuthorisation;
        record.updated_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    fn settle_deposit(&mut self, deposit_id: PaymentId) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        match existing.state {
            DepositState::Opening | DepositState::AwaitingAuthorisation => {}
            state if state.was_settled() => return O::Ok,
            _ => return O::WrongState,
        }
        let mut record = DepositRecord::clone(&existing);
        let connector = self
            .payments
            .connector_number(&record.connector)
            .expect("a deposit's connector was numbered when it opened");
        let clearing = self.ensure_payment_account(
            clearing_account_id(connector, record.ledger),
            record.ledger,
            AccountKind::Clearing,
        );
        let deposit = deposit_of(deposit_id, record.player_id, record.ledger, record.amount);
        // Checked again now: limits and status may have changed since the deposit opened.
        record.state = match self.check_deposit(&deposit) {
            Ok(()) => {
                let wallet = self
                    .wallet_of(record.player_id, record.ledger)
                    .expect("a deposit's wallet exists");
                let wallet = self.slot_of_account(wallet).expect("the wallet's slot");
                record.settle_transfer_id = self.wallet_transfer(clearing, wallet, record.amount);
                self.record_deposited(record.player_id, record.ledger, record.amount);
                DepositState::Settled
            }
            Err(refusal) => {
                let returns = returns_account_id(record.ledger);
                let returns =
                    self.ensure_payment_account(returns, record.ledger, AccountKind::System);
                record.settle_transfer_id = self.wallet_transfer(clearing, returns, record.amount);
                DepositState::Refused(refusal)
            }
        };
        record.updated_at_ns = self.entry_ns;
        record.settled_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    fn fail_deposit(
        &mut self,
        deposit_id: PaymentId,
        expired: bool,
        reason: &str,
    ) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        let failed = match expired {
            true => DepositState::Expired,
            false => DepositState::Rejected,
        };
        match existing.state {
            DepositState::Opening | DepositState::AwaitingAuthorisation => {}
            state if state == failed => return O::Ok,
            _ => return O::WrongState,
        }
        let mut record = DepositRecord::clone(&existing);
        record.state = failed;
        record.reason = reason.to_string();
        record.updated_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    /// A refused deposit starts back to the account it came from.
    fn return_deposit(&mut self, deposit_id: PaymentId, payee: &Payee) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        let refusal = match existing.state {
            DepositState::Refused(refusal) => refusal,
            DepositState::Returning | DepositState::Returned | DepositState::ReturnFailed
                if existing.return_to.as_ref() == Some(payee) =>
            {
                return O::Ok
            }
            _ => return O::WrongState,
        };
        let mut record = DepositRecord::clone(&existing);
        record.state = DepositState::Returning;
        record.reason = refusal.code().to_string();
        record.return_to = Some(payee.clone());
        record.updated_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    fn return_accepted(&mut self, deposit_id: PaymentId, payment_id: &str) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        if existing.return_payment_id == payment_id {
            return O::Ok;
        }
        if existing.state != DepositState::Returning || !existing.return_payment_id.is_empty() {
            return O::WrongState;
        }
        let mut record = DepositRecord::clone(&existing);
        record.return_payment_id = payment_id.to_string();
        record.updated_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    /// The return was paid: the money leaves the returns account through the clearing
    /// account of the bank it is paid from (the deposit's).
    fn settle_return(&mut self, deposit_id: PaymentId) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        match existing.state {
            DepositState::Returning => {}
            DepositState::Returned => return O::Ok,
            _ => return O::WrongState,
        }
        let mut record = DepositRecord::clone(&existing);
        let connector = self
            .payments
            .connector_number(&record.connector)
            .expect("a deposit's connector was numbered when it opened");
        let clearing = self
            .slot_of_account(clearing_account_id(connector, record.ledger))
            .expect("a settled deposit's clearing account exists");
        let returns = self
            .slot_of_account(returns_account_id(record.ledger))
            .expect("a refused deposit's returns account exists");
        record.return_transfer_id = self.wallet_transfer(returns, clearing, record.amount);
        record.state = DepositState::Returned;
        record.updated_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    fn fail_return(&mut self, deposit_id: PaymentId, reason: &str) -> PaymentOutcome {
        let Some(existing) = self.deposit_now(deposit_id) else {
            return O::NotFound;
        };
        match existing.state {
            DepositState::Refused(_) | DepositState::Returning => {}
            DepositState::ReturnFailed => return O::Ok,
            _ => return O::WrongState,
        }
        let mut record = DepositRecord::clone(&existing);
        record.state = DepositState::ReturnFailed;
        record.reason = reason.to_string();
        record.updated_at_ns = self.entry_ns;
        self.put_deposit(record);
        O::Ok
    }

    fn request_withdrawal(&mut self, command: &PaymentCommand) -> PaymentOutcome {
        let PaymentCommand::RequestWithdrawal {
            withdrawal_id,
            player_id,
            ledger,
            amount,
            payee,
        } = command
        else {
            unreachable!("called with a withdrawal request");
        };
        if let Some(existing) = self.withdrawal_now(*withdrawal_id) {
            let same = existing.player_id == *player_id
                && existing.ledger == *ledger
                && existing.amount == *amount
                && existing.payee == *payee;
            return if same { O::Ok } else { O::Conflict };
        }
        let wallet = match self.wallet_of(*player_id, *ledger) {
            Ok(wallet) => wallet,
            Err(outcome) => return outcome,
        };
        let in_flight = in_flight_account_id(*ledger);
        self.ensure_payment_account(in_flight, *ledger, AccountKind::System);
        let reservation_id = wallet_transfer_id(self.wallet_sequence);
        let reservation = NewTransfer {
            id: reservation_id,
            debit_account_id: wallet,
            credit_account_id: in_flight,
            amount: *amount,
            ledger: *ledger,
            flags: TransferFlags::PENDING,
            pending_id: 0,
            timeout_s: 0,
        };
        let timestamp = self.next_timestamp();
        match self.create_single_or_pending(&reservation, timestamp) {
            CreateTransferResult::Ok => self.wallet_sequence += 1,
            refused => return O::TransferRefused(refused),
        }
        let now = self.entry_ns;
        self.put_withdrawal(WithdrawalRecord {
            withdrawal_id: *withdrawal_id,
            player_id: *player_id,
            ledger: *ledger,
            amount: *amount,
            payee: payee.clone(),
            state: WithdrawalState::Requested,
            reservation_id,
            attempts: Vec::new(),
            reasons: Vec::new(),
            case_id: 0,
            requested_at_ns: now,
            updated_at_ns: now,
            paid_transfer_id: 0,
        });
        O::Ok
    }

    fn decide_withdrawal(
        &mut self,
        withdrawal_id: PaymentId,
        decision: &WithdrawalDecision,
        reasons: &[String],
    ) -> PaymentOutcome {
        let Some(existing) = self.withdrawal_now(withdrawal_id) else {
            return O::NotFound;
        };
        let repeat = match (existing.state, decision) {
            (WithdrawalState::Requested, _) => None,
            (WithdrawalState::Held, WithdrawalDecision::Hold { .. }) => Some(O::Ok),
            (WithdrawalState::Held, _) => None,
            (WithdrawalState::Rejected, WithdrawalDecision::Reject) => Some(O::Ok),
            (_, WithdrawalDecision::Approve { connector })
                if existing
                    .attempts
                    .first()
                    .is_some_and(|a| a.connector == *connector) =>
            {
                Some(O::Ok)
            }
            _ => Some(O::WrongState),
        };
        if let Some(outcome) = repeat {
            return outcome;
        }
        let mut record = WithdrawalRecord::clone(&existing);
        append_reasons(&mut record.reasons, reasons);
        let outcome = match decision {
            WithdrawalDecision::Approve { connector } => self.approve(&mut record, connector),
            WithdrawalDecision::Hold { case_id, score } => self.hold(&mut record, *case_id, *score),
            WithdrawalDecision::Reject => {
                self.resolve_reservation(&record, TransferFlags::VOID_PENDING_TRANSFER);
                record.state = WithdrawalState::Rejected;
                O::Ok
            }
        };
        if outcome == O::Ok {
            record.updated_at_ns = self.entry_ns;
            self.put_withdrawal(record);
        }
        outcome
    }

    fn approve(&mut self, record: &mut WithdrawalRecord, connector: &str) -> PaymentOutcome {
        // Whatever was proposed: no payout while a case holds the player's withdrawals, or
        // below the KYC level the player's jurisdiction requires for withdrawals.
        if let Some(player) = self.player_compliance(record.player_id) {
            if player.withdrawals_held {
                return O::Refused(Refusal::AccountFrozen);
            }
            let required = self
                .compliance
                .policy
                .requirements(player.country())
                .withdraw;
            if player.kyc_level < required {
                return O::Refused(Refusal::KycRequired);
            }
        }
        if self.payments.connector_number(connector).is_none() {
            return O::TooManyConnectors;
        }
        self.resolve_reservation(record, TransferFlags::POST_PENDING_TRANSFER);
        record.attempts.push(new_attempt(connector));
        record.state = WithdrawalState::Sending;
        O::Ok
    }

    fn hold(&mut self, record: &mut WithdrawalRecord, case_id: u128, score: u8) -> PaymentOutcome {
        let case = NewCase {
            case_id,
            player_id: record.player_id,
            score,
            reasons: record
                .reasons
                .iter()
                .take(crate::cases::REASONS_PER_CASE_MAX)
                .cloned()
                .collect(),
            ruleset_version: String::new(),
            action: CaseAction::HoldWithdrawals,
            by: HOLD_CASE_OPENER.to_string(),
        };
        let now = self.entry_ns;
        match self.open_case(&case, now) {
            crate::compliance::ComplianceOutcome::Ok => {}
            crate::compliance::ComplianceOutcome::CaseConflict => return O::Conflict,
            _ => return O::PlayerNotFound,
        }
        // An open case of the player may already stand for this one (same reasons).
        record.case_id = match self.case_exists(case_id) {
            true => case_id,
            false => self.compliance.open_by_player[&record.player_id][0],
        };
        record.state = WithdrawalState::Held;
        O::Ok
    }

    fn payout_accepted(
        &mut self,
        withdrawal_id: PaymentId,
        attempt: u8,
        payment_id: &str,
    ) -> PaymentOutcome {
        let Some(existing) = self.withdrawal_now(withdrawal_id) else {
            return O::NotFound;
        };
        let Some(known) = existing.attempts.get(usize::from(attempt)) else {
            return O::WrongState;
        };
        if known.payment_id == payment_id {
            return O::Ok;
        }
        if !known.payment_id.is_empty()
            || existing.current_attempt().map(|(n, _)| n) != Some(attempt)
        {
            return O::WrongState;
        }
        let mut record = WithdrawalRecord::clone(&existing);
        record.attempts[usize::from(attempt)].payment_id = payment_id.to_string();
        record.updated_at_ns = self.entry_ns;
        self.put_withdrawal(record);
        O::Ok
    }

    fn settle_payout(&mut self, withdrawal_id: PaymentId, attempt: u8) -> PaymentOutcome {
        let Some(existing) = self.withdrawal_now(withdrawal_id) else {
            return O::NotFound;
        };
        let last = existing.attempts.len().checked_sub(1);
        if existing.state == WithdrawalState::Paid && last == Some(usize::from(attempt)) {
            return O::Ok;
        }
        if existing.current_attempt().map(|(n, _)| n) != Some(attempt) {
            return O::WrongState;
        }
        let mut record = WithdrawalRecord::clone(&existing);
        let connector = self
            .payments
            .connector_number(&record.attempts[usize::from(attempt)].connector)
            .expect("an attempt's connector was numbered when it began");
        let clearing = clearing_account_id(connector, record.ledger);
        let clearing = self.ensure_payment_account(clearing, record.ledger, AccountKind::Clearing);
        let in_flight = self
            .slot_of_account(in_flight_account_id(record.ledger))
            .expect("a withdrawal's in-flight account exists");
        record.paid_transfer_id = self.wallet_transfer(in_flight, clearing, record.amount);
        record.state = WithdrawalState::Paid;
        record.updated_at_ns = self.entry_ns;
        self.put_withdrawal(record);
        O::Ok
    }

    fn fail_payout(
        &mut self,
        withdrawal_id: PaymentId,
        attempt: u8,
        reason: &str,
        next_connector: Option<&str>,
    ) -> PaymentOutcome {
        let Some(existing) = self.withdrawal_now(withdrawal_id) else {
            return O::NotFound;
        };
        let failed_already = existing
            .attempts
            .get(usize::from(attempt))
            .is_some_and(|known| !known.failure.is_empty());
        if failed_already {
            return O::Ok;
        }
        if existing.current_attempt().map(|(n, _)| n) != Some(attempt) {
            return O::WrongState;
        }
        let mut record = WithdrawalRecord::clone(&existing);
        record.attempts[usize::from(attempt)].failure = reason.to_string();
        match next_connector {
            Some(_) if record.attempts.len() >= ATTEMPTS_MAX => return O::TooManyAttempts,
            Some(next) => {
                if self.payments.connector_number(next).is_none() {
                    return O::TooManyConnectors;
                }
                record.attempts.push(new_attempt(next));
            }
            None => {
                self.refund(&record);
                record.state = WithdrawalState::Refunded;
            }
        }
        record.updated_at_ns = self.entry_ns;
        self.put_withdrawal(record);
        O::Ok
    }

    /// Gives a paid-out-of-wallet withdrawal's amount back to the player.
    fn refund(&mut self, record: &WithdrawalRecord) {
        let in_flight = self
            .slot_of_account(in_flight_account_id(record.ledger))
            .expect("a withdrawal's in-flight account exists");
        let wallet = self
            .wallet_of(record.player_id, record.ledger)
            .expect("a withdrawal's wallet exists");
        let wallet = self.slot_of_account(wallet).expect("the wallet's slot");
        self.wallet_transfer(in_flight, wallet, record.amount);
    }

    /// Posts or voids a withdrawal's reservation (still pending: the state says so).
    fn resolve_reservation(&mut self, record: &WithdrawalRecord, flags: TransferFlags) {
        let resolution = NewTransfer {
            id: wallet_transfer_id(self.wallet_sequence),
            debit_account_id: 0,
            credit_account_id: 0,
            amount: 0,
            ledger: record.ledger,
            flags,
            pending_id: record.reservation_id,
            timeout_s: 0,
        };
        let timestamp = self.next_timestamp();
        let result = self.post_or_void_pending_transfer(&resolution, timestamp);
        assert_eq!(
            result,
            CreateTransferResult::Ok,
            "a reservation resolves once"
        );
        self.wallet_sequence += 1;
    }

    /// The wallet of a registered player in `ledger`.
    fn wallet_of(
        &self,
        player_id: PlayerId,
        ledger: LedgerCode,
    ) -> Result<AccountId, PaymentOutcome> {
        let player = self.directory.player(player_id).ok_or(O::PlayerNotFound)?;
        player.wallet(ledger).ok_or(O::NoWalletInCurrency)
    }

    /// A ledger-made account of the payments (no balance limits), created on first use.
    fn ensure_payment_account(
        &mut self,
        id: AccountId,
        ledger: LedgerCode,
        kind: AccountKind,
    ) -> u32 {
        if let Some(slot) = self.slot_of_account(id) {
            let account = self.account_at(slot);
            assert!(account.kind == kind && account.ledger == ledger);
            return slot;
        }
        let timestamp = self.next_timestamp();
        let flags = crate::types::AccountFlags::empty();
        self.insert_account(
            super::accounts::new_account(id, ledger, kind, flags, timestamp),
            flags,
        )
    }

    /// A deposit in the hot state (not final yet); a final one is in history
    /// (`crate::reads::deposit_record` looks in both).
    pub fn deposit_record(&self, deposit_id: PaymentId) -> Option<&DepositRecord> {
        self.payments
            .deposits
            .get(&deposit_id)
            .map(|record| record.as_ref())
    }

    /// A withdrawal in the hot state (not final yet: open or held).
    pub fn withdrawal_record(&self, withdrawal_id: PaymentId) -> Option<&WithdrawalRecord> {
        self.payments
            .withdrawals
            .get(&withdrawal_id)
            .map(|record| record.as_ref())
    }

    /// Every deposit in the hot state, by id.
    pub fn deposits(&self) -> impl Iterator<Item = &DepositRecord> + '_ {
        self.payments
            .deposits
            .values()
            .map(|record| record.as_ref())
    }

    /// Every withdrawal in the hot state, by id.
    pub fn withdrawals(&self) -> impl Iterator<Item = &WithdrawalRecord> + '_ {
        self.payments
            .withdrawals
            .values()
            .map(|record| record.as_ref())
    }

    /// Deposits by id, at most `limit` after `after` (a reader that pages through them holds
    /// the read lock for one page, not the whole book).
    pub fn deposits_after(&self, after: PaymentId, limit: usize) -> Vec<&DepositRecord> {
        let range = (std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded);
        let records = self.payments.deposits.range(range).take(limit);
        records.map(|(_, record)| record.as_ref()).collect()
    }

    /// Withdrawals by id, at most `limit` after `after` (as `deposits_after`).
    pub fn withdrawals_after(&self, after: PaymentId, limit: usize) -> Vec<&WithdrawalRecord> {
        let range = (std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded);
        let records = self.payments.withdrawals.range(range).take(limit);
        records.map(|(_, record)| record.as_ref()).collect()
    }

    /// Deposits not final yet, by id, at most `limit` after `after` (for the node's worker).
    pub fn open_deposits(&self, after: PaymentId, limit: usize) -> Vec<&DepositRecord> {
        let range = (std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded);
        self.payments
            .open_deposits
            .range(range)
            .take(limit)
            .map(|id| self.payments.deposits[id].as_ref())
            .collect()
    }

    /// Withdrawals not final yet, by id, at most `limit` after `after`.
    pub fn open_withdrawals(&self, after: PaymentId, limit: usize) -> Vec<&WithdrawalRecord> {
        let range = (std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded);
        self.payments
            .open_withdrawals
            .range(range)
            .take(limit)
            .map(|id| self.payments.withdrawals[id].as_ref())
            .collect()
    }

    /// The connectors with clearing accounts, by number.
    pub fn payment_connectors(&self) -> &[String] {
        &self.payments.connectors
    }
}

fn deposit_of(
    deposit_id: PaymentId,
    player_id: PlayerId,
    ledger: LedgerCode,
    amount: u64,
) -> Deposit {
    Deposit {
        deposit_id,
        player_id,
        ledger,
        amount,
        source_account_id: 0,
    }
}

fn new_attempt(connector: &str) -> PayoutAttempt {
    PayoutAttempt {
        connector: connector.to_string(),
        payment_id: String::new(),
        failure: String::new(),
    }
}

/// Reasons accumulate over a withdrawal's life; past `REASONS_MAX` the oldest go.
fn append_reasons(kept: &mut Vec<String>, reasons: &[String]) {
    kept.extend(reasons.iter().cloned());
    let excess = kept.len().saturating_sub(REASONS_MAX);
    kept.drain(..excess);
}
