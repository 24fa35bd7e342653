//! Money in and out through banks, as ledger state: every deposit and withdrawal, each step of
//! its life (started at a bank, settled, rejected; reserved, decided, sent, paid, refunded)
//! and each decision with its reasons is a command, so no crash, retry or leader change can
//! credit or pay a player twice: the state machine accepts each step once, in order.
//!
//! Money moves through three kinds of ledger-made accounts per currency:
//! - the player's wallet;
//! - a bank's clearing account (`clearing_account_id`): the mirror of the operator's account
//!   at that bank. A settled deposit moves money from it to the wallet; a paid withdrawal
//!   moves money into it. Its debits less its credits are what the bank's statement should
//!   show as the operator's net receipts (reconciliation compares the two).
//! - withdrawals in flight (`in_flight_account_id`): a withdrawal request reserves the amount
//!   as a pending transfer from the wallet to it; approval posts it, rejection voids it; the
//!   paid payout moves it on to the clearing account; a definitive failure refunds it.
//!
//! The node's payment worker proposes the steps; what a bank answered is its input, and the
//! outbox is this state itself: a withdrawal in `Sending` is a payout to send (again, with the
//! same idempotency key) until the bank says what became of it.
//!
//! A deposit the bank settled but the ledger refused at that moment (a limit, an exclusion)
//! is credited to the returns account instead of the wallet, then sent back: the node asks the
//! deposit's bank which account paid it and pays the amount back there from the operator's
//! account at that bank (`ReturnDeposit`, `ReturnAccepted`, then `SettleReturn` or
//! `FailReturn`). Neither open-banking rail has a refund of its own: a return is a payout.
//!
//! Memory: only the payments still open (and held ones) stay in the hot state. A record that
//! turns final leaves it in the same apply as an [`ArchivedPayment`] history record, found
//! later by its [`PaymentKey`] (a repeated request or step still meets it: idempotency outlives
//! the hot state) and by the id of each clearing-account transfer it made (reconciliation walks
//! the clearing accounts' chains back to a payment).

use crate::compliance::Refusal;
use crate::ids::LedgerCode;
use crate::ids::TransferId;
use crate::players::PlayerId;
use crate::types::CreateTransferResult;

pub type PaymentId = u128;

/// A payment as history finds it: which book, which id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentKey {
    Deposit(PaymentId),
    Withdrawal(PaymentId),
}

/// A payment that turned final, as history keeps it (history record, never an event: the feed
/// already published its last change, and the record holds the payee's account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchivedPayment {
    Deposit(std::sync::Arc<DepositRecord>),
    Withdrawal(std::sync::Arc<WithdrawalRecord>),
}

impl ArchivedPayment {
    pub fn key(&self) -> PaymentKey {
        match self {
            ArchivedPayment::Deposit(d) => PaymentKey::Deposit(d.deposit_id),
            ArchivedPayment::Withdrawal(w) => PaymentKey::Withdrawal(w.withdrawal_id),
        }
    }

    pub fn deposit(&self) -> Option<&std::sync::Arc<DepositRecord>> {
        match self {
            ArchivedPayment::Deposit(d) => Some(d),
            ArchivedPayment::Withdrawal(_) => None,
        }
    }

    pub fn withdrawal(&self) -> Option<&std::sync::Arc<WithdrawalRecord>> {
        match self {
            ArchivedPayment::Withdrawal(w) => Some(w),
            ArchivedPayment::Deposit(_) => None,
        }
    }

    /// The ledger time of its last change (ns).
    pub fn updated_at_ns(&self) -> u64 {
        match self {
            ArchivedPayment::Deposit(d) => d.updated_at_ns,
            ArchivedPayment::Withdrawal(w) => w.updated_at_ns,
        }
    }

    /// The clearing-account transfers it made (none are 0).
    pub fn clearing_transfer_ids(&self) -> impl Iterator<Item = TransferId> {
        let ids = match self {
            ArchivedPayment::Deposit(d) => [d.settle_transfer_id, d.return_transfer_id],
            ArchivedPayment::Withdrawal(w) => [w.paid_transfer_id, 0],
        };
        ids.into_iter().filter(|&id| id != 0)
    }
}

