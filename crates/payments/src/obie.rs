//! UK Open Banking Read/Write v3.1 payment-initiation connector (see PROTOCOLS.md).
//!
//! A payout is a consent whose debtor is the operator's own account (pre-authorised by the
//! bank) followed at once by its payment; a pay-in is a consent whose creditor is the
//! operator, authorised by the player at the bank's page, then submitted as a payment by
//! `pay_in_progress`. Every POST is signed (`x-jws-signature` over the exact body bytes) and
//! carries an idempotency key derived from the node's, so a resend after any failure answers
//! the first consent and payment: the bank also answers one payment per consent. Every 2xx
//! answer to a POST must carry the bank's signature (`answer`); one that does not is never
//! believed, and never makes the node pay twice (`answer::Stakes`).

use std::sync::Arc;

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
    ApiResponse, PayerScheme, Transport, JWS_HEADER,
};
use answer::Stakes;

mod answer;

const PISP: &str = "/open-banking/v3.1/pisp";
const AISP_ACCOUNTS: &str = "/open-banking/v3.1/aisp/accounts";
/// OBIE's Event Notification API resource (not under the PISP path).
const EVENT_SUBSCRIPTIONS: &str = "/open-banking/v3.1/event-subscriptions";
const RESOURCE_UPDATE: &str = "urn:uk:org:openbanking:events:resource-update";
/// OBIE's limit on `x-idempotency-key`.
const IDEMPOTENCY_KEY_CHARS_MAX: usize = 40;
/// ISO 20022's limit on InstructionIdentification.
const INSTRUCTION_ID_CHARS_MAX: usize = 35;
/// Suffix of the consent's idempotency key (the payment's is the node's key itself).
const CONSENT_KEY_SUFFIX: &str = "-c";

/// The OBIE connector. Cheap to clone: clones share one HTTP pool, token and key cache.
#[derive(Clone, Debug)]
pub struct ObieConnector {
    transport: Arc<Transport>,
}

/// A consent as the bank answers it.
#[derive(Debug)]
struct Consent {
    id: String,
    status: String,
    expired: bool,
    reason: Option<String>,
    initiation: Value,
}

impl ObieConnector {
    pub(crate) fn new(transport: Arc<Transport>) -> ObieConnector {
        ObieConnector { transport }
    }

    pub(crate) fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// Subscribes `callback_url` to resource-update events (the bank keeps the last one).
    pub(crate) async fn subscribe(&self, callback_url: &str) -> Result<(), ConnectorError> {
        let body = json!({"Data": {
            "CallbackUrl": callback_url,
            "Version": "3.1",
            "EventTypes": [RESOURCE_UPDATE],
        }});
        let key = idempotency_key(&format!("subscribe:{callback_url}"), "-s");
        let what = "event subscription";
        self.post(EVENT_SUBSCRIPTIONS, &body, &key, what, Stakes::NothingPaid)
            .await
            .map(|_| ())
    }

    /// The client's own accounts by currency, from account information.
    pub(crate) async fn list_accounts(&self) -> Result<Vec<(String, Party)>, ConnectorError> {
        let request = ApiRequest::get(AISP_ACCOUNTS.into());
        let answer: Value = self.transport.send(&request).await?.json("account list")?;
        let Some(accounts) = answer["Data"]["Account"].as_array() else {
            return Err(ConnectorError::Unknown(
                "the account list has no Data.Account".into(),
            ));
        };
        Ok(accounts.iter().filter_map(listed_account).collect())
    }

