//! Berlin Group NextGenPSD2 1.3.x connector (see PROTOCOLS.md).
//!
//! One resource per payment: a pay-in is a payment with no debtor that the player authorises
//! at the bank's page (`scaRedirect`); a payout is one whose debtor is the operator's own
//! account, authorised at once. Each initiation carries `X-Request-ID`, a UUID derived from
//! the node's idempotency key, so a resend answers the first payment; and a `Digest` of the
//! exact body bytes.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Url;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::connector::{
    AccountRef, Connector, ConnectorError, Party, PayInHandle, PayInProgress, PayInRequest,
    PayInStarted, PayOutAccepted, PayOutRequest, PayeeMatch, PaymentStatus,
};
use crate::money::to_bank_amount;
use crate::transport::{
    normalise_iban, reported_payer, segment, sort_code_identification, split_sort_code, ApiRequest,
    PayerScheme, Transport,
};
use crate::uuid_v4::uuid_v4_text;

const PAYMENTS: &str = "/v1/payments";
const ACCOUNTS: &str = "/v1/accounts";
/// Products a status query tries in turn: the handle keeps only the payment id, and a bank
/// knows a payment only under the product it was made with.
const PRODUCTS: [&str; 3] = [SEPA, DOMESTIC, "instant-sepa-credit-transfers"];
const SEPA: &str = "sepa-credit-transfers";
/// Sort-code accounts (`bban`, sandbox) go by the domestic product.
const DOMESTIC: &str = "domestic-credit-transfers";
/// The PSU's address, required on initiation; the node initiates on the player's behalf and
/// does not pass their address on.
const PSU_IP_ADDRESS: &str = "127.0.0.1";

/// The Berlin Group connector. Cheap to clone: clones share one HTTP pool, token and key
/// cache.
#[derive(Clone, Debug)]
pub struct BerlinConnector {
    transport: Arc<Transport>,
}

/// An initiation's answer.
#[derive(Debug)]
struct Initiated {
    payment_id: String,
    status: String,
    reason: Option<String>,
    sca_redirect: Option<String>,
}

/// What an initiation is made of.
pub(crate) struct Order<'a> {
    pub key: &'a str,
    pub reference: &'a str,
    pub amount_minor: u64,
    pub currency: &'a str,
    pub debtor: Option<&'a Party>,
    pub creditor: &'a Party,
    pub notification_url: Option<&'a str>,
    pub redirect_url: Option<&'a str>,
}

impl BerlinConnector {
    pub(crate) fn new(transport: Arc<Transport>) -> BerlinConnector {
        BerlinConnector { transport }
    }

    pub(crate) fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// The client's own accounts by currency, from account information.
    pub(crate) async fn list_accounts(&self) -> Result<Vec<(String, Party)>, ConnectorError> {
        let mut request = ApiRequest::get(ACCOUNTS.into());
        request.header("x-request-id", &random_uuid()?)?;
        let answer: Value = self.transport.send(&request).await?.json("account list")?;
        let Some(accounts) = answer["accounts"].as_array() else {
            return Err(ConnectorError::Unknown(
                "the account list has no accounts".into(),
            ));
        };
        Ok(accounts.iter().filter_map(listed_account).collect())
    }

    async fn initiate(&self, order: &Order<'_>) -> Result<Initiated, ConnectorError> {
        let product = product(order.creditor);
        let path = format!("{PAYMENTS}/{product}");
        let mut request = ApiRequest::post_json(path, &initiation_body(order));
        let digest = digest(request.body.as_deref().unwrap_or_default());
        request.header("x-request-id", &request_id(order.key))?;
        request.header("digest", &digest)?;
        request.header("psu-ip-address", PSU_IP_ADDRESS)?;
        if let Some(url) = order.notification_url {
            request.header("tpp-notification-uri", url)?;
        }
        if let Some(url) = order.redirect_url {
            request.header("tpp-redirect-uri", url)?;
        }
        let answer: Value = self.transport.send(&request).await?.json("payment")?;
        let (Some(id), Some(status)) = (
            answer["paymentId"].as_str(),
            answer["transactionStatus"].as_str(),
        ) else {
            return Err(ConnectorError::Unknown(
                "the payment has no paymentId or transactionStatus".into(),
            ));
        };
        let sca_redirect = answer["_links"]["scaRedirect"]["href"].as_str();
        Ok(Initiated {
            payment_id: id.to_string(),
            status: status.to_string(),
            reason: tpp_reason(&answer),
            sca_redirect: sca_redirect.map(str::to_string),
        })
    }

