//! The contract every bank connector keeps. A connector is stateless between calls: what it
//! must remember (a consent id, a payment id) it returns, and the caller records it.
//!
//! Every failure is one of three kinds, because that is all the node needs to decide what to
//! do next: `Retryable` (the bank did nothing: try again, or fail over to another connector),
//! `Declined` (the bank definitively refused: never retry this payment there), `Unknown` (the
//! request may have taken effect: resolve it by status query or by resending with the same
//! idempotency key on the same connector, never by trying elsewhere).

use std::future::Future;

use serde::{Deserialize, Serialize};

/// A bank account as the rails name it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccountRef {
    Iban {
        iban: String,
    },
    SortCode {
        sort_code: String,
        account_number: String,
    },
}

// Account numbers are personal data: Debug shows only the last four characters.
impl std::fmt::Debug for AccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = |text: &str| {
            text.chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        };
        match self {
            AccountRef::Iban { iban } => write!(f, "Iban(…{})", tail(iban)),
            AccountRef::SortCode { account_number, .. } => {
                write!(f, "SortCode(…{})", tail(account_number))
            }
        }
    }
}

/// An account and its holder's name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub account: AccountRef,
    pub name: String,
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// A player paying the operator (a deposit). The player authorises it at their bank.
#[derive(Clone, Debug)]
pub struct PayInRequest {
    /// Derived from the committed deposit: the same deposit always sends the same key.
    pub idempotency_key: String,
    /// The payment's reference on both statements (the deposit id): reconciliation matches on it.
    pub reference: String,
    pub amount_minor: u64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// The operator's account at this bank.
    pub creditor: Party,
    /// Where the bank sends the player's browser after authorising, if anywhere.
    pub return_url: Option<String>,
    /// Where the bank posts its event notifications for this payment, if anywhere.
    pub notification_url: Option<String>,
}

/// What the node records once a pay-in is started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayInStarted {
    /// The bank's id for the consent (OBIE) or payment (Berlin Group).
    pub consent_id: String,
    /// The page where the player authorises the payment.
    pub authorisation_url: String,
}

/// What the node knows of a pay-in in flight: enough for any node to carry it on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayInHandle {
    pub consent_id: String,
    /// The bank's payment id, once the payment was submitted (OBIE: after authorisation).
    pub payment_id: Option<String>,
    /// The key the payment submission is sent with (derived from the committed deposit).
    pub idempotency_key: String,
}

/// The operator paying a player (a withdrawal). Pre-authorised: no one waits at a bank page.
#[derive(Clone, Debug)]
pub struct PayOutRequest {
    /// Derived from the committed payout attempt: a resend after a crash sends the same key, and
    /// the bank answers the first payment instead of making a second.
    pub idempotency_key: String,
    /// The payment's reference on both statements (the withdrawal id).
    pub reference: String,
    pub amount_minor: u64,
    pub currency: String,
    /// The operator's account at this bank.
    pub debtor: Party,
    /// The player's account.
    pub creditor: Party,
    pub notification_url: Option<String>,
}

/// A payment's status in the bank's own words, mapped to what it means for the money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// The player has not authorised yet (a pay-in only).
    AwaitingAuthorisation,
    /// Accepted, money not moved yet.
    Pending,
    /// Money moved: final.
    Settled,
    /// Definitively refused or cancelled: final, no money moved. The bank's reason code.
    Rejected { reason: String },
    /// The authorisation window passed with no decision: final, no money moved.
    Expired,
}

impl PaymentStatus {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Settled | PaymentStatus::Rejected { .. } | PaymentStatus::Expired
        )
    }
}

/// A pay-in's progress: its status, and the payment id once one exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayInProgress {
    pub status: PaymentStatus,
    pub payment_id: Option<String>,
}

/// A payout the bank took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayOutAccepted {
    pub payment_id: String,
    pub status: PaymentStatus,
}

/// Confirmation of Payee: does the named holder own the account?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayeeMatch {
    Matched,
    /// Close (a typo, initials): the bank's name for the holder.
    CloseMatch {
        actual_name: String,
    },
    NotMatched,
    AccountNotFound,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConnectorError {
    /// Nothing happened at the bank (refused connection, 429, a 5xx it documents as not
    /// processed): retry, or fail over.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The bank definitively refused (bad account, insufficient funds, rejected).
    #[error("declined ({code}): {message}")]
    Declined { code: String, message: String },
    /// The request may or may not have taken effect (a timeout after sending, a 5xx after the
    /// bank accepted the body): resolve by status or by resending with the same key.
    #[error("unknown outcome: {0}")]
    Unknown(String),
}

/// One bank, one protocol. Implementations: `obie::ObieConnector`, `berlin::BerlinConnector`.
pub trait Connector: Send + Sync {
    /// Starts a pay-in: the consent (OBIE) or the payment (Berlin Group) awaiting the player's
    /// authorisation.
    fn pay_in_start(
        &self,
        request: &PayInRequest,
    ) -> impl Future<Output = Result<PayInStarted, ConnectorError>> + Send;

    /// Where a pay-in stands. For OBIE, an authorised consent with no payment yet is submitted
    /// here (with the handle's idempotency key, so a repeat submits nothing new).
    fn pay_in_progress(
        &self,
        handle: &PayInHandle,
    ) -> impl Future<Output = Result<PayInProgress, ConnectorError>> + Send;

    /// Sends a payout. Resending the same request (same key) answers the same payment.
    fn pay_out(
        &self,
        request: &PayOutRequest,
    ) -> impl Future<Output = Result<PayOutAccepted, ConnectorError>> + Send;

    /// A payout's status by the bank's payment id.
    fn pay_out_status(
        &self,
        payment_id: &str,
    ) -> impl Future<Output = Result<PaymentStatus, ConnectorError>> + Send;

    /// Confirmation of Payee for `party`.
    fn confirm_payee(
        &self,
        party: &Party,
    ) -> impl Future<Output = Result<PayeeMatch, ConnectorError>> + Send;

    /// The account a settled pay-in came from, as the bank reports it (`None`: it does not
    /// say). A refused deposit is paid back there: neither open-banking rail has a refund of
    /// its own, so a return is a payout to this account.
    fn pay_in_payer(
        &self,
        handle: &PayInHandle,
    ) -> impl Future<Output = Result<Option<Party>, ConnectorError>> + Send {
        let _ = handle;
        async { Ok(None) }
    }
}