    /// A signed POST under the idempotency key `key`, whose 2xx answer (`what`) must carry
    /// the bank's signature; one that does not is an error of the kind `stakes` says.
    async fn post(
        &self,
        path: &str,
        body: &Value,
        key: &str,
        what: &str,
        stakes: Stakes,
    ) -> Result<ApiResponse, ConnectorError> {
        let mut request = ApiRequest::post_json(path.to_string(), body);
        let bytes = request.body.as_deref().unwrap_or_default();
        let signature = self.transport.sign_obie(bytes)?;
        request.header(JWS_HEADER, &signature)?;
        request.header("x-idempotency-key", key)?;
        request.header("x-fapi-financial-id", self.transport.id())?;
        let answer = self.transport.send(&request).await?;
        if let Err(error) = answer::verify(&self.transport, &answer).await {
            tracing::warn!(bank = %self.transport.id(), %path, %error, "an answer not signed by the bank");
            return Err(stakes.error(what, &error));
        }
        Ok(answer)
    }

    /// `read_refund`: ask the bank to report the debtor's account on the payment
    /// (`ReadRefundAccount`), for a pay-in, whose debtor only the bank learns.
    async fn post_consent(
        &self,
        initiation: &Value,
        key: &str,
        read_refund: bool,
    ) -> Result<Consent, ConnectorError> {
        let mut data = json!({"Initiation": initiation});
        if read_refund {
            data["ReadRefundAccount"] = Value::from("Yes");
        }
        let body = json!({"Data": data, "Risk": {}});
        let path = format!("{PISP}/domestic-payment-consents");
        let key = idempotency_key(key, CONSENT_KEY_SUFFIX);
        let answer = self
            .post(&path, &body, &key, "consent", Stakes::NothingPaid)
            .await?;
        parse_consent(&answer.json("consent")?)
    }

    /// A GET of a payment-initiation resource, whose 2xx answer must carry the bank's
    /// signature like a POST's (the PISP profile signs every answer): a status or a payer
    /// account decides where money goes, so one that does not prove it is the bank's is not
    /// believed, and `Unknown` has the caller ask the same bank again.
    async fn get(&self, path: String, what: &str) -> Result<ApiResponse, ConnectorError> {
        let answer = self.transport.send(&ApiRequest::get(path.clone())).await?;
        if let Err(error) = answer::verify(&self.transport, &answer).await {
            tracing::warn!(bank = %self.transport.id(), %path, %error, "an answer not signed by the bank");
            return Err(Stakes::Read.error(what, &error));
        }
        Ok(answer)
    }

    async fn get_consent(&self, consent_id: &str) -> Result<Consent, ConnectorError> {
        let path = format!("{PISP}/domestic-payment-consents/{}", segment(consent_id));
        let answer = self.get(path, "consent").await?;
        parse_consent(&answer.json("consent")?)
    }

    /// Submits the payment of an authorised consent (the bank answers one per consent).
    async fn post_payment(
        &self,
        consent_id: &str,
        initiation: &Value,
        key: &str,
    ) -> Result<(String, PaymentStatus), ConnectorError> {
        let body = json!({"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": {}});
        let path = format!("{PISP}/domestic-payments");
        let key = idempotency_key(key, "");
        let answer = self
            .post(&path, &body, &key, "payment", Stakes::MayHavePaid)
            .await?;
        parse_payment(&answer.json("payment")?)
    }

    async fn get_payment(&self, payment_id: &str) -> Result<PaymentStatus, ConnectorError> {
        let body = self.get_payment_resource(payment_id).await?;
        parse_payment(&body).map(|(_, status)| status)
    }

    /// `GET /domestic-payments/{id}`: the payment resource as the bank answers it.
    async fn get_payment_resource(&self, payment_id: &str) -> Result<Value, ConnectorError> {
        let path = format!("{PISP}/domestic-payments/{}", segment(payment_id));
        let answer = self.get(path, "payment").await?;
        answer.json("payment")
    }