    /// `POST …/authorisations`: the page for a payment initiated without an `scaRedirect`.
    async fn start_authorisation(
        &self,
        product: &str,
        payment_id: &str,
    ) -> Result<String, ConnectorError> {
        let path = format!(
            "{PAYMENTS}/{product}/{}/authorisations",
            segment(payment_id)
        );
        let mut request = ApiRequest::post_json(path, &json!({}));
        request.header("x-request-id", &request_id(&format!("sca:{payment_id}")))?;
        request.header("psu-ip-address", PSU_IP_ADDRESS)?;
        let answer: Value = self.transport.send(&request).await?.json("authorisation")?;
        answer["_links"]["scaRedirect"]["href"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ConnectorError::Unknown("the authorisation has no scaRedirect".into()))
    }

    /// `transactionStatus` and reason of `payment_id`, under whichever product knows it.
    async fn status(&self, payment_id: &str) -> Result<(String, Option<String>), ConnectorError> {
        let body = self.read(payment_id, "/status", "payment status").await?;
        let Some(status) = body["transactionStatus"].as_str() else {
            return Err(ConnectorError::Unknown(
                "the payment status has no transactionStatus".into(),
            ));
        };
        Ok((status.to_string(), tpp_reason(&body)))
    }

    /// `GET …/{product}/{paymentId}{tail}` (`what` names it in errors) under whichever
    /// product knows the payment: the first answer, else the first product's refusal.
    async fn read(
        &self,
        payment_id: &str,
        tail: &str,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let mut first_refusal = None;
        for product in PRODUCTS {
            let path = format!("{PAYMENTS}/{product}/{}{tail}", segment(payment_id));
            let mut request = ApiRequest::get(path);
            request.header("x-request-id", &random_uuid()?)?;
            match self.transport.send(&request).await {
                Ok(answer) => return answer.json(what),
                Err(refusal @ ConnectorError::Declined { .. }) => {
                    first_refusal.get_or_insert(refusal);
                }
                Err(other) => return Err(other),
            }
        }
        Err(first_refusal.unwrap_or_else(|| ConnectorError::Unknown("no product".into())))
    }

    /// The authorisation page as an absolute URL, with the return address for the sandbox's
    /// page (which reads `redirect_uri`, not the `TPP-Redirect-URI` header).
    fn authorisation_url(
        &self,
        href: &str,
        return_url: Option<&str>,
    ) -> Result<String, ConnectorError> {
        let base = Url::parse(&format!("{}/", self.transport.base_url()))
            .map_err(|e| ConnectorError::Unknown(format!("no authorisation URL: {e}")))?;
        let mut url = base
            .join(href)
            .map_err(|e| ConnectorError::Unknown(format!("the scaRedirect is not a URL: {e}")))?;
        let has_redirect = url.query_pairs().any(|(name, _)| name == "redirect_uri");
        if let (Some(return_url), false) = (return_url, has_redirect) {
            url.query_pairs_mut()
                .append_pair("redirect_uri", return_url);
        }
        Ok(url.into())
    }
}

