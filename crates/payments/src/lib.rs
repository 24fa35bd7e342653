//! Croupier's payments edge: connectors that move money through banks, and a sandbox bank.
//!
//! It owns the connector contract (`connector`: pay-in, pay-out, status, payee confirmation,
//! with every failure mapped to retryable, declined or unknown outcome), the two protocols
//! spoken to banks (`obie`: UK Open Banking Read/Write v3.1 payment initiation; `berlin`:
//! Berlin Group NextGenPSD2), their request signing (`jws`), money as the banks write it
//! (`money`), ISO 20022 camt.053 statements (`camt053`), and the sandbox bank
//! (`sandbox`) that speaks both protocols as its own process for tests and demos.
//!
//! It must not know: the ledger state machine, consensus, the node's HTTP API or its players.
//! What a payment means to a wallet (reservations, settlement, refunds, limits) is decided by
//! the ledger (`croupier-core`) and driven by the node (`croupier-server`); this crate only
//! says what a bank answered.

pub mod berlin;
pub mod camt053;
pub mod connector;
pub mod jws;
pub mod money;
pub mod obie;
pub mod routing;
pub mod sandbox;

pub use connector::{
    AccountRef, Connector, ConnectorError, Party, PayInHandle, PayInRequest, PayInStarted,
    PayOutRequest, PayeeMatch, PaymentStatus,
};
pub mod bank;
mod bank_keys;
pub mod notify;
pub mod transport;
mod uuid_v4;