    /// A pay-in's payment id: the handle's, or (after a restart, which forgets it) the one
    /// its consumed consent's resubmission answers. None when the consent has no payment:
    /// asking who paid must never make a payment, so an unconsumed consent is not submitted.
    async fn pay_in_payment_id(
        &self,
        handle: &PayInHandle,
    ) -> Result<Option<String>, ConnectorError> {
        if let Some(payment_id) = &handle.payment_id {
            return Ok(Some(payment_id.clone()));
        }
        let consent = self.get_consent(&handle.consent_id).await?;
        // Consumed: its payment exists, and submitting again answers that payment.
        if consent.status != "Consumed" {
            return Ok(None);
        }
        let (payment_id, _) = self
            .post_payment(&consent.id, &consent.initiation, &handle.idempotency_key)
            .await?;
        Ok(Some(payment_id))
    }

    /// `{base}/authorize?consent_id=ID[&redirect_uri=URL]`, query parts encoded.
    fn authorisation_url(
        &self,
        consent_id: &str,
        return_url: Option<&str>,
    ) -> Result<String, ConnectorError> {
        let page = format!("{}/authorize", self.transport.base_url());
        let mut url = Url::parse(&page)
            .map_err(|e| ConnectorError::Unknown(format!("no authorisation URL: {e}")))?;
        url.query_pairs_mut().append_pair("consent_id", consent_id);
        if let Some(return_url) = return_url {
            url.query_pairs_mut()
                .append_pair("redirect_uri", return_url);
        }
        Ok(url.into())
    }
}

impl Connector for ObieConnector {
    async fn pay_in_start(&self, request: &PayInRequest) -> Result<PayInStarted, ConnectorError> {
        let initiation = initiation(&Order {
            key: &request.idempotency_key,
            reference: &request.reference,
            amount_minor: request.amount_minor,
            currency: &request.currency,
            debtor: None,
            creditor: &request.creditor,
        });
        let consent = self
            .post_consent(&initiation, &request.idempotency_key, true)
            .await?;
        if consent.status == "Rejected" {
            return Err(consent_declined(&consent));
        }
        let authorisation_url =
            self.authorisation_url(&consent.id, request.return_url.as_deref())?;
        Ok(PayInStarted {
            consent_id: consent.id,
            authorisation_url,
        })
    }

    async fn pay_in_progress(&self, handle: &PayInHandle) -> Result<PayInProgress, ConnectorError> {
        if let Some(payment_id) = &handle.payment_id {
            let status = self.get_payment(payment_id).await?;
            return Ok(PayInProgress {
                status,
                payment_id: Some(payment_id.clone()),
            });
        }
        let consent = self.get_consent(&handle.consent_id).await?;
        let status = match consent.status.as_str() {
            "AwaitingAuthorisation" => PaymentStatus::AwaitingAuthorisation,
            "Rejected" if consent.expired => PaymentStatus::Expired,
            "Rejected" => PaymentStatus::Rejected {
                reason: consent.reason.unwrap_or_else(|| "rejected".into()),
            },
            // Consumed: its payment exists; submitting again answers that payment.
            "Authorised" | "Consumed" => {
                let (payment_id, status) = self
                    .post_payment(&consent.id, &consent.initiation, &handle.idempotency_key)
                    .await?;
                return Ok(PayInProgress {
                    status,
                    payment_id: Some(payment_id),
                });
            }
            other => return Err(unknown_status("consent", other)),
        };
        Ok(PayInProgress {
            status,
            payment_id: None,
        })
    }

    async fn pay_out(&self, request: &PayOutRequest) -> Result<PayOutAccepted, ConnectorError> {
        let initiation = initiation(&Order {
            key: &request.idempotency_key,
            reference: &request.reference,
            amount_minor: request.amount_minor,
            currency: &request.currency,
            debtor: Some(&request.debtor),
            creditor: &request.creditor,
        });
        // No ReadRefundAccount: the debtor is our own account, and the body stays what it
        // always was, so a payout resent across an upgrade still matches its consent.
        let consent = self
            .post_consent(&initiation, &request.idempotency_key, false)
            .await?;
        match consent.status.as_str() {
            "Authorised" | "Consumed" => {}
            "Rejected" => return Err(consent_declined(&consent)),
            other => {
                return Err(ConnectorError::Declined {
                    code: "consent_not_authorised".into(),
                    message: format!("the payout consent is {other}: is the debtor our account?"),
                })
            }
        }
        // Our own initiation, not the echo: it is byte for byte what the consent was made of.
        let (payment_id, status) = self
            .post_payment(&consent.id, &initiation, &request.idempotency_key)
            .await?;
        Ok(PayOutAccepted { payment_id, status })
    }