/// A connector's name as configured ("bank-a"): 1 to 32 of `a-z`, `0-9`, `-`, `_`.
pub const CONNECTOR_NAME_LEN_MAX: usize = 32;
/// Connectors the ledger keeps clearing accounts for.
pub const CONNECTORS_MAX: usize = 256;
/// A bank's consent or payment id.
pub const BANK_REF_LEN_MAX: usize = 128;
pub const AUTHORISATION_URL_LEN_MAX: usize = 1_024;
/// An IBAN has at most 34 characters; a sort code and account number 14 digits.
pub const PAYEE_ACCOUNT_LEN_MAX: usize = 34;
pub const PAYEE_NAME_LEN_MAX: usize = 140;
/// Payout attempts per withdrawal (one per connector tried).
pub const ATTEMPTS_MAX: usize = 8;
pub const REASONS_MAX: usize = 16;
pub const REASON_LEN_MAX: usize = 64;

/// Where a deposit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepositState {
    /// Recorded; the bank has not been asked yet (or its answer was not recorded).
    Opening,
    /// The bank holds a consent or payment awaiting the player's authorisation.
    AwaitingAuthorisation,
    /// The bank settled it and the wallet was credited.
    Settled,
    /// The bank rejected it (or the player declined): no money moved.
    Rejected,
    /// No authorisation in time: no money moved.
    Expired,
    /// The bank settled it but the player's limits or status refused the credit at that
    /// moment: the money waits in the returns account until it is sent back to the account
    /// it came from (the node asks the bank which one that was).
    Refused(Refusal),
    /// Refused, and the payout sending the money back to the payer's account is under way.
    Returning,
    /// The money went back to the payer's account: final.
    Returned,
    /// The return could not be made (the bank did not say where the money came from, or it
    /// refused the return): final, and the money stays in the returns account for the
    /// operator to settle. The reason says why.
    ReturnFailed,
}

