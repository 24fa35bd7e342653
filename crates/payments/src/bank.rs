//! One bank as the node sees it: its configuration, and `BankConnector`, which speaks that
//! bank's protocol (OBIE or Berlin Group) behind the one `Connector` contract, plus what the
//! node needs around payments: key registration and event subscription (`prepare`), the
//! operator's account there (`operator_account`) and notification checks
//! (`verify_notification`).

use std::sync::Arc;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::berlin::BerlinConnector;
use crate::connector::{
    Connector, ConnectorError, Party, PayInHandle, PayInProgress, PayInRequest, PayInStarted,
    PayOutAccepted, PayOutRequest, PayeeMatch, PaymentStatus,
};
use crate::jws::SigningKey;
use crate::notify::{self, NotificationError, NotifiedPayment};
use crate::obie::ObieConnector;
pub use crate::transport::TlsClient;
use crate::transport::{Transport, TransportConfig};

/// Which protocol a bank speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// UK Open Banking Read/Write v3.1 payment initiation.
    #[serde(rename = "obie")]
    Obie,
    /// Berlin Group NextGenPSD2 1.3.x.
    #[serde(rename = "berlin-group")]
    BerlinGroup,
}

/// How to reach one bank and who we are there.
#[derive(Clone)]
pub struct ConnectorConfig {
    /// The node's name for the bank ("bank-a"): logs, routing, `x-fapi-financial-id`.
    pub id: String,
    pub protocol: Protocol,
    /// Where the bank's API is ("http://127.0.0.1:9101"), without a trailing path.
    pub base_url: String,
    /// Our OAuth2 client id at the bank (also the `iss` of our signatures).
    pub client_id: String,
    /// Our OAuth2 client secret (never in Debug output).
    pub client_secret: String,
    /// The node's PS256 key: signs OBIE requests; its public half is registered at the bank.
    pub signing_key: Arc<SigningKey>,
    /// The operator's account at this bank per currency (ISO 4217); a currency not here is
    /// discovered through the bank's account information (OBIE
    /// `GET /open-banking/v3.1/aisp/accounts`, Berlin Group `GET /v1/accounts`) when the bank
    /// lists exactly one account of ours in it, and kept.
    pub operator_accounts: std::collections::BTreeMap<String, Party>,
    /// Each request's limit, connect included. A timeout before the connection opens is
    /// retryable; one after the request was sent is an unknown outcome.
    pub timeout_ms: u64,
    /// The bank's CA and our client certificate, for an `https` base URL.
    pub tls: TlsClient,
}