    async fn pay_out_status(&self, payment_id: &str) -> Result<PaymentStatus, ConnectorError> {
        self.get_payment(payment_id).await
    }

    async fn confirm_payee(&self, party: &Party) -> Result<PayeeMatch, ConnectorError> {
        self.transport.confirm_payee(party).await
    }

    /// The payment's `Data.Refund.Account`, which the bank fills in because the consent asked
    /// for it (`ReadRefundAccount`).
    async fn pay_in_payer(&self, handle: &PayInHandle) -> Result<Option<Party>, ConnectorError> {
        let Some(payment_id) = self.pay_in_payment_id(handle).await? else {
            return Ok(None);
        };
        let payment = self.get_payment_resource(&payment_id).await?;
        Ok(refund_account(&payment["Data"]))
    }
}

/// What an Initiation is made of.
pub(crate) struct Order<'a> {
    pub key: &'a str,
    pub reference: &'a str,
    pub amount_minor: u64,
    pub currency: &'a str,
    pub debtor: Option<&'a Party>,
    pub creditor: &'a Party,
}

/// The consent's (and its payment's) Initiation. Deterministic: the same order, the same
/// bytes, so a resend matches the bank's idempotency record.
pub(crate) fn initiation(order: &Order<'_>) -> Value {
    let mut initiation = json!({
        "InstructionIdentification": short_id(order.key, INSTRUCTION_ID_CHARS_MAX),
        "EndToEndIdentification": order.reference,
        "InstructedAmount": {
            "Amount": to_bank_amount(order.amount_minor, order.currency),
            "Currency": order.currency,
        },
        "CreditorAccount": account(order.creditor),
        "RemittanceInformation": {"Reference": order.reference},
    });
    if let Some(debtor) = order.debtor {
        initiation["DebtorAccount"] = account(debtor);
    }
    initiation
}

/// `{"SchemeName","Identification","Name"}`.
pub(crate) fn account(party: &Party) -> Value {
    let (scheme, identification) = match &party.account {
        AccountRef::Iban { iban } => ("UK.OBIE.IBAN", normalise_iban(iban)),
        AccountRef::SortCode {
            sort_code,
            account_number,
        } => (
            "UK.OBIE.SortCodeAccountNumber",
            sort_code_identification(sort_code, account_number),
        ),
    };
    json!({"SchemeName": scheme, "Identification": identification, "Name": party.name})
}

/// The key the bank sees for the node's `key` plus `suffix`: as is when it fits OBIE's 40
/// printable characters, else a SHA-256 digest of the key (hex, cut to fit) plus the suffix.
/// Deterministic, so a resend sends the same key.
pub(crate) fn idempotency_key(key: &str, suffix: &str) -> String {
    let plain = format!("{key}{suffix}");
    let printable = plain.bytes().all(|b| b.is_ascii_graphic());
    if printable && plain.len() <= IDEMPOTENCY_KEY_CHARS_MAX {
        return plain;
    }
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let room = IDEMPOTENCY_KEY_CHARS_MAX.saturating_sub(suffix.len());
    format!("{}{suffix}", &digest[..room.min(digest.len())])
}

/// `key` if it fits `chars_max` printable ASCII, else its SHA-256 hex cut to fit.
fn short_id(key: &str, chars_max: usize) -> String {
    if key.len() <= chars_max && key.bytes().all(|b| b.is_ascii_graphic()) {
        return key.to_string();
    }
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    digest[..chars_max.min(digest.len())].to_string()
}