impl DepositState {
    pub fn name(self) -> &'static str {
        match self {
            DepositState::Opening => "opening",
            DepositState::AwaitingAuthorisation => "awaiting_authorisation",
            DepositState::Settled => "settled",
            DepositState::Rejected => "rejected",
            DepositState::Expired => "expired",
            DepositState::Refused(_) => "refused",
            DepositState::Returning => "returning",
            DepositState::Returned => "returned",
            DepositState::ReturnFailed => "return_failed",
        }
    }

    /// Whether the node has nothing more to do for it (a refused deposit still has its
    /// return to make).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            DepositState::Opening
                | DepositState::AwaitingAuthorisation
                | DepositState::Refused(_)
                | DepositState::Returning
        )
    }

    /// Whether the bank settled it (money reached the operator's account).
    pub fn was_settled(self) -> bool {
        matches!(
            self,
            DepositState::Settled
                | DepositState::Refused(_)
                | DepositState::Returning
                | DepositState::Returned
                | DepositState::ReturnFailed
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRecord {
    pub deposit_id: PaymentId,
    pub player_id: PlayerId,
    pub ledger: LedgerCode,
    pub amount: u64,
    pub connector: String,
    pub state: DepositState,
    pub consent_id: String,
    pub authorisation_url: String,
    /// The bank's reason for a rejection, the refusal's code once a return starts, or why a
    /// return failed ("" otherwise).
    pub reason: String,
    pub opened_at_ns: u64,
    pub updated_at_ns: u64,
    /// When the bank's settlement was recorded (0: not settled, or settled before version 11
    /// of the checkpoint kept it): the date of the deposit's movement.
    pub settled_at_ns: u64,
    /// A refused deposit's return: the payer's account as its bank reported it.
    pub return_to: Option<Payee>,
    /// The bank's id of the return payout, once it took it ("" before).
    pub return_payment_id: String,
    /// The transfer that took the settled money out of the clearing account (to the wallet,
    /// or to the returns account when refused); 0 before, or when recorded before checkpoint
    /// version 12 kept it.
    pub settle_transfer_id: TransferId,
    /// The transfer that put a returned deposit's money back into the clearing account (0: none).
    pub return_transfer_id: TransferId,
}

/// The account a withdrawal is paid to: an IBAN, or a UK sort code and account number.
#[derive(Clone, PartialEq, Eq)]
pub enum PayeeAccount {
    /// Upper case, no spaces.
    Iban(String),
    /// 6 digits and 8 digits.
    SortCode {
        sort_code: String,
        account_number: String,
    },
}

// Account numbers are personal data: Debug shows the last four characters.
impl std::fmt::Debug for PayeeAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            PayeeAccount::Iban(iban) => iban,
            PayeeAccount::SortCode { account_number, .. } => account_number,
        };
        let tail = &text[text.len().saturating_sub(4)..];
        write!(f, "PayeeAccount(…{tail})")
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Payee {
    pub account: PayeeAccount,
    pub name: String,
}

impl std::fmt::Debug for Payee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payee")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Payee {
    pub fn check(&self) -> bool {
        let digits = |text: &str, len: usize| {
            text.len() == len && text.bytes().all(|byte| byte.is_ascii_digit())
        };
        let account = match &self.account {
            PayeeAccount::Iban(iban) => {
                (5..=PAYEE_ACCOUNT_LEN_MAX).contains(&iban.len())
                    && iban
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            PayeeAccount::SortCode {
                sort_code,
                account_number,
            } => digits(sort_code, 6) && digits(account_number, 8),
        };
        let name = !self.name.trim().is_empty()
            && self.name.len() <= PAYEE_NAME_LEN_MAX
            && !self.name.chars().any(char::is_control);
        account && name
    }
}

/// Where a withdrawal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawalState {
    /// The amount is reserved; the checks and the routing run.
    Requested,
    /// A case is open; the amount stays reserved until the case is decided.
    Held,
    /// Approved: the latest attempt's payout is to be sent, or was and awaits its outcome.
    Sending,
    /// The bank paid it: final.
    Paid,
    /// Every attempt failed definitively: the player got the amount back. Final.
    Refunded,
    /// Refused before any payout: the reservation was voided. Final.
    Rejected,
}

impl WithdrawalState {
    pub fn name(self) -> &'static str {
        match self {
            WithdrawalState::Requested => "requested",
            WithdrawalState::Held => "held",
            WithdrawalState::Sending => "sending",
            WithdrawalState::Paid => "paid",
            WithdrawalState::Refunded => "refunded",
            WithdrawalState::Rejected => "rejected",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            WithdrawalState::Paid | WithdrawalState::Refunded | WithdrawalState::Rejected
        )
    }
}

/// A deposit or a withdrawal changed: what the event feed publishes for it (its webhooks and
/// audit readers need no other read). Only the feed carries it; the records are the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentEvent {
    pub timestamp: u64,
    pub change: PaymentChange,
    pub player_id: PlayerId,
    pub ledger: LedgerCode,
    pub amount: u64,
    /// The deposit's connector, or the withdrawal's current (last) attempt's ("" before one).
    pub connector: String,
    /// Why it ended as it did: a refusal's code, the bank's reason, the last attempt's failure
    /// or the last check's finding ("" if none).
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentChange {
    Deposit {
        deposit_id: PaymentId,
        state: DepositState,
    },
    Withdrawal {
        withdrawal_id: PaymentId,
        state: WithdrawalState,
        /// Payout attempts made so far (a fail-over makes one more).
        attempts: u8,
    },
}

impl PaymentEvent {
    pub fn of_deposit(record: &DepositRecord, timestamp: u64) -> PaymentEvent {
        let reason = match record.state {
            DepositState::Refused(refusal) => refusal.code().to_string(),
            _ => record.reason.clone(),
        };
        PaymentEvent {
            timestamp,
            change: PaymentChange::Deposit {
                deposit_id: record.deposit_id,
                state: record.state,
            },
            player_id: record.player_id,
            ledger: record.ledger,
            amount: record.amount,
            connector: record.connector.clone(),
            reason,
        }
    }

