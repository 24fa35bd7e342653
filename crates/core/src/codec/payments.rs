//! The payments part of the codec: command 15, result 8 and the checkpoint's payments section
//! (version 10; version 11 ends each deposit with u64 settled_at_ns and its return: u8 has
//! payee, [payee] | text return payment id, and adds the return commands 10 to 13 and deposit states 6 to 8;
//! command 14 is a `FailPayout` bound to a leader's term, result 10 `leader_changed`; version
//! 12 ends each deposit with u128 settle and return transfer ids and each withdrawal with u128
//! paid transfer id; an archived payment in the wallet log is u8 book and the record). Texts are u16-length-prefixed UTF-8, bounded by `crate::payments`' limits;
//! a decoded command must pass `PaymentCommand::check` (canonical: nothing the encoder could
//! not have written).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{DecodeError, Reader, Writer};
use crate::compliance::Refusal;
use crate::payments::{
    ArchivedPayment, DepositRecord, DepositState, Payee, PayeeAccount, PaymentChange,
    PaymentCommand, PaymentEvent, PaymentOutcome, PayoutAttempt, WithdrawalDecision,
    WithdrawalRecord, WithdrawalState, ATTEMPTS_MAX, AUTHORISATION_URL_LEN_MAX, BANK_REF_LEN_MAX,
    CONNECTORS_MAX, CONNECTOR_NAME_LEN_MAX, PAYEE_ACCOUNT_LEN_MAX, PAYEE_NAME_LEN_MAX,
    REASON_LEN_MAX,
};
use crate::types::CreateTransferResult;

pub(super) const TAG_PAYMENT: u8 = 15;
pub(super) const RESULT_TAG_PAYMENT: u8 = 8;

const OPEN_DEPOSIT: u8 = 1;
const DEPOSIT_STARTED: u8 = 2;
const SETTLE_DEPOSIT: u8 = 3;
const FAIL_DEPOSIT: u8 = 4;
const REQUEST_WITHDRAWAL: u8 = 5;
const DECIDE_WITHDRAWAL: u8 = 6;
const PAYOUT_ACCEPTED: u8 = 7;
const SETTLE_PAYOUT: u8 = 8;
const FAIL_PAYOUT: u8 = 9;
const RETURN_DEPOSIT: u8 = 10;
const RETURN_ACCEPTED: u8 = 11;
const SETTLE_RETURN: u8 = 12;
const FAIL_RETURN: u8 = 13;
/// `FailPayout` bound to a leader's term: FAIL_PAYOUT's fields, then u64 term.
const FAIL_PAYOUT_IN_TERM: u8 = 14;

const DECISION_APPROVE: u8 = 1;
const DECISION_HOLD: u8 = 2;
const DECISION_REJECT: u8 = 3;

/// Which book an archived payment belongs to.
const BOOK_DEPOSIT: u8 = 1;
const BOOK_WITHDRAWAL: u8 = 2;

const EVENT_DEPOSIT: u8 = 1;
const EVENT_WITHDRAWAL: u8 = 2;

const ACCOUNT_IBAN: u8 = 1;
const ACCOUNT_SORT_CODE: u8 = 2;

const DEPOSIT_STATES: [DepositState; 5] = [
    DepositState::Opening,
    DepositState::AwaitingAuthorisation,
    DepositState::Settled,
    DepositState::Rejected,
    DepositState::Expired,
];
/// `DepositState::Refused` is written as this code and the refusal.
const DEPOSIT_REFUSED: u8 = 5;
/// A refused deposit's return (version 11 on).
const DEPOSIT_RETURNING: u8 = 6;
const DEPOSIT_RETURNED: u8 = 7;
const DEPOSIT_RETURN_FAILED: u8 = 8;

const WITHDRAWAL_STATES: [WithdrawalState; 6] = [
    WithdrawalState::Requested,
    WithdrawalState::Held,
    WithdrawalState::Sending,
    WithdrawalState::Paid,
    WithdrawalState::Refunded,
    WithdrawalState::Rejected,
];