impl Connector for BerlinConnector {
    async fn pay_in_start(&self, request: &PayInRequest) -> Result<PayInStarted, ConnectorError> {
        let order = Order {
            key: &request.idempotency_key,
            reference: &request.reference,
            amount_minor: request.amount_minor,
            currency: &request.currency,
            debtor: None,
            creditor: &request.creditor,
            notification_url: request.notification_url.as_deref(),
            redirect_url: request.return_url.as_deref(),
        };
        let initiated = self.initiate(&order).await?;
        if initiated.status == "RJCT" || initiated.status == "CANC" {
            return Err(ConnectorError::Declined {
                code: initiated.reason.unwrap_or_else(|| initiated.status.clone()),
                message: "the bank rejected the payment".into(),
            });
        }
        let href = match initiated.sca_redirect {
            Some(href) => href,
            None => {
                let product = product(&request.creditor);
                self.start_authorisation(product, &initiated.payment_id)
                    .await?
            }
        };
        Ok(PayInStarted {
            authorisation_url: self.authorisation_url(&href, request.return_url.as_deref())?,
            consent_id: initiated.payment_id,
        })
    }

    async fn pay_in_progress(&self, handle: &PayInHandle) -> Result<PayInProgress, ConnectorError> {
        // The payment exists from the start: its id is the consent id.
        let payment_id = handle.payment_id.as_deref().unwrap_or(&handle.consent_id);
        let (status, reason) = self.status(payment_id).await?;
        let status =
            payment_status(&status, reason, true).ok_or_else(|| unknown_status(&status))?;
        Ok(PayInProgress {
            status,
            payment_id: Some(payment_id.to_string()),
        })
    }

    async fn pay_out(&self, request: &PayOutRequest) -> Result<PayOutAccepted, ConnectorError> {
        let order = Order {
            key: &request.idempotency_key,
            reference: &request.reference,
            amount_minor: request.amount_minor,
            currency: &request.currency,
            debtor: Some(&request.debtor),
            creditor: &request.creditor,
            notification_url: request.notification_url.as_deref(),
            redirect_url: None,
        };
        let initiated = self.initiate(&order).await?;
        let status = payment_status(&initiated.status, initiated.reason, false)
            .ok_or_else(|| unknown_status(&initiated.status))?;
        Ok(PayOutAccepted {
            payment_id: initiated.payment_id,
            status,
        })
    }

    async fn pay_out_status(&self, payment_id: &str) -> Result<PaymentStatus, ConnectorError> {
        let (status, reason) = self.status(payment_id).await?;
        payment_status(&status, reason, false).ok_or_else(|| unknown_status(&status))
    }

    async fn confirm_payee(&self, party: &Party) -> Result<PayeeMatch, ConnectorError> {
        self.transport.confirm_payee(party).await
    }

    /// The payment resource's `debtorAccount` and `debtorName`, which the bank fills in once
    /// the payer authorised (a pay-in is initiated without a debtor).
    async fn pay_in_payer(&self, handle: &PayInHandle) -> Result<Option<Party>, ConnectorError> {
        // The payment exists from the start: its id is the consent id.
        let payment_id = handle.payment_id.as_deref().unwrap_or(&handle.consent_id);
        let payment = self.read(payment_id, "", "payment").await?;
        Ok(payer_of(&payment))
    }
}

/// The payment product for a creditor: SEPA for an IBAN, domestic for a sort code.
fn product(creditor: &Party) -> &'static str {
    match creditor.account {
        AccountRef::Iban { .. } => SEPA,
        AccountRef::SortCode { .. } => DOMESTIC,
    }
}

/// `{"iban"}`, or `{"bban"}` (the 14 digits) for a sort-code account.
pub(crate) fn account(account: &AccountRef) -> Value {
    match account {
        AccountRef::Iban { iban } => json!({ "iban": normalise_iban(iban) }),
        AccountRef::SortCode {
            sort_code,
            account_number,
        } => json!({ "bban": sort_code_identification(sort_code, account_number) }),
    }
}