// The client secret and the key never reach Debug output; the account shows only its tail.
impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("signing_key", &self.signing_key)
            .field("operator_accounts", &self.operator_accounts)
            .field("timeout_ms", &self.timeout_ms)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A connector to one bank, whichever protocol it speaks. Cheap to clone (clones share one
/// connection pool, token, key and account cache); safe to call from many tasks at once.
#[derive(Clone, Debug)]
pub enum BankConnector {
    Obie(ObieConnector),
    Berlin(BerlinConnector),
}

impl BankConnector {
    /// A connector for `config`; fails (`Declined`, code `invalid_config`) only on a
    /// configuration that cannot work (a base URL that is not one, a zero timeout). Sends
    /// nothing: call `prepare` before the first payment.
    pub fn new(config: ConnectorConfig) -> Result<BankConnector, ConnectorError> {
        let protocol = config.protocol;
        let transport = Arc::new(Transport::new(TransportConfig {
            id: config.id,
            base_url: config.base_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            signing_key: config.signing_key,
            operator_accounts: config.operator_accounts,
            timeout_ms: config.timeout_ms,
            tls: config.tls,
        })?);
        Ok(match protocol {
            Protocol::Obie => BankConnector::Obie(ObieConnector::new(transport)),
            Protocol::BerlinGroup => BankConnector::Berlin(BerlinConnector::new(transport)),
        })
    }

    fn transport(&self) -> &Transport {
        match self {
            BankConnector::Obie(connector) => connector.transport(),
            BankConnector::Berlin(connector) => connector.transport(),
        }
    }

    /// The node's name for this bank.
    pub fn id(&self) -> &str {
        self.transport().id()
    }

    /// The protocol this bank speaks.
    pub fn protocol(&self) -> Protocol {
        match self {
            BankConnector::Obie(_) => Protocol::Obie,
            BankConnector::Berlin(_) => Protocol::BerlinGroup,
        }
    }

    /// Registers the node's public key (POST /register) and, when `callback_url` is given,
    /// the event subscription (OBIE POST /event-subscriptions; Berlin Group has none: each
    /// payment names its callback). Idempotent; call at start and whenever the bank says it
    /// does not know the key (the connector also does so itself after a 401 or a refused
    /// signature).
    pub async fn prepare(&self, callback_url: Option<&str>) -> Result<(), ConnectorError> {
        self.transport().register().await?;
        match (self, callback_url) {
            (BankConnector::Obie(connector), Some(url)) => connector.subscribe(url).await,
            _ => Ok(()),
        }
    }

    /// The operator's account at this bank in `currency` (ISO 4217): the configured one, else
    /// the one of ours in that currency the bank's account list shows (kept after the first
    /// look). None there is `Declined` (`no_operator_account`), several too
    /// (`ambiguous_operator_account`): the node never guesses which account money goes through.
    pub async fn operator_account(&self, currency: &str) -> Result<Party, ConnectorError> {
        match self {
            BankConnector::Obie(connector) => {
                let transport = connector.transport();
                transport
                    .operator_account(currency, || connector.list_accounts())
                    .await
            }
            BankConnector::Berlin(connector) => {
                let transport = connector.transport();
                transport
                    .operator_account(currency, || connector.list_accounts())
                    .await
            }
        }
    }

    /// Verifies an inbound notification (headers + exact body bytes) against the bank's
    /// JWKS (GET /jwks.json, cached; refetched once on an unknown kid) and answers the id it
    /// is about (OBIE: the rid — a DomesticPaymentId or ConsentId; Berlin Group: paymentId).
    /// Forged, malformed or unsigned ones are an error (the node answers 4xx, or 503 when
    /// `NotificationError::is_client_error` is false: the bank's keys could not be had).
    pub async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<NotifiedPayment, NotificationError> {
        match self {
            BankConnector::Obie(_) => notify::verify_obie(self.transport(), body).await,
            BankConnector::Berlin(_) => {
                notify::verify_berlin(self.transport(), headers, body).await
            }
        }
    }
}

impl Connector for BankConnector {
    async fn pay_in_start(&self, request: &PayInRequest) -> Result<PayInStarted, ConnectorError> {
        match self {
            BankConnector::Obie(c) => c.pay_in_start(request).await,
            BankConnector::Berlin(c) => c.pay_in_start(request).await,
        }
    }

    async fn pay_in_progress(&self, handle: &PayInHandle) -> Result<PayInProgress, ConnectorError> {
        match self {
            BankConnector::Obie(c) => c.pay_in_progress(handle).await,
            BankConnector::Berlin(c) => c.pay_in_progress(handle).await,
        }
    }

    async fn pay_out(&self, request: &PayOutRequest) -> Result<PayOutAccepted, ConnectorError> {
        match self {
            BankConnector::Obie(c) => c.pay_out(request).await,
            BankConnector::Berlin(c) => c.pay_out(request).await,
        }
    }

    async fn pay_out_status(&self, payment_id: &str) -> Result<PaymentStatus, ConnectorError> {
        match self {
            BankConnector::Obie(c) => c.pay_out_status(payment_id).await,
            BankConnector::Berlin(c) => c.pay_out_status(payment_id).await,
        }
    }

    async fn confirm_payee(&self, party: &Party) -> Result<PayeeMatch, ConnectorError> {
        match self {
            BankConnector::Obie(c) => c.confirm_payee(party).await,
            BankConnector::Berlin(c) => c.confirm_payee(party).await,
        }
    }

    async fn pay_in_payer(&self, handle: &PayInHandle) -> Result<Option<Party>, ConnectorError> {
        match self {
            BankConnector::Obie(c) => c.pay_in_payer(handle).await,
            BankConnector::Berlin(c) => c.pay_in_payer(handle).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str, timeout_ms: u64) -> ConnectorConfig {
        ConnectorConfig {
            id: "bank-a".into(),
            protocol: Protocol::Obie,
            base_url: base_url.into(),
            client_id: "node".into(),
            client_secret: "s3cret-value".into(),
            signing_key: Arc::new(SigningKey::generate().unwrap()),
            operator_accounts: Default::default(),
            timeout_ms,
            tls: TlsClient::default(),
        }
    }

    #[test]
    fn protocols_are_named_as_in_the_configuration() {
        assert_eq!(serde_json::to_string(&Protocol::Obie).unwrap(), "\"obie\"");
        let berlin: Protocol = serde_json::from_str("\"berlin-group\"").unwrap();
        assert_eq!(berlin, Protocol::BerlinGroup);
    }

    #[test]
    fn debug_output_keeps_the_secret_out() {
        let config = config("http://127.0.0.1:9101/", 1_000);
        assert!(!format!("{config:?}").contains("s3cret"));
        let connector = BankConnector::new(config).unwrap();
        assert_eq!(connector.id(), "bank-a");
        assert_eq!(connector.protocol(), Protocol::Obie);
        assert!(!format!("{connector:?}").contains("s3cret"));
    }

    #[test]
    fn an_unusable_configuration_is_refused() {
        for (url, timeout_ms) in [("not a url", 1_000), ("http://127.0.0.1:1", 0)] {
            let refused = BankConnector::new(config(url, timeout_ms)).unwrap_err();
            assert!(
                matches!(refused, ConnectorError::Declined { code, .. } if code == "invalid_config")
            );
        }
    }
}