const OUTCOMES: [PaymentOutcome; 8] = [
    PaymentOutcome::Ok,
    PaymentOutcome::PlayerNotFound,
    PaymentOutcome::NoWalletInCurrency,
    PaymentOutcome::NotFound,
    PaymentOutcome::Conflict,
    PaymentOutcome::WrongState,
    PaymentOutcome::TooManyConnectors,
    PaymentOutcome::TooManyAttempts,
];
const OUTCOME_REFUSED: u8 = 8;
const OUTCOME_TRANSFER_REFUSED: u8 = 9;
const OUTCOME_LEADER_CHANGED: u8 = 10;

impl Writer<'_> {
    pub(super) fn payment_command(&mut self, command: &PaymentCommand) {
        assert!(command.check(), "unchecked payment command");
        self.u8(TAG_PAYMENT);
        match command {
            PaymentCommand::OpenDeposit {
                deposit_id,
                player_id,
                ledger,
                amount,
                connector,
            } => {
                self.u8(OPEN_DEPOSIT);
                self.u128(*deposit_id);
                self.u128(*player_id);
                self.u64(ledger.to_u64());
                self.u64(*amount);
                self.optional_text(connector);
            }
            PaymentCommand::DepositStarted {
                deposit_id,
                consent_id,
                authorisation_url,
            } => {
                self.u8(DEPOSIT_STARTED);
                self.u128(*deposit_id);
                self.optional_text(consent_id);
                self.optional_text(authorisation_url);
            }
            PaymentCommand::SettleDeposit { deposit_id } => {
                self.u8(SETTLE_DEPOSIT);
                self.u128(*deposit_id);
            }
            PaymentCommand::FailDeposit {
                deposit_id,
                expired,
                reason,
            } => {
                self.u8(FAIL_DEPOSIT);
                self.u128(*deposit_id);
                self.u8(u8::from(*expired));
                self.optional_text(reason);
            }
            PaymentCommand::RequestWithdrawal {
                withdrawal_id,
                player_id,
                ledger,
                amount,
                payee,
            } => {
                self.u8(REQUEST_WITHDRAWAL);
                self.u128(*withdrawal_id);
                self.u128(*player_id);
                self.u64(ledger.to_u64());
                self.u64(*amount);
                self.payee(payee);
            }
            PaymentCommand::DecideWithdrawal {
                withdrawal_id,
                decision,
                reasons,
            } => {
                self.u8(DECIDE_WITHDRAWAL);
                self.u128(*withdrawal_id);
                self.withdrawal_decision(decision);
                self.reasons(reasons);
            }
            PaymentCommand::PayoutAccepted {
                withdrawal_id,
                attempt,
                payment_id,
            } => {
                self.u8(PAYOUT_ACCEPTED);
                self.u128(*withdrawal_id);
                self.u8(*attempt);
                self.optional_text(payment_id);
            }
            PaymentCommand::SettlePayout {
                withdrawal_id,
                attempt,
            } => {
                self.u8(SETTLE_PAYOUT);
                self.u128(*withdrawal_id);
                self.u8(*attempt);
            }
            PaymentCommand::FailPayout {
                withdrawal_id,
                attempt,
                reason,
                next_connector,
                leader_term,
            } => {
                self.u8(match leader_term {
                    None => FAIL_PAYOUT,
                    Some(_) => FAIL_PAYOUT_IN_TERM,
                });
                self.u128(*withdrawal_id);
                self.u8(*attempt);
                self.optional_text(reason);
                self.optional_text(next_connector.as_deref().unwrap_or(""));
                if let Some(term) = leader_term {
                    self.u64(*term);
                }
            }
            PaymentCommand::ReturnDeposit { deposit_id, payee } => {
                self.u8(RETURN_DEPOSIT);
                self.u128(*deposit_id);
                self.payee(payee);
            }
            PaymentCommand::ReturnAccepted {
                deposit_id,
                payment_id,
            } => {
                self.u8(RETURN_ACCEPTED);
                self.u128(*deposit_id);
                self.optional_text(payment_id);
            }
            PaymentCommand::SettleReturn { deposit_id } => {
                self.u8(SETTLE_RETURN);
                self.u128(*deposit_id);
            }
            PaymentCommand::FailReturn { deposit_id, reason } => {
                self.u8(FAIL_RETURN);
                self.u128(*deposit_id);
                self.optional_text(reason);
            }
        }
    }

    fn payee(&mut self, payee: &Payee) {
        match &payee.account {
            PayeeAccount::Iban(iban) => {
                self.u8(ACCOUNT_IBAN);
                self.optional_text(iban);
            }
            PayeeAccount::SortCode {
                sort_code,
                account_number,
            } => {
                self.u8(ACCOUNT_SORT_CODE);
                self.optional_text(sort_code);
                self.optional_text(account_number);
            }
        }
        self.optional_text(&payee.name);
    }

    fn withdrawal_decision(&mut self, decision: &WithdrawalDecision) {
        match decision {
            WithdrawalDecision::Approve { connector } => {
                self.u8(DECISION_APPROVE);
                self.optional_text(connector);
            }
            WithdrawalDecision::Hold { case_id, score } => {
                self.u8(DECISION_HOLD);
                self.u128(*case_id);
                self.u8(*score);
            }
            WithdrawalDecision::Reject => self.u8(DECISION_REJECT),
        }
    }

    pub(super) fn payment_outcome(&mut self, outcome: &PaymentOutcome) {
        match *outcome {
            PaymentOutcome::Refused(refusal) => {
                self.u8(OUTCOME_REFUSED);
                self.u8(refusal.to_u8());
            }
            PaymentOutcome::TransferRefused(result) => {
                self.u8(OUTCOME_TRANSFER_REFUSED);
                self.u8(result.to_u8());
            }
            PaymentOutcome::LeaderChanged => self.u8(OUTCOME_LEADER_CHANGED),
            other => self.u8(OUTCOMES.iter().position(|o| *o == other).expect("listed") as u8),
        }
    }

    /// The checkpoint's payments: connectors in number order, deposits by id, withdrawals by id.
    pub(super) fn checkpoint_payments(
        &mut self,
        connectors: &[String],
        deposits: impl ExactSizeIterator<Item = impl AsRef<DepositRecord>>,
        withdrawals: impl ExactSizeIterator<Item = impl AsRef<WithdrawalRecord>>,
    ) {
        self.u16(connectors.len() as u16);
        connectors.iter().for_each(|name| self.optional_text(name));
        self.u64(deposits.len() as u64);
        for deposit in deposits {
            self.checkpoint_deposit(deposit.as_ref());
        }
        self.u64(withdrawals.len() as u64);
        for withdrawal in withdrawals {
            self.checkpoint_withdrawal(withdrawal.as_ref());
        }
    }

    /// An archived payment: u8 book, then the record as the checkpoint writes it.
    pub(super) fn archived_payment(&mut self, payment: &ArchivedPayment) {
        match payment {
            ArchivedPayment::Deposit(d) => {
                self.u8(BOOK_DEPOSIT);
                self.checkpoint_deposit(d);
            }
            ArchivedPayment::Withdrawal(w) => {
                self.u8(BOOK_WITHDRAWAL);
                self.checkpoint_withdrawal(w);
            }
        }
    }

    fn checkpoint_deposit(&mut self, d: &DepositRecord) {
        self.u128(d.deposit_id);
        self.u128(d.player_id);
        self.u64(d.ledger.to_u64());
        self.u64(d.amount);
        self.optional_text(&d.connector);
        self.deposit_state(d.state);
        self.optional_text(&d.consent_id);
        self.optional_text(&d.authorisation_url);
        self.optional_text(&d.reason);
        self.u64(d.opened_at_ns);
        self.u64(d.updated_at_ns);
        self.u64(d.settled_at_ns);
        match &d.return_to {
            Some(payee) => {
                self.u8(1);
                self.payee(payee);
            }
            None => self.u8(0),
        }
        self.optional_text(&d.return_payment_id);
        self.u128(d.settle_transfer_id);
        self.u128(d.return_transfer_id);
    }

    fn checkpoint_withdrawal(&mut self, w: &WithdrawalRecord) {
        self.u128(w.withdrawal_id);
        self.u128(w.player_id);
        self.u64(w.ledger.to_u64());
        self.u64(w.amount);
        self.payee(&w.payee);
        self.withdrawal_state(w.state);
        self.u128(w.reservation_id);
        self.u8(w.attempts.len() as u8);
        for attempt in &w.attempts {
            self.optional_text(&attempt.connector);
            self.optional_text(&attempt.payment_id);
            self.optional_text(&attempt.failure);
        }
        self.reasons(&w.reasons);
        self.u128(w.case_id);
        self.u64(w.requested_at_ns);
        self.u64(w.updated_at_ns);
        self.u128(w.paid_transfer_id);
    }
    /// A payment event (history record 7): the same state codes as the checkpoint.
    pub(super) fn payment_event(&mut self, event: &PaymentEvent) {
        self.u64(event.timestamp);
        match event.change {
            PaymentChange::Deposit { deposit_id, state } => {
                self.u8(EVENT_DEPOSIT);
                self.u128(deposit_id);
                self.deposit_state(state);
            }
            PaymentChange::Withdrawal {
                withdrawal_id,
                state,
                attempts,
            } => {
                self.u8(EVENT_WITHDRAWAL);
                self.u128(withdrawal_id);
                self.withdrawal_state(state);
                self.u8(attempts);
            }
        }
        self.u128(event.player_id);
        self.u64(event.ledger.to_u64());
        self.u64(event.amount);
        self.optional_text(&event.connector);
        self.optional_text(&event.reason);
    }

    fn deposit_state(&mut self, state: DepositState) {
        match state {
            DepositState::Refused(refusal) => {
                self.u8(DEPOSIT_REFUSED);
                self.u8(refusal.to_u8());
            }
            DepositState::Returning => self.u8(DEPOSIT_RETURNING),
            DepositState::Returned => self.u8(DEPOSIT_RETURNED),
            DepositState::ReturnFailed => self.u8(DEPOSIT_RETURN_FAILED),
            state => self.u8(DEPOSIT_STATES
                .iter()
                .position(|s| *s == state)
                .expect("listed") as u8),
        }
    }

    fn withdrawal_state(&mut self, state: WithdrawalState) {
        self.u8(WITHDRAWAL_STATES
            .iter()
            .position(|s| *s == state)
            .expect("listed") as u8);
    }
}