fn unknown_status(what: &str, status: &str) -> ConnectorError {
    ConnectorError::Unknown(format!("the {what} has an unknown status {status:?}"))
}

fn consent_declined(consent: &Consent) -> ConnectorError {
    ConnectorError::Declined {
        code: consent.reason.clone().unwrap_or_else(|| "rejected".into()),
        message: "the bank rejected the consent".into(),
    }
}

fn status_reason(data: &Value) -> Option<String> {
    let detail = &data["StatusDetail"];
    let reason = detail["StatusReason"]
        .as_str()
        .or_else(|| detail["StatusReasonDescription"].as_str());
    reason.filter(|r| !r.is_empty()).map(str::to_string)
}

fn parse_consent(body: &Value) -> Result<Consent, ConnectorError> {
    let data = &body["Data"];
    let (Some(id), Some(status)) = (data["ConsentId"].as_str(), data["Status"].as_str()) else {
        return Err(ConnectorError::Unknown(
            "the consent has no ConsentId or Status".into(),
        ));
    };
    Ok(Consent {
        id: id.to_string(),
        status: status.to_string(),
        expired: data["Expired"].as_bool() == Some(true),
        reason: status_reason(data),
        initiation: data["Initiation"].clone(),
    })
}

/// A payment's id and status.
fn parse_payment(body: &Value) -> Result<(String, PaymentStatus), ConnectorError> {
    let data = &body["Data"];
    let (Some(id), Some(status)) = (data["DomesticPaymentId"].as_str(), data["Status"].as_str())
    else {
        return Err(ConnectorError::Unknown(
            "the payment has no DomesticPaymentId or Status".into(),
        ));
    };
    let status = payment_status(status, status_reason(data))
        .ok_or_else(|| unknown_status("payment", status))?;
    Ok((id.to_string(), status))
}

/// PROTOCOLS.md's mapping of OBIE payment statuses (plus the v3.1 ones the sandbox does not
/// use: AcceptedWithoutPosting is still in flight; AcceptedCreditSettlementCompleted has
/// credited the creditor).
pub(crate) fn payment_status(status: &str, reason: Option<String>) -> Option<PaymentStatus> {
    Some(match status {
        "Pending" | "AcceptedSettlementInProcess" | "AcceptedWithoutPosting" => {
            PaymentStatus::Pending
        }
        "AcceptedSettlementCompleted" | "AcceptedCreditSettlementCompleted" => {
            PaymentStatus::Settled
        }
        "Rejected" => PaymentStatus::Rejected {
            reason: reason.unwrap_or_else(|| "rejected".into()),
        },
        _ => return None,
    })
}

/// A payment's `Refund.Account` as the payer; None if absent or not an account we can pay.
fn refund_account(data: &Value) -> Option<Party> {
    let account = &data["Refund"]["Account"];
    let scheme = match account["SchemeName"].as_str()? {
        "UK.OBIE.IBAN" | "IBAN" => PayerScheme::Iban,
        "UK.OBIE.SortCodeAccountNumber" | "SortCodeAccountNumber" => PayerScheme::SortCode,
        _ => return None,
    };
    let identification = account["Identification"].as_str()?;
    reported_payer(scheme, identification, account["Name"].as_str())
}

/// One entry of the AIS account list as (currency, account); None if it is not one we can
/// pay from.
fn listed_account(entry: &Value) -> Option<(String, Party)> {
    let currency = entry["Currency"].as_str()?;
    let first = entry["Account"].get(0)?;
    let identification = first["Identification"].as_str()?;
    let account = match first["SchemeName"].as_str()? {
        "UK.OBIE.IBAN" | "IBAN" => AccountRef::Iban {
            iban: normalise_iban(identification),
        },
        "UK.OBIE.SortCodeAccountNumber" | "SortCodeAccountNumber" => {
            split_sort_code(identification)?
        }
        _ => return None,
    };
    let name = first["Name"]
        .as_str()
        .or_else(|| entry["Nickname"].as_str())
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
