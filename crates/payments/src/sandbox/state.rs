//! The sandbox bank's state: what the journal records and replays. Every change is an `Event`
//! carrying the whole new record (an upsert), so replaying the journal is applying its events
//! in order, and a handler changes state only by committing events (`Bank::commit`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::accounts::Scheme;
use crate::jws::Jwks;

/// An account the bank holds. No Debug: it carries an account number.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    /// The normalised identification (IBAN, or 14 digits).
    pub key: String,
    pub scheme: Scheme,
    /// The id the account-information routes name it by.
    pub resource_id: String,
    pub name: String,
    pub currency: String,
    #[serde(with = "i128_text")]
    pub balance_minor: i128,
    /// The sandbox customer's: pay-ins from it never fail for funds.
    pub overdraft: bool,
    /// Opened by the client (`/sandbox/accounts`, or the operator's): payments from it are
    /// pre-authorised.
    pub own: bool,
}

/// An i128 as a JSON string: serde's buffering of a tagged enum (the journal's events) cannot
/// carry an i128 number.
mod i128_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &i128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<i128, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a payment moves, checked and normalised from either protocol's initiation.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Order {
    pub amount_minor: u64,
    pub currency: String,
    /// None until the customer picks one on the authorisation page (a pay-in).
    pub debtor: Option<String>,
    pub creditor: String,
    pub creditor_name: String,
    pub end_to_end_id: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ConsentStatus {
    AwaitingAuthorisation,
    Authorised,
    Consumed,
    Rejected,
}

impl ConsentStatus {
    pub(crate) fn obie(self) -> &'static str {
        match self {
            ConsentStatus::AwaitingAuthorisation => "AwaitingAuthorisation",
            ConsentStatus::Authorised => "Authorised",
            ConsentStatus::Consumed => "Consumed",
            ConsentStatus::Rejected => "Rejected",
        }
    }
}

/// An OBIE domestic payment consent.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Consent {
    pub id: String,
    pub status: ConsentStatus,
    /// Rejected because nobody authorised it within `--consent-ttl-s`.
    pub expired: bool,
    pub order: Order,
    /// The Initiation as sent: echoed back, and what the payment's must equal.
    pub initiation: Value,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub expires_ms: u64,
    pub payment_id: Option<String>,
    /// `Data.ReadRefundAccount` was "Yes": its payment reports the debtor's account
    /// (`Data.Refund.Account`). Absent from journals written before it existed: no.
    #[serde(default)]
    pub read_refund_account: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PayStatus {
    /// Awaiting the customer's authorisation (Berlin Group pay-ins only).
    Received,
    Authorised,
    InProcess,
    Settled,
    Rejected,
    Cancelled,
}

impl PayStatus {
    pub(crate) fn obie(self) -> &'static str {
        match self {
            PayStatus::Received | PayStatus::Authorised => "Pending",
            PayStatus::InProcess => "AcceptedSettlementInProcess",
            PayStatus::Settled => "AcceptedSettlementCompleted",
            PayStatus::Rejected | PayStatus::Cancelled => "Rejected",
        }
    }

    pub(crate) fn berlin(self) -> &'static str {
        match self {
            PayStatus::Received => "RCVD",
            PayStatus::Authorised => "ACTC",
            PayStatus::InProcess => "ACSP",
            PayStatus::Settled => "ACSC",
            PayStatus::Rejected => "RJCT",
            PayStatus::Cancelled => "CANC",
        }
    }

    /// Still to settle: its settlement timer is armed (again, after a restart).
    pub(crate) fn settling(self) -> bool {
        matches!(self, PayStatus::Authorised | PayStatus::InProcess)
    }
}

/// A payment of either protocol.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Payment {
    pub id: String,
    /// OBIE: the consent it was made from.
    pub consent_id: Option<String>,
    /// Berlin Group: the payment product of its path.
    pub product: Option<String>,
    pub status: PayStatus,
    /// An ISO 20022 reason code when rejected (AM04, AC01).
    pub reason: Option<String>,
    pub order: Order,
    pub initiation: Value,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Berlin Group pay-ins: cancelled (CANC) if not authorised by then.
    pub expires_ms: u64,
    pub settle_at_ms: Option<u64>,
    /// Berlin Group: the initiation's TPP-Notification-URI.
    pub notification_uri: Option<String>,
}

impl Account {
    /// OBIE's `{"SchemeName","Identification","Name"}` of the account.
    pub(crate) fn obie(&self) -> Value {
        let scheme = match self.scheme {
            Scheme::Iban => "UK.OBIE.IBAN",
            Scheme::SortCode => "UK.OBIE.SortCodeAccountNumber",
        };
        serde_json::json!({"SchemeName": scheme, "Identification": self.key, "Name": self.name})
    }

    /// Berlin Group's account reference: `{"iban"}`, or the sandbox's `{"bban"}` (14 digits).
    pub(crate) fn berlin(&self) -> Value {
        match self.scheme {
            Scheme::Iban => serde_json::json!({ "iban": self.key }),
            Scheme::SortCode => serde_json::json!({ "bban": self.key }),
        }
    }
}

/// A first response kept for its idempotency key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub body_sha256: String,
    pub status: u16,
    pub body: String,
}

/// A booked movement on an account.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Booked {
    pub payment_id: String,
    pub end_to_end_id: String,
    pub amount_minor: u64,
    pub credit: bool,
    pub booking_date: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Event {
    Account(Account),
    Jwks(Jwks),
    Subscription { callback_url: String },
    Consent(Consent),
    Payment(Payment),
    Idempotency { key: String, record: Stored },
    Entry { account: String, entry: Booked },
}

#[derive(Default)]
pub(crate) struct State {
    pub accounts: HashMap<String, Account>,
    pub jwks: Jwks,
    /// OBIE: where event notifications go (one subscription per client; the last one wins).
    pub callback_url: Option<String>,
    pub consents: HashMap<String, Consent>,
    pub payments: HashMap<String, Payment>,
    pub idempotency: HashMap<String, Stored>,
    pub entries: HashMap<String, Vec<Booked>>,
}

impl State {
    pub(crate) fn apply(&mut self, event: Event) {
        match event {
            Event::Account(account) => {
                self.accounts.insert(account.key.clone(), account);
            }
            Event::Jwks(jwks) => self.jwks = jwks,
            Event::Subscription { callback_url } => self.callback_url = Some(callback_url),
            Event::Consent(consent) => {
                self.consents.insert(consent.id.clone(), consent);
            }
            Event::Payment(payment) => {
                self.payments.insert(payment.id.clone(), payment);
            }
            Event::Idempotency { key, record } => {
                self.idempotency.insert(key, record);
            }
            Event::Entry { account, entry } => self.entries.entry(account).or_default().push(entry),
        }
    }

    /// Resources made from input: what `--payments-max` bounds.
    pub(crate) fn resources(&self) -> usize {
        self.consents.len() + self.payments.len()
    }
}

/// What an idempotency key says about a request.
pub(crate) enum Replay {
    /// Not seen: do the work.
    Fresh,
    /// Seen with the same body: answer what was answered then.
    Same(Stored),
    /// Seen with another body.
    Mismatch,
}

impl State {
    pub(crate) fn replay(&self, key: &str, body_sha256: &str) -> Replay {
        match self.idempotency.get(key) {
            None => Replay::Fresh,
            Some(stored) if stored.body_sha256 == body_sha256 => Replay::Same(stored.clone()),
            Some(_) => Replay::Mismatch,
        }
    }
}