impl Reader<'_> {
    pub(super) fn payment_command(&mut self) -> Result<PaymentCommand, DecodeError> {
        let offset = self.offset;
        let command = match self.u8()? {
            OPEN_DEPOSIT => PaymentCommand::OpenDeposit {
                deposit_id: self.u128()?,
                player_id: self.u128()?,
                ledger: self.ledger()?,
                amount: self.u64()?,
                connector: self.optional_text(CONNECTOR_NAME_LEN_MAX)?,
            },
            DEPOSIT_STARTED => PaymentCommand::DepositStarted {
                deposit_id: self.u128()?,
                consent_id: self.optional_text(BANK_REF_LEN_MAX)?,
                authorisation_url: self.optional_text(AUTHORISATION_URL_LEN_MAX)?,
            },
            SETTLE_DEPOSIT => PaymentCommand::SettleDeposit {
                deposit_id: self.u128()?,
            },
            FAIL_DEPOSIT => PaymentCommand::FailDeposit {
                deposit_id: self.u128()?,
                expired: self.present()?,
                reason: self.optional_text(REASON_LEN_MAX)?,
            },
            REQUEST_WITHDRAWAL => PaymentCommand::RequestWithdrawal {
                withdrawal_id: self.u128()?,
                player_id: self.u128()?,
                ledger: self.ledger()?,
                amount: self.u64()?,
                payee: self.payee()?,
            },
            DECIDE_WITHDRAWAL => PaymentCommand::DecideWithdrawal {
                withdrawal_id: self.u128()?,
                decision: self.withdrawal_decision()?,
                reasons: self.reasons()?,
            },
            PAYOUT_ACCEPTED => PaymentCommand::PayoutAccepted {
                withdrawal_id: self.u128()?,
                attempt: self.u8()?,
                payment_id: self.optional_text(BANK_REF_LEN_MAX)?,
            },
            SETTLE_PAYOUT => PaymentCommand::SettlePayout {
                withdrawal_id: self.u128()?,
                attempt: self.u8()?,
            },
            tag @ (FAIL_PAYOUT | FAIL_PAYOUT_IN_TERM) => PaymentCommand::FailPayout {
                withdrawal_id: self.u128()?,
                attempt: self.u8()?,
                reason: self.optional_text(REASON_LEN_MAX)?,
                next_connector: Some(self.optional_text(CONNECTOR_NAME_LEN_MAX)?)
                    .filter(|n| !n.is_empty()),
                leader_term: match tag {
                    FAIL_PAYOUT_IN_TERM => Some(self.u64()?),
                    _ => None,
                },
            },
            RETURN_DEPOSIT => PaymentCommand::ReturnDeposit {
                deposit_id: self.u128()?,
                payee: self.payee()?,
            },
            RETURN_ACCEPTED => PaymentCommand::ReturnAccepted {
                deposit_id: self.u128()?,
                payment_id: self.optional_text(BANK_REF_LEN_MAX)?,
            },
            SETTLE_RETURN => PaymentCommand::SettleReturn {
                deposit_id: self.u128()?,
            },
            FAIL_RETURN => PaymentCommand::FailReturn {
                deposit_id: self.u128()?,
                reason: self.optional_text(REASON_LEN_MAX)?,
            },
            _ => return Err(self.invalid("payment command", offset)),
        };
        match command.check() {
            true => Ok(command),
            false => Err(self.invalid("payment command", offset)),
        }
    }

    fn payee(&mut self) -> Result<Payee, DecodeError> {
        let offset = self.offset;
        let account = match self.u8()? {
            ACCOUNT_IBAN => PayeeAccount::Iban(self.optional_text(PAYEE_ACCOUNT_LEN_MAX)?),
            ACCOUNT_SORT_CODE => PayeeAccount::SortCode {
                sort_code: self.optional_text(6)?,
                account_number: self.optional_text(8)?,
            },
            _ => return Err(self.invalid("payee account", offset)),
        };
        let name = self.optional_text(PAYEE_NAME_LEN_MAX)?;
        let payee = Payee { account, name };
        match payee.check() {
            true => Ok(payee),
            false => Err(self.invalid("payee", offset)),
        }
    }

    fn withdrawal_decision(&mut self) -> Result<WithdrawalDecision, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            DECISION_APPROVE => WithdrawalDecision::Approve {
                connector: self.optional_text(CONNECTOR_NAME_LEN_MAX)?,
            },
            DECISION_HOLD => WithdrawalDecision::Hold {
                case_id: self.u128()?,
                score: self.u8()?,
            },
            DECISION_REJECT => WithdrawalDecision::Reject,
            _ => return Err(self.invalid("withdrawal decision", offset)),
        })
    }

    pub(super) fn payment_outcome(&mut self) -> Result<PaymentOutcome, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            OUTCOME_REFUSED => PaymentOutcome::Refused(
                Refusal::from_u8(self.u8()?).ok_or_else(|| self.invalid("refusal", offset))?,
            ),
            OUTCOME_TRANSFER_REFUSED => PaymentOutcome::TransferRefused(
                CreateTransferResult::from_u8(self.u8()?)
                    .ok_or_else(|| self.invalid("transfer result", offset))?,
            ),
            OUTCOME_LEADER_CHANGED => PaymentOutcome::LeaderChanged,
            code => *OUTCOMES
                .get(usize::from(code))
                .ok_or_else(|| self.invalid("payment outcome", offset))?,
        })
    }

    /// An archived payment (see the writer), its record as checkpoint `version` writes it.
    pub(super) fn archived_payment(&mut self, version: u8) -> Result<ArchivedPayment, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            BOOK_DEPOSIT => ArchivedPayment::Deposit(Arc::new(self.checkpoint_deposit(version)?)),
            BOOK_WITHDRAWAL => {
                ArchivedPayment::Withdrawal(Arc::new(self.checkpoint_withdrawal(version)?))
            }
            _ => return Err(self.invalid("archived payment book", offset)),
        })
    }

    /// The checkpoint's payments as format `version` wrote them.
    pub(super) fn checkpoint_payments(
        &mut self,
        version: u8,
    ) -> Result<crate::ledger::PaymentBook, DecodeError> {
        let offset = self.offset;
        let connector_count = usize::from(self.u16()?);
        if connector_count > CONNECTORS_MAX {
            return Err(self.invalid("payment connectors", offset));
        }
        let connectors = (0..connector_count)
            .map(|_| self.optional_text(CONNECTOR_NAME_LEN_MAX))
            .collect::<Result<Vec<_>, _>>()?;
        const DEPOSIT_BYTES_MIN: usize = 16 + 16 + 8 + 8 + 2 + 1 + 2 + 2 + 2 + 8 + 8;
        let count = self.count_u64(DEPOSIT_BYTES_MIN)?;
        let mut deposits = BTreeMap::new();
        for _ in 0..count {
            let offset = self.offset;
            let deposit = self.checkpoint_deposit(version)?;
            if deposits
                .last_key_value()
                .is_some_and(|(last, _)| *last >= deposit.deposit_id)
            {
                return Err(self.invalid("deposit order", offset));
            }
            deposits.insert(deposit.deposit_id, Arc::new(deposit));
        }
        const WITHDRAWAL_BYTES_MIN: usize =
            16 + 16 + 8 + 8 + 1 + 2 + 2 + 1 + 16 + 1 + 1 + 16 + 8 + 8;
        let count = self.count_u64(WITHDRAWAL_BYTES_MIN)?;
        let mut withdrawals = BTreeMap::new();
        for _ in 0..count {
            let offset = self.offset;
            let withdrawal = self.checkpoint_withdrawal(version)?;
            if withdrawals
                .last_key_value()
                .is_some_and(|(last, _)| *last >= withdrawal.withdrawal_id)
            {
                return Err(self.invalid("withdrawal order", offset));
            }
            withdrawals.insert(withdrawal.withdrawal_id, Arc::new(withdrawal));
        }
        Ok(crate::ledger::PaymentBook::restore(
            connectors,
            deposits,
            withdrawals,
        ))
    }

    /// Version 11 on, a deposit ends with its return; 12 on, with its clearing transfers.
    fn checkpoint_deposit(&mut self, version: u8) -> Result<DepositRecord, DecodeError> {
        let returns = version >= 11;
        let deposit_id = self.u128()?;
        let player_id = self.u128()?;
        let ledger = self.ledger()?;
        let amount = self.u64()?;
        let connector = self.optional_text(CONNECTOR_NAME_LEN_MAX)?;
        let state = self.deposit_state()?;
        Ok(DepositRecord {
            deposit_id,
            player_id,
            ledger,
            amount,
            connector,
            state,
            consent_id: self.optional_text(BANK_REF_LEN_MAX)?,
            authorisation_url: self.optional_text(AUTHORISATION_URL_LEN_MAX)?,
            reason: self.optional_text(REASON_LEN_MAX)?,
            opened_at_ns: self.u64()?,
            updated_at_ns: self.u64()?,
            settled_at_ns: match returns {
                true => self.u64()?,
                false => 0,
            },
            return_to: match returns && self.present()? {
                true => Some(self.payee()?),
                false => None,
            },
            return_payment_id: match returns {
                true => self.optional_text(BANK_REF_LEN_MAX)?,
                false => String::new(),
            },
            settle_transfer_id: self.u128_from(version, 12)?,
            return_transfer_id: self.u128_from(version, 12)?,
        })
    }

    /// A u128 that format `version` holds only from version `since` on (0 before).
    fn u128_from(&mut self, version: u8, since: u8) -> Result<u128, DecodeError> {
        match version >= since {
            true => self.u128(),
            false => Ok(0),
        }
    }

    fn checkpoint_withdrawal(&mut self, version: u8) -> Result<WithdrawalRecord, DecodeError> {
        let withdrawal_id = self.u128()?;
        let player_id = self.u128()?;
        let ledger = self.ledger()?;
        let amount = self.u64()?;
        let payee = self.payee()?;
        let state = self.withdrawal_state()?;
        let reservation_id = self.u128()?;
        let offset = self.offset;
        let attempt_count = usize::from(self.u8()?);
        if attempt_count > ATTEMPTS_MAX {
            return Err(self.invalid("payout attempts", offset));
        }
        let attempts = (0..attempt_count)
            .map(|_| {
                Ok(PayoutAttempt {
                    connector: self.optional_text(CONNECTOR_NAME_LEN_MAX)?,
                    payment_id: self.optional_text(BANK_REF_LEN_MAX)?,
                    failure: self.optional_text(REASON_LEN_MAX)?,
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        Ok(WithdrawalRecord {
            withdrawal_id,
            player_id,
            ledger,
            amount,
            payee,
            state,
            reservation_id,
            attempts,
            reasons: self.reasons()?,
            case_id: self.u128()?,
            requested_at_ns: self.u64()?,
            updated_at_ns: self.u64()?,
            paid_transfer_id: self.u128_from(version, 12)?,
        })
    }
}

impl Reader<'_> {
    pub(super) fn payment_event(&mut self) -> Result<PaymentEvent, DecodeError> {
        let timestamp = self.u64()?;
        let offset = self.offset;
        let change = match self.u8()? {
            EVENT_DEPOSIT => PaymentChange::Deposit {
                deposit_id: self.u128()?,
                state: self.deposit_state()?,
            },
            EVENT_WITHDRAWAL => {
                let withdrawal_id = self.u128()?;
                let state = self.withdrawal_state()?;
                let offset = self.offset;
                let attempts = self.u8()?;
                if usize::from(attempts) > ATTEMPTS_MAX {
                    return Err(self.invalid("payout attempts", offset));
                }
                PaymentChange::Withdrawal {
                    withdrawal_id,
                    state,
                    attempts,
                }
            }
            _ => return Err(self.invalid("payment event kind", offset)),
        };
        Ok(PaymentEvent {
            timestamp,
            change,
            player_id: self.u128()?,
            ledger: self.ledger()?,
            amount: self.u64()?,
            connector: self.optional_text(CONNECTOR_NAME_LEN_MAX)?,
            reason: self.optional_text(REASON_LEN_MAX)?,
        })
    }

    fn deposit_state(&mut self) -> Result<DepositState, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            DEPOSIT_REFUSED => DepositState::Refused(
                Refusal::from_u8(self.u8()?).ok_or_else(|| self.invalid("refusal", offset))?,
            ),
            DEPOSIT_RETURNING => DepositState::Returning,
            DEPOSIT_RETURNED => DepositState::Returned,
            DEPOSIT_RETURN_FAILED => DepositState::ReturnFailed,
            code => *DEPOSIT_STATES
                .get(usize::from(code))
                .ok_or_else(|| self.invalid("deposit state", offset))?,
        })
    }

    fn withdrawal_state(&mut self) -> Result<WithdrawalState, DecodeError> {
        let offset = self.offset;
        Ok(*WITHDRAWAL_STATES
            .get(usize::from(self.u8()?))
            .ok_or_else(|| self.invalid("withdrawal state", offset))?)
    }
}