    pub fn of_withdrawal(record: &WithdrawalRecord, timestamp: u64) -> PaymentEvent {
        let last_attempt = record.attempts.last();
        let reason = match last_attempt {
            Some(attempt) if !attempt.failure.is_empty() => attempt.failure.clone(),
            _ => record.reasons.last().cloned().unwrap_or_default(),
        };
        PaymentEvent {
            timestamp,
            change: PaymentChange::Withdrawal {
                withdrawal_id: record.withdrawal_id,
                state: record.state,
                attempts: record.attempts.len() as u8,
            },
            player_id: record.player_id,
            ledger: record.ledger,
            amount: record.amount,
            connector: last_attempt
                .map(|a| a.connector.clone())
                .unwrap_or_default(),
            reason,
        }
    }

    /// `deposit_updated` or `withdrawal_updated`.
    pub fn event_type(&self) -> &'static str {
        match self.change {
            PaymentChange::Deposit { .. } => "deposit_updated",
            PaymentChange::Withdrawal { .. } => "withdrawal_updated",
        }
    }

    /// The state's name (`DepositState::name`, `WithdrawalState::name`).
    pub fn state_name(&self) -> &'static str {
        match self.change {
            PaymentChange::Deposit { state, .. } => state.name(),
            PaymentChange::Withdrawal { state, .. } => state.name(),
        }
    }
}

/// One payout through one connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutAttempt {
    pub connector: String,
    /// The bank's payment id, once it said (empty before).
    pub payment_id: String,
    /// Why it failed definitively (empty while it has not).
    pub failure: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalRecord {
    pub withdrawal_id: PaymentId,
    pub player_id: PlayerId,
    pub ledger: LedgerCode,
    pub amount: u64,
    pub payee: Payee,
    pub state: WithdrawalState,
    /// The pending transfer that reserves the amount.
    pub reservation_id: u128,
    pub attempts: Vec<PayoutAttempt>,
    /// Every check's finding and every routing choice, in order.
    pub reasons: Vec<String>,
    /// The case a hold opened (0: none).
    pub case_id: u128,
    pub requested_at_ns: u64,
    pub updated_at_ns: u64,
    /// The transfer that paid the amount from in-flight into the clearing account (0: not paid,
    /// or paid before checkpoint version 12 kept it).
    pub paid_transfer_id: TransferId,
}