/// The initiation body. Deterministic: the same order, the same bytes (and Digest), so the
/// bank's `X-Request-ID` record matches a resend.
pub(crate) fn initiation_body(order: &Order<'_>) -> Value {
    let mut body = json!({
        "endToEndIdentification": order.reference,
        "instructedAmount": {
            "currency": order.currency,
            "amount": to_bank_amount(order.amount_minor, order.currency),
        },
        "creditorAccount": account(&order.creditor.account),
        "creditorName": order.creditor.name,
        "remittanceInformationUnstructured": order.reference,
    });
    if let Some(debtor) = order.debtor {
        body["debtorAccount"] = account(&debtor.account);
    }
    body
}

/// `SHA-256=<base64>` of the body.
pub(crate) fn digest(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

/// The `X-Request-ID` for the node's idempotency key: the first 16 bytes of its SHA-256 laid
/// out as a version-4 UUID. The same key, the same id: the bank deduplicates on it.
pub(crate) fn request_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_v4_text(bytes)
}

/// A random version-4 UUID (for reads, which need no deduplication).
fn random_uuid() -> Result<String, ConnectorError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ConnectorError::Retryable(format!("no randomness: {e}")))?;
    Ok(uuid_v4_text(bytes))
}

fn unknown_status(status: &str) -> ConnectorError {
    ConnectorError::Unknown(format!(
        "the payment has an unknown transactionStatus {status:?}"
    ))
}

/// The first `tppMessages` code, the bank's reason for a rejection.
fn tpp_reason(body: &Value) -> Option<String> {
    body["tppMessages"][0]["code"]
        .as_str()
        .filter(|code| !code.is_empty())
        .map(str::to_string)
}

/// PROTOCOLS.md's mapping of Berlin Group transaction statuses; RCVD awaits the player's
/// authorisation on a pay-in, and is merely pending on a payout.
pub(crate) fn payment_status(
    status: &str,
    reason: Option<String>,
    pay_in: bool,
) -> Option<PaymentStatus> {
    Some(match status {
        "RCVD" if pay_in => PaymentStatus::AwaitingAuthorisation,
        "RCVD" | "ACTC" | "ACCP" | "ACSP" | "PDNG" | "ACFC" | "ACWC" | "ACWP" | "PATC" => {
            PaymentStatus::Pending
        }
        "ACSC" | "ACCC" => PaymentStatus::Settled,
        "RJCT" => PaymentStatus::Rejected {
            reason: reason.unwrap_or_else(|| "rejected".into()),
        },
        "CANC" => PaymentStatus::Expired,
        _ => return None,
    })
}

/// A payment's debtor as the payer: `{"iban"}` (or the sandbox's `{"bban"}`, 14 digits) and
/// `debtorName`; None if absent or not an account we can pay (a card number, a phone number,
/// both identifications at once).
fn payer_of(payment: &Value) -> Option<Party> {
    let debtor = &payment["debtorAccount"];
    let (scheme, identification) = match (debtor["iban"].as_str(), debtor["bban"].as_str()) {
        (Some(iban), None) => (PayerScheme::Iban, iban),
        (None, Some(bban)) => (PayerScheme::SortCode, bban),
        _ => return None,
    };
    reported_payer(scheme, identification, payment["debtorName"].as_str())
}

/// One entry of the account list as (currency, account).
fn listed_account(entry: &Value) -> Option<(String, Party)> {
    let currency = entry["currency"].as_str()?;
    let account = match (entry["iban"].as_str(), entry["bban"].as_str()) {
        (Some(iban), _) => AccountRef::Iban {
            iban: normalise_iban(iban),
        },
        (None, Some(bban)) => split_sort_code(bban)?,
        (None, None) => return None,
    };
    let name = entry["ownerName"]
        .as_str()
        .or_else(|| entry["name"].as_str())
        .unwrap_or_default();
    Some((
        currency.to_string(),
        Party {
            account,
            name: name.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests;