impl WithdrawalRecord {
    /// The attempt in flight (the last one), while `Sending`.
    pub fn current_attempt(&self) -> Option<(u8, &PayoutAttempt)> {
        let last = self.attempts.len().checked_sub(1)?;
        (self.state == WithdrawalState::Sending).then(|| (last as u8, &self.attempts[last]))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WithdrawalDecision {
    /// Pay through this connector: the reservation is posted.
    Approve { connector: String },
    /// Open a case (this id, this score) and keep the reservation until it is decided.
    Hold { case_id: u128, score: u8 },
    /// Void the reservation.
    Reject,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentCommand {
    /// A player's deposit through `connector`: checked against the player's status, KYC and
    /// deposit limits now (and again when the money arrives).
    OpenDeposit {
        deposit_id: PaymentId,
        player_id: PlayerId,
        ledger: LedgerCode,
        amount: u64,
        connector: String,
    },
    /// The bank holds the deposit's consent (or payment) awaiting authorisation.
    DepositStarted {
        deposit_id: PaymentId,
        consent_id: String,
        authorisation_url: String,
    },
    /// The bank settled the deposit: credit the wallet from the bank's clearing account.
    SettleDeposit { deposit_id: PaymentId },
    /// The bank rejected the deposit, or its authorisation expired.
    FailDeposit {
        deposit_id: PaymentId,
        expired: bool,
        reason: String,
    },
    /// Reserve the amount for a payout to `payee`.
    RequestWithdrawal {
        withdrawal_id: PaymentId,
        player_id: PlayerId,
        ledger: LedgerCode,
        amount: u64,
        payee: Payee,
    },
    DecideWithdrawal {
        withdrawal_id: PaymentId,
        decision: WithdrawalDecision,
        reasons: Vec<String>,
    },
    /// The bank took attempt `attempt`'s payout under this payment id.
    PayoutAccepted {
        withdrawal_id: PaymentId,
        attempt: u8,
        payment_id: String,
    },
    /// The bank paid attempt `attempt`.
    SettlePayout {
        withdrawal_id: PaymentId,
        attempt: u8,
    },
    /// Attempt `attempt` failed definitively: try `next_connector`, or refund the player.
    FailPayout {
        withdrawal_id: PaymentId,
        attempt: u8,
        reason: String,
        next_connector: Option<String>,
        /// The Raft term of the leadership that decided it, when only that leadership may:
        /// the command then applies only in a log entry of that term, else it changes nothing
        /// and answers `leader_changed`. The driver sets it on a fail-over, whose safety rests
        /// on knowing that no other leader sent the attempt (a deposed leader's fail-over,
        /// forwarded to or committed under a newer leader, could pay the player twice).
        leader_term: Option<u64>,
    },
    /// A refused deposit goes back to `payee`, the account its bank says it came from (at
    /// the deposit's own connector: the money sits at that bank).
    ReturnDeposit { deposit_id: PaymentId, payee: Payee },
    /// The bank took the return payout under `payment_id`.
    ReturnAccepted {
        deposit_id: PaymentId,
        payment_id: String,
    },
    /// The bank paid the return: the money leaves the returns account.
    SettleReturn { deposit_id: PaymentId },
    /// The return cannot be made: the money stays in the returns account.
    FailReturn {
        deposit_id: PaymentId,
        reason: String,
    },
}

pub fn connector_name_ok(name: &str) -> bool {
    (1..=CONNECTOR_NAME_LEN_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn reason_ok(reason: &str) -> bool {
    reason.len() <= REASON_LEN_MAX && !reason.chars().any(char::is_control)
}

fn text_ok(text: &str, len_max: usize) -> bool {
    text.len() <= len_max && !text.chars().any(char::is_control)
}

impl PaymentCommand {
    /// The payment the command is about.
    pub fn key(&self) -> PaymentKey {
        use PaymentCommand as C;
        match self {
            C::OpenDeposit { deposit_id, .. }
            | C::DepositStarted { deposit_id, .. }
            | C::SettleDeposit { deposit_id }
            | C::FailDeposit { deposit_id, .. }
            | C::ReturnDeposit { deposit_id, .. }
            | C::ReturnAccepted { deposit_id, .. }
            | C::SettleReturn { deposit_id }
            | C::FailReturn { deposit_id, .. } => PaymentKey::Deposit(*deposit_id),
            C::RequestWithdrawal { withdrawal_id, .. }
            | C::DecideWithdrawal { withdrawal_id, .. }
            | C::PayoutAccepted { withdrawal_id, .. }
            | C::SettlePayout { withdrawal_id, .. }
            | C::FailPayout { withdrawal_id, .. } => PaymentKey::Withdrawal(*withdrawal_id),
        }
    }

    /// Whether the command is well formed (the node and the log decoder check it).
    pub fn check(&self) -> bool {
        match self {
            PaymentCommand::OpenDeposit {
                deposit_id,
                amount,
                connector,
                ..
            } => *deposit_id != 0 && *amount > 0 && connector_name_ok(connector),
            PaymentCommand::DepositStarted {
                consent_id,
                authorisation_url,
                ..
            } => {
                !consent_id.is_empty()
                    && text_ok(consent_id, BANK_REF_LEN_MAX)
                    && text_ok(authorisation_url, AUTHORISATION_URL_LEN_MAX)
            }
            PaymentCommand::SettleDeposit { .. }
            | PaymentCommand::SettlePayout { .. }
            | PaymentCommand::SettleReturn { .. } => true,
            PaymentCommand::ReturnDeposit { payee, .. } => payee.check(),
            PaymentCommand::ReturnAccepted { payment_id, .. } => {
                !payment_id.is_empty() && text_ok(payment_id, BANK_REF_LEN_MAX)
            }
            PaymentCommand::FailReturn { reason, .. } => reason_ok(reason),
            PaymentCommand::FailDeposit { reason, .. } => reason_ok(reason),
            PaymentCommand::RequestWithdrawal {
                withdrawal_id,
                amount,
                payee,
                ..
            } => *withdrawal_id != 0 && *amount > 0 && payee.check(),
            PaymentCommand::DecideWithdrawal {
                decision, reasons, ..
            } => {
                let decision_ok = match decision {
                    WithdrawalDecision::Approve { connector } => connector_name_ok(connector),
                    WithdrawalDecision::Hold { case_id, score } => *case_id != 0 && *score <= 100,
                    WithdrawalDecision::Reject => true,
                };
                decision_ok && reasons.len() <= REASONS_MAX && reasons.iter().all(|r| reason_ok(r))
            }
            PaymentCommand::PayoutAccepted { payment_id, .. } => {
                !payment_id.is_empty() && text_ok(payment_id, BANK_REF_LEN_MAX)
            }
            PaymentCommand::FailPayout {
                reason,
                next_connector,
                ..
            } => reason_ok(reason) && next_connector.as_deref().is_none_or(connector_name_ok),
        }
    }

    /// The deposit or withdrawal the command is about.
    pub fn payment_id(&self) -> PaymentId {
        match self {
            PaymentCommand::OpenDeposit { deposit_id, .. }
            | PaymentCommand::DepositStarted { deposit_id, .. }
            | PaymentCommand::SettleDeposit { deposit_id }
            | PaymentCommand::FailDeposit { deposit_id, .. }
            | PaymentCommand::ReturnDeposit { deposit_id, .. }
            | PaymentCommand::ReturnAccepted { deposit_id, .. }
            | PaymentCommand::SettleReturn { deposit_id }
            | PaymentCommand::FailReturn { deposit_id, .. } => *deposit_id,
            PaymentCommand::RequestWithdrawal { withdrawal_id, .. }
            | PaymentCommand::DecideWithdrawal { withdrawal_id, .. }
            | PaymentCommand::PayoutAccepted { withdrawal_id, .. }
            | PaymentCommand::SettlePayout { withdrawal_id, .. }
            | PaymentCommand::FailPayout { withdrawal_id, .. } => *withdrawal_id,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Applied, or a repeat of a step already applied (a retry changes nothing).
    Ok,
    Refused(Refusal),
    PlayerNotFound,
    NoWalletInCurrency,
    NotFound,
    /// The id is taken by another payment (other player, amount or currency).
    Conflict,
    /// The step does not follow from where the payment stands (a settle of a rejected
    /// deposit, an attempt that is not the current one).
    WrongState,
    /// The ledger refused the reservation (out of funds, say).
    TransferRefused(CreateTransferResult),
    TooManyConnectors,
    TooManyAttempts,
    /// A command bound to a leader's term reached the log in another term (see
    /// `FailPayout::leader_term`): nothing changed.
    LeaderChanged,
}

impl PaymentOutcome {
    pub fn code(self) -> &'static str {
        match self {
            PaymentOutcome::Ok => "ok",
            PaymentOutcome::Refused(refusal) => refusal.code(),
            PaymentOutcome::PlayerNotFound => "player_not_found",
            PaymentOutcome::NoWalletInCurrency => "no_wallet_in_currency",
            PaymentOutcome::NotFound => "payment_not_found",
            PaymentOutcome::Conflict => "payment_conflict",
            PaymentOutcome::WrongState => "payment_wrong_state",
            PaymentOutcome::TransferRefused(result) => result.code(),
            PaymentOutcome::TooManyConnectors => "too_many_connectors",
            PaymentOutcome::TooManyAttempts => "too_many_attempts",
            PaymentOutcome::LeaderChanged => "leader_changed",
        }
    }
}
